"""Bijectors of tfp_tnaf."""

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.bijectors.monotone import DeepDenseSigmoidal, DeepSigmoidal, MonotoneElementwise
from tfp_tnaf.bijectors.neural_autoregressive import NeuralAutoregressive
from tfp_tnaf.bijectors.transformer_autoregressive import (
    TransformerAutoregressive,
    stacked_transformer_autoregressive,
)

__all__ = [
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "NeuralAutoregressive",
    "TransformerAutoregressive",
    "stacked_transformer_autoregressive",
]
