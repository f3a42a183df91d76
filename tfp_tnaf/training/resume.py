"""Training that survives a kill: a checkpoint every epoch, resumed by rerunning `fit`."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tf_keras

__all__ = ["ResumableTraining"]

_IN_VARIABLES = "checkpointed as variables"


class _State(tf.Module):
    """What a checkpoint holds besides the model and its optimizer: the saved
    callbacks' states (JSON) and the best weights so far."""

    def __init__(self, weights: list[np.ndarray]):
        super().__init__(name="resume_state")
        self.text = tf.Variable("", dtype=tf.string, trainable=False)
        self.best_weights = [tf.Variable(w, trainable=False) for w in weights]


class ResumableTraining(tf_keras.callbacks.BackupAndRestore):
    """Writes a training checkpoint after every epoch; a rerun of `fit` resumes it.

    A `tf_keras.callbacks.BackupAndRestore` that also keeps the state of the
    package's other callbacks. After each epoch it writes, with
    `tf.train.CheckpointManager` under `directory`: the weights, the optimizer
    state, the epoch, the history of every epoch so far, and the state of each
    callback in `callbacks` (`BestWeights`: the best-so-far weights, value,
    epoch and step; `TimeBudget`: the training seconds spent, so a budget
    counts across the restart, and its trace). When `fit` starts with a
    checkpoint in `directory` (the run was killed), it restores all of it and
    continues with the epoch after the last one completed; `resumed_from` then
    says how many epochs were done. A batch run after the last checkpoint is
    lost and runs again.

    Build the model before `fit` (call it on a batch) so its optimizer state
    can be restored, and put this callback after those it saves: Keras calls
    callbacks in order, and their epoch's state must be final when it is
    written. Shuffling after a resume does not replay the killed run's order.

    ```python
    best = BestWeights()
    model(train[:1])
    resume = ResumableTraining("runs/x/resume", callbacks=[best])
    model.fit(train, validation_data=(validation,), epochs=100,
              callbacks=[best, resume])   # kill it, run it again: it continues
    history = resume.history              # every epoch's logs, before the kill too
    ```

    Args:
      directory: where the checkpoint lives.
      callbacks: callbacks with `get_state() -> dict` and `set_state(dict)`
        (JSON values; one of them may hold a `"weights"` entry, a list of
        arrays shaped as the model's weights, checkpointed as variables).
      delete_checkpoint: delete the checkpoint when `fit` ends (False: keep it
        until `delete()`, e.g. until the results are written).
    """

    def __init__(self, directory: str | os.PathLike, callbacks=(),
                 delete_checkpoint: bool = True):
        super().__init__(os.fspath(directory), save_freq="epoch",
                         delete_checkpoint=delete_checkpoint)
        self.directory = os.fspath(directory)
        self.callbacks = list(callbacks)
        self.resumed_from: int | None = None
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError("ResumableTraining needs a built model: call it on a batch "
                             "before `fit`, so its optimizer state can be restored")
        super().on_train_begin(logs)  # restores the model and optimizer, if it can
        # Our state joins BackupAndRestore's checkpoint (not the model: it would
        # count among the model's weights), then that checkpoint is read again.
        self._state = _State(self.model.get_weights())
        manager = self._training_state.read_checkpoint_manager
        manager.checkpoint.resume_state = self._state
        if manager.latest_checkpoint:
            manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        self.resumed_from, self.history = None, {}
        text = self._state.text.numpy().decode()
        if text:
            saved = json.loads(text)
            self.resumed_from, self.history = saved["epochs_done"], saved["history"]
            for callback, state in zip(self.callbacks, saved["callbacks"], strict=True):
                if state.get("weights") == _IN_VARIABLES:
                    state["weights"] = [v.numpy() for v in self._state.best_weights]
                callback.set_state(state)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        states = [callback.get_state() for callback in self.callbacks]
        for state in states:
            if "weights" in state:  # checkpointed as variables, not in the JSON
                for variable, value in zip(self._state.best_weights, state["weights"],
                                           strict=True):
                    variable.assign(value)
                state["weights"] = _IN_VARIABLES
        # A run that stops here (a spent budget, a non-finite loss) resumes as finished.
        last = self.params["epochs"] - 1 if self.model.stop_training else epoch
        self._state.text.assign(json.dumps(dict(epochs_done=last + 1, history=self.history,
                                                callbacks=states)))
        # BackupAndRestore saves the epoch its `on_epoch_begin` recorded.
        self._training_state._ckpt_saved_epoch.assign(last)
        self._backup(epoch=last)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.delete_checkpoint:
            self.delete()

    def delete(self) -> None:
        """Deletes the checkpoint (once what the run produced is safely written)."""
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)
