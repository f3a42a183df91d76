"""T-NAF's conditioner: a causal transformer and a hypernetwork, with cached decoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfp_tnaf import checks
from tfp_tnaf.nn.conditioner import Conditioner
from tfp_tnaf.nn.hypernetwork import LowRankHypernetwork, MonotoneHypernetwork
from tfp_tnaf.nn.transformer import AutoregressiveTransformer
from tfp_tnaf.transforms import MonotoneTransform

__all__ = ["TransformerConditioner"]


class TransformerConditioner(Conditioner):
    """`y` -> `psi_i(y_<i)` by `AutoregressiveTransformer` -> pseudo-parameters by
    a hypernetwork, in the layout of `transform`.

    The transformer sees the dimensions in their autoregressive order (one
    token each); its output is put back in the dimensions' order. `decoder`
    with `cached=True` keeps the transformer's keys and values, so sampling
    costs D single-token steps; `cached=False` reruns the parallel pass at
    every step (the reference).

    Args:
      event_size: D.
      input_order: degrees `1..D` of the dimensions.
      transform: the transform whose pseudo-parameters are emitted.
      psi_units: size of `psi_i`.
      hypernetwork: `"mlp"` (`MonotoneHypernetwork`, the paper's: two-layer
        MLPs shared by all positions) or `"low-rank"` (`LowRankHypernetwork`:
        a base per position plus a linear modulation by `psi`).
      hypernetwork_units: hidden width of the `"mlp"` hypernetwork's MLPs.
      conditional_event_size: size of a context vector, or None.
      dtype: float dtype.
      **transformer_sizes: `num_layers`, `num_heads`, `embedding_units`,
        `mlp_units`, `head_units`, `dropout`, `token_activation`,
        `mlp_activation` of `AutoregressiveTransformer`.
    """

    def __init__(self, event_size: int, input_order: np.ndarray, transform: MonotoneTransform,
                 psi_units: int = 128, hypernetwork: str = "mlp",
                 hypernetwork_units: int = 208,
                 conditional_event_size: int | None = None, dtype: Any = tf.float32,
                 name: str | None = None, **transformer_sizes: Any):
        super().__init__(event_size, input_order, transform.num_params, conditional_event_size,
                         dtype, name=name)
        psi_units = checks.positive_int(psi_units, "psi_units")
        self.transformer = AutoregressiveTransformer(
            self.event_size, output_units=psi_units,
            conditional_event_size=self.conditional_event_size, dtype=self.dtype,
            **transformer_sizes)
        hypernetwork = checks.one_of(hypernetwork, ("mlp", "low-rank"), "hypernetwork")
        hypernetwork_units = checks.positive_int(hypernetwork_units, "hypernetwork_units")
        if hypernetwork == "mlp":
            self.hypernetwork = MonotoneHypernetwork(transform.layout, hypernetwork_units,
                                                     psi_units, dtype=self.dtype)
        else:
            self.hypernetwork = LowRankHypernetwork(transform.layout, self.event_size,
                                                    psi_units, dtype=self.dtype)

    def _params(self, y, conditional_input):
        psi = self.transformer(self.to_sequence(y), conditional_input)
        return self.from_sequence(self.hypernetwork(psi), axis=-2)

    def decoder(self, batch_size, conditional_input=None, cached=True):
        if not cached:
            return super().decoder(batch_size, conditional_input, cached)
        sequence = tf.constant(self.sequence, tf.int32)

        def step(i, y, cache):
            position = tf.gather(tf.constant(self.positions, tf.int32), i)
            previous = tf.gather(y, sequence[tf.maximum(position - 1, 0)], axis=-1)
            psi, cache = self.transformer.decode_step(position, previous, cache,
                                                      conditional_input)
            return self.hypernetwork(psi, position), cache

        return step, self.transformer.initial_cache(batch_size)
