"""Maximum-likelihood training of any TFP distribution with Keras (`tf_keras`).

`FlowModel` wraps a distribution in a `tf_keras.Model` whose loss is the mean
negative log-likelihood, so `compile`, `fit`, `evaluate` and `predict` work as
for any Keras model; the callbacks keep the best weights, stop at a
training-time budget and anneal the learning rate over it; weights go to disk
with `tf.train.Checkpoint`.
"""

from tfp_tnaf.training.callbacks import (
    DECAYS,
    BestWeights,
    DecayOverBudget,
    TimeBudget,
    cosine_factor,
)
from tfp_tnaf.training.checkpoints import load_weights, save_weights
from tfp_tnaf.training.evaluation import compiled_log_prob, mean_log_prob
from tfp_tnaf.training.model import STEPS_PER_EXECUTION, FlowModel, single_bijector_kwargs
from tfp_tnaf.training.resume import ResumableTraining
from tfp_tnaf.training.steps import fit_steps

__all__ = ["DECAYS", "STEPS_PER_EXECUTION", "BestWeights", "DecayOverBudget", "FlowModel",
           "ResumableTraining", "TimeBudget", "compiled_log_prob", "cosine_factor", "fit_steps",
           "load_weights", "mean_log_prob", "save_weights", "single_bijector_kwargs"]
