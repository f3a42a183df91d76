"""Autodiff Jacobians and their log-determinants, the reference for every log-det test."""

import numpy as np
import tensorflow as tf


def autodiff_jacobian(fn, y: tf.Tensor) -> np.ndarray:
    """The Jacobian of `fn` per member of `y` (any batch shape, event last):
    shape `batch + [D, D]`."""
    event_size = y.shape[-1]
    flat = tf.reshape(y, [-1, event_size])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(flat)
        x = tf.reshape(fn(tf.reshape(flat, tf.shape(y))), [-1, event_size])
        outputs = [x[:, i] for i in range(event_size)]
    # Members are independent: one gradient per output row, no `pfor` (which
    # traces anew at every call, slow for the suite's many small Jacobians).
    jacobian = np.stack([tape.gradient(out, flat).numpy() for out in outputs], axis=1)
    return jacobian.reshape(tuple(y.shape[:-1]) + (event_size, event_size))


def log_det(jacobian: np.ndarray, increasing: bool = True) -> np.ndarray:
    """log|det| of each Jacobian; `increasing`: also assert a positive
    determinant (a permutation may flip the sign)."""
    sign, value = np.linalg.slogdet(jacobian)
    assert np.all(sign != 0), "the Jacobian is singular"
    assert np.all(sign > 0) or not increasing, "the map must be increasing (positive det)"
    return value


def autodiff_log_det(fn, y: tf.Tensor) -> np.ndarray:
    """log|det d fn(y) / dy| per batch member, from the full autodiff Jacobian."""
    return log_det(autodiff_jacobian(fn, y))
