"""Elementwise chains fused into one XLA kernel each, with their gradients written out.

A small transformer spends most of its time on CPU not in matmuls but in the
chains of elementwise ops between them (a layer normalisation is eight
TensorFlow kernels forward and more backward, each a pass over memory). XLA
fuses such a chain into one loop, but compiling a whole train step with XLA
is slower on CPU (its matmuls are). So each chain here is a
`tf.custom_gradient` whose forward and backward are separate XLA-compiled
functions: one fused kernel each way, called from graphs whose matmuls stay
TensorFlow's. Called inside a `jit_compile=True` function they are simply
part of its program.

The backward passes are written out (not autodiff of the forward), so they
need no recomputation; they are checked against autodiff of the plain
formulas in the tests. (They are differentiable in turn, but nothing in the
package differentiates twice.) XLA compiles each kernel once per input
shape: a new batch size costs a compile, then runs from the cache. So the
kernels run only in graphs (`tf.function`, Keras); executing eagerly, where
a call is made once, and in graphs exported to serve (`tfp_tnaf.serving`),
the same functions run as the plain ops (see `plain`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

__all__ = ["gelu", "layer_norm", "plain"]

_compiled = dict(jit_compile=True, reduce_retracing=True)
_state = {"plain": False}


@contextlib.contextmanager
def plain() -> Iterator[None]:
    """Within it, the kernels are traced as ordinary TensorFlow ops (the same
    functions, autodiff gradients): for TensorFlow's profiler, which counts
    no FLOPs inside compiled functions, for graphs exported to serve, or
    where XLA is not available. It acts when a function is traced: a
    `tf.function` traced before keeps its graph. Process-wide, not per thread."""
    before, _state["plain"] = _state["plain"], True
    try:
        yield
    finally:
        _state["plain"] = before


def _plain() -> bool:
    """Whether to run the plain ops: inside `plain()`, and when executing
    eagerly (each new shape would cost a compile, for one call)."""
    return _state["plain"] or tf.executing_eagerly()


def _rows(t: tf.Tensor) -> tf.Tensor:
    """`t` as a matrix `[rows, last axis]`."""
    return tf.reshape(t, [-1, tf.shape(t)[-1]])


def _layer_norm_values(x, gamma, beta, epsilon):
    """The normalisation and what its gradient needs: the plain ops, and the
    compiled forward (`_layer_norm_forward`)."""
    centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    inverse_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
                                + epsilon)
    normalised = centred * inverse_std
    return normalised * gamma + beta, normalised, inverse_std


_layer_norm_forward = tf.function(_layer_norm_values, **_compiled)


@tf.function(**_compiled)
def _layer_norm_backward(dy, normalised, inverse_std, gamma):
    scaled = dy * gamma
    dx = inverse_std * (scaled - tf.reduce_mean(scaled, axis=-1, keepdims=True)
                        - normalised * tf.reduce_mean(scaled * normalised, axis=-1,
                                                      keepdims=True))
    rows = _rows(dy)
    return dx, tf.reduce_sum(rows * _rows(normalised), axis=0), tf.reduce_sum(rows, axis=0)


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor,
               epsilon: float = 1e-5) -> tf.Tensor:
    """Layer normalisation over the last axis:
    `(x - mean) / sqrt(variance + epsilon) * gamma + beta`.

    Args:
      x: `[..., E]`.
      gamma, beta: `[E]`, the scale and offset (variables or tensors).
      epsilon: added to the variance.
    """
    if _plain():
        return _layer_norm_values(x, gamma, beta, tf.constant(epsilon, x.dtype))[0]

    @tf.custom_gradient
    def normalise(x, gamma, beta):
        y, normalised, inverse_std = _layer_norm_forward(
            x, gamma, beta, tf.constant(epsilon, x.dtype))

        def gradient(dy):
            return _layer_norm_backward(dy, normalised, inverse_std, gamma)

        return y, gradient

    # Variables are read here, outside the custom gradient: their reads take
    # the gradients it returns.
    return normalise(x, tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta))


# `tf.nn.gelu`'s 1/sqrt(2), which it rounds to float32 in every dtype: the
# kernel computes the same function as Keras' GELU (in float64 too).
_SQRT_HALF = float(np.float32(1.0 / math.sqrt(2.0)))


def _gelu_values(z, bias):
    """`(GELU(x), x)` of `x = z + bias`: the plain ops, and the compiled forward
    (`_gelu_forward`)."""
    x = z + bias
    return 0.5 * x * tf.math.erfc(-_SQRT_HALF * x), x


_gelu_forward = tf.function(_gelu_values, **_compiled)


@tf.function(**_compiled)
def _gelu_backward(dy, x):
    # d/dx of 0.5 x erfc(-c x): 0.5 erfc(-c x) + x c exp(-c^2 x^2) / sqrt(pi).
    derivative = (0.5 * tf.math.erfc(-_SQRT_HALF * x)
                  + x * (_SQRT_HALF / math.sqrt(math.pi)) * tf.exp(-tf.square(_SQRT_HALF * x)))
    dx = dy * derivative
    return dx, tf.reduce_sum(_rows(dx), axis=0)


def gelu(z: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """`GELU(z + bias)` of a layer's pre-activation `z` `[..., units]` and its
    bias `[units]`: the exact GELU `x Phi(x) = 0.5 x erfc(-x / sqrt(2))`, as
    `tf.nn.gelu` computes it (the same numbers, to rounding)."""
    if _plain():
        return _gelu_values(z, bias)[0]

    @tf.custom_gradient
    def activate(z, bias):
        y, x = _gelu_forward(z, bias)
        return y, lambda dy: _gelu_backward(dy, x)

    return activate(z, tf.convert_to_tensor(bias))
