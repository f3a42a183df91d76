"""Hostile inputs: each gives a correct finite answer or a clear error (with
`validate_args=True`), never a silent wrong number. Without validation,
non-finite values stay in their own rows (README, "Bad input")."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.support.flows import FLOWS, make_flow, normal_base
from tfp_tnaf import DeepSigmoidal

tfd = tfp.distributions
NAMES = list(FLOWS)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_values_are_errors_with_validation(name):
    flow = make_flow(name, 3, validate_args=True)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    for bad in (np.nan, np.inf, -np.inf):
        value = tf.constant([[0.0, 1.0, 2.0], [0.5, bad, 1.0]], tf.float32)
        for call in (flow.inverse, flow.forward, flow.inverse_log_det_jacobian,
                     flow.forward_log_det_jacobian, dist.log_prob):
            with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
                call(tf.identity(value))
    conditional = make_flow(name, 3, conditional_event_size=2, validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="conditional_input.*finite"):
        conditional.inverse(tf.zeros([2, 3]),
                            conditional_input=tf.constant([[0.0, 1.0], [np.nan, 0.0]]))


@pytest.mark.parametrize("name", NAMES)
def test_without_validation_non_finite_values_stay_in_their_rows(name):
    flow = make_flow(name, 3)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    clean = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    dirty = clean.copy()
    dirty[1, 1], dirty[3, 0] = np.nan, np.inf
    log_prob = dist.log_prob(dirty).numpy()
    expected = dist.log_prob(clean).numpy()
    assert np.isnan(log_prob[1]) and np.isnan(log_prob[3])
    np.testing.assert_array_equal(log_prob[[0, 2]], expected[[0, 2]])
    for direction in (flow.inverse, flow.forward):
        out = direction(tf.constant(dirty)).numpy()
        np.testing.assert_array_equal(out[[0, 2]], direction(tf.constant(clean)).numpy()[[0, 2]])
        # What the non-finite value feeds is not meaningful: never all finite.
        assert not np.all(np.isfinite(out[1])) and not np.all(np.isfinite(out[3]))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name", NAMES)
def test_huge_and_denormal_values(name, dtype):
    flow = make_flow(name, 3, dtype)
    eps = np.finfo(dtype.as_numpy_dtype).eps
    huge = np.array([[1e6, -1e6, 3e5], [-2e6, 5.0, 1e6]])
    for values in (huge, np.zeros((1, 3)) + 1e-30):
        # Next to 2e6, the 5.0 of the same row is conditioned on a huge value:
        # round trips are exact to 50 ulps of the row's largest entry
        # (on either side of the map).
        y = tf.constant(values, dtype)
        z = flow.inverse(y)
        assert np.all(np.isfinite(z.numpy()))
        scale = np.max(np.abs(np.concatenate([values, z.numpy()], -1)), -1, keepdims=True)
        atol = 50 * eps * scale + 100 * eps
        assert np.all(np.isfinite(flow.inverse_log_det_jacobian(tf.identity(y)).numpy()))
        assert np.all(np.abs(flow.forward(tf.identity(z)).numpy() - values) <= atol)
        x = tf.constant(values, dtype)
        solved = flow.solve_forward(x)
        assert np.all(np.isfinite(solved.y.numpy()))
        assert np.all(np.isfinite(flow.forward_log_det_jacobian(tf.identity(x)).numpy()))
        # Conditioned on 1e6-sized values, a randomly perturbed float32 DDSF
        # can jump over a target between two neighbouring floats: no float
        # inverts it there. Such an element must be reported, never silent.
        exact = np.abs(flow.inverse(solved.y).numpy() - values) <= atol
        assert np.all(exact | ~solved.converged.numpy())
        assert np.mean(exact) >= 0.8
    # Subnormal numbers behave as the zero they are closest to.
    tiny = np.finfo(dtype.as_numpy_dtype).smallest_subnormal
    sub = flow.inverse(tf.constant([[tiny, -tiny, 0.0]], dtype)).numpy()
    np.testing.assert_allclose(sub, flow.inverse(tf.zeros([1, 3], dtype)).numpy(),
                               rtol=10 * eps, atol=10 * eps)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batches(name):
    flow = make_flow(name, 3, validate_args=True)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    empty = tf.zeros([0, 3])
    assert flow.inverse(empty).shape == (0, 3)
    assert flow.forward(empty).shape == (0, 3)
    assert flow.inverse_log_det_jacobian(empty).shape == (0,)
    assert dist.log_prob(tf.zeros([2, 0, 3])).shape == (2, 0)
    assert dist.sample(0, seed=1).shape == (0, 3)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_wrong_dtypes_ranks_and_sizes_are_named(name, validate):
    flow = make_flow(name, 3, validate_args=validate)
    with pytest.raises(ValueError, match="Expected event size 3 .* got 4"):
        flow.inverse(tf.zeros([2, 4]))
    with pytest.raises((TypeError, ValueError), match="y.*float32.*int32|int32.*float32"):
        flow.inverse(tf.zeros([2, 3], tf.int32))
    with pytest.raises(ValueError, match="float32"):
        flow.forward(tf.zeros([2, 3], tf.float64))
    with pytest.raises(ValueError, match="`y` must have at least one axis"):
        flow.inverse(tf.constant(1.0))
    with pytest.raises(ValueError, match="`x` must have at least one axis"):
        flow.forward(tf.constant(1.0))
    with pytest.raises(ValueError, match="rank at least 1"):
        flow.inverse_log_det_jacobian(tf.constant(1.0))
    conditional = make_flow(name, 3, conditional_event_size=2, validate_args=validate)
    with pytest.raises(ValueError, match="conditional_input"):
        conditional.inverse(tf.zeros([2, 3]), conditional_input=tf.constant(1.0))
    with pytest.raises((TypeError, ValueError), match="conditional_input|float32"):
        conditional.inverse(tf.zeros([2, 3]), conditional_input=tf.zeros([2, 2], tf.float64))


def test_elementwise_transform_hostile_inputs():
    params = np.random.default_rng(1).normal(size=(DeepSigmoidal.num_params(4, 2),))
    checked = DeepSigmoidal(tf.constant(params, tf.float32), 4, 2, validate_args=True)
    for call in (checked.inverse, checked.forward):
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
            call(tf.constant([0.0, np.nan]))
    plain = DeepSigmoidal(tf.constant(params, tf.float32), 4, 2)
    out = plain.forward(tf.constant([np.nan, np.inf, -np.inf, 1e6, 0.0])).numpy()
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == -np.inf
    assert np.all(np.isfinite(out[3:]))
    assert plain.inverse(tf.zeros([0])).shape == (0,)
