"""The flow registry (`tfp_tnaf.models`): named flows, their options and recipes."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.support.flows import SMALL_MAKE_FLOW, randomize_variables
from tfp_tnaf.models import (
    FLOW_NAMES,
    FLOWS,
    LARGE_DATA,
    Recipe,
    make_distribution,
    make_flow,
    resolved_options,
)


@pytest.mark.parametrize("name", FLOW_NAMES)
def test_every_named_flow_builds_trains_and_samples(name):
    flow = make_flow(name, 3, num_flows=2)
    distribution = make_distribution(flow, 3)
    variables = distribution.trainable_variables
    assert variables  # complete before the first call
    y = tf.constant(np.random.default_rng(0).normal(size=(8, 3)), tf.float32)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(distribution.log_prob(y))
    grads = tape.gradient(loss, variables)
    assert all(g is not None for g in grads) and np.isfinite(loss.numpy())
    assert distribution.sample(4, seed=1).shape == (4, 3)


@pytest.mark.parametrize("name", list(SMALL_MAKE_FLOW))
def test_stacks_reverse_between_layers_named_by_the_flow(name):
    chain = make_flow(name, 3, **dict(SMALL_MAKE_FLOW[name], num_flows=3))
    kinds = [type(b).__name__ for b in chain.bijectors]
    assert kinds[1::2] == ["Permute", "Permute"]
    assert len(kinds) == 5 and len(set(kinds[::2])) == 1 and kinds[0] != "Permute"
    assert [b.name for b in chain.bijectors[::2]] == [f"{name}_{k}" for k in range(3)]
    for permute in chain.bijectors[1::2]:
        np.testing.assert_array_equal(permute.permutation.numpy(), [2, 1, 0])
    dist = make_distribution(chain, 3)
    samples = dist.sample(5, seed=1)
    assert np.all(np.isfinite(dist.log_prob(tf.identity(samples)).numpy()))
    with pytest.raises(ValueError, match="num_flows"):
        make_flow(name, 3, num_flows=0)


def test_conditional_stacks_take_the_context_by_layer_name():
    chain = make_flow("naf", 2, conditional_event_size=1, **SMALL_MAKE_FLOW["naf"])
    dist = make_distribution(chain, 2)
    y = tf.constant([[0.3, -0.2]])
    by_name = lambda c: {f"naf_{k}": {"conditional_input": c} for k in range(2)}
    first, second = (dist.log_prob(y, bijector_kwargs=by_name(tf.constant([[c]]))).numpy()
                     for c in (0.0, 3.0))
    assert np.all(np.isfinite(first)) and not np.allclose(first, second)


def test_make_flow_errors_name_the_choices():
    with pytest.raises(ValueError, match="tnaf, tnaf-paper, naf, bnaf, maf, realnvp"):
        make_flow("glow", 2)
    with pytest.raises(ValueError, match="takes no `hidden_units`; its options are "
                                         "transform_units, transform_layers"):
        make_flow("bnaf", 2, hidden_units=[4])
    with pytest.raises(ValueError, match="event_size"):
        make_flow("realnvp", 1)
    with pytest.raises(ValueError, match="'realnvp' takes no `conditional_event_size`"):
        make_flow("realnvp", 2, conditional_event_size=1)


def test_every_flow_has_a_recipe_and_builds_from_its_options():
    for name, entry in FLOWS.items():
        assert set(entry.options) <= set(entry.option_names()), name
        optimizer = entry.recipe.optimizer()
        assert isinstance(optimizer, tf_keras.optimizers.Adam)
        assert float(optimizer.learning_rate) == pytest.approx(entry.recipe.learning_rate)
        assert optimizer.global_clipnorm == entry.recipe.global_clipnorm
    overridden = Recipe(learning_rate=1e-2, global_clipnorm=0.1).optimizer(learning_rate=5e-4)
    assert float(overridden.learning_rate) == pytest.approx(5e-4)
    assert overridden.global_clipnorm == 0.1 and overridden.clipnorm is None


def test_t_naf_drops_its_dropout_on_large_data_unless_told():
    def rates(**kwargs):
        chain = make_flow("tnaf", 3, **{**SMALL_MAKE_FLOW["tnaf"], "num_flows": 2, **kwargs})
        return [layer.parameters["dropout"] for layer in chain.bijectors[::2]]

    assert rates() == rates(num_examples=LARGE_DATA - 1) == [0.05, 0.05]
    assert rates(num_examples=LARGE_DATA) == [0.0, 0.0]
    assert rates(num_examples=10**6, dropout=0.2) == [0.2, 0.2]  # given options win
    assert resolved_options("tnaf", LARGE_DATA)["dropout"] == 0.0
    assert resolved_options("tnaf", 100)["dropout"] == resolved_options("tnaf")["dropout"] == 0.05
    assert resolved_options("tnaf", 10**6, dropout=0.1)["dropout"] == 0.1
    # The other flows have no options that follow the data's size.
    assert resolved_options("naf", LARGE_DATA) == resolved_options("naf")
    for name in ("tnaf", "naf"):
        for bad in (0, -5, 2.5, True, "many"):
            with pytest.raises(ValueError, match="`num_examples` must be a positive integer"):
                make_flow(name, 3, num_examples=bad)


@pytest.mark.parametrize("name", ["maf", "realnvp"])
def test_float64_baselines_compute_in_float64(name):
    # TFP's MADE builds its hidden activations in Keras' floatx and a Keras
    # Sequential built from a shape gets a float32 input: either would round a
    # float64 flow's inner values to float32, and change the output by ~1e-8.
    flow = make_flow(name, 2, num_flows=1, hidden_units=[8], dtype=tf.float64)
    randomize_variables(flow, scale=1.0)  # keeps MADE's masks
    y = tf.constant([[0.3, -0.7]], tf.float64)
    step = tf.constant([[1e-10, 1e-10]], tf.float64)
    # The log-det depends on y only through the network.
    ildj = lambda y: flow.inverse_log_det_jacobian(y, event_ndims=1).numpy()
    change = np.abs(ildj(y + step) - ildj(y))
    assert np.all(change > 1e-13) and np.all(change < 1e-8), change
    assert tf_keras.backend.floatx() == "float32"
    assert make_distribution(flow, 2, tf.float64).log_prob(y).dtype == tf.float64
