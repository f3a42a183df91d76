"""The scalar transforms (`tfp_tnaf.transforms`): one interface, increasing onto R,
log-derivatives against autodiff; B-NAF's path against its network."""

import numpy as np
import pytest
import tensorflow as tf

from tests.support.flows import randomize_variables
from tfp_tnaf import MonotoneElementwise, checks
from tfp_tnaf.nn import BlockAutoregressiveNetwork, BlockConditioner
from tfp_tnaf.transforms import (
    BlockPathTransform,
    DeepDenseSigmoidalTransform,
    DeepSigmoidalTransform,
    MonotoneNetworkTransform,
    make_transform,
)
from tfp_tnaf.transforms.sigmoidal import MIN_SLOPE

TRANSFORMS = {
    "dsf": lambda dtype: DeepSigmoidalTransform(3, 2),
    "ddsf": lambda dtype: DeepDenseSigmoidalTransform(3, 2),
    "network": lambda dtype: MonotoneNetworkTransform(6, dtype=dtype),
    "block-path": lambda dtype: BlockPathTransform([1, 3, 3, 1]),
}


def logsumexp(values, weights, axis=-1):
    """`log sum_j weights_j exp(values_j)` in float64 numpy."""
    top = values.max(axis=axis, keepdims=True)
    return np.log(np.sum(weights * np.exp(values - top), axis=axis)) + top.squeeze(axis)


def random_params(transform, shape, dtype, scale=1.0, seed=0):
    params = np.random.default_rng(seed).normal(scale=scale, size=shape + (transform.num_params,))
    if isinstance(transform, BlockPathTransform):  # beta > 0
        params[..., -1] = np.abs(params[..., -1]) + 0.1
    return tf.constant(params, dtype)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name", TRANSFORMS)
def test_log_derivative_matches_autodiff_and_is_positive(name, dtype):
    transform = TRANSFORMS[name](dtype)
    params = random_params(transform, (50,), dtype)
    y = tf.constant(np.random.default_rng(1).normal(scale=4.0, size=50), dtype)
    with tf.GradientTape() as tape:
        tape.watch(y)
        x, log_dx = transform(y, params)
    derivative = tape.gradient(x, y).numpy()
    assert np.all(derivative > 0)
    rtol = 1e-4 if dtype == tf.float32 else 1e-10
    np.testing.assert_allclose(log_dx.numpy(), np.log(derivative), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("layers", [1, 3])
def test_the_sigmoidal_flow_is_the_formula_of_huang_et_al(layers):
    # Each layer h -> logit(sum_j w_j sigmoid(a_j h + b_j)), a = softplus + MIN_SLOPE,
    # w = softmax, then + linear_slope * y: written out in float64, with its
    # log-derivative in the tails (|y| up to 1e4) as log of the chained slopes.
    transform = DeepSigmoidalTransform(4, layers, linear_slope=0.05)
    params = random_params(transform, (200,), tf.float64, scale=2.0, seed=3).numpy()
    y = np.random.default_rng(4).normal(scale=3.0, size=200)
    y[:20] = np.geomspace(10.0, 1e4, 20) * np.resize([-1, 1], 20)
    h, log_dh = y, np.zeros_like(y)
    for k in range(layers):
        group = {name: params[:, 12 * k + 4 * i:12 * k + 4 * i + 4]
                 for i, name in enumerate("abw")}
        a = np.logaddexp(0.0, group["a"]) + MIN_SLOPE
        w = np.exp(group["w"]) / np.exp(group["w"]).sum(axis=-1, keepdims=True)
        c = a * h[:, None] + group["b"]
        log_s, log_1ms = -np.logaddexp(0.0, -c), -np.logaddexp(0.0, c)
        log_sum, log_1m_sum = logsumexp(log_s, w), logsumexp(log_1ms, w)
        log_dh = log_dh + logsumexp(log_s + log_1ms + np.log(a), w) - log_sum - log_1m_sum
        h = log_sum - log_1m_sum
    x, log_dx = transform(tf.constant(y), tf.constant(params))
    np.testing.assert_allclose(x.numpy(), h + 0.05 * y, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(log_dx.numpy(), np.logaddexp(log_dh, np.log(0.05)),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name", TRANSFORMS)
def test_the_root_solvers_evaluation_gives_the_transform(name, dtype):
    # `evaluate(y, prepare(params))` is the map the root solver inverts: the
    # same `x` as a call, and a slope good for Newton, far outside the data too.
    transform = TRANSFORMS[name](dtype)
    params = random_params(transform, (60,), dtype, scale=2.0, seed=5)
    y = tf.constant(np.concatenate([np.random.default_rng(6).normal(scale=3.0, size=40),
                                    np.geomspace(10.0, 1e6, 10), -np.geomspace(10.0, 1e6, 10)]),
                    dtype)
    x, log_dx = transform(y, params)
    x_solver, log_dx_solver = transform.evaluate(y, transform.prepare(params))
    np.testing.assert_array_equal(x_solver.numpy(), x.numpy())
    rtol = 1e-5 if dtype == tf.float32 else 1e-12
    np.testing.assert_allclose(log_dx_solver.numpy(), log_dx.numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_every_transform_is_onto_the_real_line_and_round_trips(name):
    transform = TRANSFORMS[name](tf.float64)
    params = random_params(transform, (4,), tf.float64, seed=2)
    y = tf.constant([-1e4, -3.0, 2.5, 1e4], tf.float64)
    x = transform(y, params)[0].numpy()
    assert x[0] < -100 and x[-1] > 100  # unbounded both ways
    bijector = MonotoneElementwise(params, transform)
    np.testing.assert_allclose(bijector.forward(tf.constant(x)).numpy(), y.numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_layout_splits_params_and_gives_initial_values(name):
    transform = TRANSFORMS[name](tf.float32)
    assert transform.num_params == sum(g.size for g in transform.layout)
    assert len({g.name for g in transform.layout}) == len(transform.layout)
    params = tf.reshape(tf.range(2 * transform.num_params, dtype=tf.float32), [2, -1])
    groups = transform.split(params)
    assert list(groups) == [g.name for g in transform.layout]
    np.testing.assert_array_equal(tf.concat(list(groups.values()), -1).numpy(), params.numpy())
    assert transform.initial_params().shape == (transform.num_params,)


def test_the_network_transform_starts_near_a_gentle_increasing_map():
    transform = MonotoneNetworkTransform(128)
    y = tf.linspace(-3.0, 3.0, 7)
    x, log_dx = transform(y, transform.initial_params())
    assert np.all(np.diff(x.numpy()) > 0)
    slopes = np.exp(log_dx.numpy())
    assert np.all((slopes > 0.5) & (slopes < 2.0)), slopes


def test_block_path_of_each_position_gives_the_network_pass():
    # The B-NAF network seen as conditioner + path transform equals its fused pass.
    network = BlockAutoregressiveNetwork(4, transform_units=3, transform_layers=2,
                                         conditional_event_size=2, dtype=tf.float64)
    randomize_variables(network, scale=0.5)
    transform = BlockPathTransform(network.widths)
    conditioner = BlockConditioner(network, checks.input_order(4), transform, 2)
    rng = np.random.default_rng(3)
    y = tf.constant(rng.normal(size=(6, 4)), tf.float64)
    c = tf.constant(rng.normal(size=(6, 2)), tf.float64)
    x, log_dx = transform(y, conditioner(y, c))
    fused_x, fused_log_dx = network(y, c)
    np.testing.assert_allclose(x.numpy(), fused_x.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_dx.numpy(), fused_log_dx.numpy(), rtol=1e-12, atol=1e-12)


def test_make_transform_by_name_and_its_errors():
    assert isinstance(make_transform("ddsf", 4), DeepDenseSigmoidalTransform)
    assert make_transform("ddsf", 4).layers == 2 and make_transform("dsf", 4).layers == 1
    given = MonotoneNetworkTransform(3)
    assert make_transform(given, 99) is given
    with pytest.raises(ValueError, match="`transform` must be one of 'dsf', 'ddsf', 'network'"):
        make_transform("spline", 4)
    with pytest.raises(ValueError, match="`transform_units`"):
        make_transform("dsf", 0)
    with pytest.raises(ValueError, match="takes no `transform_layers`"):
        make_transform("network", 4, 2)
    with pytest.raises(ValueError, match="`params` must have 18 pseudo-parameters"):
        MonotoneElementwise(tf.zeros([3, 17]), make_transform("dsf", 3, 2))
