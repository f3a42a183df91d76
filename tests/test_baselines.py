"""TFP's MAF as the package builds it (`tfp_tnaf.baselines`): the MAF paper's recipe."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import normal_base, randomize_variables
from tests.support.jacobians import autodiff_log_det
from tfp_tnaf import data
from tfp_tnaf.baselines import masked_autoregressive_flow, set_batch_norm_statistics
from tfp_tnaf.models import FLOWS, make_distribution, make_flow
from tfp_tnaf.training import FlowModel, mean_log_prob

tfb, tfd = tfp.bijectors, tfp.distributions


def test_maf_trains_on_miniboone_at_its_recipe():
    # Before the bounded log-scale and batch normalisation, 0.85% of these
    # training points had log_prob -inf at the initialisation and the loss was
    # NaN from the first step (seeds 0 and 1).
    splits = data.miniboone()
    distribution = make_distribution(make_flow("maf", 43), 43)
    model = FlowModel(distribution)
    model.compile(FLOWS["maf"].recipe.optimizer())
    before = mean_log_prob(distribution, splits.validation)[0]
    batches = tf.data.Dataset.from_tensor_slices(splits.train).shuffle(3000, seed=0)
    history = model.fit(batches.repeat().batch(200), epochs=2, steps_per_epoch=100, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = mean_log_prob(distribution, splits.validation)[0]
    assert np.isfinite(after) and after > before + 100 and after > -60, (before, after)


@pytest.mark.parametrize("bound", [3.0, 0.5])
def test_log_scale_is_bounded_however_large_the_network_output(bound):
    flow = masked_autoregressive_flow(3, hidden_units=[8], batch_norm=False,
                                      log_scale_bound=bound)
    randomize_variables(flow, scale=100.0)  # MADE outputs of thousands
    y = tf.constant(np.random.default_rng(0).normal(scale=100.0, size=(256, 3)), tf.float32)
    ildj = flow.inverse_log_det_jacobian(y, event_ndims=1).numpy()
    # Three dimensions, each log-scale in (-bound, bound), saturated here.
    assert np.all(np.abs(ildj) <= 3 * bound + 1e-4) and np.max(np.abs(ildj)) > 0.99 * bound
    np.testing.assert_allclose(flow.forward(flow.inverse(y)).numpy(), y.numpy(), rtol=1e-4,
                               atol=1e-2)
    with pytest.raises(ValueError, match="`log_scale_bound`"):
        masked_autoregressive_flow(3, log_scale_bound=0.0)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 4, 3)])
def test_layer_is_an_exact_bijection_with_its_log_det(shape, dtype):
    flow = masked_autoregressive_flow(3, hidden_units=[8], dtype=dtype)
    assert isinstance(flow, tfb.MaskedAutoregressiveFlow)  # as code that finds MAFs expects
    randomize_variables(flow, scale=0.3)  # batch normalisation away from the identity
    y = tf.constant(np.random.default_rng(1).normal(size=shape), dtype)
    x = flow.inverse(y)
    assert x.shape == shape and x.dtype == dtype
    tolerance = 1e-4 if dtype == tf.float32 else 1e-10
    np.testing.assert_allclose(flow.forward(tf.identity(x)).numpy(), y.numpy(),
                               rtol=tolerance, atol=tolerance)
    ildj = flow.inverse_log_det_jacobian(tf.identity(y), event_ndims=1).numpy()
    assert ildj.shape == shape[:-1]
    np.testing.assert_allclose(ildj, autodiff_log_det(flow.inverse, tf.identity(y)),
                               rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(flow.forward_log_det_jacobian(tf.identity(x), event_ndims=1),
                               -ildj, rtol=tolerance, atol=tolerance)


def test_batch_norm_uses_batch_statistics_only_in_fits_training_step():
    flow = make_flow("maf", 3, hidden_units=[8])
    distribution = make_distribution(flow, 3)
    norm = flow.bijectors[0]._norm  # the first layer the data meet
    y = np.random.default_rng(2).normal(2.0, 3.0, size=(64, 3)).astype(np.float32)
    u = flow.bijectors[0]._affine(tf.constant(y)).inverse(tf.constant(y)).numpy()
    model = FlowModel(distribution)
    model.compile(tf_keras.optimizers.Adam(1e-3))
    log_prob = distribution.log_prob(y).numpy()
    # Outside fit's training step the map is fixed: no update, no batch dependence.
    model.evaluate(y, batch_size=64, verbose=0)
    np.testing.assert_allclose(model.predict(y, batch_size=64, verbose=0), log_prob, rtol=1e-5)
    np.testing.assert_allclose(distribution.log_prob(y[:1]).numpy(), log_prob[:1], rtol=1e-5)
    np.testing.assert_array_equal(norm.moving_mean.numpy(), np.zeros(3))
    model.fit(y, batch_size=64, epochs=1, verbose=0)  # one step: one update, the batch's
    momentum = norm.momentum
    np.testing.assert_allclose(norm.moving_mean.numpy(), (1 - momentum) * u.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.moving_variance.numpy(),
                               momentum + (1 - momentum) * u.var(0), rtol=1e-4)
    # Keras' weights (what BestWeights keeps) include the moving averages.
    assert len(model.get_weights()) >= len(distribution.variables) > len(
        distribution.trainable_variables)


def test_conditional_context_reaches_the_made_by_layer_name():
    flow = make_flow("maf", 3, num_flows=2, hidden_units=[8], conditional_event_size=2)
    distribution = tfd.TransformedDistribution(normal_base(3), flow)
    y = tf.constant([[0.3, -0.2, 0.5]])
    by_name = lambda c: {f"maf_{k}": {"conditional_input": c} for k in range(2)}
    first, second = (distribution.log_prob(y, bijector_kwargs=by_name(tf.fill([1, 2], c)))
                     for c in (0.0, 3.0))
    assert np.all(np.isfinite(first)) and not np.allclose(first, second)
    layer = flow.bijectors[0]
    assert layer.name == "maf_0"
    c = tf.ones([1, 2])
    x = layer.inverse(y, conditional_input=c)
    np.testing.assert_allclose(layer.forward(x, conditional_input=c).numpy(), y.numpy(),
                               atol=1e-5)


def test_batch_norm_statistics_of_the_whole_training_set():
    """After `set_batch_norm_statistics`, each MAF layer's normalisation maps its
    input over the training set to mean `beta` exactly (its averages are that
    input's moments); before, the moving averages of the last batches are not."""
    splits = data.two_moons(num_train=2000, seed=1)
    flow = make_flow("maf", 2)
    model = FlowModel(make_distribution(flow, 2))
    model.compile(FLOWS["maf"].recipe.optimizer())
    model.fit(splits.train, epochs=1, batch_size=100, verbose=0)

    def normalised_means():
        means, y = [], tf.constant(splits.train)
        for layer in flow.bijectors:
            if isinstance(layer, tfb.MaskedAutoregressiveFlow):
                u = layer._affine(y).inverse(y)
                means.append((layer._norm(u)[0].numpy().mean(0), layer._norm.beta.numpy()))
            y = layer.inverse(y)
        return means

    assert any(np.abs(m - beta).max() > 1e-3 for m, beta in normalised_means())
    assert set_batch_norm_statistics(flow, splits.train) == 5
    for mean, beta in normalised_means():
        np.testing.assert_allclose(mean, beta, atol=1e-5)
    assert np.isfinite(mean_log_prob(model.distribution, splits.test)[0])
    naf = make_flow("naf", 2, num_flows=1, hidden_units=[8], transform_units=4)
    assert set_batch_norm_statistics(naf, splits.train) == 0
