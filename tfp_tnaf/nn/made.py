"""NAF's conditioner: TFP's MADE (`tfb.AutoregressiveNetwork`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import checks
from tfp_tnaf.nn.conditioner import Conditioner

__all__ = ["MadeConditioner", "build_made"]


def build_made(made: tfp.bijectors.AutoregressiveNetwork, event_size: int, dtype: Any) -> None:
    """Makes the variables of TFP's MADE now, in `dtype` throughout.

    TFP's MADE creates its variables at its first call, and its hidden
    `Activation` layers without a dtype: they take Keras' `floatx` and would
    round a float64 network's activations to float32. So it is built with
    `floatx` set to `dtype` (a global Keras setting, restored at once: do not
    build flows from several threads).
    """
    floatx = tf_keras.backend.floatx()
    tf_keras.backend.set_floatx(tf.as_dtype(dtype).name)
    try:
        made.build((None, event_size))
    finally:
        tf_keras.backend.set_floatx(floatx)


class MadeConditioner(Conditioner):
    """A MADE network as a `Conditioner`: `[N, D] -> [N, D, P]` in one masked pass.

    Args:
      event_size: D.
      input_order: degrees `1..D` of the dimensions.
      num_params: P.
      hidden_units: sizes of MADE's hidden layers.
      activation: their activation.
      kernel_initializer: initializer of MADE's kernels.
      conditional_event_size: size of a context vector, or None.
      dtype: float dtype.
    """

    def __init__(self, event_size: int, input_order: np.ndarray, num_params: int,
                 hidden_units: Sequence[int] = (64, 64), activation: Any = "relu",
                 kernel_initializer: Any = "glorot_uniform",
                 conditional_event_size: int | None = None, dtype: Any = tf.float32,
                 name: str | None = None):
        super().__init__(event_size, input_order, num_params, conditional_event_size, dtype,
                         name=name)
        conditional = self.conditional_event_size is not None
        self.made = tfp.bijectors.AutoregressiveNetwork(
            params=self.num_params,
            event_shape=[self.event_size],
            conditional=conditional,
            conditional_event_shape=(self.conditional_event_size,) if conditional else None,
            hidden_units=checks.positive_ints(hidden_units, "hidden_units"),
            input_order=self.input_order,
            activation=activation,
            kernel_initializer=kernel_initializer,
            dtype=self.dtype)
        build_made(self.made, self.event_size, self.dtype)

    def _params(self, y, conditional_input):
        if conditional_input is None:
            return self.made(y)
        return self.made(y, conditional_input=conditional_input)
