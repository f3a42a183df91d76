"""Bijectors of tfp_tnaf: the autoregressive flows and the elementwise transforms."""

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.bijectors.block_neural_autoregressive import BlockNeuralAutoregressive
from tfp_tnaf.bijectors.elementwise import DeepDenseSigmoidal, DeepSigmoidal, MonotoneElementwise
from tfp_tnaf.bijectors.neural_autoregressive import NeuralAutoregressive
from tfp_tnaf.bijectors.transformer_autoregressive import TransformerAutoregressive

__all__ = [
    "BlockNeuralAutoregressive",
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "NeuralAutoregressive",
    "TransformerAutoregressive",
]
