"""Fit several flows on one data set with the same budget, and tabulate the outcome."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf.data import Splits
from tfp_tnaf.models import FLOWS, Recipe, count_parameters, make_distribution, make_flow
from tfp_tnaf.training import BestWeights, FlowModel, TimeBudget, mean_log_prob

tfb, tfd = tfp.bijectors, tfp.distributions

__all__ = ["FlowResult", "FlowSpec", "compare_flows", "results_table"]


@dataclasses.dataclass
class FlowSpec:
    """How to build and train one flow: `build()` returns a fresh bijector.

    `for_evaluation(bijector)`, if given, maps the trained bijector to the one
    evaluated (for example `tfb.BatchNormalization` layers switched to their
    running statistics). `FlowSpec.named("bnaf", 2)` is a flow of the
    registry with its own recipe.
    """

    build: Callable[[], tfb.Bijector]
    recipe: Recipe = dataclasses.field(default_factory=Recipe)
    for_evaluation: Callable[[tfb.Bijector], tfb.Bijector] | None = None

    @classmethod
    def named(cls, name: str, event_size: int, **options) -> FlowSpec:
        """The registry's flow `name` (`make_flow` options), trained by its recipe."""
        return cls(lambda: make_flow(name, event_size, **options), FLOWS[name].recipe)


@dataclasses.dataclass
class FlowResult:
    """Outcome of one flow: test log-likelihood (mean, standard error) and costs."""

    name: str
    num_parameters: int
    test_log_likelihood: float
    test_stderr: float
    train_seconds: float
    log_prob_seconds: float
    sample_seconds: float
    best_epoch: int | None
    distribution: tfd.Distribution = dataclasses.field(repr=False)


def _seconds(fn: Callable[[], tf.Tensor]) -> float:
    """Wall time of one call of `fn` traced as a `tf.function`, after a first call.

    Traced to a concrete function: once for each flow, and out of sight of
    TensorFlow's retracing warning, which would count the traces of this one
    Python function across the flows.
    """
    compiled = tf.function(fn).get_concrete_function()
    compiled()
    start = time.perf_counter()
    compiled().numpy()
    return time.perf_counter() - start


def compare_flows(specs: dict[str, FlowSpec], splits: Splits, epochs: int,
                  batch_size: int = 200, num_samples: int = 1000, patience: int | None = None,
                  seed: int = 0, verbose: int = 0, max_time: float | None = None,
                  steps_per_execution: int = 1) -> list[FlowResult]:
    """Trains every flow with Keras on `splits.train` for `epochs` (the same budget),
    keeps its best-validation weights (stopping early after `patience` epochs
    without improvement, if given, or after `max_time` seconds of training, see
    `TimeBudget`), and measures it on `splits.test`. `steps_per_execution`
    goes to `compile`: `tfp_tnaf.training.STEPS_PER_EXECUTION` speeds up long
    comparisons (see `FlowModel`); the default, Keras' 1, keeps short ones of
    many flows clear of TensorFlow's retracing warning (each model traces its
    functions once, and ten steps a call leave few calls to spread it over).

    `log_prob_seconds` is one `log_prob` of the whole test split,
    `sample_seconds` one draw of `num_samples` samples, both traced functions
    after a first call.
    """
    event_size = splits.train.shape[1]
    splits = Splits(*(tf.constant(s) for s in splits))
    results = []
    for name, spec in specs.items():
        tf_keras.utils.set_random_seed(seed)
        distribution = make_distribution(spec.build(), event_size)
        distribution.log_prob(splits.train[:1])  # a user's chain may build lazily
        model = FlowModel(distribution)
        model.compile(spec.recipe.optimizer(), steps_per_execution=steps_per_execution)
        best = BestWeights()
        callbacks = [best, *([] if max_time is None else [TimeBudget(max_time)])]
        if patience is not None:
            callbacks.append(tf_keras.callbacks.EarlyStopping(patience=patience))
        start = time.perf_counter()
        model.fit(splits.train, validation_data=(splits.validation,), epochs=epochs,
                  batch_size=batch_size, callbacks=callbacks, verbose=verbose)
        train_seconds = time.perf_counter() - start
        if spec.for_evaluation is not None:
            distribution = make_distribution(spec.for_evaluation(distribution.bijector),
                                             event_size)
        mean, stderr = mean_log_prob(distribution, splits.test)
        results.append(FlowResult(
            name=name,
            num_parameters=count_parameters(distribution),
            test_log_likelihood=mean, test_stderr=stderr, train_seconds=train_seconds,
            log_prob_seconds=_seconds(lambda d=distribution: d.log_prob(splits.test)),
            sample_seconds=_seconds(lambda d=distribution: d.sample(num_samples, seed=seed)),
            best_epoch=None if best.best_epoch is None else best.best_epoch + 1,
            distribution=distribution))
    return results


def results_table(results: list[FlowResult], num_samples: int = 1000) -> str:
    """A markdown table of `compare_flows` results."""
    lines = ["| flow | parameters | test log-likelihood | train (s) | log_prob of test (s) | "
             f"{num_samples} samples (s) | best epoch |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.num_parameters:,} | {r.test_log_likelihood:.3f} +- "
                     f"{r.test_stderr:.3f} | {r.train_seconds:.1f} | {r.log_prob_seconds:.3f} | "
                     f"{r.sample_seconds:.3f} | {r.best_epoch} |")
    return "\n".join(lines)
