"""Hypernetworks: psi_i -> one element's pseudo-parameters, in a transform's layout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfp_tnaf import checks
from tfp_tnaf.numerics import shared_matvec
from tfp_tnaf.transforms import ParamGroup, initial_values

__all__ = ["LowRankHypernetwork", "MonotoneHypernetwork"]


class MonotoneHypernetwork(tf_keras.layers.Layer):
    """Emits the pseudo-parameters of a `MonotoneTransform` from `psi`.

    T-NAF's amortisation: instead of a conditioner output per weight, small
    networks shared by all dimensions map each `psi_i` to that dimension's
    pseudo-parameters. Each group of the transform's `layout` with more than
    one value gets its own two-layer MLP
    (`psi -> tanh(Dense(units)) -> Dense(size)`); the one-value groups share
    one `Dense`. The output layers' biases start at the groups' initial values
    (`ParamGroup.initializer`), so where `psi = 0` (the transformer's head is
    zero-initialised) every dimension starts from the transform's initial map.

    Args:
      layout: the transform's `layout`.
      units: hidden width of each MLP.
      psi_units: size of `psi`.
    """

    def __init__(self, layout: Sequence[ParamGroup], units: int = 208, psi_units: int = 128,
                 **kwargs):
        super().__init__(**kwargs)
        units = checks.positive_int(units, "hypernetwork_units")
        psi_units = checks.positive_int(psi_units, "psi_units")
        self.layout = tuple(layout)
        self.num_params = sum(group.size for group in self.layout)
        self.heads = []
        for group in self.layout:
            if group.size == 1:
                continue
            hidden = tf_keras.layers.Dense(units, activation="tanh", dtype=self.dtype,
                                           name=f"{group.name}_hidden")
            out = tf_keras.layers.Dense(group.size, bias_initializer=group.initializer,
                                        dtype=self.dtype, name=f"{group.name}_output")
            hidden.build((None, psi_units))
            out.build((None, units))
            self.heads.append((hidden, out))
        scalars = [group for group in self.layout if group.size == 1]
        self.scalars = None
        if scalars:
            self.scalars = tf_keras.layers.Dense(
                len(scalars), name="scalars", dtype=self.dtype,
                bias_initializer=lambda shape, dtype=None: tf.concat(
                    [g.initializer([1], dtype=dtype) for g in scalars], 0))
            self.scalars.build((None, psi_units))
        # The heads' outputs come vectors first, then scalars: where to find
        # each value of the layout in that concatenation.
        starts = np.cumsum([0] + [g.size for g in self.layout if g.size > 1]
                           + [1 for g in scalars])
        order = [g for g in self.layout if g.size > 1] + scalars
        where = {g.name: range(starts[k], starts[k] + g.size) for k, g in enumerate(order)}
        self._gather = np.concatenate([list(where[g.name]) for g in self.layout])
        self._identity = bool(np.array_equal(self._gather, np.arange(self.num_params)))
        self.built = True

    def call(self, psi: tf.Tensor, position: tf.Tensor | None = None) -> tf.Tensor:
        """`psi` `[..., psi_units]` -> pseudo-parameters `[..., num_params]` (the
        same network at every `position`, which is ignored)."""
        del position
        parts = [out(hidden(psi)) for hidden, out in self.heads]
        if self.scalars is not None:
            parts.append(self.scalars(psi))
        params = tf.concat(parts, axis=-1)
        return params if self._identity else tf.gather(params, self._gather, axis=-1)


class LowRankHypernetwork(tf_keras.layers.Layer):
    """Emits each position's pseudo-parameters as a per-position base plus a
    low-rank modulation by `psi`:

      params_i = base_i + psi_i U,    base: [D, P],  U: [psi_units, P].

    The cheap alternative to `MonotoneHypernetwork`: one `psi_units x P`
    matmul per element instead of two-layer MLPs per group, and each
    dimension owns its base parameters (its marginal transform is learnt
    directly, as a MADE's output bias gives NAF). Every row of `base` starts
    at the transform's initial values (`ParamGroup.initializer`), so where
    `psi = 0` (the transformer's head is zero-initialised) every dimension
    starts from the same map; `U` starts random, so `psi` receives gradients
    from the first step.

    Args:
      layout: the transform's `layout`.
      event_size: D, the positions (in autoregressive order) with a base each.
      psi_units: size of `psi`, the rank of the modulation.
    """

    def __init__(self, layout: Sequence[ParamGroup], event_size: int, psi_units: int = 64,
                 **kwargs):
        super().__init__(**kwargs)
        self.event_size = checks.positive_int(event_size, "event_size")
        psi_units = checks.positive_int(psi_units, "psi_units")
        self.layout = tuple(layout)
        self.num_params = sum(group.size for group in self.layout)
        initial = lambda shape, dtype=None: tf.tile(  # noqa: E731
            initial_values(self.layout, dtype)[tf.newaxis], [self.event_size, 1])
        self.base = self.add_weight("base", shape=[self.event_size, self.num_params],
                                    dtype=self.dtype, initializer=initial)
        self.modulation = self.add_weight(
            "modulation", shape=[psi_units, self.num_params], dtype=self.dtype,
            initializer=tf_keras.initializers.GlorotUniform())
        self.built = True

    def call(self, psi: tf.Tensor, position: tf.Tensor | None = None) -> tf.Tensor:
        """`psi` `[..., D, psi_units]` (or `[..., psi_units]` at one `position`) ->
        pseudo-parameters `[..., D, num_params]` (or `[..., num_params]`)."""
        base = self.base if position is None else tf.gather(self.base, position)
        # One 2-D matmul: `tf.matmul` of `[..., D, psi_units]` by a matrix
        # broadcasts it into a batched matmul, several times slower.
        return base + shared_matvec(tf.transpose(self.modulation), psi)
