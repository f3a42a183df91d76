"""A minimal maximum-likelihood training loop for any TFP distribution."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["fit_maximum_likelihood", "mean_log_prob"]


def fit_maximum_likelihood(distribution: tfp.distributions.Distribution, data: np.ndarray,
                           num_steps: int, batch_size: int = 256, learning_rate: float = 1e-3,
                           clipnorm: float | None = None, seed: int = 0,
                           jit_compile: bool = False) -> np.ndarray:
    """Minimises the mean negative log-likelihood of `data` with Adam.

    Returns the loss of every step. The batches are drawn with a NumPy
    generator seeded by `seed`, so a run is reproducible on CPU.
    """
    import tf_keras

    variables = distribution.trainable_variables
    if not variables:
        raise ValueError("`distribution` has no trainable variables to fit.")
    optimizer = tf_keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    dtype = variables[0].dtype

    @tf.function(jit_compile=jit_compile)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(batch))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    losses = np.empty(num_steps)
    for i in range(num_steps):
        batch = data[rng.integers(0, len(data), batch_size)]
        losses[i] = step(tf.constant(batch, dtype)).numpy()
    return losses


def mean_log_prob(distribution: tfp.distributions.Distribution, data: np.ndarray,
                  batch_size: int = 4096) -> tuple[float, float]:
    """Mean log-likelihood of `data` and its standard error over the points."""
    dtype = distribution.dtype
    log_prob = tf.function(distribution.log_prob)
    values = np.concatenate([
        log_prob(tf.constant(data[i:i + batch_size], dtype)).numpy()
        for i in range(0, len(data), batch_size)])
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
