"""Keras callbacks of flow training."""

from __future__ import annotations

import logging

import numpy as np
import tf_keras

__all__ = ["BestWeights"]

logger = logging.getLogger(__name__)


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
