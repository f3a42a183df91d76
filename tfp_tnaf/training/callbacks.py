"""Keras callbacks of flow training: the best-validation weights, a wall-clock budget,
and a learning rate that decays over that budget."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import tf_keras

__all__ = ["DECAYS", "BestWeights", "DecayOverBudget", "TimeBudget", "cosine_factor"]

# The learning-rate schedules of a run with a budget: "constant", or "cosine",
# annealed to 0 over the budget (`DecayOverBudget`, `cosine_factor`).
DECAYS = ("constant", "cosine")

logger = logging.getLogger(__name__)


class _StepCounter(tf_keras.callbacks.Callback):
    """Counts the train steps done (`steps`), whatever `steps_per_execution`.

    With `model.compile(..., steps_per_execution=k)` Keras runs up to `k`
    steps per call of its compiled step, and calls `on_train_batch_begin` and
    `on_train_batch_end` once per call, with the indices (in the epoch) of the
    call's first and last steps.
    """

    def on_train_begin(self, logs=None):
        self.steps = 0
        self._first_batch = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._first_batch = batch

    def on_train_batch_end(self, batch, logs=None):
        self.steps += batch - self._first_batch + 1


class BestWeights(_StepCounter):
    """Restores the weights of the best epoch at the end of `fit`; stops on a non-finite loss.

    The weights are copied whenever `monitor` (default `val_loss`, else
    `loss` when there is no validation data) improves. If the loss is NaN or
    infinite, training stops after that call of the train step (one batch, or
    `steps_per_execution` of them) with a logged message and the best
    weights so far (or those `fit` started from) are restored, so a diverged
    run still ends with a usable model. After `fit`, `best_epoch`,
    `best_step`, `best_value`, `steps` and `stopped_non_finite` say what
    happened.

    Values of `monitor` come at the end of each epoch, and from
    `on_validation(value)` at any time: `TimeBudget(..., best=this)` reports its
    mid-epoch validation NLLs there, so they compete for the best weights by the
    same rule.

    Args:
      monitor: the logged quantity to minimise.
      restore: restore the best weights at the end of `fit` (the
        non-finite stop always restores).
    """

    def __init__(self, monitor: str = "val_loss", restore: bool = True):
        super().__init__()
        self.monitor = monitor
        self.restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best_value = np.inf
        self.best_epoch = None  # 0-based: the epoch during (or at the end of) which
        self.best_step = None   # `steps` train steps had run
        self.stopped_non_finite = False
        self._epoch = 0
        self._best_weights = self.model.get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_non_finite = True
            self.model.stop_training = True
            self.message = (f"Training stopped: the loss is {loss} after batch {batch}. "
                            f"Restored the weights of "
                            + (f"epoch {self.best_epoch + 1}, step {self.best_step} "
                               f"({self.monitor} {self.best_value:.4f})."
                               if self.best_epoch is not None
                               else "the start of training."))
            logger.warning(self.message)
            print(self.message)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor, logs.get("loss") if self.monitor == "val_loss" else None)
        if value is not None:
            self.on_validation(value)

    def on_validation(self, value: float) -> bool:
        """Takes `value` of `monitor` for the current weights; copies them if it
        is finite and the best so far (and training has not diverged). Returns
        whether it did."""
        if self.stopped_non_finite or not np.isfinite(value) or value >= self.best_value:
            return False
        self.best_value, self.best_epoch, self.best_step = float(value), self._epoch, self.steps
        self._best_weights = self.model.get_weights()
        return True

    def on_train_end(self, logs=None):
        if self.restore or self.stopped_non_finite:
            self.model.set_weights(self._best_weights)

    def get_state(self) -> dict:
        """What `ResumableTraining` checkpoints: the best so far, its weights included."""
        return dict(best_value=self.best_value, best_epoch=self.best_epoch,
                    best_step=self.best_step, steps=self.steps,
                    stopped_non_finite=self.stopped_non_finite, weights=self._best_weights)

    def set_state(self, state: dict) -> None:
        """Continues from `get_state()`'s result (after `on_train_begin`)."""
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.best_step, self.steps = state["best_step"], state["steps"]
        self.stopped_non_finite = state["stopped_non_finite"]
        self._best_weights = list(state["weights"])


class TimeBudget(_StepCounter):
    """Stops `fit` once `seconds` of training time have passed; can record a
    validation trace on the way.

    The clock starts at `on_train_begin`, so tracing and compiling the train
    step count, and is checked after every call of the train step (every
    batch; every `k` batches under `compile(..., steps_per_execution=k)`): once
    it reaches `seconds`, `model.stop_training` is set and `fit` ends after that
    call, so `epochs` is only an upper bound. Evaluation pauses the clock: Keras' validation at
    the end of each epoch and this callback's own trace evaluations are not
    counted, so the budget is the training time of the run, whatever the
    validation costs.

    A budget that runs out mid-epoch still ends with the best-validation
    weights: after `stop_training` `tf_keras` finishes the epoch early but
    still validates the weights reached (with the default `validation_freq=1`)
    and calls `on_epoch_end`, where `BestWeights` sees them like any other
    epoch's.

    With `record_every` (seconds of training time) and `validation_data`, the
    mean validation NLL (`-mean log_prob`, through `model.predict`, so the
    training loss metric is not disturbed) is evaluated after the first call of
    the train step that ends at least `record_every` seconds after the last
    evaluation (or the start), and after the call that exhausts the budget, and
    appended to `trace` as
    `{"seconds": ..., "steps": ..., "validation_nll": ...}`. Give `best` (the
    run's `BestWeights`, monitoring `val_loss`) and each such evaluation also
    competes for the best weights, so weights seen only mid-epoch are restored
    if they were the best. Pass the same validation data as to `fit`.

    After `fit`: `steps` (train steps completed), `seconds` (training time
    when the last call of the train step ended, evaluation excluded),
    `exhausted` (whether the budget stopped the run) and `trace`.

    ```python
    best = BestWeights()
    budget = TimeBudget(600, validation_data=(validation,), record_every=30, best=best)
    model.fit(train, validation_data=(validation,), epochs=10_000, batch_size=200,
              callbacks=[best, budget])
    ```

    Args:
      seconds: the training-time budget, > 0.
      validation_data: what `model.predict` scores: points, `(points,)` or
        `(points, context)`; needed by `record_every`.
      record_every: seconds of training time between trace evaluations (None:
        no trace).
      best: a `BestWeights` that receives the trace evaluations.
      batch_size: the batch of the trace evaluations.
    """

    def __init__(self, seconds: float, validation_data=None, record_every: float | None = None,
                 best: BestWeights | None = None, batch_size: int = 4096):
        super().__init__()
        if not _positive(seconds):
            raise ValueError(f"`seconds` must be a positive number; got {seconds!r}")
        if record_every is not None and not _positive(record_every):
            raise ValueError(f"`record_every` must be a positive number; got {record_every!r}")
        if record_every is not None and validation_data is None:
            raise ValueError("`record_every` needs `validation_data` to evaluate")
        if best is not None and best.monitor != "val_loss":
            raise ValueError("`best` must monitor `val_loss` to take validation NLLs; "
                             f"it monitors {best.monitor!r}")
        if isinstance(validation_data, (tuple, list)):
            if not 1 <= len(validation_data) <= 2:
                raise ValueError("`validation_data` must be points, (points,) or "
                                 "(points, context)")
            validation_data = (validation_data[0] if len(validation_data) == 1
                               else tuple(validation_data))
        self.budget = float(seconds)
        self.validation_data = validation_data
        self.record_every = record_every
        self.best = best
        self.batch_size = batch_size

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.seconds, self.exhausted, self.trace = 0.0, False, []
        self._start, self._paused, self._paused_at = time.perf_counter(), 0.0, None
        self._next_record = self.record_every

    def get_state(self) -> dict:
        """What `ResumableTraining` checkpoints: the time spent, so the budget
        counts across a restart, and the trace."""
        return dict(steps=self.steps, seconds=self.seconds, exhausted=self.exhausted,
                    trace=self.trace, next_record=self._next_record)

    def set_state(self, state: dict) -> None:
        """Continues from `get_state()`'s result (after `on_train_begin`): the
        clock goes on from the seconds spent."""
        self.steps, self.seconds, self.exhausted = (state["steps"], state["seconds"],
                                                    state["exhausted"])
        self.trace, self._next_record = list(state["trace"]), state["next_record"]
        self._start, self._paused, self._paused_at = (time.perf_counter() - self.seconds,
                                                      0.0, None)

    def elapsed(self) -> float:
        """Training time so far: wall-clock since `on_train_begin`, evaluation excluded."""
        now = self._paused_at if self._paused_at is not None else time.perf_counter()
        return now - self._start - self._paused

    def _pause(self):
        if self._paused_at is None:
            self._paused_at = time.perf_counter()

    def _resume(self):
        if self._paused_at is not None:
            self._paused += time.perf_counter() - self._paused_at
            self._paused_at = None

    def on_test_begin(self, logs=None):  # Keras' validation inside `fit`
        self._pause()

    def on_test_end(self, logs=None):
        self._resume()

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        self.seconds = self.elapsed()
        exhausted = self.seconds >= self.budget
        # The trace ends with the weights the budget stops at.
        if self._next_record is not None and (self.seconds >= self._next_record or exhausted):
            self._record()
        if exhausted:
            self.exhausted = True
            self.model.stop_training = True

    def validation_nll(self) -> float:
        """The mean validation NLL of the current weights (clock paused)."""
        self._pause()
        try:
            log_prob = self.model.predict(self.validation_data, batch_size=self.batch_size,
                                          verbose=0)
        finally:
            self._resume()
        return -float(np.mean(log_prob))

    def _record(self):
        value = self.validation_nll()
        self.trace.append(dict(seconds=self.seconds, steps=self.steps, validation_nll=value))
        if self.best is not None:
            self.best.on_validation(value)
        self._next_record = self.seconds + self.record_every


class DecayOverBudget(tf_keras.callbacks.Callback):
    r"""Anneals the optimizer's learning rate over a `TimeBudget`'s seconds.

    Before each call of the train step (each batch, or each
    `steps_per_execution` batches) the learning rate becomes

    ```none
    lr(t) = lr_0 * (floor + (1 - floor) * (1 + cos(pi * min(t / T, 1))) / 2)
    ```

    with `t` the budget's training time so far (`TimeBudget.elapsed`:
    evaluation excluded), `T` its seconds and `lr_0` the learning rate the
    optimizer had when `fit` began: the cosine schedule of SGDR
    (Loshchilov & Hutter, 2017) with the run's length measured in seconds
    instead of steps, since under a wall-clock budget the number of steps is
    not known in advance. Put it after the `TimeBudget` in `callbacks`.

    ```python
    budget = TimeBudget(300)
    model.fit(train, epochs=10**6, callbacks=[BestWeights(), budget, DecayOverBudget(budget)])
    ```

    Args:
      budget: the run's `TimeBudget`.
      floor: the final learning rate as a fraction of `lr_0`, in [0, 1).

    References:
      Loshchilov, I. and Hutter, F. SGDR: Stochastic gradient descent with warm
      restarts. ICLR 2017. https://arxiv.org/abs/1608.03983
    """

    def __init__(self, budget: TimeBudget, floor: float = 0.0):
        super().__init__()
        if not isinstance(budget, TimeBudget):
            raise TypeError(f"`budget` must be a TimeBudget; got {type(budget).__name__}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) \
                or not 0 <= floor < 1:
            raise ValueError(f"`floor` must be a number in [0, 1); got {floor!r}")
        self.budget = budget
        self.floor = float(floor)
        self.initial_learning_rate: float | None = None

    def on_train_begin(self, logs=None):
        self.initial_learning_rate = float(self.model.optimizer.learning_rate.numpy())

    def factor(self, seconds: float) -> float:
        """`lr(t) / lr_0` after `seconds` of training."""
        return cosine_factor(seconds / self.budget.budget, self.floor)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(
            self.initial_learning_rate * self.factor(self.budget.elapsed()))

    def get_state(self) -> dict:
        """What `ResumableTraining` checkpoints: `lr_0` (the optimizer's own
        learning rate is restored decayed)."""
        return dict(initial_learning_rate=self.initial_learning_rate)

    def set_state(self, state: dict) -> None:
        """Continues from `get_state()`'s result (after `on_train_begin`)."""
        self.initial_learning_rate = state["initial_learning_rate"]


def cosine_factor(progress: float, floor: float = 0.0) -> float:
    """The cosine schedule's `lr / lr_0` at `progress` (the budget's fraction
    spent, clipped to [0, 1]): `floor + (1 - floor) (1 + cos(pi progress)) / 2`."""
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _positive(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
