"""tfp_tnaf: neural autoregressive flows (NAF, B-NAF, T-NAF) as TensorFlow Probability bijectors."""

from tfp_tnaf.bijectors import (
    BlockNeuralAutoregressive,
    DeepDenseSigmoidal,
    DeepSigmoidal,
    MonotoneAutoregressive,
    MonotoneElementwise,
    NeuralAutoregressive,
    TransformerAutoregressive,
)
from tfp_tnaf.distillation import distill
from tfp_tnaf.distribute import make_strategy
from tfp_tnaf.models import FLOWS, make_distribution, make_flow
from tfp_tnaf.nn import (
    AutoregressiveTransformer,
    BlockAutoregressiveNetwork,
    Conditioner,
    LowRankHypernetwork,
    MadeConditioner,
    MonotoneHypernetwork,
    TransformerConditioner,
)
from tfp_tnaf.roots import RootResult, RootSolver, root_diagnostics
from tfp_tnaf.serving import ExportedFlow, export_saved_model
from tfp_tnaf.training import (
    BestWeights,
    FlowModel,
    ResumableTraining,
    TimeBudget,
    load_weights,
    save_weights,
)
from tfp_tnaf.transforms import (
    BlockPathTransform,
    DeepDenseSigmoidalTransform,
    DeepSigmoidalTransform,
    MonotoneNetworkTransform,
    MonotoneTransform,
    ParamGroup,
)

__version__ = "0.1.0"

__all__ = [
    "FLOWS",
    "AutoregressiveTransformer",
    "BestWeights",
    "BlockAutoregressiveNetwork",
    "BlockNeuralAutoregressive",
    "BlockPathTransform",
    "Conditioner",
    "DeepDenseSigmoidal",
    "DeepDenseSigmoidalTransform",
    "DeepSigmoidal",
    "DeepSigmoidalTransform",
    "ExportedFlow",
    "FlowModel",
    "LowRankHypernetwork",
    "MadeConditioner",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "MonotoneHypernetwork",
    "MonotoneNetworkTransform",
    "MonotoneTransform",
    "NeuralAutoregressive",
    "ParamGroup",
    "ResumableTraining",
    "RootResult",
    "RootSolver",
    "TimeBudget",
    "TransformerAutoregressive",
    "TransformerConditioner",
    "distill",
    "export_saved_model",
    "load_weights",
    "make_distribution",
    "make_flow",
    "make_strategy",
    "root_diagnostics",
    "save_weights",
]
