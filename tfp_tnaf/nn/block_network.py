"""B-NAF's block-triangular, weight-normalised network, and its conditioner for sampling."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from tfp_tnaf import checks
from tfp_tnaf.nn.conditioner import Conditioner
from tfp_tnaf.numerics import shared_matvec
from tfp_tnaf.transforms.block_path import BlockPathTransform, block_layer, output_map

__all__ = ["BlockAutoregressiveNetwork", "BlockConditioner", "LayerWeights"]

# Per layer: (below [D m, D n], diagonal [D, m, n], log_diagonal [D, m, n], bias [D, m]).
LayerWeights = list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]]


class BlockAutoregressiveNetwork(tf_keras.layers.Layer):
    """The network of B-NAF: `y` in R^D -> `x` in R^D, block lower-triangular.

    Layer `l` maps `D n` values to `D m` (n, m per position: `1 -> H -> ... ->
    H -> 1`) with a weight matrix of `D x D` blocks of size `m x n`: diagonal
    blocks `exp(V)` > 0, blocks below the diagonal `V` (free), blocks above it
    zero; each row is then weight-normalised, `W = exp(g) V' / ||V'||` (De Cao
    et al.). Hidden layers use tanh. Position `p`'s output depends on
    `y_1..y_p` only and increases with `y_p`, whose derivative chains through
    the diagonal blocks alone: computed in log space (`log W_pp = g + V_pp -
    log ||V'||`, log-matrix-vector products).

    The tanh network is bounded; the output is `x_p = alpha_p f_p(y_<=p) +
    beta_p y_p` (`output_map`), with `alpha = 1`, `beta = softplus(s) +
    linear_slope`, or with the gated residual of the paper's code,
    `alpha = sigmoid(s)`, `beta = sigmoid(-s) + linear_slope` (one `s` per
    position). `beta > 0` makes each `x_p` an increasing bijection of R onto R
    in `y_p`. Positions are in autoregressive order: reorder `y` before calling.

    Args:
      event_size: D.
      transform_units: H, hidden values per position.
      transform_layers: hidden layers (weight matrices: `transform_layers + 1`).
      gated_residual: the gated output of the paper's code (see above).
      linear_slope: floor `> 0` on `beta`.
      conditional_event_size: size of a context added to the first layer.
    """

    def __init__(self, event_size: int, transform_units: int = 16, transform_layers: int = 2,
                 gated_residual: bool = False, linear_slope: float = 0.1,
                 conditional_event_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.event_size = d = checks.positive_int(event_size, "event_size")
        units = checks.positive_int(transform_units, "transform_units")
        layers = checks.positive_int(transform_layers, "transform_layers")
        if not isinstance(gated_residual, bool):
            raise ValueError(f"`gated_residual` must be a bool; got {gated_residual!r}.")
        self.gated_residual = gated_residual
        self.linear_slope = checks.positive(linear_slope, "linear_slope")
        self.widths = [1] + [units] * layers + [1]
        self.kernels, self.log_scales, self.biases, self.masks = [], [], [], []
        for layer, (n, m) in enumerate(zip(self.widths[:-1], self.widths[1:], strict=True)):
            self._add_layer(layer, n, m)
        self.context = None
        if conditional_event_size is not None:
            self.context = self.add_weight(
                "context_kernel", shape=[d * self.widths[1], conditional_event_size],
                dtype=self.dtype, initializer="glorot_uniform")
        # alpha = 1 and beta = softplus(0) + slope, or the gate half open.
        self.residual = self.add_weight("residual", shape=[d], dtype=self.dtype,
                                        initializer="zeros")
        self.built = True

    def _add_layer(self, layer: int, n: int, m: int) -> None:
        d, dt = self.event_size, self.dtype
        diagonal = np.kron(np.eye(d), np.ones((m, n)))
        below = np.kron(np.tril(np.ones((d, d)), -1), np.ones((m, n)))
        self.masks.append((tf.constant(diagonal, dt), tf.constant(below, dt)))
        # Glorot-uniform over the row's unmasked fan-in, as the paper's code.
        fan_in = np.kron(np.arange(1, d + 1), np.ones(m))[:, np.newaxis] * n
        self.kernels.append(self.add_weight(
            f"kernel_{layer}", shape=[d * m, d * n], dtype=dt,
            initializer=lambda shape, dtype: tf.random.uniform(
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

    def layer_weights(self) -> LayerWeights:
        """Per layer: `(below [Dm, Dn], diagonal [D, m, n], log_diagonal, bias [D, m])`."""
        d = self.event_size
        weights = []
        for kernel, log_scale, bias, (on, below), n, m in zip(
                self.kernels, self.log_scales, self.biases, self.masks, self.widths[:-1],
                self.widths[1:], strict=True):
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
            h, log_dh = block_layer(h, log_dh, offset, diagonal, log_diagonal,
                                    last=layer == len(weights) - 1)
        return h[..., 0], None if log_dh is None else log_dh[..., 0], offsets

    def call(self, y: tf.Tensor, conditional_input: tf.Tensor | None = None):
        """`y` `[..., D]` -> `(x, log dx_p/dy_p)`, both `[..., D]`."""
        f, log_df, _ = self.parallel_pass(y, conditional_input)
        log_alpha, beta = self.residual_weights()
        return output_map(y, f, log_df, log_alpha, beta)


class BlockConditioner(Conditioner):
    """B-NAF's network seen as a `Conditioner` of `BlockPathTransform`.

    With the earlier positions given, each position's output is an increasing
    scalar map of its own input, whose pseudo-parameters are what the earlier
    positions feed each layer (the offsets), the position's diagonal blocks
    and its output weights. The parallel pass gives them for every position;
    `decoder` computes the normalised weights once for all steps.

    Args:
      network: the `BlockAutoregressiveNetwork`.
      input_order: degrees `1..D` of the dimensions.
      transform: the `BlockPathTransform` of the network's widths.
    """

    def __init__(self, network: BlockAutoregressiveNetwork, input_order: np.ndarray,
                 transform: BlockPathTransform, conditional_event_size: int | None = None,
                 name: str | None = None):
        super().__init__(network.event_size, input_order, transform.num_params,
                         conditional_event_size, network.dtype, name=name)
        self.network = network

    def _path_params(self, y, conditional_input, weights, residual, position=None):
        """`y` `[N, D]` -> `[N, D, P]`, positions in sequence order (`[N, P]` at `position`)."""
        _, _, offsets = self.network.parallel_pass(self.to_sequence(y), conditional_input,
                                                   weights, log_det=False)

        def at(t):  # [..., D, k] -> [..., k] at `position`
            return t if position is None else tf.gather(t, position, axis=-2)

        def broadcast(t):  # a position's weights, the same for every sample
            t = at(t)
            return tf.broadcast_to(t, tf.concat([tf.shape(y)[:-1], tf.shape(t)], 0))

        parts = []
        for offset, (_, _, log_diagonal, _) in zip(offsets, weights, strict=True):
            parts += [at(offset), broadcast(tf.reshape(log_diagonal, [self.event_size, -1]))]
        parts += [broadcast(t[:, tf.newaxis]) for t in residual]  # log alpha, beta
        return tf.concat(parts, axis=-1)

    def _params(self, y, conditional_input):
        params = self._path_params(y, conditional_input, self.network.layer_weights(),
                                   self.network.residual_weights())
        return self.from_sequence(params, axis=-2)

    def decoder(self, batch_size, conditional_input=None, cached=True):
        # The normalised weights do not change during sampling: compute them once.
        weights = self.network.layer_weights()
        residual = self.network.residual_weights()
        positions = tf.constant(self.positions, tf.int32)

        def step(i, y, state):
            position = tf.gather(positions, i)
            return self._path_params(y, conditional_input, weights, residual, position), state

        return step, ()
