"""tfp_tnaf: neural autoregressive flows (NAF, B-NAF, T-NAF) as TensorFlow Probability bijectors."""

from tfp_tnaf.bijectors import (
    DeepDenseSigmoidal,
    DeepSigmoidal,
    MonotoneAutoregressive,
    MonotoneElementwise,
    NeuralAutoregressive,
)
from tfp_tnaf.roots import RootResult, RootSolver, root_diagnostics

__version__ = "0.1.0"

__all__ = [
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneAutoregressive",
    "MonotoneElementwise",
    "NeuralAutoregressive",
    "RootResult",
    "RootSolver",
    "root_diagnostics",
]
