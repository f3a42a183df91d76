"""Bijectors of tfp_tnaf."""

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.bijectors.block_neural_autoregressive import (
    BlockNeuralAutoregressive,
    stacked_block_neural_autoregressive,
)
from tfp_tnaf.bijectors.monotone import DeepDenseSigmoidal, DeepSigmoidal, MonotoneElementwise
from tfp_tnaf.bijectors.neural_autoregressive import NeuralAutoregressive
from tfp_tnaf.bijectors.transformer_autoregressive import (
    TransformerAutoregressive,
    stacked_transformer_autoregressive,
)

__all__ = [
    "BlockNeuralAutoregressive",
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "NeuralAutoregressive",
    "TransformerAutoregressive",
    "stacked_block_neural_autoregressive",
    "stacked_transformer_autoregressive",
]
