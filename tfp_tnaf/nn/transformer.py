"""Causal transformer conditioner, one token per dimension, with cached decoding."""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras

from tfp_tnaf import checks, fused

__all__ = ["AutoregressiveTransformer"]


class AutoregressiveTransformer(tf_keras.layers.Layer):
    """Maps `y` in R^D to one pseudo-parameter vector `psi_i` per position, `psi_i(y_<i)`.

    Token `i` is `tanh(Linear(y_i))` (`token_activation="tanh"`, the paper's)
    or `Linear(y_i)` (`"linear"`, which does not saturate on heavy tails); the
    sequence is shifted right by one behind a learnable start token (plus a
    linear projection of the context `c`, for conditional densities), so
    position `i` sees only `y_<i`; a learnable position embedding is added.
    Then `num_layers` pre-norm blocks

      t = t + MHA(LayerNorm(t))  (causal),   t = t + MLP(LayerNorm(t))  (GELU),

    a final LayerNorm, and a head `Dense -> tanh -> Dense` whose last layer is
    zero-initialised. Positions are in autoregressive order: reorder `y`
    before calling.

    `call` is the parallel pass (training, density evaluation). `decode_step`
    processes one new position with the keys and values of the earlier ones
    kept in a cache, so sampling costs D single-token steps.

    Args:
      event_size: D, the sequence length.
      output_units: size of `psi_i`.
      num_layers, num_heads, embedding_units, mlp_units, head_units: sizes.
      dropout: dropout rate on the attention and MLP outputs, applied when
        the layer runs in training mode (`training=True`, as Keras `fit`
        calls `FlowModel`).
      token_activation: `"tanh"` or `"linear"`, the token embedding's.
      mlp_activation: `"gelu"` (the paper's), `"tanh"` or `"relu"`: the
        activation of each block's MLP. GELU runs with the layer's bias as
        one fused kernel each way, as do the layer normalisations
        (`tfp_tnaf.fused`: elementwise chains, not matmuls, are most of a
        small transformer's time on CPU).
      conditional_event_size: size of the context vector, or None.
      cache_segment: positions per segment of the decoding cache (default
        `max(16, ceil(D / 8))`: at most 8 segments, which bounds the decoding
        step's graph; see `initial_cache`).
    """

    def __init__(self, event_size: int, output_units: int = 128, num_layers: int = 4,
                 num_heads: int = 4, embedding_units: int = 16, mlp_units: int = 64,
                 head_units: int = 256, dropout: float = 0.0, token_activation: str = "tanh",
                 mlp_activation: str = "gelu", conditional_event_size: int | None = None,
                 cache_segment: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("event_size", event_size), ("output_units", output_units),
                            ("num_layers", num_layers), ("num_heads", num_heads),
                            ("embedding_units", embedding_units), ("mlp_units", mlp_units),
                            ("head_units", head_units)):
            checks.positive_int(value, name)
        if embedding_units % num_heads:
            raise ValueError(f"`embedding_units` ({embedding_units}) must be a multiple of "
                             f"`num_heads` ({num_heads}).")
        dropout = checks.fraction(dropout, "dropout")
        token_activation = checks.one_of(token_activation, ("tanh", "linear"),
                                         "token_activation")
        mlp_activation = checks.one_of(mlp_activation, ("gelu", "tanh", "relu"),
                                       "mlp_activation")
        self.event_size = event_size
        segment = (max(16, math.ceil(event_size / 8)) if cache_segment is None
                   else checks.positive_int(cache_segment, "cache_segment"))
        # (first position, length) of each segment of the decoding cache.
        self.cache_segments = tuple((start, min(segment, event_size - start))
                                    for start in range(0, event_size, segment))
        self.num_heads = num_heads
        self.embedding_units = embedding_units
        self.conditional_event_size = conditional_event_size
        e, dt = embedding_units, self.dtype

        def dense(units, name, **kw):
            return tf_keras.layers.Dense(units, name=name, dtype=dt, **kw)

        def norm(name):
            return tf_keras.layers.LayerNormalization(epsilon=1e-5, name=name, dtype=dt)

        self.token = dense(e, "token", activation=token_activation)
        self.context = dense(e, "context", use_bias=False) if conditional_event_size else None
        self.blocks = []
        for i in range(num_layers):
            self.blocks.append(dict(
                norm_attention=norm(f"block{i}_norm_attention"),
                query=dense(e, f"block{i}_query"), key=dense(e, f"block{i}_key"),
                value=dense(e, f"block{i}_value"), output=dense(e, f"block{i}_output"),
                norm_mlp=norm(f"block{i}_norm_mlp"),
                mlp_in=dense(mlp_units, f"block{i}_mlp_in", activation=mlp_activation),
                mlp_out=dense(e, f"block{i}_mlp_out")))
        self.dropout = tf_keras.layers.Dropout(dropout, dtype=dt) if dropout else None
        self.final_norm = norm("final_norm")
        self.head_hidden = dense(head_units, "head_hidden", activation="tanh")
        self.head_output = dense(output_units, "head_output", kernel_initializer="zeros")
        self.start = self.add_weight("start_token", shape=[e], dtype=dt,
                                     initializer=tf_keras.initializers.RandomNormal(stddev=0.02))
        self.position = self.add_weight(
            "position_embedding", shape=[event_size, e], dtype=dt,
            initializer=tf_keras.initializers.RandomNormal(stddev=0.02))
        self._build_sublayers()

    def _build_sublayers(self):
        e = self.embedding_units
        self.token.build((None, 1))
        if self.context is not None:
            self.context.build((None, self.conditional_event_size))
        # Sequences are always [batch, positions, features] (a single position
        # when decoding): LayerNormalization fixes the rank it is built for.
        for block in self.blocks:
            for name in ("norm_attention", "query", "key", "value", "output", "norm_mlp",
                         "mlp_in"):
                block[name].build((None, None, e))
            block["mlp_out"].build((None, None, block["mlp_in"].units))
        self.final_norm.build((None, None, e))
        self.head_hidden.build((None, None, e))
        self.head_output.build((None, None, self.head_hidden.units))
        self.built = True

    def _start_token(self, conditional_input, batch_shape):
        start = tf.broadcast_to(self.start, tf.concat([batch_shape, [self.embedding_units]], 0))
        if self.context is not None:
            start = start + self.context(conditional_input)
        return start

    def _drop(self, t):
        return self.dropout(t) if self.dropout is not None else t

    def _split_heads(self, t):
        # [..., L, E] -> [..., heads, L, E / heads]
        shape = tf.concat([tf.shape(t)[:-1], [self.num_heads, -1]], 0)
        return tf.experimental.numpy.swapaxes(tf.reshape(t, shape), -2, -3)

    def _merge_heads(self, t):
        t = tf.experimental.numpy.swapaxes(t, -2, -3)
        return tf.reshape(t, tf.concat([tf.shape(t)[:-2], [self.embedding_units]], 0))

    def _mask_bias(self, mask):
        """0 where `mask` allows attending, -1e9 elsewhere: added to the scores,
        it zeroes the masked weights of the softmax (cheaper than a select)."""
        return tf.where(mask, tf.constant(0.0, self.dtype), tf.constant(-1e9, self.dtype))

    @staticmethod
    def _scores(query, keys, bias):
        """Attention scores of queries already scaled (`_projections`); `bias`
        from `_mask_bias`."""
        return tf.matmul(query, keys, transpose_b=True) + bias

    def _attend(self, query, keys, values, bias):
        """Scaled dot-product attention; `bias` from `_mask_bias`."""
        return tf.matmul(tf.nn.softmax(self._scores(query, keys, bias), axis=-1), values)

    def _projections(self, block, a):
        """`block`'s query, key and value layers applied to `a` (`[..., L, E]`) as
        one `[E, 3E]` matmul, their kernels side by side (one small matmul and
        one gradient for three). The query comes scaled by the attention's
        `1 / sqrt(E / heads)`, folded into its kernel and bias: an `[E, E]`
        product rather than one per score."""
        scale = 1.0 / math.sqrt(self.embedding_units // self.num_heads)
        layers = [block[name] for name in ("query", "key", "value")]
        kernel = tf.concat([layers[0].kernel * scale] + [layer.kernel for layer in layers[1:]],
                           axis=-1)
        bias = tf.concat([layers[0].bias * scale] + [layer.bias for layer in layers[1:]],
                         axis=-1)
        return tf.split(self._product(a, kernel, bias), len(layers), axis=-1)

    @staticmethod
    def _product(a, kernel, bias=None):
        """`a @ kernel (+ bias)` for `a` of shape `[..., n]`, as one 2-D matmul of
        its rows (a Dense layer's product without its call)."""
        flat = tf.matmul(tf.reshape(a, [-1, tf.shape(a)[-1]]), kernel)
        if bias is not None:
            flat += bias
        return tf.reshape(flat, tf.concat([tf.shape(a)[:-1], tf.shape(kernel)[-1:]], 0))

    @staticmethod
    def _norm(layer, t):
        """`layer`'s LayerNormalization over the last axis (the same function as
        calling it), as one fused kernel each way (`fused.layer_norm`)."""
        return fused.layer_norm(t, layer.gamma, layer.beta, layer.epsilon)

    def _mlp(self, block, t):
        a = self._norm(block["norm_mlp"], t)
        hidden = block["mlp_in"]
        if hidden.activation is tf_keras.activations.gelu:
            # The layer's product, then its bias and GELU as one fused kernel.
            h = fused.gelu(self._product(a, hidden.kernel), hidden.bias)
        else:
            h = hidden(a)
        return t + self._drop(block["mlp_out"](h))

    def _head(self, t):
        return self.head_output(self.head_hidden(self._norm(self.final_norm, t)))

    def call(self, y: tf.Tensor, conditional_input: tf.Tensor | None = None) -> tf.Tensor:
        """Parallel pass: `y` of shape `[B, D]` -> `psi` of shape `[B, D, output_units]`."""
        tokens = self.token(y[..., :-1, tf.newaxis])  # the last value is no one's input
        start = self._start_token(conditional_input, tf.shape(y)[:-1])[..., tf.newaxis, :]
        t = tf.concat([start, tokens], axis=-2) + self.position
        causal = self._mask_bias(
            tf.linalg.band_part(tf.ones([self.event_size] * 2, tf.bool), -1, 0))
        for block in self.blocks:
            query, keys, values = self._projections(block, self._norm(block["norm_attention"], t))
            heads = self._attend(self._split_heads(query), self._split_heads(keys),
                                 self._split_heads(values), causal)
            t = t + self._drop(block["output"](self._merge_heads(heads)))
            t = self._mlp(block, t)
        return self._head(t)

    def initial_cache(self, batch_size: tf.Tensor) -> list:
        """Empty key/value caches: per block a `(keys, values)` pair, each a list
        of `[B, heads, L_s, E/heads]` segments of the D positions
        (`cache_segments`).

        Segments keep a decoding step's memory traffic near the positions seen:
        a step writes into one segment (a copy of `L_s` positions, not of all
        D) and attends only over the segments it has reached. At 10,000 rows
        the cache's copies and reads, not arithmetic, are the decoder's cost.
        """
        def zeros(length):
            return tf.zeros(tf.stack([batch_size, self.num_heads, length,
                                      self.embedding_units // self.num_heads]), self.dtype)

        return [tuple([zeros(length) for _, length in self.cache_segments] for _ in range(2))
                for _ in self.blocks]

    def _cache_indices(self, batch_size, offset):
        """`[B, heads, 3]` indices `(b, head, offset)`: where one step's keys go
        in a `[B, heads, L_s, E/heads]` segment of the cache."""
        b, h = tf.meshgrid(tf.range(batch_size), tf.range(self.num_heads), indexing="ij")
        return tf.stack([b, h, tf.fill(tf.shape(b), offset)], axis=-1)

    def _store(self, segments, position, where, t):
        """Writes one step's keys or values (`t`, `[B, 1, E]`) at `position`: a
        scatter at `where` (`_cache_indices`) into the segment that holds it;
        the others pass unchanged."""
        new = self._split_heads(t)[..., 0, :]  # [B, heads, E / heads]
        return [tf.cond((position >= start) & (position < start + length),
                        lambda segment=segment: tf.tensor_scatter_nd_update(segment, where, new),
                        lambda segment=segment: segment)
                for (start, length), segment in zip(self.cache_segments, segments, strict=True)]

    def _attend_cached(self, query, keys, values, position, biases):
        """`_attend` of one position over the cached segments (`biases`, one
        `_mask_bias` per segment): a segment wholly after `position` is
        skipped (its weights are exactly 0)."""
        reached = [start <= position for start, _ in self.cache_segments]
        scores = []
        for (_, length), k, bias, live in zip(self.cache_segments, keys, biases, reached,
                                              strict=True):
            shape = tf.concat([tf.shape(query)[:-1], [length]], 0)
            scores.append(tf.cond(
                live, lambda k=k, bias=bias: self._scores(query, k, bias),
                lambda shape=shape: tf.fill(shape, tf.constant(-1e9, self.dtype))))
        weights = tf.split(tf.nn.softmax(tf.concat(scores, -1), axis=-1),
                           [length for _, length in self.cache_segments], axis=-1)
        return tf.add_n([tf.cond(live, lambda w=w, v=v: tf.matmul(w, v),
                                 lambda: tf.zeros_like(query))
                         for w, v, live in zip(weights, values, reached, strict=True)])

    def decode_step(self, position: tf.Tensor, previous: tf.Tensor, cache: list,
                    conditional_input: tf.Tensor | None = None):
        """One new position with cached keys and values.

        Args:
          position: scalar int, the position `k` to compute.
          previous: `[B]`, the value `y_{k-1}` (ignored at `k = 0`).
          cache: from `initial_cache` or the previous step.
          conditional_input: `[B, C]` context, if conditional.

        Returns:
          `(psi_k of shape [B, output_units], updated cache)`.
        """
        token = self.token(previous[..., tf.newaxis])
        start = self._start_token(conditional_input, tf.shape(previous))
        t = tf.where(tf.equal(position, 0), start, token) + tf.gather(self.position, position)
        t = t[..., tf.newaxis, :]  # [B, 1, E]
        # Where this step writes, and what it sees: the same in every block.
        # (Segments are all as long as the first but the last.)
        where = self._cache_indices(tf.shape(previous)[0],
                                    position % self.cache_segments[0][1])
        biases = [self._mask_bias(tf.range(first, first + length) <= position)
                  for first, length in self.cache_segments]
        new_cache = []
        for block, (keys, values) in zip(self.blocks, cache, strict=True):
            query, key, value = self._projections(block, self._norm(block["norm_attention"], t))
            keys = self._store(keys, position, where, key)
            values = self._store(values, position, where, value)
            new_cache.append((keys, values))
            heads = self._attend_cached(self._split_heads(query), keys, values, position,
                                        biases)
            t = t + self._drop(block["output"](self._merge_heads(heads)))
            t = self._mlp(block, t)
        return self._head(t)[..., 0, :], new_cache
