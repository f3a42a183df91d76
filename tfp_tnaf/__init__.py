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
from tfp_tnaf.distribute import make_strategy
from tfp_tnaf.models import make_distribution, make_flow
from tfp_tnaf.nn.block_network import BlockAutoregressiveNetwork
from tfp_tnaf.nn.hypernetwork import MonotoneHypernetwork
from tfp_tnaf.nn.transformer import AutoregressiveTransformer
from tfp_tnaf.roots import RootResult, RootSolver, root_diagnostics
from tfp_tnaf.serving import ExportedFlow, export_saved_model
from tfp_tnaf.training import BestWeights, FlowModel, load_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "AutoregressiveTransformer",
    "BestWeights",
    "BlockAutoregressiveNetwork",
    "BlockNeuralAutoregressive",
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "ExportedFlow",
    "FlowModel",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "MonotoneHypernetwork",
    "NeuralAutoregressive",
    "RootResult",
    "RootSolver",
    "TransformerAutoregressive",
    "export_saved_model",
    "load_weights",
    "make_distribution",
    "make_flow",
    "make_strategy",
    "root_diagnostics",
    "save_weights",
    "stacked_block_neural_autoregressive",
    "stacked_transformer_autoregressive",
]
