"""Maximum-likelihood training of any TFP distribution: a Keras model, callbacks, checkpoints.

`FlowModel` wraps a distribution in a `tf_keras.Model` (the Keras that TFP
uses) whose loss is the mean negative log-likelihood, so `compile`, `fit`,
`evaluate` and `predict` work as for any Keras model. Weights are saved with
`tf.train.Checkpoint` (`save_weights` / `load_weights`): Keras `.h5` and
`.keras` files silently lose weights owned by a `tf.Module`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

__all__ = ["BestWeights", "FlowModel", "fit_maximum_likelihood", "load_weights",
           "mean_log_prob", "save_weights"]

tfd = tfp.distributions
logger = logging.getLogger(__name__)


def single_bijector_kwargs(context: tf.Tensor) -> dict:
    """The default `conditional_kwargs`: the context for one package bijector."""
    return {"conditional_input": context}


class FlowModel(tf_keras.Model):
    """A Keras model that fits `distribution` by maximum likelihood.

    `fit(x)` minimises `-mean(distribution.log_prob(x))`; `evaluate(x)`
    returns that loss; `predict(x)` (and calling the model) gives
    `log_prob(x)`. Clip gradients through the optimizer (`clipnorm=`), and
    compile with `jit_compile=True` for XLA. For conditional densities pass the
    context as Keras' `y`: `fit(points, context)`; it reaches the bijectors
    through `conditional_kwargs(context)` (and `predict((points, context))`
    scores them), by default
    `{"conditional_input": context}` (one package bijector); for a chain, give
    e.g. `lambda c: {"flow_0": {"conditional_input": c}, ...}`.

    ```python
    model = FlowModel(tfd.TransformedDistribution(base, TransformerAutoregressive(2)))
    model.compile(tf_keras.optimizers.Adam(1e-3, clipnorm=0.1))
    model.fit(train, validation_data=(validation,), epochs=20, batch_size=200,
              callbacks=[BestWeights()])
    ```

    Under a `tf.distribute` strategy (`MirroredStrategy`,
    `MultiWorkerMirroredStrategy`), build the distribution and the model inside
    `strategy.scope()`; `fit`'s `batch_size` is the global batch, split across
    the replicas.

    Args:
      distribution: any TFP distribution with trainable variables (created
        before the first `fit`, as the package's bijectors do in `__init__`).
      conditional_kwargs: maps a context batch to `bijector_kwargs`.
    """

    def __init__(self, distribution: tfd.Distribution,
                 conditional_kwargs: Callable[[tf.Tensor], dict] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.distribution = distribution
        self._conditional_kwargs = conditional_kwargs or single_bijector_kwargs
        self._loss_tracker = tf_keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self._loss_tracker]

    def call(self, x: tf.Tensor, context: tf.Tensor | None = None) -> tf.Tensor:
        x = tf.cast(x, self.distribution.dtype)
        if context is None:
            return self.distribution.log_prob(x)
        context = tf.cast(context, self.distribution.dtype)
        return self.distribution.log_prob(
            x, bijector_kwargs=self._conditional_kwargs(context))

    def _negative_log_likelihood(self, data):
        x, context, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
        return -tf.reduce_mean(self(x, context))

    def train_step(self, data):
        # Under a tf.distribute strategy the optimizer sums the replicas' gradients:
        # scaling each replica's mean keeps the step that of the global batch's mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self._negative_log_likelihood(data)
            scaled = loss / replicas
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables,
                                           strict=True))
        self._loss_tracker.update_state(loss)
        return {"loss": self._loss_tracker.result()}

    def test_step(self, data):
        self._loss_tracker.update_state(self._negative_log_likelihood(data))
        return {"loss": self._loss_tracker.result()}

    def predict_step(self, data):
        x, context, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)):  # predict((points, context))
            x, context = x
        return self(x, context)


class BestWeights(tf_keras.callbacks.Callback):
    """Restores the weights of the best epoch at the end of `fit`; stops on a non-finite loss.

    The weights are copied whenever `monitor` (default `val_loss`, else
    `loss` when there is no validation data) improves. If a batch's loss is
    NaN or infinite, training stops at once with a logged message and the best
    weights so far (or those `fit` started from) are restored, so a diverged
    run still ends with a usable model. After `fit`, `best_epoch`,
    `best_value` and `stopped_non_finite` say what happened.

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
        self.best_value = np.inf
        self.best_epoch = None
        self.stopped_non_finite = False
        self._best_weights = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_non_finite = True
            self.model.stop_training = True
            self.message = (f"Training stopped: the loss is {loss} at batch {batch}. "
                            f"Restored the weights of "
                            + (f"epoch {self.best_epoch + 1} ({self.monitor} "
                               f"{self.best_value:.4f})." if self.best_epoch is not None
                               else "the start of training."))
            logger.warning(self.message)
            print(self.message)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor, logs.get("loss") if self.monitor == "val_loss" else None)
        if not self.stopped_non_finite and value is not None and np.isfinite(value) \
                and value < self.best_value:
            self.best_value, self.best_epoch = float(value), epoch
            self._best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.restore or self.stopped_non_finite:
            self.model.set_weights(self._best_weights)


def save_weights(module: tf.Module, path: str | os.PathLike) -> str:
    """Writes the variables of `module` (a distribution, bijector or model) with
    `tf.train.Checkpoint`; returns the checkpoint prefix `path`."""
    return tf.train.Checkpoint(model=module).write(os.fspath(path))


def load_weights(module: tf.Module, path: str | os.PathLike) -> None:
    """Restores `save_weights(module, path)` into a module built the same way.

    Raises:
      FileNotFoundError: if there is no checkpoint at `path`.
      AssertionError: if the checkpoint and the module do not match exactly.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"No checkpoint at {path!r} (expected {path}.index).")
    tf.train.Checkpoint(model=module).read(path).assert_consumed()


def fit_maximum_likelihood(distribution: tfd.Distribution, data: np.ndarray,
                           num_steps: int, batch_size: int = 256, learning_rate: float = 1e-3,
                           clipnorm: float | None = None, seed: int = 0,
                           jit_compile: bool = False, gradient_norms: bool = False
                           ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Minimises the mean negative log-likelihood of `data` with Adam, `num_steps` steps.

    A plain loop (no Keras) for tests and benchmarks; returns every step's
    loss, and with `gradient_norms=True` also every step's global gradient
    norm before clipping (NaN or inf if any gradient is). Batches are drawn
    with a NumPy generator seeded by `seed`, so a run is reproducible on CPU.
    """
    variables = distribution.trainable_variables
    if not variables:
        raise ValueError("`distribution` has no trainable variables to fit.")
    optimizer = tf_keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    dtype = variables[0].dtype

    @tf.function(jit_compile=jit_compile)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(batch))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, tf.linalg.global_norm(grads)

    rng = np.random.default_rng(seed)
    losses, norms = np.empty(num_steps), np.empty(num_steps)
    for i in range(num_steps):
        batch = data[rng.integers(0, len(data), batch_size)]
        loss, norm = step(tf.constant(batch, dtype))
        losses[i], norms[i] = loss.numpy(), norm.numpy()
    return (losses, norms) if gradient_norms else losses


def mean_log_prob(distribution: tfd.Distribution, data: np.ndarray,
                  batch_size: int = 4096, **kwargs: Any) -> tuple[float, float]:
    """Mean log-likelihood of `data` and its standard error over the points."""
    dtype = distribution.dtype
    log_prob = tf.function(lambda x: distribution.log_prob(x, **kwargs))
    values = np.concatenate([
        log_prob(tf.constant(data[i:i + batch_size], dtype)).numpy()
        for i in range(0, len(data), batch_size)])
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
