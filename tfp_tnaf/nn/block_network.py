"""Block-triangular monotone network of B-NAF, with its per-position scalar paths."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from tfp_tnaf.bijectors.monotone import (
    check_positive_int,
    log_add_exp,
    log_sech2,
    shared_matvec,
)

__all__ = ["BlockAutoregressiveNetwork"]


def _block(h, log_dh, offset, diagonal, log_diagonal, last):
    """One layer seen from each position's own input: `h [..., P, n] -> [..., P, m]`.

    `offset` holds what the earlier positions (and the bias, and the context)
    contribute; `diagonal` `[P, m, n]` is each position's positive diagonal
    block and `log_diagonal` its logarithm. `log_dh` (the log-derivative of
    `h` with respect to the position's input) is carried by a log-space
    matrix-vector product, or skipped when None.
    """
    pre = tf.einsum("...pn,pmn->...pm", h, diagonal) + offset
    if log_dh is not None:
        log_dh = tf.reduce_logsumexp(log_diagonal + log_dh[..., tf.newaxis, :], axis=-1)
    if last:
        return pre, log_dh
    return tf.tanh(pre), None if log_dh is None else log_dh + log_sech2(pre)


class BlockAutoregressiveNetwork(tf_keras.layers.Layer):
    """The network of B-NAF: `y` in R^D -> `z` in R^D, block lower-triangular.

    Layer `l` maps `D n` values to `D m` (n, m per position: `1 -> H -> ... ->
    H -> 1`) with a weight matrix of `D x D` blocks of size `m x n`: diagonal
    blocks `exp(V)` > 0, blocks below the diagonal `V` (free), blocks above it
    zero; each row is then weight-normalised, `W = exp(g) V' / ||V'||` (De Cao
    et al.). Hidden layers use tanh. Position `p`'s output depends on
    `y_1..y_p` only and increases with `y_p`, whose derivative chains through
    the diagonal blocks alone: computed in log space (`log W_pp = g + V_pp -
    log ||V'||`, log-matrix-vector products).

    The tanh network is bounded; the output is

      z_p = alpha_p f_p(y_<=p) + beta_p y_p,

    with `alpha = 1`, `beta = softplus(s) + linear_slope`, or with the gated
    residual of the paper's code, `alpha = sigmoid(s)`, `beta = sigmoid(-s) +
    linear_slope` (one `s` per position). `beta > 0` makes each `z_p` an
    increasing bijection of R onto R in `y_p`.

    Args:
      event_size: D.
      hidden_units: H, hidden values per position.
      num_layers: hidden layers (weight matrices: `num_layers + 1`).
      gated_residual: the gated output of the paper's code (see above).
      linear_slope: floor `>= 0` on `beta`.
      conditional_event_size: size of a context added to the first layer.
    """

    def __init__(self, event_size: int, hidden_units: int = 16, num_layers: int = 2,
                 gated_residual: bool = False, linear_slope: float = 0.1,
                 conditional_event_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        event_size = check_positive_int(event_size, "event_size")
        hidden_units = check_positive_int(hidden_units, "hidden_units")
        num_layers = check_positive_int(num_layers, "num_layers")
        if not isinstance(gated_residual, bool):
            raise ValueError(f"`gated_residual` must be a bool; got {gated_residual!r}.")
        self.event_size = d = event_size
        self.gated_residual = gated_residual
        self.linear_slope = float(linear_slope)
        self.sizes = [1] + [hidden_units] * num_layers + [1]
        dt = self.dtype
        self.kernels, self.log_scales, self.biases, self.masks = [], [], [], []
        for layer, (n, m) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            diagonal = np.kron(np.eye(d), np.ones((m, n)))
            below = np.kron(np.tril(np.ones((d, d)), -1), np.ones((m, n)))
            self.masks.append((tf.constant(diagonal, dt), tf.constant(below, dt)))
            # Glorot-uniform over the row's unmasked fan-in, as the paper's code.
            fan_in = np.kron(np.arange(1, d + 1), np.ones(m))[:, np.newaxis] * n
            self.kernels.append(self.add_weight(
                f"kernel_{layer}", shape=[d * m, d * n], dtype=dt,
                initializer=lambda shape, dtype, fan_in=fan_in, m=m: tf.random.uniform(
                    shape, -1.0, 1.0, dtype) * np.sqrt(6.0 / (fan_in + m))))
            # Row norms 1/sqrt(n): n positive diagonal entries of about equal
            # size then sum to about 1, so each layer starts with slope ~1 at 0
            # (norm-1 rows would multiply the slope by sqrt(n) a layer).
            self.log_scales.append(self.add_weight(
                f"log_scale_{layer}", shape=[d * m], dtype=dt,
                initializer=tf_keras.initializers.Constant(-0.5 * np.log(n))))
            bound = 1.0 / np.sqrt(d * m)
            self.biases.append(self.add_weight(
                f"bias_{layer}", shape=[d * m], dtype=dt,
                initializer=tf_keras.initializers.RandomUniform(-bound, bound)))
        self.context = None
        if conditional_event_size is not None:
            self.context = self.add_weight(
                "context_kernel", shape=[d * self.sizes[1], conditional_event_size], dtype=dt,
                initializer="glorot_uniform")
        # alpha = 1 and beta = softplus(0) + slope, or the gate half open.
        self.residual = self.add_weight("residual", shape=[d], dtype=dt, initializer="zeros")
        self.built = True

    def layer_weights(self) -> list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]]:
        """Per layer: `(below [Dm, Dn], diagonal [D, m, n], log_diagonal, bias [D, m])`."""
        d = self.event_size
        weights = []
        for kernel, log_scale, bias, (on, below), n, m in zip(
                self.kernels, self.log_scales, self.biases, self.masks, self.sizes[:-1],
                self.sizes[1:], strict=True):
            raw = tf.exp(kernel) * on + kernel * below
            log_norm = 0.5 * tf.math.log(tf.reduce_sum(tf.square(raw), axis=-1, keepdims=True))
            scale = log_scale[:, tf.newaxis] - log_norm
            weight = raw * tf.exp(scale)
            weights.append((weight * below,
                            self._diagonal_blocks(weight, n, m),
                            self._diagonal_blocks(kernel + scale, n, m),
                            tf.reshape(bias, [d, m])))
        return weights

    def _diagonal_blocks(self, matrix, n, m):
        """`[D m, D n] -> [D, m, n]`, the blocks on the diagonal."""
        blocks = tf.reshape(matrix, [self.event_size, m, self.event_size, n])
        return tf.transpose(tf.linalg.diag_part(tf.transpose(blocks, [1, 3, 0, 2])), [2, 0, 1])

    def residual_weights(self) -> tuple[tf.Tensor, tf.Tensor]:
        """`(log alpha, beta)`, one each per position."""
        s = self.residual
        if self.gated_residual:
            return tf.math.log_sigmoid(s), tf.sigmoid(-s) + self.linear_slope
        return tf.zeros_like(s), tf.math.softplus(s) + self.linear_slope

    def parallel_pass(self, y, conditional_input=None, weights=None, log_det: bool = True):
        """All positions at once: `(f, log df_p/dy_p, offsets)`; `y` is `[..., D]`.

        `offsets[l]` `[..., D, m]` is what layer `l` receives at each position
        from the earlier positions, the bias and the context.
        """
        weights = self.layer_weights() if weights is None else weights
        h = y[..., tf.newaxis]
        log_dh = tf.zeros_like(h) if log_det else None
        offsets = []
        for layer, (below, diagonal, log_diagonal, bias) in enumerate(weights):
            flat = tf.reshape(h, tf.concat([tf.shape(h)[:-2], [-1]], 0))
            # A reshape and a matmul: einsum's "..." gradients are ~100x slower here.
            earlier = shared_matvec(below, flat)
            if layer == 0 and self.context is not None:
                earlier += shared_matvec(self.context, conditional_input)
            offset = tf.reshape(earlier, tf.concat([tf.shape(earlier)[:-1], tf.shape(bias)],
                                                   0)) + bias
            offsets.append(offset)
            h, log_dh = _block(h, log_dh, offset, diagonal, log_diagonal,
                               last=layer == len(weights) - 1)
        return h[..., 0], None if log_dh is None else log_dh[..., 0], offsets

    def call(self, y: tf.Tensor, conditional_input: tf.Tensor | None = None):
        """`y` `[..., D]` -> `(z, log dz_p/dy_p)`, both `[..., D]`."""
        f, log_df, _ = self.parallel_pass(y, conditional_input)
        log_alpha, beta = self.residual_weights()
        return self.output_map(y, f, log_df, log_alpha, beta)

    @staticmethod
    def output_map(y, f, log_df, log_alpha, beta):
        """`z = alpha f + beta y` and its log-derivative."""
        return (tf.exp(log_alpha) * f + beta * y,
                log_add_exp(log_alpha + log_df, tf.math.log(beta)))

    @staticmethod
    def position_path(t, params):
        """Position p's output as a function of its own input `t` (the rest fixed).

        `params = (offsets, diagonals, log_diagonals, log_alpha, beta)`, each
        sliced at p (`[..., 1, m]`, `[1, m, n]`, `[1, m, n]`, scalars), as
        `position_params` gives them. Returns `(z_p, log dz_p/dt)`.
        """
        offsets, diagonals, log_diagonals, log_alpha, beta = params
        h = t[..., tf.newaxis, tf.newaxis]
        log_dh = tf.zeros_like(h)
        for layer, (offset, diagonal, log_diagonal) in enumerate(
                zip(offsets, diagonals, log_diagonals, strict=True)):
            h, log_dh = _block(h, log_dh, offset, diagonal, log_diagonal,
                               last=layer == len(offsets) - 1)
        return BlockAutoregressiveNetwork.output_map(t, h[..., 0, 0], log_dh[..., 0, 0],
                                                     log_alpha, beta)

    def position_params(self, position, y, conditional_input, weights, residual):
        """The `params` of `position_path` at `position`, given `y_<position` in `y`."""
        _, _, offsets = self.parallel_pass(y, conditional_input, weights, log_det=False)
        here = position[tf.newaxis]
        log_alpha, beta = residual
        return ([tf.gather(o, here, axis=-2) for o in offsets],
                [tf.gather(w[1], here) for w in weights],
                [tf.gather(w[2], here) for w in weights],
                tf.gather(log_alpha, position), tf.gather(beta, position))
