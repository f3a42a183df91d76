"""The conditioners (`tfp_tnaf.nn`): autoregressive, their sequential paths equal to
their parallel passes, and the hypernetwork's layout."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.support.flows import randomize_variables
from tfp_tnaf import checks
from tfp_tnaf.nn import (
    BlockAutoregressiveNetwork,
    BlockConditioner,
    LowRankHypernetwork,
    MadeConditioner,
    MonotoneHypernetwork,
    TransformerConditioner,
)
from tfp_tnaf.transforms import (
    BlockPathTransform,
    DeepSigmoidalTransform,
    MonotoneNetworkTransform,
    ParamGroup,
)

D, C = 5, 2
ORDER = np.array([3, 1, 5, 2, 4])


def made(conditional_event_size=None):
    return MadeConditioner(D, ORDER, num_params=6, hidden_units=[16, 16],
                           conditional_event_size=conditional_event_size)


def transformer(conditional_event_size=None, hypernetwork="mlp"):
    return TransformerConditioner(
        D, ORDER, MonotoneNetworkTransform(4), psi_units=8, hypernetwork=hypernetwork,
        hypernetwork_units=8, conditional_event_size=conditional_event_size, num_layers=2,
        num_heads=2, embedding_units=8, mlp_units=16, head_units=16)


def low_rank_transformer(conditional_event_size=None):
    return transformer(conditional_event_size, hypernetwork="low-rank")


def block(conditional_event_size=None):
    network = BlockAutoregressiveNetwork(D, transform_units=3, transform_layers=2,
                                         conditional_event_size=conditional_event_size)
    return BlockConditioner(network, ORDER, BlockPathTransform(network.widths),
                            conditional_event_size)


CONDITIONERS = {"made": made, "transformer": transformer,
                "transformer-low-rank": low_rank_transformer, "block": block}


def built(name, conditional_event_size=None):
    conditioner = CONDITIONERS[name](conditional_event_size)
    randomize_variables(conditioner, scale=0.3)  # the transformer's head starts at zero
    return conditioner


@pytest.mark.parametrize("name", CONDITIONERS)
def test_each_dimension_depends_only_on_dimensions_of_lower_degree(name):
    conditioner = built(name)
    y = tf.constant(np.random.default_rng(0).normal(size=(3, D)), tf.float32)
    params = conditioner(y)
    assert params.shape == (3, D, conditioner.num_params)
    # d params[n, i, p] / d y[n, j], summed over p with random weights.
    weights = tf.constant(np.random.default_rng(1).normal(size=params.shape), tf.float32)
    jacobian = np.stack([_row_gradient(conditioner, y, weights, i) for i in range(D)], axis=1)
    earlier = ORDER[np.newaxis, :] < ORDER[:, np.newaxis]  # [i, j]: j comes before i
    assert np.all(jacobian[:, ~earlier] == 0)
    # Every earlier dimension matters (for some point: a ReLU may be off at another).
    assert np.all(np.any(jacobian != 0, axis=0)[earlier])


def _row_gradient(conditioner, y, weights, i):
    with tf.GradientTape() as tape:
        tape.watch(y)
        value = tf.reduce_sum(conditioner(y)[:, i] * weights[:, i])
    return tape.gradient(value, y).numpy()


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("name", CONDITIONERS)
def test_the_decoder_gives_the_parallel_pass_dimension_by_dimension(name, cached):
    conditioner = built(name, conditional_event_size=C)
    rng = np.random.default_rng(2)
    y = tf.constant(rng.normal(size=(4, D)), tf.float32)
    c = tf.constant(rng.normal(size=(4, C)), tf.float32)
    full = conditioner(y, c).numpy()
    step, state = conditioner.decoder(4, c, cached=cached)
    for i in np.argsort(ORDER):
        # The dimensions not solved yet hold garbage: the step must not read them.
        later = ORDER > ORDER[i]
        seen = np.where(later, 1e3 * rng.normal(size=(4, D)), y.numpy())
        params, state = step(tf.constant(i), tf.constant(seen, tf.float32), state)
        np.testing.assert_allclose(params.numpy(), full[:, i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("segment, lengths", [(None, [5]), (2, [2, 2, 1])])
def test_cached_transformer_steps_equal_the_parallel_pass_exactly_per_position(segment, lengths):
    conditioner = TransformerConditioner(
        D, ORDER, MonotoneNetworkTransform(4), psi_units=8, num_layers=2, num_heads=2,
        embedding_units=8, mlp_units=16, head_units=16, cache_segment=segment)
    randomize_variables(conditioner, scale=0.3)
    network = conditioner.transformer
    assert [length for _, length in network.cache_segments] == lengths
    y = tf.constant(np.random.default_rng(3).normal(size=(3, D)), tf.float32)
    full = network(y).numpy()
    cache = network.initial_cache(3)
    step = tf.function(network.decode_step)  # the segments' conds in a graph too
    for k in range(D):
        psi, cache = step(tf.constant(k), y[:, max(k - 1, 0)], cache)
        np.testing.assert_allclose(psi.numpy(), full[:, k], atol=1e-5)
    # Every position was written into its segment, once.
    keys = np.concatenate([segment.numpy() for segment in cache[0][0]], axis=-2)
    assert np.all(np.abs(keys).sum(axis=(0, 1, 3)) > 0)


def test_the_transformer_is_the_causal_pre_norm_transformer_of_its_layers():
    # Written out with each Keras layer called on its own: separate query, key
    # and value layers, scores scaled by 1 / sqrt(E / heads), a causal softmax.
    network = TransformerConditioner(
        D, ORDER, MonotoneNetworkTransform(4), psi_units=8, num_layers=2, num_heads=2,
        embedding_units=8, mlp_units=16, head_units=16).transformer
    randomize_variables(network, scale=0.5)
    y = tf.constant(np.random.default_rng(7).normal(size=(3, D)), tf.float64)
    t = tf.cast(tf.concat([tf.broadcast_to(network.start, [3, 1, 8]),
                           network.token(tf.cast(y[:, :-1, None], tf.float32))], 1)
                + network.position, tf.float64)

    def dense(layer, v):
        return tf.cast(layer(tf.cast(v, tf.float32)), tf.float64)

    def norm(layer, v):
        v = (v - tf.reduce_mean(v, -1, keepdims=True)) / tf.sqrt(
            tf.math.reduce_variance(v, -1, keepdims=True) + layer.epsilon)
        return v * tf.cast(layer.gamma, tf.float64) + tf.cast(layer.beta, tf.float64)

    def heads(v):  # [3, D, 8] -> [3, 2, D, 4]
        return tf.transpose(tf.reshape(v, [3, D, 2, 4]), [0, 2, 1, 3])

    causal = np.tril(np.ones([D, D], bool))
    for block in network.blocks:
        a = norm(block["norm_attention"], t)
        q, k, v = (heads(dense(block[name], a)) for name in ("query", "key", "value"))
        scores = tf.where(causal, tf.matmul(q, k, transpose_b=True) / 2.0, -np.inf)
        attended = tf.reshape(tf.transpose(tf.matmul(tf.nn.softmax(scores), v), [0, 2, 1, 3]),
                              [3, D, 8])
        t = t + dense(block["output"], attended)
        t = t + dense(block["mlp_out"], dense(block["mlp_in"], norm(block["norm_mlp"], t)))
    psi = dense(network.head_output, dense(network.head_hidden, norm(network.final_norm, t)))
    np.testing.assert_allclose(network(tf.cast(y, tf.float32)).numpy(), psi.numpy(),
                               rtol=2e-5, atol=2e-5)


def test_the_hypernetwork_emits_the_transforms_layout_starting_from_its_initial_values():
    # Scalars between vectors: the heads' outputs are put back in layout order.
    layout = (ParamGroup("s", 1, tf_keras.initializers.Constant(3.0)),
              ParamGroup("v", 4, tf_keras.initializers.Constant([1.0, 2.0, 3.0, 4.0])),
              ParamGroup("t", 1, tf_keras.initializers.Constant(-7.0)),
              ParamGroup("w", 2))
    hypernetwork = MonotoneHypernetwork(layout, units=5, psi_units=3)
    out = hypernetwork(tf.zeros([2, 3])).numpy()
    np.testing.assert_array_equal(out, [[3.0, 1.0, 2.0, 3.0, 4.0, -7.0, 0.0, 0.0]] * 2)
    assert hypernetwork.num_params == 8
    # psi moves every group; each group only through its own head.
    psi = tf.constant(np.random.default_rng(4).normal(size=(2, 3)), tf.float32)
    with tf.GradientTape() as tape:
        value = hypernetwork(psi)[:, 1:5]
    (_, v_output), (_, w_output) = hypernetwork.heads  # the two vector groups' heads
    grads = tape.gradient(value, [v_output.kernel, w_output.kernel])
    assert np.any(grads[0].numpy() != 0) and np.all(grads[1].numpy() == 0)


def test_the_monotone_network_starts_every_dimension_from_the_same_map():
    transform = MonotoneNetworkTransform(8)
    conditioner = TransformerConditioner(D, ORDER, transform, psi_units=4,
                                         hypernetwork_units=4, num_layers=1, num_heads=1,
                                         embedding_units=4, mlp_units=4, head_units=4)
    y = tf.constant(np.random.default_rng(5).normal(size=(3, D)), tf.float32)
    expected = transform.initial_params().numpy()
    np.testing.assert_allclose(conditioner(y).numpy(), np.broadcast_to(expected, (3, D, 34)),
                               rtol=1e-6, atol=1e-6)


def test_block_network_weights_are_block_triangular_and_normalised():
    network = BlockAutoregressiveNetwork(4, transform_units=3, transform_layers=2)
    randomize_variables(network, scale=0.5)
    for (below, diagonal, log_diagonal, _), _kernel, log_scale, n, m in zip(
            network.layer_weights(), network.kernels, network.log_scales, network.widths[:-1],
            network.widths[1:], strict=True):
        blocks = below.numpy().reshape(4, m, 4, n)
        for p in range(4):
            assert np.all(blocks[p, :, p:] == 0)  # nothing on or above the diagonal
        assert np.all(diagonal.numpy() > 0)
        np.testing.assert_allclose(np.log(diagonal.numpy()), log_diagonal.numpy(), rtol=1e-5,
                                   atol=1e-5)
        # Each row of the whole matrix has norm exp(log_scale).
        full = below.numpy().reshape(4 * m, 4 * n).copy()
        for p in range(4):
            full[p * m:(p + 1) * m, p * n:(p + 1) * n] = diagonal.numpy()[p]
        np.testing.assert_allclose(np.linalg.norm(full, axis=1), np.exp(log_scale.numpy()),
                                   rtol=1e-5)


def test_made_computes_in_float64_when_asked():
    conditioner = MadeConditioner(3, checks.input_order(3), 4, hidden_units=[8],
                                  dtype=tf.float64)
    assert all(v.dtype == tf.float64 for v in conditioner.trainable_variables)
    assert conditioner(tf.zeros([2, 3], tf.float64)).dtype == tf.float64
    assert tf_keras.backend.floatx() == "float32"


def test_conditioner_arguments_are_checked():
    with pytest.raises(ValueError, match="`input_order`"):
        MadeConditioner(3, [1, 2, 2], 4)
    with pytest.raises(ValueError, match="`num_params`"):
        MadeConditioner(3, checks.input_order(3), 0)
    with pytest.raises(ValueError, match="`hypernetwork_units`"):
        MonotoneHypernetwork(DeepSigmoidalTransform(2).layout, units=0)


def test_the_low_rank_hypernetwork_starts_each_position_at_the_layout_and_learns_from_psi():
    layout = (ParamGroup("v", 3, tf_keras.initializers.Constant([1.0, 2.0, 3.0])),
              ParamGroup("s", 1, tf_keras.initializers.Constant(-7.0)))
    hypernetwork = LowRankHypernetwork(layout, event_size=4, psi_units=2)
    np.testing.assert_array_equal(hypernetwork(tf.zeros([5, 4, 2])).numpy(),
                                  np.broadcast_to([1.0, 2.0, 3.0, -7.0], (5, 4, 4)))
    # Each position owns its base; psi modulates it linearly, with gradients
    # reaching psi from the start (a zero `U` would leave a zero head stuck).
    randomize_variables(hypernetwork, scale=0.5)
    psi = tf.constant(np.random.default_rng(6).normal(size=(5, 4, 2)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(psi)
        out = hypernetwork(psi)
    assert np.all(tape.gradient(out, psi).numpy() != 0)
    base, modulation = hypernetwork.base.numpy(), hypernetwork.modulation.numpy()
    np.testing.assert_allclose(out.numpy(), base + psi.numpy() @ modulation, rtol=1e-6)
    for position in range(4):  # the decoder's single-position call
        np.testing.assert_allclose(hypernetwork(psi[:, position], position).numpy(),
                                   out.numpy()[:, position], rtol=1e-6)


def test_the_hypernetwork_kind_is_checked():
    with pytest.raises(ValueError, match="`hypernetwork`"):
        transformer(hypernetwork="cubic")
