"""tfp_tnaf: neural autoregressive flows (NAF, B-NAF, T-NAF) as TensorFlow Probability bijectors."""

from tfp_tnaf.bijectors import (
    BlockNeuralAutoregressive,
    DeepDenseSigmoidal,
    DeepSigmoidal,
    MonotoneAutoregressive,
    MonotoneElementwise,
    NeuralAutoregressive,
    TransformerAutoregressive,
    stacked_block_neural_autoregressive,
    stacked_transformer_autoregressive,
)
from tfp_tnaf.nn.block_network import BlockAutoregressiveNetwork
from tfp_tnaf.nn.hypernetwork import MonotoneHypernetwork
from tfp_tnaf.nn.transformer import AutoregressiveTransformer
from tfp_tnaf.roots import RootResult, RootSolver, root_diagnostics

__version__ = "0.1.0"

__all__ = [
    "AutoregressiveTransformer",
    "BlockAutoregressiveNetwork",
    "BlockNeuralAutoregressive",
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "MonotoneHypernetwork",
    "NeuralAutoregressive",
    "RootResult",
    "RootSolver",
    "TransformerAutoregressive",
    "root_diagnostics",
    "stacked_block_neural_autoregressive",
    "stacked_transformer_autoregressive",
]
