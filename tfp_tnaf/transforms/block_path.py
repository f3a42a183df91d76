"""B-NAF's per-position path: one position's output as a function of its own input."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf import checks
from tfp_tnaf.numerics import log_matvec_exp, log_sech2
from tfp_tnaf.transforms.base import MonotoneTransform, ParamGroup

__all__ = ["BlockPathTransform", "block_layer", "output_map"]


def block_layer(h: tf.Tensor, log_dh: tf.Tensor | None, offset: tf.Tensor,
                diagonal: tf.Tensor, log_diagonal: tf.Tensor,
                last: bool) -> tuple[tf.Tensor, tf.Tensor | None]:
    """One layer of B-NAF seen from each position's own input: `h [..., P, n] -> [..., P, m]`.

    `pre = diagonal @ h + offset`, then `tanh` unless `last`. `offset`
    `[..., P, m]` holds what the earlier positions, the bias and the context
    contribute; `diagonal` `[..., P, m, n]` (broadcasting with `h`) is each
    position's positive diagonal block and `log_diagonal` its logarithm.
    `log_dh`, the log-derivative of `h` with respect to the position's input,
    is carried by a log-space matrix-vector product, or skipped when None.
    """
    pre = tf.linalg.matvec(diagonal, h) + offset
    if log_dh is not None:
        log_dh = log_matvec_exp(log_diagonal, log_dh)
    if last:
        return pre, log_dh
    return tf.tanh(pre), None if log_dh is None else log_dh + log_sech2(pre)


def output_map(y: tf.Tensor, f: tf.Tensor, log_df: tf.Tensor, log_alpha: tf.Tensor,
               beta: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`x = alpha f + beta y` and its log-derivative `log(alpha f' + beta)`."""
    return (tf.exp(log_alpha) * f + beta * y,
            tfp.math.log_add_exp(log_alpha + log_df, tf.math.log(beta)))


class BlockPathTransform(MonotoneTransform):
    """Position p of a B-NAF network as an increasing map of its own input `y_p`.

    With the earlier positions fixed, each layer `l` of widths `n -> m`
    receives `diagonal_l h + offset_l` at position p, where `offset_l` (m)
    collects what the earlier positions, the bias and the context give it and
    `diagonal_l = exp(log_diagonal_l)` (m x n) is the positive diagonal block;
    hidden layers apply tanh. The output is `x = alpha f + beta y` with
    `alpha = exp(log_alpha)` and `beta > 0`: an increasing bijection of R onto
    R (see `BlockNeuralAutoregressive`). Layout, per layer: `offset{l}` (m),
    `log_diagonal{l}` (m n); then `log_alpha` and `beta`.

    Args:
      widths: the widths `[1, H, ..., H, 1]` of the network's layers.
    """

    def __init__(self, widths: Sequence[int], name: str | None = None):
        super().__init__(name=name)
        self.widths = tuple(checks.positive_int(w, "widths") for w in widths)
        layout = []
        for k, (n, m) in enumerate(pairwise(self.widths)):
            layout += [ParamGroup(f"offset{k}", m), ParamGroup(f"log_diagonal{k}", m * n)]
        self.layout = tuple(layout) + (ParamGroup("log_alpha", 1), ParamGroup("beta", 1))

    def _transform(self, y, groups):
        h = y[..., tf.newaxis, tf.newaxis]  # one position: [..., 1, 1]
        log_dh = tf.zeros_like(h)
        count = len(self.widths) - 1
        for k, (n, m) in enumerate(pairwise(self.widths)):
            log_diagonal = tf.reshape(groups[f"log_diagonal{k}"],
                                      tf.concat([tf.shape(y), [1, m, n]], 0))
            h, log_dh = block_layer(h, log_dh, groups[f"offset{k}"][..., tf.newaxis, :],
                                    tf.exp(log_diagonal), log_diagonal, last=k == count - 1)
        return output_map(y, h[..., 0, 0], log_dh[..., 0, 0], groups["log_alpha"][..., 0],
                          groups["beta"][..., 0])
