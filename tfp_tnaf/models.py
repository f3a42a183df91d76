"""Ready-made flows by name: the package's three and TFP's MAF and RealNVP, for D-dim data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf.bijectors import (
    BlockNeuralAutoregressive,
    NeuralAutoregressive,
    TransformerAutoregressive,
)
from tfp_tnaf.bijectors.autoregressive import stack_with_reversals

tfb, tfd = tfp.bijectors, tfp.distributions

__all__ = ["DEFAULT_SIZES", "FLOW_NAMES", "make_distribution", "make_flow"]

# Per flow: the sizes `make_flow` uses when none is given.
DEFAULT_SIZES: dict[str, dict[str, Any]] = {
    "tnaf": dict(num_flows=1),
    "naf": dict(num_flows=2, hidden_units=(64, 64), transform_units=16),
    "bnaf": dict(num_flows=2, transform_units=16),
    "maf": dict(num_flows=5, hidden_units=(64, 64)),
    "realnvp": dict(num_flows=5, hidden_units=(64, 64)),
}
FLOW_NAMES = tuple(DEFAULT_SIZES)


def _affine_coupling_fn(event_size: int, num_masked: int, hidden_units: Sequence[int],
                        dtype) -> tuple[tf_keras.Model, Any]:
    """A tf_keras MLP `x[:num_masked] -> (shift, log_scale)` for `tfb.RealNVP`."""
    layers = [tf_keras.layers.Dense(h, activation="relu", dtype=dtype) for h in hidden_units]
    layers.append(tf_keras.layers.Dense(2 * (event_size - num_masked), dtype=dtype,
                                        kernel_initializer="zeros"))
    # An explicit Input of `dtype`: `build` would make a float32 one, and the
    # network would then compute a float64 flow's scales in float32.
    net = tf_keras.Sequential([tf_keras.Input(shape=(num_masked,), dtype=dtype)] + layers)

    def shift_and_log_scale(x, output_units, **kwargs):
        # Keras layers want a batch axis: flatten any batch shape (none included).
        out = net(tf.reshape(x, [-1, num_masked]))
        out = tf.reshape(out, tf.concat([tf.shape(x)[:-1], [2 * output_units]], 0))
        shift, log_scale = tf.split(out, 2, axis=-1)
        return shift, tf.tanh(log_scale)  # bounded scales keep early training stable

    return net, shift_and_log_scale


class _RealNVP(tfb.RealNVP):
    """`tfb.RealNVP` that owns its Keras network, so its variables are tracked."""

    def __init__(self, event_size, hidden_units, dtype, name):
        num_masked = event_size // 2
        self._net, fn = _affine_coupling_fn(event_size, num_masked, hidden_units, dtype)
        super().__init__(num_masked=num_masked, shift_and_log_scale_fn=fn, name=name)


def make_flow(name: str, event_size: int, num_flows: int | None = None,
              hidden_units: Sequence[int] | None = None, transform_units: int | None = None,
              conditional_event_size: int | None = None, dtype: Any = tf.float32,
              **kwargs) -> tfb.Bijector:
    """The flow `name` for `event_size`-dim data: `num_flows` layers, reversals between.

    Args:
      name: one of `FLOW_NAMES`: `"tnaf"`, `"naf"`, `"bnaf"`, `"maf"`, `"realnvp"`.
      event_size: D.
      num_flows: layers stacked with `tfb.Permute` reversals between them.
      hidden_units: MADE / coupling network hidden sizes (NAF, MAF, RealNVP).
      transform_units: DSF units (NAF), monotone network width (T-NAF), hidden
        values per dimension (B-NAF).
      conditional_event_size: context size (package flows and MAF).
      dtype: float dtype.
      **kwargs: more constructor arguments of the package's bijector.

    Raises:
      ValueError: on an unknown name (the message lists the valid ones), or an
        option the flow does not take.
    """
    if name not in DEFAULT_SIZES:
        raise ValueError(f"`flow` must be one of {', '.join(FLOW_NAMES)}; got {name!r}.")
    sizes = dict(DEFAULT_SIZES[name])
    for key, value in (("num_flows", num_flows), ("hidden_units", hidden_units),
                       ("transform_units", transform_units)):
        if value is not None:
            if key not in sizes and not (key == "transform_units" and name == "tnaf"):
                raise ValueError(f"Flow {name!r} takes no `{key}`.")
            sizes[key] = value
    num_flows = sizes.pop("num_flows")
    if name == "realnvp" and event_size < 2:
        raise ValueError(f"RealNVP needs `event_size` >= 2; got {event_size}.")
    if conditional_event_size is not None and name == "realnvp":
        raise ValueError("Flow 'realnvp' takes no `conditional_event_size`.")
    if "hidden_units" in sizes:
        sizes["hidden_units"] = list(sizes["hidden_units"])
    common = dict(conditional_event_size=conditional_event_size, dtype=dtype, **kwargs)
    if name == "tnaf":
        build = lambda k: TransformerAutoregressive(
            event_size, name=f"transformer_autoregressive_{k}", **sizes, **common)
    elif name == "naf":
        build = lambda k: NeuralAutoregressive(
            event_size, name=f"neural_autoregressive_{k}", **sizes, **common)
    elif name == "bnaf":
        build = lambda k: BlockNeuralAutoregressive(
            event_size, hidden_units=sizes["transform_units"],
            name=f"block_neural_autoregressive_{k}", **common)
    elif name == "maf":
        conditional = conditional_event_size is not None
        build = lambda k: tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(
            params=2, event_shape=[event_size], hidden_units=sizes["hidden_units"],
            conditional=conditional, dtype=dtype,
            conditional_event_shape=[conditional_event_size] if conditional else None),
            name=f"masked_autoregressive_flow_{k}")
    else:
        build = lambda k: _RealNVP(event_size, sizes["hidden_units"], dtype,
                                   name=f"real_nvp_{k}")
    flow = stack_with_reversals(build, event_size, num_flows)
    if name == "maf":
        _build_made(flow, event_size, conditional_event_size, dtype)
    return flow


def _build_made(flow: tfb.Chain, event_size: int, conditional_event_size, dtype) -> None:
    """TFP's MADE makes its variables at its first call: make them now.

    Its hidden `Activation` layers take Keras' `floatx` rather than the
    network's dtype, so a float64 MADE would compute its hidden units in
    float32: they are built with `floatx` set to `dtype` (a global Keras
    setting, restored at once: do not build flows from several threads).
    """
    kwargs = {}
    if conditional_event_size is not None:
        context = {"conditional_input": tf.zeros([1, conditional_event_size], dtype)}
        kwargs = {b.name: context for b in flow.bijectors
                  if isinstance(b, tfb.MaskedAutoregressiveFlow)}
    floatx = tf_keras.backend.floatx()
    tf_keras.backend.set_floatx(tf.as_dtype(dtype).name)
    try:
        flow.inverse(tf.zeros([1, event_size], dtype), **kwargs)
    finally:
        tf_keras.backend.set_floatx(floatx)


def make_distribution(flow: tfb.Bijector, event_size: int,
                      dtype: Any = tf.float32) -> tfd.TransformedDistribution:
    """`flow` over a standard Normal base of `event_size` dimensions (as MAF)."""
    base = tfd.Sample(tfd.Normal(tf.constant(0.0, dtype), tf.constant(1.0, dtype)),
                      [event_size])
    return tfd.TransformedDistribution(base, flow)
