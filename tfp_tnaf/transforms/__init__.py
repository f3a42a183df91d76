"""Scalar monotone transforms: increasing maps of R onto R set by pseudo-parameters.

`make_transform(name, units, layers, linear_slope)` builds one by name; any
`MonotoneTransform` instance plugs into the autoregressive flows and the
elementwise bijectors alike.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfp_tnaf import checks
from tfp_tnaf.transforms.base import LINEAR_SLOPE, MonotoneTransform, ParamGroup, initial_values
from tfp_tnaf.transforms.block_path import BlockPathTransform
from tfp_tnaf.transforms.monotone_network import MonotoneNetworkTransform
from tfp_tnaf.transforms.sigmoidal import DeepDenseSigmoidalTransform, DeepSigmoidalTransform

__all__ = ["LINEAR_SLOPE", "TRANSFORMS", "BlockPathTransform", "DeepDenseSigmoidalTransform",
           "DeepSigmoidalTransform", "MonotoneNetworkTransform", "MonotoneTransform",
           "ParamGroup", "initial_values", "make_transform"]

# name -> (class, default layers; None: the transform has no `layers`).
TRANSFORMS = {
    "dsf": (DeepSigmoidalTransform, 1),
    "ddsf": (DeepDenseSigmoidalTransform, 2),
    "network": (MonotoneNetworkTransform, None),
}


def make_transform(transform: str | MonotoneTransform, transform_units: int,
                   transform_layers: int | None = None, linear_slope: float = LINEAR_SLOPE,
                   dtype: Any = tf.float32) -> MonotoneTransform:
    """The transform `transform` of an autoregressive flow, by name or as given.

    Args:
      transform: `"dsf"`, `"ddsf"`, `"network"` (see `TRANSFORMS`), or a
        `MonotoneTransform`, returned as it is (the sizes are then its own).
      transform_units: its hidden width (sigmoids per layer; the network's H).
      transform_layers: its layers (DSF and DDSF; default 1 and 2). The
        network has two hidden layers and takes none.
      linear_slope: slope of the positive linear term added to its output.
      dtype: dtype of any variables it owns.

    Raises:
      ValueError: on an unknown name or a size that is not a positive integer.
    """
    if isinstance(transform, MonotoneTransform):
        return transform
    cls, default_layers = TRANSFORMS[checks.one_of(transform, tuple(TRANSFORMS), "transform")]
    units = checks.positive_int(transform_units, "transform_units")
    layers = checks.optional_positive_int(transform_layers, "transform_layers")
    if default_layers is None:
        if layers is not None:
            raise ValueError(f"Transform {transform!r} takes no `transform_layers`; got "
                             f"{layers!r}.")
        return cls(units, linear_slope=linear_slope, dtype=dtype)
    return cls(units, default_layers if layers is None else layers, linear_slope)
