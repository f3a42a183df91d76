"""Bijectors of tfp_tnaf."""

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.bijectors.monotone import DeepDenseSigmoidal, DeepSigmoidal, MonotoneElementwise
from tfp_tnaf.bijectors.neural_autoregressive import NeuralAutoregressive

__all__ = [
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "NeuralAutoregressive",
]
