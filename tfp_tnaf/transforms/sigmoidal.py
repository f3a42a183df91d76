"""Deep sigmoidal (DSF) and deep dense sigmoidal (DDSF) transforms (Huang et al. 2018)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf import checks
from tfp_tnaf.numerics import log_matvec_exp
from tfp_tnaf.transforms.base import LINEAR_SLOPE, MonotoneTransform, ParamGroup

__all__ = ["DeepDenseSigmoidalTransform", "DeepSigmoidalTransform", "MIN_SLOPE"]

# Floor on the sigmoid slopes a_j: keeps every layer strictly increasing even
# when the conditioner drives softplus(.) to underflow.
MIN_SLOPE = 1e-3


def _slopes(groups: dict, k: int) -> tf.Tensor:
    """Layer `k`'s sigmoid slopes `a = softplus(.) + MIN_SLOPE`."""
    return tf.math.softplus(groups[f"a{k}"]) + MIN_SLOPE


class DeepSigmoidalTransform(MonotoneTransform):
    """Deep sigmoidal flow (DSF): `layers` sigmoidal layers of `units` sigmoids each.

    Each layer maps `h` (width n) to `h'` (width m) through d sigmoid units:

      c_j = a_j * sum_i u_ji h_i + b_j,
      s_k = sum_j w_kj sigmoid(c_j),   h'_k = logit(s_k),

    with `a = softplus(.) + MIN_SLOPE`, and `u`, `w` row-wise softmax. For DSF
    all widths are 1 (no `u`); DDSF (`DeepDenseSigmoidalTransform`) has widths
    `1 -> d -> ... -> d -> 1`. Pseudo-parameters per layer, in order: `u`
    (`d n`, only when n > 1), `a` (d), `b` (d), `w` (`m d`).

    `logit(s)` is `log s - log(1 - s)`, both logsumexps
    (`1 - s = sum_j w_kj sigmoid(-c_j)`), so `s` never saturates. The
    log-derivative is chained as a log-space matrix-vector product; each
    layer's factor `w_kj s_j (1 - s_j) / (s_k (1 - s_k))` is written as
    `alpha_kj beta_kj / w_kj` with `alpha_k = softmax_j(log w_kj + log
    sigmoid(c_j))` and `beta_k = softmax_j(log w_kj + log sigmoid(-c_j))`, so
    no large log-values cancel in the tails. The output is
    `x = h_L + linear_slope * y`, with `log dx/dy = logaddexp(log dh_L/dy, log
    linear_slope)`: in the plateaus between sharp sigmoids `dh_L/dy` can be
    ~1e-5, and float32 `x` then no longer determines `y`; the linear term keeps
    `dx/dy >= linear_slope`. `linear_slope=0` gives the flows of Huang et al.

    Args:
      units: d, the sigmoids per layer.
      layers: the layers composed.
      linear_slope: slope of the added linear term, >= 0.

    #### References

    [1]: Chin-Wei Huang, David Krueger, Alexandre Lacoste and Aaron Courville.
         Neural Autoregressive Flows. In _ICML_, 2018.
         https://arxiv.org/abs/1804.00779
    """

    dense = False

    def __init__(self, units: int, layers: int = 1, linear_slope: float = LINEAR_SLOPE,
                 name: str | None = None):
        super().__init__(name=name)
        self.units = checks.positive_int(units, "units")
        self.layers = checks.positive_int(layers, "layers")
        self.linear_slope = checks.non_negative(linear_slope, "linear_slope")
        inner = self.units if self.dense else 1
        self.widths = [1] + [inner] * (self.layers - 1) + [1]
        layout = []
        for k, (n, m) in enumerate(pairwise(self.widths)):
            if n > 1:
                layout.append(ParamGroup(f"u{k}", self.units * n))
            layout += [ParamGroup(f"a{k}", self.units), ParamGroup(f"b{k}", self.units),
                       ParamGroup(f"w{k}", m * self.units)]
        self.layout = tuple(layout)

    def _transform(self, y, groups):
        h = y[..., tf.newaxis]
        log_dh = tf.zeros_like(h)
        for k, (n, m) in enumerate(pairwise(self.widths)):
            h, log_dh = self._layer(h, log_dh, groups, k, n, m)
        h, log_dh = h[..., 0], log_dh[..., 0]
        if self.linear_slope == 0:
            return h, log_dh
        log_slope = tf.constant(np.log(self.linear_slope), h.dtype)
        return h + self.linear_slope * y, tfp.math.log_add_exp(log_dh, log_slope)

    def bracket(self, x, params):
        """`(min_j, max_j)` of `(x - b_j) / (a_j + linear_slope)` for one layer;
        `None` (the solver searches) for more.

        One layer's `h = logit(sum_j w_j sigmoid(c_j))` is the logit of a convex
        combination of the sigmoids, so it lies between the smallest and the
        largest `c_j = a_j y + b_j`; the output `h + linear_slope * y` then
        lies between the smallest and the largest of the increasing lines
        `(a_j + linear_slope) y + b_j`, and the root of `transform(y) = x`
        between the values of `y` where they reach `x`. The ends are moved
        out by 1e-3 of their size (plus 1e-3): where the sigmoids coincide (a
        conditioner's initial output) both ends are the root itself, and a
        Newton step onto an end of the bracket is refused.
        """
        if self.layers > 1:
            return None
        groups = self.split(params)
        ends = (x[..., tf.newaxis] - groups["b0"]) / (_slopes(groups, 0) + self.linear_slope)
        lo, hi = tf.reduce_min(ends, axis=-1), tf.reduce_max(ends, axis=-1)
        margin = 1e-3 * (1.0 + tf.maximum(tf.abs(lo), tf.abs(hi)))
        return lo - margin, hi + margin

    def _layer(self, h, log_dh, groups, k, n, m):
        """One sigmoidal layer: `(h, log dh/dy)` of width n -> width m."""
        if n == 1 and m == 1:
            return self._scalar_layer(h, log_dh, groups, k)
        d = self.units
        batch = tf.shape(h)[:-1]
        if n > 1:
            u_raw = tf.reshape(groups[f"u{k}"], tf.concat([batch, [d, n]], 0))
            pre = tf.linalg.matvec(tf.nn.softmax(u_raw, axis=-1), h)
            log_dpre = log_matvec_exp(tf.nn.log_softmax(u_raw, axis=-1), log_dh)
        else:
            pre, log_dpre = h, log_dh
        a = _slopes(groups, k)
        log_w = tf.nn.log_softmax(tf.reshape(groups[f"w{k}"], tf.concat([batch, [m, d]], 0)),
                                  axis=-1)
        c = a * pre + groups[f"b{k}"]
        log_w_sig = log_w + tf.math.log_sigmoid(c)[..., tf.newaxis, :]
        log_w_sig_neg = log_w + tf.math.log_sigmoid(-c)[..., tf.newaxis, :]
        h = (tf.reduce_logsumexp(log_w_sig, axis=-1)
             - tf.reduce_logsumexp(log_w_sig_neg, axis=-1))
        # dh'/dc_j = w_j s_j (1 - s_j) / (s (1 - s)) = alpha_j beta_j / w_j: in
        # the tails log sigmoid(-c) ~ -c is large, and this form never
        # subtracts two such numbers (float32 lost 0.1 nats that way).
        log_ratio = (tf.nn.log_softmax(log_w_sig, axis=-1)
                     + tf.nn.log_softmax(log_w_sig_neg, axis=-1) - log_w)
        return h, log_matvec_exp(log_ratio, log_dpre + tf.math.log(a))

    def _scalar_layer(self, h, log_dh, groups, k):
        """`_layer` of width 1 -> 1 (every DSF layer), with fewer reductions.

        With `t_j = log w_j + log sigmoid(c_j)`, `t'_j = log w_j + log
        sigmoid(-c_j)` and each shifted by its maximum (`s = t - max t`, `S =
        sum exp s`), `h' = (max t + log S) - (max t' + log S')` and the factor
        `sum_j alpha_j beta_j a_j / w_j` of `_layer` is
        `sum_j exp(s_j + s'_j - log w_j + log a_j) / (S S')`: the same shifted
        terms as `_layer`'s log-softmaxes, so the tails lose nothing, with two
        reductions over j fewer. `log sigmoid(-c) = log sigmoid(c) - c` (so an
        infinite `y` gives NaN, where `_layer` gave an infinity: neither is a value).
        """
        a = _slopes(groups, k)
        log_w = tf.nn.log_softmax(groups[f"w{k}"], axis=-1)
        c = a * h + groups[f"b{k}"]
        log_sig = tf.math.log_sigmoid(c)
        t, t_neg = log_w + log_sig, log_w + (log_sig - c)
        top = tf.stop_gradient(tf.reduce_max(t, axis=-1, keepdims=True))
        top_neg = tf.stop_gradient(tf.reduce_max(t_neg, axis=-1, keepdims=True))
        s, s_neg = t - top, t_neg - top_neg
        log_total = tf.math.log(tf.reduce_sum(tf.exp(s), axis=-1, keepdims=True))
        log_total_neg = tf.math.log(tf.reduce_sum(tf.exp(s_neg), axis=-1, keepdims=True))
        h = (top + log_total) - (top_neg + log_total_neg)
        log_factor = tf.reduce_logsumexp(s + s_neg - log_w + tf.math.log(a), axis=-1,
                                         keepdims=True)
        return h, log_dh + log_factor - log_total - log_total_neg


class DeepDenseSigmoidalTransform(DeepSigmoidalTransform):
    """Deep dense sigmoidal flow (DDSF): widths `1 -> d -> ... -> d -> 1`, dense
    positive (softmax-normalised) mixing between the hidden units; see
    `DeepSigmoidalTransform` for the maths and the layout. With `layers=1` it
    is `DeepSigmoidalTransform` with one layer.

    Args:
      units: d.
      layers: number of dense layers (default 2).
      linear_slope: slope of the added linear term, >= 0.
    """

    dense = True

    def __init__(self, units: int, layers: int = 2, linear_slope: float = LINEAR_SLOPE,
                 name: str | None = None):
        super().__init__(units, layers, linear_slope, name=name)
