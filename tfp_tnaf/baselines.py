"""TFP's own flows as baselines: MAF and RealNVP, built complete at construction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import checks
from tfp_tnaf.nn.made import build_made

tfb = tfp.bijectors

__all__ = ["masked_autoregressive_flow", "real_nvp"]


def masked_autoregressive_flow(event_size: int, hidden_units: Sequence[int] = (64, 64),
                               conditional_event_size: int | None = None,
                               dtype: Any = tf.float32,
                               name: str = "masked_autoregressive_flow") -> tfb.Bijector:
    """One layer of TFP's MAF: a MADE-conditioned affine map, its variables made now."""
    conditional = checks.optional_positive_int(conditional_event_size,
                                               "conditional_event_size") is not None
    made = tfb.AutoregressiveNetwork(
        params=2, event_shape=[event_size], hidden_units=checks.positive_ints(
            hidden_units, "hidden_units"), conditional=conditional, dtype=dtype,
        conditional_event_shape=[conditional_event_size] if conditional else None)
    build_made(made, event_size, dtype)
    return tfb.MaskedAutoregressiveFlow(made, name=name)


def _affine_coupling_fn(event_size: int, num_masked: int, hidden_units: Sequence[int],
                        dtype) -> tuple[tf_keras.Model, Any]:
    """A tf_keras MLP `y[:num_masked] -> (shift, log_scale)` for `tfb.RealNVP`."""
    layers = [tf_keras.layers.Dense(h, activation="relu", dtype=dtype) for h in hidden_units]
    layers.append(tf_keras.layers.Dense(2 * (event_size - num_masked), dtype=dtype,
                                        kernel_initializer="zeros"))
    # An explicit Input of `dtype`: `build` would make a float32 one, and the
    # network would then compute a float64 flow's scales in float32.
    net = tf_keras.Sequential([tf_keras.Input(shape=(num_masked,), dtype=dtype)] + layers)

    def shift_and_log_scale(y, output_units, **kwargs):
        # Keras layers want a batch axis: flatten any batch shape (none included).
        out = net(tf.reshape(y, [-1, num_masked]))
        out = tf.reshape(out, tf.concat([tf.shape(y)[:-1], [2 * output_units]], 0))
        shift, log_scale = tf.split(out, 2, axis=-1)
        return shift, tf.tanh(log_scale)  # bounded scales keep early training stable

    return net, shift_and_log_scale


class _RealNVP(tfb.RealNVP):
    """`tfb.RealNVP` that owns its Keras network, so its variables are tracked."""

    def __init__(self, event_size, hidden_units, dtype, name):
        num_masked = event_size // 2
        self._net, fn = _affine_coupling_fn(event_size, num_masked, hidden_units, dtype)
        super().__init__(num_masked=num_masked, shift_and_log_scale_fn=fn, name=name)


def real_nvp(event_size: int, hidden_units: Sequence[int] = (64, 64), dtype: Any = tf.float32,
             name: str = "real_nvp") -> tfb.Bijector:
    """One affine coupling layer of TFP's RealNVP (the first half conditions the second).

    Raises:
      ValueError: if `event_size` < 2 (there is nothing to couple).
    """
    if checks.positive_int(event_size, "event_size") < 2:
        raise ValueError(f"RealNVP needs `event_size` >= 2; got {event_size}.")
    return _RealNVP(event_size, checks.positive_ints(hidden_units, "hidden_units"), dtype, name)
