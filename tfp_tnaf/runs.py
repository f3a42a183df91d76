"""Run folders: fit a flow to a data set and keep everything, then evaluate or sample it.

The library behind the `tfp-tnaf` command line, usable from Python and notebooks:

```python
from tfp_tnaf import runs
metrics = runs.fit(runs.FitConfig(data="moons", flow="tnaf", epochs=20, out="runs/moons"))
runs.fit(runs.FitConfig(data="moons", epochs=10_000, max_time=300))  # 5 minutes of training
runs.evaluate("runs/moons")        # the test log-likelihood again
samples = runs.sample("runs/moons", 1000)
runs.distill(runs.DistillConfig(run="runs/moons", out="runs/moons-student"))  # one-pass sampler
```

A run folder holds `config.json` (how to rebuild the flow and the data),
`checkpoint/` (`tf.train.Checkpoint`), `metrics.json` and the plots.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import checks, data, distillation, plotting
from tfp_tnaf.baselines import set_batch_norm_statistics
from tfp_tnaf.distribute import check_global_batch, make_strategy
from tfp_tnaf.files import atomic_path
from tfp_tnaf.models import (
    FLOWS,
    Recipe,
    count_parameters,
    make_distribution,
    make_flow,
    resolved_options,
)
from tfp_tnaf.training import (
    DECAYS,
    STEPS_PER_EXECUTION,
    BestWeights,
    DecayOverBudget,
    FlowModel,
    ResumableTraining,
    TimeBudget,
    compiled_log_prob,
    load_weights,
    mean_log_prob,
    save_weights,
)

__all__ = ["DistillConfig", "FitConfig", "RunError", "distill", "evaluate", "fit", "restore",
           "sample"]

tfb = tfp.bijectors


class RunError(Exception):
    """A mistake in a run's configuration, its data or its folder (said without a traceback)."""


@dataclasses.dataclass
class FitConfig:
    """What `fit` does.

    Attributes:
      data: a name of `tfp_tnaf.data.DATASETS`, or a `.npy`, `.npz` or `.csv` file of
        points `[n, D]`, checked before training (see `tfp_tnaf.data.load`).
      data_dir: the data folder (default: `tfp_tnaf.data.data_dir()`).
      flow: a name of `tfp_tnaf.models.FLOWS`.
      options: `make_flow` options (`num_flows`, `transform_units`, ...).
      epochs, batch_size: the training budget; `batch_size` is global under a
        strategy.
      max_time: a training-time budget in seconds (None: none): training stops
        after the call of the train step (`steps_per_execution` batches) that
        reaches it, so `epochs` is then an upper bound.
        Validation does not count; tracing and compiling do (see
        `tfp_tnaf.training.TimeBudget`). The best-validation weights are kept,
        the last, partial epoch's included. Not with the `multiworker` strategy.
      learning_rate, global_clipnorm: override the flow's recipe (`FLOWS[flow].recipe`).
      decay: the learning rate's schedule: `"constant"`, or `"cosine"`, which
        anneals it to 0 over `max_time` (`tfp_tnaf.training.DecayOverBudget`;
        needs `max_time`).
      seed: seeds the data split, the weights, the shuffling and the samples.
      samples: samples drawn for the plots.
      out: the run folder (default `runs/DATA-FLOW`).
      jit: compile the train step with XLA.
      steps_per_execution: train steps per call of the compiled step (Keras'
        `compile(steps_per_execution=...)`; default
        `tfp_tnaf.training.STEPS_PER_EXECUTION`): the same steps, with the
        cost of a call paid once per call; the budget, the learning-rate decay
        and the non-finite check act between calls. Not part of the
        configuration a rerun must match.
      verbose: Keras verbosity (0 silent; 1 a progress bar; 2 a line per epoch);
        "auto": a progress bar when the standard output is a terminal, otherwise
        (a log file, CI, a notebook) a line per epoch.
      tensorboard: a folder for Keras TensorBoard logs (`tf_keras.callbacks.TensorBoard`:
        the loss, and the validation NLL as `validation/epoch_loss`, per epoch), or None.
      strategy, peer_timeout: see `tfp_tnaf.distribute.make_strategy`.
      data_key: the array of an `.npz` file `data` (needed when it holds several).
      drop_nonfinite: drop the rows of a file `data` that hold NaN or inf (and say how
        many) instead of refusing the file.
      restart: discard an unfinished run of another configuration in the run
        folder (one of this configuration is resumed).
    """

    data: str = "moons"
    data_dir: str | None = None
    flow: str = "tnaf"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 200
    learning_rate: float | None = None
    global_clipnorm: float | None = None
    decay: str = "constant"
    seed: int = 0
    samples: int = 2000
    out: str | None = None
    jit: bool = False
    steps_per_execution: int = STEPS_PER_EXECUTION
    verbose: int | str = "auto"
    strategy: str = "default"
    peer_timeout: float = 60.0
    max_time: float | None = None
    data_key: str | None = None
    drop_nonfinite: bool = False
    restart: bool = False
    tensorboard: str | None = None

    def out_dir(self) -> str:
        return self.out or os.path.join("runs", f"{os.path.basename(self.data)}-{self.flow}")


def _load(config: dict) -> data.Splits:
    """The splits of a run's data, checked (see `tfp_tnaf.data.load`); dropped rows are said
    once, unless `verbose` is 0."""
    report = print if config.get("verbose", 1) else (lambda _: None)
    try:
        return data.load(config["data"], data_dir=config.get("data_dir"), seed=config["seed"],
                         key=config.get("data_key"),
                         drop_nonfinite=config.get("drop_nonfinite", False),
                         batch_size=config.get("batch_size", 1), report=report)
    except (FileNotFoundError, ValueError) as error:
        raise RunError(str(error)) from error


# The defaults of the flows whose defaults have changed since a run folder was
# written without `architecture` (before 2026-12-06): T-NAF was one layer of two
# transformer blocks driving the monotone network. Other flows' defaults are
# unchanged.
_UNRECORDED_DEFAULTS = {"tnaf": dict(num_flows=1, num_layers=2, transform="network")}


def _architecture(config: dict) -> dict:
    """The `make_flow` options that rebuild a run's flow: its `architecture`
    (`resolved_options`, recorded since 2026-12-06), or for an older run
    folder its options over the defaults of its day."""
    if "architecture" in config:
        return config["architecture"]
    return _resolve(config["flow"],
                    {**_UNRECORDED_DEFAULTS.get(config["flow"], {}), **config["options"]})


def _build(config: dict):
    """The distribution described by a run's `config`."""
    try:
        flow = make_flow(config["flow"], config["event_size"], **_architecture(config))
    except ValueError as error:
        raise RunError(str(error)) from error
    if config.get("invert"):  # a distilled student: `tfb.Invert` of the flow (see `distill`)
        flow = tfb.Invert(flow)
    return make_distribution(flow, config["event_size"])


def _check_decay(decay: str) -> None:
    """RunError unless `decay` is a schedule of `DECAYS`."""
    if decay not in DECAYS:
        raise RunError(f"decay must be one of {', '.join(DECAYS)}; got {decay!r}")


def _check_training(config: FitConfig) -> FitConfig:
    """`config` with `steps_per_execution` a Python `int`; RunError unless it is
    a positive integer, `decay` a schedule of `DECAYS` and `max_time` a
    budget that `decay` and the strategy allow."""
    try:
        steps = checks.positive_int(config.steps_per_execution, "steps_per_execution")
    except ValueError as error:
        raise RunError(str(error)) from error
    config = dataclasses.replace(config, steps_per_execution=steps)
    max_time = config.max_time
    _check_decay(config.decay)
    if max_time is None:
        if config.decay != "constant":
            raise RunError(f"decay {config.decay!r} anneals over max_time: give max_time")
        return config
    if isinstance(max_time, bool) or not isinstance(max_time, (int, float)) \
            or not 0 < max_time < np.inf:
        raise RunError(f"max_time must be a positive number of seconds; got {max_time!r}")
    if config.strategy == "multiworker":
        # Each worker's clock would stop it after a different batch, and the
        # others would wait for it in the next all-reduce.
        raise RunError("max_time is not supported with the multiworker strategy "
                       "(the workers would stop at different steps); bound it by epochs")
    return config


def _start(config: FitConfig) -> tuple[tf.distribute.Strategy, str]:
    """The strategy (first: a multi-worker one must start before other TensorFlow
    work) and this worker's run folder (workers other than the chief write
    `worker-N/` inside it)."""
    try:
        strategy = make_strategy(config.strategy, peer_timeout=config.peer_timeout)
        check_global_batch(config.batch_size, strategy)
    except (ValueError, TimeoutError) as error:
        raise RunError(str(error)) from error
    out = config.out_dir()
    task = strategy.cluster_resolver.task_id if config.strategy == "multiworker" else 0
    if task:
        out = os.path.join(out, f"worker-{task}")
    return strategy, out


def _model(config: FitConfig, saved: dict, strategy, batch: np.ndarray):
    """The distribution and its compiled `FlowModel`, built (on `batch`) in the
    strategy's scope, so a checkpoint can restore it."""
    recipe = FLOWS[config.flow].recipe
    with strategy.scope():
        distribution = _build(saved)
        model = FlowModel(distribution)
        model.compile(recipe.optimizer(config.learning_rate, config.global_clipnorm),
                      jit_compile=config.jit,
                      steps_per_execution=config.steps_per_execution)
        model(tf.constant(batch))
    return distribution, model


def _describe(config: FitConfig, strategy) -> dict:
    """What `config.json` records: all of `config`, the learning rate and clipping
    in force, and the replicas (the flow's `architecture` follows the data)."""
    saved = dataclasses.asdict(config)
    saved.update(_in_force(FLOWS[config.flow].recipe, config.learning_rate,
                           config.global_clipnorm),
                 replicas=strategy.num_replicas_in_sync)
    _resolve(config.flow, config.options)  # a bad option fails before the data load
    return saved


def _resolve(flow: str, options: dict, num_examples: int | None = None) -> dict:
    """`resolved_options`, with a bad option said as a `RunError`."""
    try:
        return resolved_options(flow, num_examples, **options)
    except ValueError as error:
        raise RunError(str(error)) from error


def _in_force(recipe: Recipe, learning_rate: float | None,
              global_clipnorm: float | None) -> dict:
    """The learning rate and clipping a run trains with: the given ones, else `recipe`'s."""
    return dict(learning_rate=recipe.learning_rate if learning_rate is None else learning_rate,
                global_clipnorm=recipe.global_clipnorm if global_clipnorm is None
                else global_clipnorm)


def fit(config: FitConfig) -> dict:
    """Fits `config.flow` to `config.data`; writes the run folder; returns the metrics.

    A checkpoint is written after every epoch to `resume/` in the run folder:
    run the same configuration again after a kill and it continues from the
    last completed epoch. Every file is written under a temporary name, then
    renamed, so a kill never leaves a truncated one.

    Raises:
      RunError: on an unknown data set or flow, unreadable data, a bad option,
        a global batch that does not split across the replicas, or an
        unfinished run of another configuration in the folder (without
        `config.restart`).
    """
    if config.flow not in FLOWS:
        raise RunError(f"unknown flow {config.flow!r}: choose one of {', '.join(FLOWS)}")
    config = _check_training(config)
    strategy, out = _start(config)
    tf_keras.utils.set_random_seed(config.seed)
    saved = _describe(config, strategy)
    splits = _load(saved)
    saved["event_size"] = int(splits.train.shape[1])
    saved["architecture"] = _resolve(config.flow, config.options, len(splits.train))
    echo = print if config.verbose else (lambda *_: None)
    os.makedirs(out, exist_ok=True)  # only once the data are good
    _prepare_folder(out, saved, config.restart, echo)
    distribution, model = _model(config, saved, strategy, splits.train[:1])
    _write_json(os.path.join(out, "config.json"), saved)
    echo(f"{config.flow} on {config.data}: D={saved['event_size']}, "
         f"{count_parameters(distribution)} parameters, {len(splits.train)} training points, "
         f"{strategy.num_replicas_in_sync} replica(s)")
    # Every worker restores from the chief's checkpoint (tf_keras' BackupAndRestore).
    resume = ResumableTraining(os.path.join(config.out_dir(), RESUME), delete_checkpoint=False)
    training = _train(model, splits, config, resume, echo)
    set_batch_norm_statistics(distribution.bijector, splits.train)  # MAF's; others: no-op
    _save_weights_atomically(distribution, os.path.join(out, "checkpoint"))
    metrics = _measure(distribution, splits, config, out)
    metrics.update(training)
    _write_json(os.path.join(out, "metrics.json"), metrics)
    if out == config.out_dir():
        resume.delete()  # the run is complete: nothing left to resume
    echo(f"test log-likelihood: {metrics['test_log_likelihood']:.4f} +- "
         f"{metrics['test_log_likelihood_stderr']:.4f} nats (best epoch "
         f"{metrics['best_epoch']}, {metrics['steps']} steps, {metrics['train_seconds']:.1f} s"
         + (", time budget spent" if metrics["stopped_by_time"] else "") + ")")
    echo(f"{config.samples} samples in {metrics['sample_seconds']:.2f} s (first call includes "
         f"tracing); wrote {out}/: config.json, checkpoint/, metrics.json, "
         + ", ".join(os.path.basename(p) for p in metrics["plots"]))
    return metrics


# A run folder's outputs other than config.json, removed before a fresh fit so
# that a kill never leaves one run's results beside another's configuration.
RESUME = "resume"
_OUTPUTS = ("checkpoint", "metrics.json", "density.png", "marginals.png", "pairs.png")


def _prepare_folder(out: str, saved: dict, restart: bool, echo) -> None:
    """Keeps an unfinished run of the same configuration (to resume); otherwise
    clears the folder's outputs. An unfinished run of another configuration is
    an error unless `restart`. The same command run before a default changed
    (its `architecture` alone differs) resumes the flow it built: `saved`
    takes that architecture."""
    unfinished = tf.io.gfile.exists(os.path.join(out, RESUME))
    if unfinished and not restart:
        path = os.path.join(out, "config.json")
        differ = _differences(path, saved)
        if differ == ["architecture"]:
            with open(path) as f:
                saved["architecture"] = _architecture(json.load(f))
            differ = []
        if not differ:
            echo(f"{out} holds an unfinished run of this configuration: resuming it")
            return
        raise RunError(f"{out} holds an unfinished run of another configuration (it differs "
                       f"in {', '.join(differ)}): rerun that command to resume it, or pass "
                       f"--restart to discard it")
    for name in (RESUME, *_OUTPUTS):
        path = os.path.join(out, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def _differences(path: str, saved: dict) -> list[str]:
    """The settings in which the configuration at `path` differs from `saved`
    (the verbosity, `restart`, `tensorboard` and `steps_per_execution` aside)."""
    try:
        with open(path) as f:
            before = json.load(f)
    except (OSError, ValueError):
        return ["config.json (missing or unreadable)"]
    now = json.loads(json.dumps(saved))
    if "flow" in before and "options" in before:  # an older folder: its flow as built
        before["architecture"] = json.loads(json.dumps(_architecture(before)))
    keys = sorted((set(before) | set(now))
                  - {"verbose", "restart", "tensorboard", "steps_per_execution"})
    return [k for k in keys if before.get(k) != now.get(k)]


def _train(model: FlowModel, splits: data.Splits, config: FitConfig,
           resume: ResumableTraining, echo) -> dict:
    """Fits `model` (best-validation weights restored, within `config.max_time`,
    resumed from `resume`'s checkpoint if there is one); returns what
    `metrics.json` records of the training."""
    best = BestWeights()
    budget = None if config.max_time is None else TimeBudget(config.max_time)
    saved = [best] + ([budget] if budget else [])
    if config.decay == "cosine":
        saved.append(DecayOverBudget(budget))
    resume.callbacks = saved
    logs = [_tensorboard(config.tensorboard)] if config.tensorboard else []
    start = time.perf_counter()
    model.fit(splits.train, validation_data=(splits.validation,), epochs=config.epochs,
              batch_size=config.batch_size, callbacks=[*saved, *logs, resume],
              verbose=keras_verbosity(config.verbose))
    if resume.resumed_from is not None:
        echo(f"resumed after epoch {resume.resumed_from} of {config.epochs}")
    return dict(train_seconds=time.perf_counter() - start, steps=best.steps,
                max_time=config.max_time,
                stopped_by_time=budget is not None and budget.exhausted,
                stopped_non_finite=best.stopped_non_finite,
                best_epoch=None if best.best_epoch is None else best.best_epoch + 1,
                best_step=best.best_step, resumed_after_epoch=resume.resumed_from,
                history=resume.history)


def _tensorboard(folder: str) -> tf_keras.callbacks.TensorBoard:
    """Keras' TensorBoard callback: the loss and the validation NLL per epoch."""
    # Its first summary call imports and builds TensorBoard's ops (~0.1 s); made here
    # (no writer: nothing is written), it does not set off Keras' warning that the
    # callbacks are slow compared to the first batches.
    tf.summary.scalar("warm-up", 0.0, step=0)
    return tf_keras.callbacks.TensorBoard(folder, write_graph=False)


def keras_verbosity(verbose: int | str) -> int:
    """Keras' `verbose` for `FitConfig.verbose`: "auto" is 1 (a progress bar) when the
    standard output is a terminal, else 2 (a line per epoch, no carriage returns)."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def _measure(distribution, splits: data.Splits, config: FitConfig, out: str) -> dict:
    """Test log-likelihood, samples and plots of a fitted distribution."""
    mean, stderr = mean_log_prob(distribution, splits.test)
    draw = tf.function(lambda: distribution.sample(config.samples, seed=config.seed))
    start = time.perf_counter()
    samples = draw().numpy()
    sample_seconds = time.perf_counter() - start
    title = f"{config.flow} on {config.data}: test log-likelihood {mean:.3f}"
    return dict(test_log_likelihood=mean, test_log_likelihood_stderr=stderr,
                num_parameters=count_parameters(distribution), sample_seconds=sample_seconds,
                num_samples=config.samples, samples_finite=bool(np.all(np.isfinite(samples))),
                plots=_plots(distribution, splits.test, samples, out, title))


def _plots(distribution, test: np.ndarray, samples: np.ndarray, out: str,
           title: str) -> list[str]:
    """1-D and 2-D: density, data and samples; higher-D: marginals and pairs."""
    if test.shape[1] <= 2:
        log_prob = compiled_log_prob(distribution, test.shape[1])  # the test's own trace
        path = os.path.join(out, "density.png")
        plot = plotting.plot_density_2d if test.shape[1] == 2 else plotting.plot_density_1d
        with atomic_path(path) as temporary:
            plot(lambda g: log_prob(tf.cast(g, distribution.dtype)).numpy(), test, samples,
                 temporary, title=title)
        return [path]
    paths = [os.path.join(out, "marginals.png"), os.path.join(out, "pairs.png")]
    for path, draw in zip(paths, (plotting.plot_marginals, plotting.plot_pairs), strict=True):
        with atomic_path(path) as temporary:
            draw(test, samples, temporary, title=title)
    return paths


def _write_json(path: str, content: dict) -> None:
    with atomic_path(path) as temporary, open(temporary, "w") as f:
        json.dump(content, f, indent=2)


def _save_weights_atomically(distribution, folder: str) -> None:
    """`save_weights` to `folder/weights`, written beside it and renamed into
    place: a kill leaves the previous folder or none, never a partial one."""
    temporary = folder + ".partial"
    if tf.io.gfile.isdir(temporary):
        tf.io.gfile.rmtree(temporary)
    save_weights(distribution, os.path.join(temporary, "weights"))
    if tf.io.gfile.isdir(folder):
        tf.io.gfile.rmtree(folder)
    os.replace(temporary, folder)


def restore(run: str, data_dir: str | None = None) -> tuple[dict, Any]:
    """The saved configuration of run folder `run` and its fitted distribution.

    Raises:
      RunError: if `run` is not a run folder or has no checkpoint.
    """
    path = os.path.join(run, "config.json")
    if not os.path.exists(path):
        raise RunError(f"{run!r} is not a run folder: no config.json (write one with "
                       f"`tfp-tnaf fit --out {run}`)")
    with open(path) as f:
        config = json.load(f)
    if data_dir:
        config["data_dir"] = data_dir
    distribution = _build(config)
    try:
        load_weights(distribution, os.path.join(run, "checkpoint", "weights"))
    except FileNotFoundError as error:
        raise RunError(f"run folder {run!r} has no checkpoint: {error}") from error
    except AssertionError as error:
        raise RunError(f"the checkpoint of {run!r} does not fit the flow its config.json "
                       f"describes ({config['flow']}, {_architecture(config)}): was the "
                       f"folder written by another tfp_tnaf, or edited?") from error
    return config, distribution


def evaluate(run: str, data_dir: str | None = None) -> dict:
    """The test log-likelihood (mean, standard error, points) of a fitted run."""
    config, distribution = restore(run, data_dir)
    test = _load(config).test
    mean, stderr = mean_log_prob(distribution, test)
    return dict(flow=config["flow"], data=config["data"], test_log_likelihood=mean,
                test_log_likelihood_stderr=stderr, num_points=len(test),
                student=bool(config.get("invert")))


def sample(run: str, num_samples: int, seed: int = 0) -> np.ndarray:
    """`num_samples` samples of a fitted run (standardised units), `[num_samples, D]`."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise RunError(f"the number of samples must be a positive integer; got {num_samples}")
    _, distribution = restore(run)
    return tf.function(lambda: distribution.sample(num_samples, seed=seed))().numpy()


@dataclasses.dataclass
class DistillConfig:
    """What `distill` does: a one-pass student of a fitted run.

    Attributes:
      run: the teacher's run folder (written by `fit`).
      out: the student's run folder (`evaluate` and `sample` accept it).
      student: a name of `tfp_tnaf.models.FLOWS`; the student is `tfb.Invert` of
        that flow (its inverse-autoregressive direction samples in one pass per
        layer). `"maf"` is an IAF on TFP's MADE, without batch normalisation
        unless `options` say otherwise.
      options: `make_flow` options of the student (`num_flows`, `hidden_units`, ...).
      max_time, steps: the distillation budget (seconds of wall-clock, steps);
        at least one.
      batch_size: student samples per step.
      learning_rate, global_clipnorm: override the reverse KL's default step,
        `tfp_tnaf.distillation.RECIPE`.
      warm_start_steps, warm_start_samples: a forward-KL warm start on teacher
        samples first (see `tfp_tnaf.distillation.distill`).
      forward_kl_weight, forward_kl_samples: a forward-KL term in every step,
        on a pool of teacher samples (see `tfp_tnaf.distillation.distill`).
      decay: the steps' learning rate, `"constant"` or `"cosine"` (annealed
        to 0 over the budget; see `tfp_tnaf.distillation.distill`).
      seed: seeds the student's weights and samples.
      kl_samples: samples of the final KL estimate.
      samples: samples drawn for the plots.
      evaluate: also score the test split (sequential for a student: D steps per layer).
      data_dir: the data folder, if not the teacher's.
      verbose: 0 silent; 1 the summary.
    """

    run: str
    out: str
    student: str = "naf"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_time: float | None = 60.0
    steps: int | None = None
    batch_size: int = 256
    learning_rate: float | None = None
    global_clipnorm: float | None = None
    warm_start_steps: int = 0
    warm_start_samples: int = distillation.WARM_START_SAMPLES
    forward_kl_weight: float = 0.0
    forward_kl_samples: int = distillation.FORWARD_KL_SAMPLES
    decay: str = "constant"
    seed: int = 0
    kl_samples: int = 10_000
    samples: int = 2000
    evaluate: bool = True
    data_dir: str | None = None
    verbose: int = 1


# What a student's config.json takes from its teacher's: the same data and split.
_TEACHER_KEYS = ("data", "data_dir", "data_key", "drop_nonfinite", "seed", "batch_size",
                 "event_size")


def _student_config(config: DistillConfig, teacher: dict) -> dict:
    """The student's `config.json`: the teacher's data and split, the student's
    flow with `invert`, and how it was distilled."""
    if config.student not in FLOWS:
        raise RunError(f"unknown student flow {config.student!r}: choose one of "
                       f"{', '.join(FLOWS)}")
    if os.path.abspath(config.out) == os.path.abspath(config.run):
        raise RunError("the student's run folder must not be its teacher's")
    if teacher.get("invert"):
        raise RunError(f"{config.run!r} holds a distilled student; distil from a fitted run")
    _check_decay(config.decay)
    options = dict(config.options)
    if config.student == "maf":  # batch statistics of its own samples would move the density
        options.setdefault("batch_norm", False)
    saved = {k: teacher[k] for k in _TEACHER_KEYS if k in teacher}
    saved.update(
        flow=config.student, options=options, architecture=_resolve(config.student, options),
        invert=True, distilled_from=config.run,
        teacher=dict(flow=teacher["flow"], options=teacher["options"],
                     architecture=_architecture(teacher)),
        distill=dataclasses.asdict(config),
        **_in_force(distillation.RECIPE, config.learning_rate, config.global_clipnorm))
    if config.data_dir:
        saved["data_dir"] = config.data_dir
    return saved


def distill(config: DistillConfig) -> dict:
    """Distils the fitted run `config.run` into a one-pass student; writes its run folder.

    The student, `tfb.Invert(make_flow(config.student, D))`, is trained by
    `tfp_tnaf.distillation.distill` (the reverse KL on its own samples) within
    the budget, then saved as a run folder whose `config.json` rebuilds it
    (`"invert": true`), so `sample` draws from it in one pass per layer and
    `evaluate` scores it (sequentially). `metrics.json` records the KL estimate,
    the distillation's steps and seconds, the teacher's and (with
    `config.evaluate`) the student's test log-likelihoods and sampling times.

    Raises:
      RunError: on an unknown student, a missing teacher run, `out` equal to
        `run`, a bad option, or no budget.
    """
    teacher_config, teacher = restore(config.run, config.data_dir)
    saved = _student_config(config, teacher_config)
    echo = print if config.verbose else (lambda *_: None)
    tf_keras.utils.set_random_seed(config.seed)
    student = _build(saved)
    os.makedirs(config.out, exist_ok=True)
    _prepare_folder(config.out, saved, True, echo)
    _write_json(os.path.join(config.out, "config.json"), saved)
    echo(f"distilling {teacher_config['flow']} ({config.run}) into Invert({config.student}): "
         f"D={saved['event_size']}, {count_parameters(student)} parameters")
    metrics = _distil(teacher, student, config, saved)
    _save_weights_atomically(student, os.path.join(config.out, "checkpoint"))
    metrics.update(_teacher_metrics(config.run))
    if config.evaluate:
        measure = FitConfig(data=saved["data"], flow=f"Invert({config.student}) student",
                            samples=config.samples, seed=config.seed)
        metrics.update(_measure(student, _load(saved), measure, config.out))
    _write_json(os.path.join(config.out, "metrics.json"), metrics)
    _report_distillation(metrics, config, echo)
    return metrics


def _distil(teacher, student, config: DistillConfig, saved: dict) -> dict:
    """Runs the distillation and estimates the KL; what `metrics.json` records of it."""
    optimizer = distillation.RECIPE.optimizer(saved["learning_rate"], saved["global_clipnorm"])
    try:
        result = distillation.distill(
            teacher, student, steps=config.steps, max_time=config.max_time,
            batch_size=config.batch_size, optimizer=optimizer,
            warm_start_steps=config.warm_start_steps,
            warm_start_samples=config.warm_start_samples,
            forward_kl_weight=config.forward_kl_weight,
            forward_kl_samples=config.forward_kl_samples, decay=config.decay,
            seed=config.seed)
    except ValueError as error:
        raise RunError(str(error)) from error
    kl, kl_stderr = distillation.kl_estimate(teacher, student, config.kl_samples,
                                             seed=config.seed + 1)
    draw = tf.function(lambda: student.sample(1000, seed=config.seed))
    draw()  # traced
    start = time.perf_counter()
    draw().numpy()
    return dict(kl=kl, kl_stderr=kl_stderr, distill_seconds=result.seconds,
                distill_steps=result.steps, skipped_steps=result.skipped_steps,
                warm_start_steps=result.warm_start_steps,
                warm_start_seconds=result.warm_start_seconds, history=result.history,
                student_seconds_per_1000_samples=time.perf_counter() - start)


def _teacher_metrics(run: str) -> dict:
    """The teacher's test log-likelihood, from its `metrics.json` (if it has one)."""
    try:
        with open(os.path.join(run, "metrics.json")) as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return {}
    return {f"teacher_{k}": metrics[k] for k in ("test_log_likelihood",
                                                  "test_log_likelihood_stderr")
            if k in metrics}


def _report_distillation(metrics: dict, config: DistillConfig, echo) -> None:
    warm = metrics["warm_start_steps"]
    echo(f"KL(student || teacher) ~ {metrics['kl']:.4f} +- {metrics['kl_stderr']:.4f} nats "
         f"after {f'{warm} forward-KL and ' if warm else ''}{metrics['distill_steps']} "
         f"reverse-KL steps" + (f" with a forward-KL term of weight {config.forward_kl_weight:g}"
                                if config.forward_kl_weight else "")
         + (f", learning rate {config.decay}" if config.decay != "constant" else "")
         + f", {metrics['distill_seconds']:.1f} s")
    if "test_log_likelihood" in metrics:
        teacher = metrics.get("teacher_test_log_likelihood")
        echo(f"test log-likelihood: student {metrics['test_log_likelihood']:.4f}"
             + ("" if teacher is None else f", teacher {teacher:.4f}") + " nats")
    echo(f"1000 samples in {metrics['student_seconds_per_1000_samples']:.3f} s (one pass per "
         f"layer); wrote {config.out}/: config.json, checkpoint/, metrics.json")
