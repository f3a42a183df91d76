"""A fixed number of training steps on random batches, for tests and benchmarks.

`fit_steps` drives `FlowModel`'s own train step (Keras `train_on_batch`), one
batch at a time, so every step's loss and gradient norm can be recorded.
"""

from __future__ import annotations

import numpy as np
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf.training.model import FlowModel

__all__ = ["fit_steps"]

tfd = tfp.distributions


def fit_steps(distribution: tfd.Distribution, data: np.ndarray, num_steps: int,
              optimizer: tf_keras.optimizers.Optimizer, batch_size: int = 256, seed: int = 0,
              jit_compile: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Fits `distribution` to `data` for `num_steps` steps of `optimizer`.

    Batches are drawn with replacement by a NumPy generator seeded by `seed`,
    so a run is reproducible on CPU. Returns every step's loss (the batch's
    negative log-likelihood) and its global gradient norm before clipping
    (NaN or inf if any gradient is).
    """
    if not distribution.trainable_variables:
        raise ValueError("`distribution` has no trainable variables to fit.")
    model = FlowModel(distribution, report_gradient_norm=True)
    model.compile(optimizer, jit_compile=jit_compile)
    rng = np.random.default_rng(seed)
    losses, norms = np.empty(num_steps), np.empty(num_steps)
    for i in range(num_steps):
        batch = data[rng.integers(0, len(data), batch_size)]
        logs = model.train_on_batch(batch, return_dict=True)
        losses[i], norms[i] = logs["loss"], logs["gradient_norm"]
    return losses, norms
