"""tfp_tnaf: neural autoregressive flows (NAF, B-NAF, T-NAF) as TensorFlow Probability bijectors."""

# The public names are imported on first use (PEP 562), so that importing
# `tfp_tnaf.cli` or `tfp_tnaf.logs` does not import TensorFlow: the command line
# quiets TensorFlow's start-up logs before TensorFlow is imported.

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "tfp_tnaf.bijectors": ("BlockNeuralAutoregressive", "DeepDenseSigmoidal", "DeepSigmoidal",
                           "MonotoneAutoregressive", "MonotoneElementwise",
                           "NeuralAutoregressive", "TransformerAutoregressive"),
    "tfp_tnaf.distillation": ("distill",),
    "tfp_tnaf.distribute": ("make_strategy",),
    "tfp_tnaf.models": ("FLOWS", "make_distribution", "make_flow"),
    "tfp_tnaf.nn": ("AutoregressiveTransformer", "BlockAutoregressiveNetwork", "Conditioner",
                    "LowRankHypernetwork", "MadeConditioner", "MonotoneHypernetwork",
                    "TransformerConditioner"),
    "tfp_tnaf.roots": ("RootResult", "RootSolver", "root_diagnostics"),
    "tfp_tnaf.serving": ("ExportedFlow", "export_saved_model"),
    "tfp_tnaf.training": ("BestWeights", "DecayOverBudget", "FlowModel", "ResumableTraining",
                          "TimeBudget", "load_weights", "save_weights"),
    "tfp_tnaf.transforms": ("BlockPathTransform", "DeepDenseSigmoidalTransform",
                            "DeepSigmoidalTransform", "MonotoneNetworkTransform",
                            "MonotoneTransform", "ParamGroup"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """A public name (imported from its module) or a submodule, on first use."""
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
