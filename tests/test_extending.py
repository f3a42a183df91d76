"""What a user writes to add a scalar transform or a conditioner: one class each,
and everything else (flows, sampling, root solves, log-dets) comes with it."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tests.support.flows import normal_base, randomize_variables
from tests.support.jacobians import autodiff_log_det
from tfp_tnaf import (
    Conditioner,
    MonotoneAutoregressive,
    MonotoneTransform,
    NeuralAutoregressive,
    ParamGroup,
    TransformerAutoregressive,
    checks,
    root_diagnostics,
)
from tfp_tnaf.transforms import DeepSigmoidalTransform

tfd = tfp.distributions


class SinhArcsinh(MonotoneTransform):
    """x = sinh(b + exp(a) asinh(y)) + 0.1 y: a new transform, all of it."""

    layout = (ParamGroup("a", 1), ParamGroup("b", 1))

    def _transform(self, y, groups):
        a, b = groups["a"][..., 0], groups["b"][..., 0]
        u = b + tf.exp(a) * tf.asinh(y)
        log_du = a - 0.5 * tf.math.log1p(tf.square(y))
        log_dx = tfp.math.log_add_exp(log_du + tf.math.log(tf.cosh(u)), tf.math.log(0.1))
        return tf.sinh(u) + 0.1 * y, tf.cast(log_dx, y.dtype)


class LinearConditioner(Conditioner):
    """params_i = W_i y_<i + b_i, a strictly lower-triangular (in the order) linear map."""

    def __init__(self, event_size, input_order, num_params):
        super().__init__(event_size, input_order, num_params)
        earlier = self.input_order[:, None] < self.input_order[None, :]  # [j, i]: j before i
        self.mask = tf.constant(np.repeat(earlier, num_params, axis=1), tf.float32)
        self.kernel = tf.Variable(tf.random.normal([event_size, event_size * num_params]))
        self.bias = tf.Variable(tf.zeros([event_size * num_params]))

    def _params(self, y, conditional_input):
        out = tf.matmul(y, self.kernel * self.mask) + self.bias
        return tf.reshape(out, [-1, self.event_size, self.num_params])


class LinearAutoregressive(MonotoneAutoregressive):
    """A flow: the new conditioner driving DSF transforms."""

    def __init__(self, event_size, input_order="left-to-right", name="linear_autoregressive"):
        parameters = dict(locals())
        transform = DeepSigmoidalTransform(4)
        conditioner = LinearConditioner(event_size,
                                        checks.input_order(event_size, input_order),
                                        transform.num_params)
        super().__init__(conditioner, transform, None, False, parameters, name)


def check_flow(flow, event_size):
    y = tf.constant(np.random.default_rng(0).normal(scale=2.0, size=(8, event_size)),
                    tf.float32)
    np.testing.assert_allclose(flow.inverse_log_det_jacobian(tf.identity(y)).numpy(),
                               autodiff_log_det(flow.inverse, y), rtol=1e-4, atol=1e-4)
    result = flow.solve_forward(flow.inverse(tf.identity(y)))
    np.testing.assert_allclose(result.y.numpy(), y.numpy(), atol=1e-4)
    assert int(root_diagnostics(result)["num_not_converged"]) == 0
    dist = tfd.TransformedDistribution(normal_base(event_size), flow)
    samples = dist.sample(16, seed=1)
    assert np.all(np.isfinite(dist.log_prob(tf.identity(samples)).numpy()))


def test_a_new_transform_plugs_into_naf_and_tnaf():
    for flow in (NeuralAutoregressive(3, transform=SinhArcsinh(), hidden_units=[8]),
                 TransformerAutoregressive(3, transform=SinhArcsinh(), num_layers=1,
                                           num_heads=1, embedding_units=4, mlp_units=4,
                                           head_units=4, psi_units=4, hypernetwork_units=4)):
        randomize_variables(flow, scale=0.3)
        check_flow(flow, 3)


def test_a_new_conditioner_makes_a_flow():
    flow = LinearAutoregressive(4, input_order=[2, 4, 1, 3])
    for v in flow.trainable_variables:
        v.assign(0.3 * v)
    check_flow(flow, 4)
