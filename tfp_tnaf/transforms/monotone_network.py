"""T-NAF's monotone network: 1 -> H -> H -> 1 with positive weights, plus a linear skip."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import checks
from tfp_tnaf.numerics import log_matvec_exp, log_sech2, shared_matvec
from tfp_tnaf.transforms.base import LINEAR_SLOPE, MonotoneTransform, ParamGroup

__all__ = ["MonotoneNetworkTransform"]


def _normal(mean: float, stddev: float) -> tf_keras.initializers.Initializer:
    """A normal initializer seeded now from Python's `random`, which
    `tf_keras.utils.set_random_seed` seeds: the global seed fixes it, each
    transform built draws afresh, and every call returns the same values (so
    a layout's initial values are one fact however often they are read)."""
    return tf_keras.initializers.RandomNormal(mean, stddev, seed=random.randint(1, 10**9))


class MonotoneNetworkTransform(MonotoneTransform):
    """Increasing network 1 -> H -> H -> 1 of R onto R (T-NAF's transform).

      h1 = tanh(exp(w1) y + b1),        h2 = tanh(exp(M) h1 + b2),
      x  = exp(w3) . h2 + b3 + (softplus(c) + linear_slope) y,

    with the per-element `w1, b1, b2, w3` (H each), `b3`, `c` the
    pseudo-parameters (in that order), and the H x H log-weights
    `M = log_mixing`, a variable of the transform shared by all elements
    (T-NAF's amortisation: a hypernetwork emits only the per-element part).
    The tanh part is bounded; the positive linear skip makes the map onto R
    and bounds its slope below. The log-derivative is chained in log space,
    with `log(1 - tanh(u)^2)` evaluated stably.

    Since the tanh term lies in `(-A, A)` with `A = sum exp(w3)`, each root
    of `x(y) = x` lies in `[(x - b3 - A) / s, (x - b3 + A) / s]` (`s` the
    skip's slope): `bracket` gives the root solver that interval.

    The groups' initial values (what a hypernetwork's output starts from)
    make every element start at about `0.6 y` plus a bounded tanh term with
    spread-out centres.

    Args:
      units: H, the hidden width.
      linear_slope: floor on the slope of the linear skip, >= 0.
      dtype: dtype of `log_mixing`.
    """

    def __init__(self, units: int = 128, linear_slope: float = LINEAR_SLOPE,
                 dtype: Any = tf.float32, name: str | None = None):
        super().__init__(name=name)
        self.units = h = checks.positive_int(units, "units")
        self.linear_slope = checks.non_negative(linear_slope, "linear_slope")
        self.layout = (
            ParamGroup("w1", h, _normal(0.0, 0.5)),
            ParamGroup("b1", h, _normal(0.0, 1.5)),
            ParamGroup("b2", h, _normal(0.0, 0.5)),
            ParamGroup("w3", h, tf_keras.initializers.Constant(-math.log(h))),
            ParamGroup("b3", 1, tf_keras.initializers.Constant(0.0)),
            # softplus(c) = 0.5
            ParamGroup("c", 1, tf_keras.initializers.Constant(float(np.log(np.expm1(0.5))))),
        )
        initializer = _normal(-math.log(h), 0.1)
        self.log_mixing = tf.Variable(initializer([h, h], dtype=checks.floating_dtype(dtype)),
                                      name="log_mixing")

    def _transform(self, y, groups):
        weights = self._weights(groups, y.dtype)
        u1, _, u2, _, x = self._layers(y, weights)
        log_mixing = tf.cast(self.log_mixing, y.dtype)  # float64 when a root is polished
        log_dh1 = groups["w1"] + log_sech2(u1)
        log_dh2 = log_matvec_exp(log_mixing, log_dh1, shared=True) + log_sech2(u2)
        log_dx = tfp.math.log_add_exp(tf.reduce_logsumexp(groups["w3"] + log_dh2, axis=-1),
                                      tf.math.log(weights["skip"]))
        return x, log_dx

    def _weights(self, groups, dtype):
        """The groups with their positive weights `exp(w1)`, `exp(w3)`,
        `exp(M)` and the skip's slope."""
        return dict(scale1=tf.exp(groups["w1"]), b1=groups["b1"], b2=groups["b2"],
                    scale3=tf.exp(groups["w3"]), b3=groups["b3"][..., 0],
                    skip=self._skip_slope(groups["c"][..., 0]),
                    mixing=tf.exp(tf.cast(self.log_mixing, dtype)))

    @staticmethod
    def _layers(y, weights):
        """`(u1, h1, u2, h2, x)`: the pre-activations, activations and value of
        the map at `y` (`_weights`): one definition of `x` for `__call__` and
        `evaluate`."""
        w = weights
        u1 = w["scale1"] * y[..., tf.newaxis] + w["b1"]
        h1 = tf.tanh(u1)
        u2 = shared_matvec(w["mixing"], h1) + w["b2"]
        h2 = tf.tanh(u2)
        return u1, h1, u2, h2, tf.reduce_sum(w["scale3"] * h2, axis=-1) + w["b3"] + w["skip"] * y

    def prepare(self, params):
        """`_weights`, computed once for a root solve."""
        return self._weights(self.split(params), params.dtype)

    def evaluate(self, y, prepared):
        """`x` as `__call__` computes it, and the slope summed in linear space
        from `1 - tanh^2` (half the work of `__call__`'s log-space chain): its
        terms are all positive and the skip bounds it below. Where a unit
        saturates, `1 - tanh^2` rounds to 0 and the slope is approximate (it
        only steers Newton steps); it is never NaN."""
        p, times = prepared, tf.math.multiply_no_nan  # inf * 0 = 0: a saturated unit
        _, h1, _, h2, x = self._layers(y, p)
        dh1 = times(p["scale1"], 1.0 - tf.square(h1))
        dh2 = times(shared_matvec(p["mixing"], dh1), 1.0 - tf.square(h2))
        slope = tf.reduce_sum(times(p["scale3"], dh2), axis=-1) + p["skip"]
        return x, tf.math.log(slope)

    def _skip_slope(self, c):
        """`s = softplus(c) + linear_slope`, the slope of the linear skip."""
        return tf.math.softplus(c) + self.linear_slope

    def bracket(self, x, params):
        """`(x - b3 -+ A) / s` with `A = sum exp(w3)`, `s` the skip's slope: the
        tanh term lies in `(-A, A)`, so the root lies between them."""
        groups = self.split(params)
        bound = tf.reduce_sum(tf.exp(groups["w3"]), axis=-1)
        skip = self._skip_slope(groups["c"][..., 0])
        centre = x - groups["b3"][..., 0]
        return (centre - bound) / skip, (centre + bound) / skip
