"""B-NAF-specific tests; the shared battery is in test_flow_battery.py."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import make_flow, normal_base
from tests.support.jacobians import autodiff_log_det
from tfp_tnaf import BlockNeuralAutoregressive, root_diagnostics
from tfp_tnaf.data import two_moons
from tfp_tnaf.models import FLOWS
from tfp_tnaf.models import make_flow as make_named_flow
from tfp_tnaf.training import fit_steps, mean_log_prob

tfb, tfd = tfp.bijectors, tfp.distributions


def test_trainable_variables_complete_at_construction():
    flow = BlockNeuralAutoregressive(5, transform_units=3, transform_layers=2,
                                     conditional_event_size=2)
    shapes = {v.name.split("/")[-1].split(":")[0]: tuple(v.shape)
              for v in flow.trainable_variables}
    assert shapes == {
        "kernel_0": (15, 5), "kernel_1": (15, 15), "kernel_2": (5, 15),
        "log_scale_0": (15,), "log_scale_1": (15,), "log_scale_2": (5,),
        "bias_0": (15,), "bias_1": (15,), "bias_2": (5,),
        "context_kernel": (15, 2), "residual": (5,)}


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_gated_residual_log_det_and_round_trip(dtype):
    flow = make_flow("bnaf", 4, dtype, gated_residual=True, input_order="random")
    rng = np.random.default_rng(0)
    y = tf.constant(rng.normal(scale=2.0, size=(16, 4)), dtype)
    rtol = 1e-4 if dtype == tf.float32 else 1e-10
    np.testing.assert_allclose(flow.inverse_log_det_jacobian(tf.identity(y)).numpy(),
                               autodiff_log_det(flow.inverse, y), rtol=rtol, atol=rtol)
    wide = tf.constant(rng.uniform(-50, 50, (32, 4)), dtype)
    result = flow.solve_forward(flow.inverse(tf.identity(wide)))
    assert np.max(np.abs(result.y.numpy() - wide.numpy())) < 1e-4
    assert int(root_diagnostics(result)["num_not_converged"]) == 0


def test_slope_is_bounded_below_by_the_linear_term():
    # Far from the data the tanh network is flat: z_i grows like beta_i * y_i.
    flow = make_flow("bnaf", 3, linear_slope=0.25)
    y = tf.constant([[1e4, -1e4, 1e5]], tf.float32)
    log_det = flow.inverse_log_det_jacobian(y).numpy()
    _, beta = flow.network.residual_weights()
    np.testing.assert_allclose(log_det, np.sum(np.log(beta.numpy())), rtol=1e-5)
    assert np.all(np.log(beta.numpy()) >= np.log(0.25))


def test_fits_two_moons():
    splits = two_moons(num_train=4000, num_validation=10, num_test=2000, seed=1)
    tf_keras.utils.set_random_seed(1)
    dist = tfd.TransformedDistribution(
        normal_base(2), make_named_flow("bnaf", 2, num_flows=2, transform_units=16))
    # Weight normalisation makes B-NAF want the paper's larger learning rate (its recipe).
    losses, _ = fit_steps(dist, splits.train, num_steps=800, batch_size=256, seed=1,
                          optimizer=FLOWS["bnaf"].recipe.optimizer())
    assert np.all(np.isfinite(losses))
    # A standard Normal fit scores -2.84 nats; this reaches about -1.5.
    assert mean_log_prob(dist, splits.test)[0] > -1.8
    samples = dist.sample(2000, seed=2).numpy()
    assert np.all(np.isfinite(samples))
    # Samples land on the moons: their mean log-density is near the test points'.
    assert np.mean(dist.log_prob(samples).numpy()) > -1.9
