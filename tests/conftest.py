"""Shared fixtures and checks of the test suite."""

import contextlib
import random

import numpy as np
import pytest
import tensorflow as tf
import tf_keras


@pytest.fixture(autouse=True)
def _seed():
    # Python, NumPy and TensorFlow seeds: initialisations do not depend on test order.
    tf_keras.utils.set_random_seed(0)


@contextlib.contextmanager
def seeded(seed: int):
    """Builds networks reproducibly inside a hypothesis strategy.

    Keras' unseeded initialisers, TF's random ops and random input orders draw
    from global state, which other tests and hypothesis itself move: seed it
    all (`tf_keras.utils.set_random_seed`), then give Python's and NumPy's
    generators their states back, which hypothesis expects unchanged.
    """
    python, numpy = random.getstate(), np.random.get_state()
    tf_keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def randomize_variables(module: tf.Module, scale: float = 0.5, seed: int = 0) -> None:
    """Adds Gaussian noise to every trainable variable (away from the initialisation).

    Variable constraints are applied afterwards, as an optimizer does: TFP's MADE
    keeps its autoregressive masks through kernel constraints.
    """
    rng = np.random.default_rng(seed)
    for v in module.trainable_variables:
        v.assign_add(rng.normal(scale=scale, size=v.shape).astype(v.dtype.as_numpy_dtype))
        if v.constraint is not None:
            v.assign(v.constraint(v))


def autodiff_jacobian(fn, y: tf.Tensor) -> np.ndarray:
    """The Jacobian of `fn` per member of `y` (any batch shape, event last):
    shape `batch + [D, D]`."""
    event_size = y.shape[-1]
    flat = tf.reshape(y, [-1, event_size])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(flat)
        z = tf.reshape(fn(tf.reshape(flat, tf.shape(y))), [-1, event_size])
        outputs = [z[:, i] for i in range(event_size)]
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
