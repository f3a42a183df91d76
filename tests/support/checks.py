"""Bijector checks in the spirit of TFP's `bijector_test_util`, which the TFP
0.25 wheel does not ship: bijectivity with finite log-dets, the scalar change
of measure, and the triangular structure (autodiff Jacobians: `jacobians`)."""

import numpy as np
import tensorflow as tf


def tolerance(dtype) -> float:
    return 2e-4 if dtype == tf.float32 else 1e-9


def assert_finite(value, what: str) -> None:
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), f"{what} is not finite: {value.ravel()[:8]}"


def largest_magnitude(*values) -> float:
    """The largest |value| over all the arrays (0 for empty ones)."""
    return max(np.max(np.abs(value), initial=0) for value in values)


def round_trip_tolerance(dtype, *values) -> float:
    """The absolute tolerance of a round trip from `values`: `tolerance(dtype)`
    relative to their largest magnitude."""
    return tolerance(dtype) * (1 + largest_magnitude(*values))


def assert_bijective_and_finite(bijector, x, y, event_ndims: int, dtype=None) -> None:
    """forward/inverse invert each other from both sides, every value and
    log-det is finite, and `fldj(x) == -ildj(forward(x))` (and at `inverse(y)`).
    Values agree to `tolerance(dtype)` relative to the largest input magnitude.
    `dtype` defaults to the bijector's (a `Chain` of TFP bijectors has none)."""
    dtype = dtype or bijector.dtype
    rtol = tolerance(dtype)
    atol = round_trip_tolerance(dtype, x, y)
    x, y = tf.constant(x, dtype), tf.constant(y, dtype)
    f_x = bijector.forward(x)
    g_y = bijector.inverse(y)
    values = {
        "forward(x)": f_x, "inverse(y)": g_y,
        "inverse(forward(x))": bijector.inverse(tf.identity(f_x)),
        "forward(inverse(y))": bijector.forward(tf.identity(g_y)),
        "fldj(x)": bijector.forward_log_det_jacobian(x, event_ndims=event_ndims),
        "ildj(forward(x))": bijector.inverse_log_det_jacobian(tf.identity(f_x),
                                                              event_ndims=event_ndims),
        "ildj(y)": bijector.inverse_log_det_jacobian(y, event_ndims=event_ndims),
        "fldj(inverse(y))": bijector.forward_log_det_jacobian(tf.identity(g_y),
                                                              event_ndims=event_ndims),
    }
    values = {k: v.numpy() for k, v in values.items()}
    for what, value in values.items():
        assert_finite(value, what)
    np.testing.assert_allclose(values["inverse(forward(x))"], x.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(values["forward(inverse(y))"], y.numpy(), rtol=rtol, atol=atol)
    # Log-dets get their own tolerance: `atol` scales with the values.
    np.testing.assert_allclose(-values["ildj(forward(x))"], values["fldj(x)"], rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(-values["ildj(y)"], values["fldj(inverse(y))"], rtol=rtol,
                               atol=rtol)


def assert_scalar_congruency(bijector, lower: float, upper: float, num_points: int = 20001,
                             rtol: float = 1e-6) -> None:
    """For a scalar bijector on `[lower, upper]`: `forward` strictly increases,
    and the inverse log-det is the change of measure,
    `upper - lower == integral over [f(lower), f(upper)] of exp(ildj(y)) dy`
    (trapezoid rule on `num_points` points of the image)."""
    grid = np.linspace(lower, upper, 101)
    image = bijector.forward(tf.constant(grid, bijector.dtype)).numpy()
    assert_finite(image, "forward on the grid")
    assert np.all(np.diff(image) > 0), "forward is not strictly increasing"
    y = np.linspace(image[0], image[-1], num_points)
    dx_dy = np.exp(bijector.inverse_log_det_jacobian(tf.constant(y, bijector.dtype),
                                                     event_ndims=0).numpy())
    measure = np.sum(0.5 * (dx_dy[1:] + dx_dy[:-1]) * np.diff(y))
    np.testing.assert_allclose(measure, upper - lower, rtol=rtol)


def assert_triangular(jacobian: np.ndarray, input_order: np.ndarray) -> None:
    """Output `i` depends only on inputs of lower or equal degree
    (`input_order[j] <= input_order[i]`), as MADE's masks say."""
    allowed = input_order[np.newaxis, :] <= input_order[:, np.newaxis]
    leaked = np.abs(jacobian[..., ~allowed])
    assert leaked.size == 0 or leaked.max() == 0.0, f"dependency outside the order: {leaked.max()}"
