"""T-NAF-specific tests; the shared battery is in test_flow_battery.py."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import SMALL_TNAF, make_flow, normal_base
from tfp_tnaf import (
    TransformerAutoregressive,
    root_diagnostics,
)

tfb, tfd = tfp.bijectors, tfp.distributions


def count(module):
    return sum(int(np.prod(v.shape)) for v in module.trainable_variables)


@pytest.mark.parametrize("order", ["left-to-right", "random"])
def test_cached_sampling_equals_uncached_reference(order):
    flow = make_flow("tnaf", 6, input_order=order, conditional_event_size=2)
    z = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 6)), tf.float32)
    c = tf.constant(np.random.default_rng(1).normal(size=(9, 2)), tf.float32)
    cached = flow.solve_forward(z, conditional_input=c)
    reference = flow.solve_forward(z, conditional_input=c, cached=False)
    assert cached.y.shape == (2, 9, 6)
    np.testing.assert_allclose(cached.y.numpy(), reference.y.numpy(), atol=1e-4)
    assert int(root_diagnostics(cached)["num_not_converged"]) == 0
    # And both invert the parallel pass.
    np.testing.assert_allclose(flow.inverse(cached.y, conditional_input=c).numpy(), z.numpy(),
                               atol=1e-4)


def test_cached_decoder_matches_parallel_pass_exactly_per_position():
    flow = make_flow("tnaf", 5)
    transformer = flow.conditioner.transformer
    x = tf.constant(np.random.default_rng(2).normal(size=(3, 5)), tf.float32)
    full = transformer(x).numpy()
    cache = transformer.initial_cache(3)
    for k in range(5):
        previous = x[:, max(k - 1, 0)]
        psi, cache = transformer.decode_step(tf.constant(k), previous, cache)
        np.testing.assert_allclose(psi.numpy(), full[:, k], atol=1e-5)


def test_default_size_and_its_growth_with_dimension():
    sizes = {d: count(TransformerAutoregressive(d)) for d in (6, 43, 63)}
    paper = {d: count(TransformerAutoregressive.paper(d)) for d in (6, 43, 63)}
    print("T-NAF default parameters:", sizes, "paper:", paper)
    # Only the position embedding (16 per dimension) grows with D in the paper's
    # configuration (282k at D=43, as the official code); the default's is 32
    # wide, and it adds a base of the DSF's 3 * 32 pseudo-parameters (slopes,
    # centres, weights of its 32 sigmoids) per dimension.
    assert 270_000 < paper[43] < 295_000
    assert paper[63] - paper[43] == 20 * 16
    assert sizes[63] - sizes[43] == 20 * (32 + 96)
    assert sizes[43] - sizes[6] == 37 * (32 + 96)
    assert 8 * sizes[43] < paper[43]


def test_conditional_density_follows_the_class():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 2000)
    centres = np.array([[-2.0, 0.0], [2.0, 1.0]], np.float32)
    points = (centres[labels] + 0.3 * rng.normal(size=(2000, 2))).astype(np.float32)
    context = np.eye(2, dtype=np.float32)[labels]
    tf_keras.utils.set_random_seed(3)
    flow = TransformerAutoregressive(2, conditional_event_size=2, **SMALL_TNAF)
    dist = tfd.TransformedDistribution(normal_base(2), flow)
    optimizer = tf_keras.optimizers.Adam(3e-3)

    @tf.function
    def step(y, c):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(y, bijector_kwargs={"conditional_input": c}))
        grads = tape.gradient(loss, flow.trainable_variables)
        optimizer.apply_gradients(zip(grads, flow.trainable_variables, strict=True))
        return loss

    for _ in range(400):
        index = rng.integers(0, 2000, 128)
        loss = step(points[index], context[index])
    assert np.isfinite(loss.numpy())

    def log_prob(y, label):
        c = np.eye(2, dtype=np.float32)[[label] * len(y)]
        return dist.log_prob(tf.constant(y), bijector_kwargs={"conditional_input": c}).numpy()

    # Each class's centre is far likelier under its own context than the other's.
    for label in (0, 1):
        at_centre = centres[[label]]
        assert log_prob(at_centre, label)[0] > log_prob(at_centre, 1 - label)[0] + 5.0
        samples = dist.sample(500, seed=4, bijector_kwargs={
            "conditional_input": tf.constant(np.eye(2, dtype=np.float32)[label])}).numpy()
        np.testing.assert_allclose(samples.mean(axis=0), centres[label], atol=0.25)


def test_the_paper_preset_is_the_official_configuration():
    from tfp_tnaf.bijectors.transformer_autoregressive import PAPER

    flow = TransformerAutoregressive.paper(43)
    # 282k parameters whatever D, as the official code.
    assert 281_000 < count(flow) < 283_000
    assert flow.parameters["hypernetwork"] == "mlp" and flow.parameters["transform_units"] == 128
    assert all(flow.parameters[k] == v for k, v in PAPER.items())
    assert TransformerAutoregressive.paper(5, num_layers=1).parameters["num_layers"] == 1


def test_the_default_has_at_most_nafs_parameters_at_high_dimension():
    from tfp_tnaf.models import count_parameters
    from tfp_tnaf.models import make_flow as make_registry_flow

    for d in (43, 63):
        tnaf = count_parameters(make_registry_flow("tnaf", d))
        assert tnaf <= count_parameters(make_registry_flow("naf", d)), d


@pytest.mark.parametrize("preset, dropout", [("tnaf", 0.0), ("tnaf", 0.5),
                                             ("tnaf", None), ("tnaf-paper", None)])
def test_dropout_is_on_in_keras_training_and_off_in_evaluation(preset, dropout):
    """`None`: the preset's own rate, 0.05 for the default and 0 for the paper's."""
    from tfp_tnaf.training import FlowModel

    tf_keras.utils.set_random_seed(3)
    options = {} if dropout is None else dict(dropout=dropout)
    flow = make_flow(preset, 3, **options)
    dropout = 0.05 if (preset, dropout) == ("tnaf", None) else dropout
    model = FlowModel(tfd.TransformedDistribution(normal_base(3), flow))
    model.compile(tf_keras.optimizers.SGD(0.0))  # a step that leaves the weights as they are
    y = np.random.default_rng(4).normal(size=(64, 3)).astype(np.float32)
    trained = [model.train_on_batch(y, return_dict=True)["loss"] for _ in range(2)]
    evaluated = [model.evaluate(y, batch_size=64, verbose=0) for _ in range(2)]
    assert evaluated[0] == evaluated[1]  # evaluation is deterministic
    if dropout:
        assert trained[0] != trained[1] and trained[0] != evaluated[0]
    else:
        np.testing.assert_allclose(trained, evaluated, rtol=1e-6)


@pytest.mark.parametrize("activation", ["gelu", "tanh", "relu"])
def test_mlp_activation_is_the_blocks_activation(activation):
    """Each block's MLP computes `mlp_out(activation(mlp_in(t)))` with the
    named activation (the default and the paper's: GELU)."""
    flow = TransformerAutoregressive(4, mlp_activation=activation)
    assert TransformerAutoregressive(4).parameters["mlp_activation"] == "gelu"
    layer = flow.conditioner.transformer.blocks[0]["mlp_in"]
    t = tf.random.normal([3, 4, layer.kernel.shape[0]])
    pre = tf.matmul(t, layer.kernel) + layer.bias
    expected = tf_keras.activations.get(activation)(pre)
    np.testing.assert_allclose(layer(t).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    if activation != "gelu":
        assert not np.allclose(layer(t).numpy(), tf_keras.activations.gelu(pre).numpy())
