import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf import DeepDenseSigmoidal, DeepSigmoidal, root_diagnostics

tfb, tfd = tfp.bijectors, tfp.distributions

TRANSFORMS = [
    (DeepSigmoidal, dict(units=6, layers=1)),
    (DeepSigmoidal, dict(units=4, layers=3)),
    (DeepDenseSigmoidal, dict(units=5, layers=2)),
    (DeepDenseSigmoidal, dict(units=3, layers=4)),
]
IDS = ["dsf1", "dsf3", "ddsf2", "ddsf4"]


def make(cls, kwargs, batch, dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    params = rng.normal(scale=scale, size=(batch, cls.num_params(**kwargs)))
    return cls(tf.constant(params, dtype), **kwargs)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("cls,kwargs", TRANSFORMS, ids=IDS)
def test_log_det_matches_autodiff(cls, kwargs, dtype):
    bijector = make(cls, kwargs, 200, dtype)
    y = tf.constant(np.random.default_rng(1).normal(scale=3.0, size=200), dtype)
    with tf.GradientTape() as tape:
        tape.watch(y)
        z = bijector.inverse(y)
    derivative = tape.gradient(z, y).numpy()
    assert np.all(derivative > 0)
    rtol = 1e-4 if dtype == tf.float32 else 1e-10
    np.testing.assert_allclose(bijector.inverse_log_det_jacobian(tf.identity(y)).numpy(),
                               np.log(derivative), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("cls,kwargs", TRANSFORMS, ids=IDS)
@pytest.mark.parametrize("spread", ["normal", "wide"])
def test_round_trips_float32(cls, kwargs, spread):
    rng = np.random.default_rng(2)
    values = rng.normal(size=300) if spread == "normal" else rng.uniform(-50, 50, size=300)
    bijector = make(cls, kwargs, 300, tf.float32)
    y = tf.constant(values, tf.float32)
    result = bijector.solve_forward(bijector.inverse(tf.identity(y)))
    assert np.max(np.abs(result.y.numpy() - values)) < 1e-4
    assert int(root_diagnostics(result)["num_not_converged"]) == 0
    x = tf.constant(values, tf.float32)
    np.testing.assert_allclose(bijector.inverse(bijector.forward(tf.identity(x))).numpy(),
                               values, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("cls,kwargs", TRANSFORMS, ids=IDS)
def test_bijection_onto_the_real_line(cls, kwargs):
    bijector = make(cls, kwargs, 4, tf.float32)
    y = tf.constant([-1e3, 1e3, -1e6, 1e6], tf.float32)
    z = bijector.inverse(y).numpy()
    assert np.all(np.isfinite(z))
    # Unbounded both ways: large data values give large noise values.
    assert z[0] < -1 and z[1] > 1 and z[2] < z[0] and z[3] > z[1]
    np.testing.assert_allclose(bijector.forward(tf.constant(z)).numpy(), y.numpy(), rtol=1e-5)
    assert np.all(np.isfinite(bijector.inverse_log_det_jacobian(y).numpy()))


@pytest.mark.parametrize("cls,kwargs", TRANSFORMS[::2], ids=IDS[::2])
def test_forward_under_xla_equals_eager(cls, kwargs):
    bijector = make(cls, kwargs, 50, tf.float32)
    x = tf.constant(np.random.default_rng(3).normal(size=50), tf.float32)
    xla = tf.function(bijector.forward, jit_compile=True)(tf.identity(x))
    np.testing.assert_allclose(xla.numpy(), bijector.forward(tf.identity(x)).numpy(), atol=1e-5)


def test_num_params():
    assert DeepSigmoidal.num_params(8) == 24
    assert DeepSigmoidal.num_params(8, layers=2) == 48
    # DDSF 1 -> 4 -> 1: (a, b, w 4x4) + (u 4x4, a, b, w 1x4).
    assert DeepDenseSigmoidal.num_params(4, layers=2) == (8 + 16) + (16 + 8 + 4)
    assert DeepDenseSigmoidal.num_params(4, layers=1) == DeepSigmoidal.num_params(4)


def test_inside_masked_autoregressive_flow():
    made = tfb.AutoregressiveNetwork(params=DeepSigmoidal.num_params(6), event_shape=[3],
                                     hidden_units=[16])
    maf = tfb.MaskedAutoregressiveFlow(
        bijector_fn=lambda y, **kw: DeepSigmoidal(made(y, **kw), units=6))
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [3]), maf)
    samples = dist.sample(8, seed=1)
    assert samples.shape == (8, 3)
    y = tf.constant(np.random.default_rng(4).normal(size=(8, 3)), tf.float32)
    np.testing.assert_allclose(maf.forward(maf.inverse(y)).numpy(), y.numpy(), atol=1e-4)
    log_prob = dist.log_prob(y)
    assert np.all(np.isfinite(log_prob.numpy()))
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(dist.log_prob(y))
    grads = tape.gradient(loss, made.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)


def test_inside_real_nvp_coupling():
    units = 5
    num_params = DeepDenseSigmoidal.num_params(units)
    import tf_keras

    net = tf_keras.Sequential([tf_keras.layers.Dense(16, activation="tanh"),
                               tf_keras.layers.Dense(2 * num_params)])
    net.build((None, 2))

    def bijector_fn(x0, output_units, **kwargs):
        params = tf.reshape(net(x0), tf.concat([tf.shape(x0)[:-1], [output_units, num_params]],
                                               0))
        return DeepDenseSigmoidal(params, units=units)

    nvp = tfb.RealNVP(num_masked=2, bijector_fn=bijector_fn)
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [4]), nvp)
    y = tf.constant(np.random.default_rng(5).normal(size=(6, 4)), tf.float32)
    np.testing.assert_allclose(nvp.forward(nvp.inverse(y)).numpy(), y.numpy(), atol=1e-4)
    ld = nvp.inverse_log_det_jacobian(y, event_ndims=1).numpy()
    with tf.GradientTape() as tape:
        tape.watch(y)
        z = nvp.inverse(y)
    jac = tape.batch_jacobian(z, y).numpy()
    np.testing.assert_allclose(ld, np.linalg.slogdet(jac)[1], rtol=1e-4, atol=1e-4)
    assert dist.sample(5, seed=2).shape == (5, 4)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`units`"):
        DeepSigmoidal(tf.zeros([2, 3]), units=0)
    with pytest.raises(ValueError, match="`layers`"):
        DeepDenseSigmoidal(tf.zeros([2, 3]), units=1, layers=-1)
    with pytest.raises(ValueError, match="`params` must have 24 pseudo-parameters.*got 23"):
        DeepSigmoidal(tf.zeros([2, 23]), units=8)
    bijector = DeepSigmoidal(tf.zeros([3]), units=1, validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        bijector.inverse(tf.constant(np.nan))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        bijector.forward(tf.constant(np.inf))
    with pytest.raises(ValueError, match="requested dtype float32 for Tensor with dtype float64"):
        bijector.inverse(tf.constant(1.0, tf.float64))


@pytest.mark.parametrize("cls,units,layers", [(DeepSigmoidal, 1, 3),
                                                         (DeepDenseSigmoidal, 1, 3),
                                                         (DeepDenseSigmoidal, 5, 3)])
def test_float32_log_det_is_accurate_in_the_far_tails(cls, units, layers):
    # Sharp sigmoids (pseudo-parameters of scale 12) and |y| up to 1e5: the
    # log-derivative written as log s - log(1 - s) minus large logs lost 0.1
    # nats in float32; float64 is the reference.
    rng = np.random.default_rng(108)
    params = rng.normal(scale=12.0, size=(64, cls.num_params(units, layers)))
    y = rng.normal(scale=1e3, size=64) * np.logspace(0, 2, 64)
    ildj = [cls(tf.constant(params, dtype), units, layers)
            .inverse_log_det_jacobian(tf.constant(y, dtype)).numpy() for dtype in
            (tf.float32, tf.float64)]
    np.testing.assert_allclose(ildj[0], ildj[1], atol=1e-4, rtol=1e-5)
