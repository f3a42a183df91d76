"""The fused kernels against the plain formulas: values and written-out gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_tnaf import fused


def plain_layer_norm(x, gamma, beta, epsilon):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) / tf.sqrt(variance + epsilon) * gamma + beta


def plain_gelu(z, bias):
    return tf.nn.gelu(z + bias, approximate=False)


def values_and_gradients(fn, *args):
    """`fn(*args)` and the gradient of a weighted sum of it with respect to each argument."""
    with tf.GradientTape() as tape:
        tape.watch(args)
        out = fn(*args)
        weights = tf.sin(tf.reshape(tf.range(tf.size(out), dtype=out.dtype), tf.shape(out)))
        loss = tf.reduce_sum(out * weights)
    return [out, *tape.gradient(loss, args)]


CASES = {
    "layer_norm": (lambda x, g, b: fused.layer_norm(x, g, b, 1e-5),
                   lambda x, g, b: plain_layer_norm(x, g, b, 1e-5)),
    "gelu": (fused.gelu, plain_gelu),
}


@pytest.mark.parametrize("compiled", ["eager", "function", "xla"])  # eager: the plain ops
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 8), (3, 5, 8), (4, 1, 8)])
@pytest.mark.parametrize("name", CASES)
def test_fused_kernels_and_their_gradients_equal_the_plain_formulas(name, shape, dtype, compiled):
    rng = np.random.default_rng(3)
    x = tf.constant(3.0 * rng.normal(size=shape) + 1.0, dtype)
    first, second = (tf.constant(rng.normal(size=shape[-1:]), dtype) for _ in range(2))
    args = (x, 1.0 + first, second) if name == "layer_norm" else (x, first)
    fused_fn, plain_fn = CASES[name]
    wrap = {"eager": lambda f: f, "function": tf.function,
            "xla": lambda f: tf.function(f, jit_compile=True)}[compiled]
    got = wrap(lambda *a: values_and_gradients(fused_fn, *a))(*args)
    want = values_and_gradients(plain_fn, *args)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=tolerance, atol=tolerance)


def test_variables_passed_to_a_fused_kernel_receive_its_gradients():
    gamma, beta = tf.Variable(tf.fill([4], 2.0)), tf.Variable(tf.zeros([4]))
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 4)), tf.float32)

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(fused.layer_norm(x, gamma, beta) * x)
        return tape.gradient(loss, [gamma, beta])

    d_gamma, d_beta = gradients()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(plain_layer_norm(x, gamma, beta, 1e-5) * x)
    want = tape.gradient(loss, [gamma, beta])
    np.testing.assert_allclose(d_gamma.numpy(), want[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_beta.numpy(), want[1].numpy(), rtol=1e-5, atol=1e-5)


def test_plain_traces_the_kernels_as_ordinary_ops_of_the_same_function():
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 8)), tf.float32)
    gamma, beta = tf.fill([8], 1.5), tf.fill([8], 0.25)

    def both(x):
        return fused.gelu(fused.layer_norm(x, gamma, beta), beta)

    def calls(graph):
        return {op.type for op in graph.get_operations()} & {"PartitionedCall",
                                                              "StatefulPartitionedCall"}

    kernels = tf.function(both).get_concrete_function(x)
    assert calls(kernels.graph)
    with fused.plain():
        ops = tf.function(both).get_concrete_function(x)
    assert not calls(ops.graph)
    np.testing.assert_allclose(ops(x).numpy(), kernels(x).numpy(), rtol=1e-6, atol=1e-6)
    # Executing eagerly, the plain ops run: no compile for a call made once.
    np.testing.assert_allclose(both(x).numpy(), ops(x).numpy(), rtol=1e-6, atol=1e-6)
