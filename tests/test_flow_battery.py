"""The battery every autoregressive flow of the package must pass (NAF, T-NAF, ...)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import FLOWS, make_flow, normal_base
from tests.support.jacobians import autodiff_jacobian, autodiff_log_det
from tfp_tnaf import (
    BlockNeuralAutoregressive,
    NeuralAutoregressive,
    TransformerAutoregressive,
    root_diagnostics,
)

tfb, tfd = tfp.bijectors, tfp.distributions

NAMES = list(FLOWS)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_autodiff_jacobian(name, dtype):
    flow = make_flow(name, 4, dtype, input_order="random")
    y = tf.constant(np.random.default_rng(0).normal(scale=2.0, size=(16, 4)), dtype)
    expected = autodiff_log_det(flow.inverse, y)
    rtol = 1e-4 if dtype == tf.float32 else 1e-10
    np.testing.assert_allclose(flow.inverse_log_det_jacobian(tf.identity(y)).numpy(), expected,
                               rtol=rtol, atol=rtol)
    z = flow.inverse(tf.identity(y))
    np.testing.assert_allclose(flow.forward_log_det_jacobian(tf.identity(z)).numpy(), -expected,
                               rtol=10 * rtol, atol=10 * rtol)


@pytest.mark.parametrize("spread", ["normal", "wide"])
@pytest.mark.parametrize("name", NAMES)
def test_round_trips_float32(name, spread):
    # Perturbed weights, at the scale of the initialisation: inputs up to 50 then
    # give pseudo-parameters of tens, sharp sigmoids and plateaus.
    flow = make_flow(name, 4, scale=0.1)
    rng = np.random.default_rng(1)
    values = rng.normal(size=(64, 4)) if spread == "normal" else rng.uniform(-50, 50, (64, 4))
    y = tf.constant(values, tf.float32)
    result = flow.solve_forward(flow.inverse(tf.identity(y)))
    assert np.max(np.abs(result.y.numpy() - values)) < 1e-4
    assert int(root_diagnostics(result)["num_not_converged"]) == 0
    assert np.max(np.abs(flow.inverse(flow.forward(tf.identity(y))).numpy() - values)) < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_bijection_far_outside_the_data(name):
    flow = make_flow(name, 3, scale=0.1)
    y = tf.constant([[1e3, -1e3, 5e2], [-1e4, 1e4, 0.0]], tf.float32)
    z = flow.inverse(y).numpy()
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(flow.forward(tf.constant(z)).numpy(), y.numpy(), rtol=1e-5,
                               atol=1e-3)


@pytest.mark.parametrize("order", ["left-to-right", "right-to-left", "random", [2, 4, 1, 3]])
@pytest.mark.parametrize("name", NAMES)
def test_inverse_jacobian_is_triangular_in_the_order(name, order):
    flow = make_flow(name, 4, input_order=order)
    y = tf.constant(np.random.default_rng(2).normal(size=(8, 4)), tf.float32)
    jacobian = autodiff_jacobian(flow.inverse, y)
    sequence = np.argsort(flow.input_order)
    in_order = jacobian[:, sequence][:, :, sequence]
    assert np.all(np.triu(in_order, 1) == 0)
    # Not trivially diagonal: earlier dimensions do matter.
    assert np.max(np.abs(np.tril(in_order, -1))) > 1e-3
    assert np.all(np.diagonal(in_order, axis1=1, axis2=2) > 0)


@pytest.mark.parametrize("name", NAMES)
def test_the_global_seed_rebuilds_a_flow_exactly(name):
    # As with TFP's MADE: `tf_keras.utils.set_random_seed` fixes the random
    # input order as well as the weights.
    def build(seed):
        tf_keras.utils.set_random_seed(seed)
        return make_flow(name, 8, input_order="random")

    first, again, other = build(7), build(7), build(8)
    np.testing.assert_array_equal(first.input_order, again.input_order)
    for a, b in zip(first.trainable_variables, again.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(first.input_order, other.input_order)


@pytest.mark.parametrize("name", NAMES)
def test_composes_with_tfp_bijectors(name):
    size = 4
    flow = tfb.Chain([
        make_flow(name, size),
        tfb.Permute(list(reversed(range(size)))),
        tfb.BatchNormalization(training=False),
        tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(params=2, hidden_units=[8])),
        tfb.RealNVP(num_masked=2, shift_and_log_scale_fn=tfb.real_nvp_default_template([8])),
        tfb.Invert(make_flow(name, size)),
    ])
    dist = tfd.TransformedDistribution(normal_base(size), flow)
    # Keras' BatchNormalization fixes the input rank at its first call: rank 2.
    samples = dist.sample(15, seed=3)
    assert samples.shape == (15, size)
    log_prob = dist.log_prob(tf.identity(samples))
    assert log_prob.shape == (15,) and np.all(np.isfinite(log_prob.numpy()))
    y = tf.constant(np.random.default_rng(3).normal(size=(7, size)), tf.float32)
    np.testing.assert_allclose(flow.forward(flow.inverse(y)).numpy(), y.numpy(), atol=1e-4)
    np.testing.assert_allclose(flow.inverse_log_det_jacobian(y, event_ndims=1).numpy(),
                               autodiff_log_det(flow.inverse, y), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_invert_samples_in_one_pass_and_scores_its_samples(name):
    flow = make_flow(name, 3)
    iaf = tfd.TransformedDistribution(normal_base(3), tfb.Invert(flow))
    samples = iaf.sample(20, seed=4)
    cached = iaf.log_prob(samples)  # the bijector cache: no root solve
    fresh = iaf.log_prob(tf.identity(samples))  # a root solve per dimension
    np.testing.assert_allclose(cached.numpy(), fresh.numpy(), rtol=1e-4, atol=1e-4)
    # Change of variables by hand; for the inverted flow z = flow.forward(y).
    z = flow.forward(tf.identity(samples))
    expected = normal_base(3).log_prob(z) + flow.forward_log_det_jacobian(tf.identity(samples))
    np.testing.assert_allclose(fresh.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_xla_log_prob_and_gradient_equal_eager(name):
    flow = make_flow(name, 5)
    dist = tfd.TransformedDistribution(normal_base(5), flow)
    y = tf.constant(np.random.default_rng(5).normal(size=(32, 5)), tf.float32)

    def loss_and_grads(y):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(y))
        return loss, tape.gradient(loss, flow.trainable_variables)

    eager_loss, eager_grads = loss_and_grads(tf.identity(y))
    # Some gradients are exactly zero in exact arithmetic (a key bias shifts all
    # attention scores alike): compare against the scale of the whole gradient.
    scale = max(np.max(np.abs(e.numpy())) for e in eager_grads)
    for compiled in (tf.function(loss_and_grads), tf.function(loss_and_grads, jit_compile=True)):
        loss, grads = compiled(tf.identity(y))
        np.testing.assert_allclose(loss.numpy(), eager_loss.numpy(), rtol=1e-5)
        for g, e in zip(grads, eager_grads, strict=True):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name", NAMES)
def test_sampling_under_xla_and_tf_function_matches_eager(name, dtype):
    flow = make_flow(name, 4, dtype)
    x = tf.constant(np.random.default_rng(6).normal(size=(16, 4)), dtype)
    eager = flow.forward(tf.identity(x)).numpy()
    for compiled in (tf.function(flow.forward), tf.function(flow.forward, jit_compile=True)):
        y = compiled(tf.identity(x)).numpy()
        if dtype == tf.float64:
            np.testing.assert_allclose(y, eager, rtol=1e-9, atol=1e-9)
            continue
        # In float32 the graphs round differently, and where a map is flat
        # (slope ~0.1) one ulp of noise is ten ulps of data: the samples may
        # differ by that much (2e-5 seen with the code of b5b2250), but both
        # must be the root, to float32's resolution of the noise.
        np.testing.assert_allclose(flow.inverse(tf.constant(y)).numpy(), x.numpy(), atol=1e-5)
        np.testing.assert_allclose(y, eager, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_sample_gradient_matches_finite_difference(name):
    flow = make_flow(name, 3, tf.float64)
    z = tf.constant(np.random.default_rng(7).normal(size=(10, 3)), tf.float64)

    def statistic():
        return tf.reduce_mean(flow.forward(tf.identity(z)) ** 2)

    with tf.GradientTape() as tape:
        value = statistic()
    grads = [tf.convert_to_tensor(g).numpy()
             for g in tape.gradient(value, flow.trainable_variables)]
    assert all(np.all(np.isfinite(g)) for g in grads)
    # Entries held at zero are MADE's masked weights: moving them would break the
    # autoregressive structure, so the check uses the largest free entry.
    grads = [np.where(v.numpy() != 0, g, 0) for g, v in zip(grads, flow.trainable_variables,
                                                            strict=True)]
    k = int(np.argmax([np.max(np.abs(g)) for g in grads]))
    variable, grad = flow.trainable_variables[k], grads[k]
    index = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)
    assert abs(grad[index]) > 0
    direction = np.zeros(variable.shape)
    direction[index] = 1.0
    eps = 1e-6
    variable.assign_add(eps * direction)
    plus = float(statistic())
    variable.assign_sub(2 * eps * direction)
    minus = float(statistic())
    variable.assign_add(eps * direction)
    np.testing.assert_allclose(grad[index], (plus - minus) / (2 * eps), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
    flow = make_flow(name, 4, conditional_event_size=2)
    y = tf.constant(np.random.default_rng(8).normal(size=(6, 4)), tf.float32)
    kwargs = {"conditional_input": tf.constant(np.random.default_rng(9).normal(size=(6, 2)),
                                               tf.float32)}
    dist = tfd.TransformedDistribution(normal_base(4), flow)
    before = dist.log_prob(y, bijector_kwargs=kwargs).numpy()
    path = tf.train.Checkpoint(flow=flow).write(str(tmp_path / "ckpt"))
    fresh = make_flow(name, 4, conditional_event_size=2, scale=0.0)
    fresh_dist = tfd.TransformedDistribution(normal_base(4), fresh)
    assert not np.allclose(fresh_dist.log_prob(y, bijector_kwargs=kwargs).numpy(), before)
    tf.train.Checkpoint(flow=fresh).read(path).assert_consumed()
    np.testing.assert_array_equal(
        fresh_dist.log_prob(tf.identity(y), bijector_kwargs=kwargs).numpy(), before)


@pytest.mark.parametrize("name", NAMES)
def test_flows_built_alike_do_not_share_cached_results(name):
    # TFP caches bijector results by (input tensor, bijector equality): two flows
    # built with the same arguments but different weights must not be equal.
    first = make_flow(name, 4)
    second = make_flow(name, 4, scale=0.0)
    assert first != second and first == first
    y = tf.constant(np.random.default_rng(10).normal(size=(5, 4)), tf.float32)
    x_first = first.inverse(y)  # kept alive, so the cache holds y -> x_first
    x_second = second.inverse(y)
    assert x_second is not x_first
    np.testing.assert_array_equal(x_second.numpy(), second.inverse(tf.identity(y)).numpy())
    assert not np.allclose(x_second.numpy(), x_first.numpy())
    np.testing.assert_array_equal(second.inverse_log_det_jacobian(y).numpy(),
                                  second.inverse_log_det_jacobian(tf.identity(y)).numpy())
    np.testing.assert_array_equal(second.forward(x_first).numpy(),
                                  second.forward(tf.identity(x_first)).numpy())


@pytest.mark.parametrize("name", NAMES)
def test_conditional_flow_depends_on_the_context(name):
    flow = make_flow(name, 3, conditional_event_size=2)
    y = tf.constant(np.random.default_rng(10).normal(size=(5, 3)), tf.float32)
    c1, c2 = tf.zeros([5, 2]), tf.ones([5, 2])
    z1 = flow.inverse(y, conditional_input=c1).numpy()
    assert not np.allclose(z1, flow.inverse(tf.identity(y), conditional_input=c2).numpy())
    back = flow.forward(tf.constant(z1), conditional_input=c1).numpy()
    np.testing.assert_allclose(back, y.numpy(), atol=1e-4)
    # One context broadcasts over a batch of samples.
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    samples = dist.sample(4, seed=5, bijector_kwargs={"conditional_input": tf.ones([2])})
    assert samples.shape == (4, 3)


@pytest.mark.parametrize("name", NAMES)
def test_batch_shapes(name):
    flow = make_flow(name, 3)
    for shape in [(3,), (2, 3), (2, 5, 3)]:
        y = tf.constant(np.random.default_rng(11).normal(size=shape), tf.float32)
        z = flow.inverse(y)
        assert z.shape == shape
        assert flow.inverse_log_det_jacobian(y).shape == shape[:-1]
        np.testing.assert_allclose(flow.forward(tf.identity(z)).numpy(), y.numpy(), atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gives_clear_errors(name):
    flow = make_flow(name, 3, validate_args=True)
    with pytest.raises(ValueError, match="Expected event size 3 .* got 4"):
        flow.inverse(tf.zeros([2, 4]))
    with pytest.raises(ValueError, match="Expected event size 3 .* got 2"):
        flow.forward(tf.zeros([2, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        flow.inverse(tf.constant([[0.0, np.nan, 1.0]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        flow.forward(tf.constant([[0.0, np.inf, 1.0]]))
    with pytest.raises(ValueError, match="float32"):
        flow.inverse(tf.zeros([2, 3], tf.float64))
    with pytest.raises(ValueError, match="conditional_event_size"):
        flow.inverse(tf.zeros([2, 3]), conditional_input=tf.zeros([2, 1]))
    conditional = make_flow(name, 3, conditional_event_size=2)
    with pytest.raises(ValueError, match="conditional_input"):
        conditional.inverse(tf.zeros([2, 3]))
    with pytest.raises(ValueError, match="2 values on its last axis; got shape"):
        conditional.inverse(tf.zeros([2, 3]), conditional_input=tf.zeros([2, 5]))
    with pytest.raises(ValueError, match="conditional_input"):
        conditional.forward(tf.zeros([2, 3]))


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_runs_the_conditioner_once(name, monkeypatch):
    flow = make_flow(name, 3)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    y = tf.constant(np.random.default_rng(12).normal(size=(5, 3)), tf.float32)
    calls = []
    one_pass = flow._inverse_and_log_det
    monkeypatch.setattr(flow, "_inverse_and_log_det",
                        lambda *args: calls.append(1) or one_pass(*args))
    log_prob = dist.log_prob(y).numpy()
    assert len(calls) == 1
    expected = (normal_base(3).log_prob(flow.inverse(tf.identity(y)))
                + flow.inverse_log_det_jacobian(tf.identity(y)))
    np.testing.assert_allclose(log_prob, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_solve_forward_takes_the_same_arguments_for_every_flow(name, cached):
    flow = make_flow(name, 4, conditional_event_size=2)
    x = tf.constant(np.random.default_rng(13).normal(size=(2, 3, 4)), tf.float32)
    c = tf.constant(np.random.default_rng(14).normal(size=(3, 2)), tf.float32)
    result = flow.solve_forward(x, conditional_input=c, cached=cached)
    assert result.y.shape == (2, 3, 4) and result.converged.shape == (2, 3, 4)
    assert int(root_diagnostics(result)["num_not_converged"]) == 0
    np.testing.assert_allclose(flow.inverse(result.y, conditional_input=c).numpy(), x.numpy(),
                               atol=1e-4)


# Every flow's constructor names the argument it refuses; the first rows hold
# for all three flows, the others for one each.
CONSTRUCTORS = {"naf": NeuralAutoregressive, "tnaf": TransformerAutoregressive,
                "bnaf": BlockNeuralAutoregressive}
COMMON_ERRORS = [
    (dict(event_size=0), "event_size"),
    (dict(event_size=-2), "event_size"),
    (dict(event_size=True), "event_size"),
    (dict(event_size=3, input_order="sideways"), "input_order"),
    (dict(event_size=3, input_order=[1, 1, 2]), "input_order"),
    (dict(event_size=3, input_order=[1, 2]), "input_order"),
    (dict(event_size=3, conditional_event_size=0), "conditional_event_size"),
    (dict(event_size=3, conditional_event_size=-1), "conditional_event_size"),
    (dict(event_size=3, dtype=tf.int32), "dtype"),
    (dict(event_size=3, linear_slope=-1.0), "linear_slope"),
    (dict(event_size=3, transform_units=0), "transform_units"),
    (dict(event_size=3, root_solver="newton"), "root_solver"),
]
OWN_ERRORS = {
    "naf": [(dict(event_size=3, transform="spline"), "transform"),
            (dict(event_size=3, transform_layers=-1), "transform_layers"),
            (dict(event_size=3, hidden_units=[16, 0]), "hidden_units"),
            (dict(event_size=3, hidden_units=[]), "hidden_units")],
    "tnaf": [(dict(event_size=3, num_layers=0), "num_layers"),
             (dict(event_size=3, num_heads=3), "num_heads"),
             (dict(event_size=3, embedding_units=-4), "embedding_units"),
             (dict(event_size=3, psi_units=0), "psi_units"),
             (dict(event_size=3, hypernetwork_units=0), "hypernetwork_units"),
             (dict(event_size=3, hypernetwork="cubic"), "hypernetwork"),
             (dict(event_size=3, token_activation="relu"), "token_activation"),
             (dict(event_size=3, mlp_activation="swish"), "mlp_activation"),
             (dict(event_size=3, dropout=1.5), "dropout"),
             (dict(event_size=3, transform="network", transform_layers=2),
              "transform_layers")],
    "bnaf": [(dict(event_size=3, transform_layers=-1), "transform_layers"),
             (dict(event_size=3, linear_slope=0.0), "linear_slope"),
             (dict(event_size=3, gated_residual="yes"), "gated_residual")],
}
ERROR_CASES = [(flow, kwargs, argument) for flow in CONSTRUCTORS
               for kwargs, argument in COMMON_ERRORS + OWN_ERRORS[flow]]


@pytest.mark.parametrize("flow,kwargs,argument", ERROR_CASES,
                         ids=[f"{f}-{a}-{i}" for i, (f, _, a) in enumerate(ERROR_CASES)])
def test_invalid_constructor_arguments_are_named(flow, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        CONSTRUCTORS[flow](**kwargs)
