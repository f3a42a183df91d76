"""Hypernetwork: psi_i -> weights and biases of dimension i's monotone network."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras

__all__ = ["MonotoneHypernetwork"]


class MonotoneHypernetwork(tf_keras.layers.Layer):
    """Emits the per-dimension pseudo-parameters of `monotone_network` from `psi`.

    T-NAF's amortisation: instead of a conditioner output per weight, small
    hypernetworks shared by all dimensions map each `psi_i` to that
    dimension's weights and biases. Here one two-layer MLP
    (`psi -> tanh(Dense(hypernetwork_units)) -> Dense(H)`) per group
    (`w1`, `b1`, `b2`, `w3`) and one `Dense(2)` for the scalars (`b3`, `c`);
    the hidden-to-hidden log-weights `log_mixing` (H x H) are shared.

    At initialisation `psi = 0` (the transformer's head is zero-initialised),
    so every dimension starts from the same map, about `0.6 x` plus a bounded
    tanh term with spread-out centres.

    Args:
      hidden_units: H, the width of the monotone network.
      hypernetwork_units: hidden width of each hypernetwork MLP.
      psi_units: size of `psi`.
    """

    def __init__(self, hidden_units: int = 128, hypernetwork_units: int = 208,
                 psi_units: int = 128, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("hidden_units", hidden_units),
                            ("hypernetwork_units", hypernetwork_units),
                            ("psi_units", psi_units)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {value!r}.")
        self.hidden_units = hidden_units
        h, dt = hidden_units, self.dtype
        normal = tf_keras.initializers.RandomNormal
        # Bias initialisers of each group's output: the map every dimension starts from.
        groups = {"w1": normal(0.0, 0.5, seed=1), "b1": normal(0.0, 1.5, seed=2),
                  "b2": normal(0.0, 0.5, seed=3),
                  "w3": tf_keras.initializers.Constant(-math.log(h))}
        self.groups = {}
        for name, bias_initializer in groups.items():
            hidden = tf_keras.layers.Dense(hypernetwork_units, activation="tanh",
                                           name=f"{name}_hidden", dtype=dt)
            out = tf_keras.layers.Dense(h, bias_initializer=bias_initializer,
                                        name=f"{name}_output", dtype=dt)
            hidden.build((None, psi_units))
            out.build((None, hypernetwork_units))
            self.groups[name] = (hidden, out)
        # b3 = 0 and softplus(c) = 0.5.
        self.scalars = tf_keras.layers.Dense(
            2, name="scalars", dtype=dt,
            bias_initializer=tf_keras.initializers.Constant([0.0, float(np.log(np.expm1(0.5)))]))
        self.scalars.build((None, psi_units))
        self.log_mixing = self.add_weight(
            "log_mixing", shape=[h, h], dtype=dt,
            initializer=normal(-math.log(h), 0.1, seed=4))
        self.built = True

    @property
    def num_params(self) -> int:
        return 4 * self.hidden_units + 2

    def call(self, psi: tf.Tensor) -> tf.Tensor:
        """`psi` `[..., psi_units]` -> pseudo-parameters `[..., 4 H + 2]`."""
        parts = [out(hidden(psi)) for hidden, out in self.groups.values()]
        return tf.concat(parts + [self.scalars(psi)], axis=-1)
