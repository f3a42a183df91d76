"""Command line tool `tfp-tnaf` (also `python -m tfp_tnaf`): fit, evaluate and sample flows.

    tfp-tnaf                                   # = tfp-tnaf fit: T-NAF on Two Moons
    tfp-tnaf fit --data miniboone --flow naf --epochs 50 --out runs/miniboone-naf
    tfp-tnaf evaluate --run runs/miniboone-naf
    tfp-tnaf sample --run runs/miniboone-naf -n 1000 --output samples.npy

A run folder holds `config.json` (how to rebuild the flow and the data),
`checkpoint/` (`tf.train.Checkpoint`), `metrics.json` and the plots.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main"]

DEFAULT_LEARNING_RATES = {"bnaf": 1e-2}  # weight normalisation wants a larger step
DEFAULT_CLIPNORM = {"tnaf": 0.1}  # the official T-NAF setting


class UsageError(Exception):
    """A mistake in the command line or the run folder: printed without a traceback."""


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas; got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    from tfp_tnaf.data import DATASETS
    from tfp_tnaf.models import FLOW_NAMES

    parser = argparse.ArgumentParser(prog="tfp-tnaf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    fit = sub.add_parser("fit", help="fit a flow by maximum likelihood (default command)")
    fit.add_argument("--data", default="moons",
                     help=f"one of {', '.join(DATASETS)}, or a file.npy of shape [n, D]")
    fit.add_argument("--data-dir", help="the data folder (default: $TFP_TNAF_DATA, "
                                        "then ../shared/data next to the repository)")
    fit.add_argument("--flow", default="tnaf", choices=FLOW_NAMES)
    fit.add_argument("--num-flows", type=int, help="stacked layers (flow's default)")
    fit.add_argument("--hidden-units", type=_int_list,
                     help="MADE / coupling network sizes, e.g. 64,64 (naf, maf, realnvp)")
    fit.add_argument("--transform-units", type=int,
                     help="DSF units (naf), monotone width (tnaf), units per dim (bnaf)")
    fit.add_argument("--epochs", type=int, default=20)
    fit.add_argument("--batch-size", type=int, default=200)
    fit.add_argument("--lr", type=float, help="Adam learning rate (1e-3; bnaf 1e-2)")
    fit.add_argument("--clipnorm", type=float, help="gradient-norm clipping (tnaf 0.1)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--samples", type=int, default=2000, help="samples drawn for the plots")
    fit.add_argument("--out", help="run folder (default runs/DATA-FLOW)")
    fit.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    fit.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                     help="Keras verbosity: 1 is a progress bar")
    fit.add_argument("--strategy", default="default",
                     choices=("default", "mirrored", "multiworker"),
                     help="tf.distribute strategy: one device, all local devices, or the "
                          "cluster in TF_CONFIG (--batch-size is then the global batch)")
    fit.add_argument("--peer-timeout", type=float, default=60.0,
                     help="multiworker: seconds to wait for the other workers")
    evaluate = sub.add_parser("evaluate", help="test log-likelihood of a fitted run")
    evaluate.add_argument("--run", required=True, help="a run folder written by `fit`")
    evaluate.add_argument("--data-dir")
    sample = sub.add_parser("sample", help="draw samples from a fitted run")
    sample.add_argument("--run", required=True)
    sample.add_argument("-n", "--num-samples", type=int, default=1000)
    sample.add_argument("--output", required=True, help="a .npy file")
    sample.add_argument("--seed", type=int, default=0)
    return parser


def _load_data(config: dict):
    from tfp_tnaf import data

    name = config["data"]
    if name not in data.DATASETS and not name.endswith(".npy"):
        raise UsageError(f"unknown data set {name!r}: choose one of "
                         f"{', '.join(data.DATASETS)}, or give a path ending in .npy")
    try:
        return data.load(name, data_dir=config.get("data_dir"), seed=config["seed"])
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from error


def _build(config: dict):
    """The distribution described by a run's `config`."""
    from tfp_tnaf.models import make_distribution, make_flow

    flow = make_flow(config["flow"], config["event_size"], **config["sizes"])
    return make_distribution(flow, config["event_size"])


def _restore(run: str, data_dir: str | None = None):
    from tfp_tnaf.training import load_weights

    path = os.path.join(run, "config.json")
    if not os.path.exists(path):
        raise UsageError(f"{run!r} is not a run folder: no config.json (write one with "
                         f"`tfp-tnaf fit --out {run}`)")
    with open(path) as f:
        config = json.load(f)
    if data_dir:
        config["data_dir"] = data_dir
    distribution = _build(config)
    try:
        load_weights(distribution, os.path.join(run, "checkpoint", "weights"))
    except FileNotFoundError as error:
        raise UsageError(f"run folder {run!r} has no checkpoint: {error}") from error
    return config, distribution


def _plots(distribution, splits, samples, out: str, title: str) -> list[str]:
    import numpy as np
    import tensorflow as tf

    from tfp_tnaf import plotting

    log_prob = tf.function(distribution.log_prob)
    data = splits.test
    if data.shape[1] == 2:
        path = os.path.join(out, "density.png")
        plotting.plot_density_2d(lambda g: log_prob(tf.constant(g)).numpy(), data, samples,
                                 path, title=title)
        return [path]
    paths = [os.path.join(out, "marginals.png"), os.path.join(out, "pairs.png")]
    plotting.plot_marginals(data, samples, paths[0], title=title)
    plotting.plot_pairs(data, np.asarray(samples), paths[1], title=title)
    return paths


def _fit(args: argparse.Namespace) -> dict:
    import numpy as np
    import tensorflow as tf
    import tf_keras

    from tfp_tnaf.distribute import check_global_batch, make_strategy
    from tfp_tnaf.training import BestWeights, FlowModel, mean_log_prob, save_weights

    try:  # first: a multi-worker strategy must start before other TensorFlow work
        strategy = make_strategy(args.strategy, peer_timeout=args.peer_timeout)
        check_global_batch(args.batch_size, strategy)
    except (ValueError, TimeoutError) as error:
        raise UsageError(str(error)) from error
    tf_keras.utils.set_random_seed(args.seed)
    config = dict(data=args.data, data_dir=args.data_dir, flow=args.flow, seed=args.seed)
    splits = _load_data(config)
    config["event_size"] = int(splits.train.shape[1])
    config["sizes"] = {k: v for k, v in (("num_flows", args.num_flows),
                                         ("hidden_units", args.hidden_units),
                                         ("transform_units", args.transform_units))
                       if v is not None}
    out = args.out or os.path.join("runs", f"{os.path.basename(args.data)}-{args.flow}")
    task = strategy.cluster_resolver.task_id if args.strategy == "multiworker" else 0
    if task:  # only the chief writes the run folder
        out = os.path.join(out, f"worker-{task}")
    os.makedirs(out, exist_ok=True)
    lr = args.lr if args.lr is not None else DEFAULT_LEARNING_RATES.get(args.flow, 1e-3)
    clipnorm = args.clipnorm if args.clipnorm is not None else DEFAULT_CLIPNORM.get(args.flow)
    config.update(epochs=args.epochs, batch_size=args.batch_size, lr=lr, clipnorm=clipnorm,
                  jit=args.jit, strategy=args.strategy,
                  replicas=strategy.num_replicas_in_sync)
    with strategy.scope():
        try:
            distribution = _build(config)
        except ValueError as error:
            raise UsageError(str(error)) from error
        model = FlowModel(distribution)
        model.compile(tf_keras.optimizers.Adam(lr, clipnorm=clipnorm), jit_compile=args.jit)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    best = BestWeights()
    num_parameters = int(sum(np.prod(v.shape) for v in distribution.trainable_variables))
    print(f"{args.flow} on {args.data}: D={config['event_size']}, {num_parameters} parameters, "
          f"{len(splits.train)} training points, {strategy.num_replicas_in_sync} replica(s)")
    start = time.perf_counter()
    history = model.fit(splits.train, validation_data=(splits.validation,), epochs=args.epochs,
                        batch_size=args.batch_size, callbacks=[best], verbose=args.verbose)
    train_seconds = time.perf_counter() - start
    save_weights(distribution, os.path.join(out, "checkpoint", "weights"))
    mean, stderr = mean_log_prob(distribution, splits.test)
    sample = tf.function(lambda: distribution.sample(args.samples, seed=args.seed))
    start = time.perf_counter()
    samples = sample().numpy()
    sample_seconds = time.perf_counter() - start
    plots = _plots(distribution, splits, samples, out,
                   f"{args.flow} on {args.data}: test log-likelihood {mean:.3f}")
    metrics = dict(
        test_log_likelihood=mean, test_log_likelihood_stderr=stderr,
        num_parameters=num_parameters, train_seconds=train_seconds,
        best_epoch=None if best.best_epoch is None else best.best_epoch + 1,
        stopped_non_finite=best.stopped_non_finite,
        sample_seconds=sample_seconds, num_samples=args.samples,
        samples_finite=bool(np.all(np.isfinite(samples))),
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        plots=plots)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"test log-likelihood: {mean:.4f} +- {stderr:.4f} nats "
          f"(best epoch {metrics['best_epoch']}, {train_seconds:.1f} s)")
    print(f"{args.samples} samples in {sample_seconds:.2f} s (first call includes tracing); "
          f"wrote {out}/: config.json, checkpoint/, metrics.json, "
          + ", ".join(os.path.basename(p) for p in plots))
    return metrics


def _evaluate(args: argparse.Namespace) -> dict:
    from tfp_tnaf.training import mean_log_prob

    config, distribution = _restore(args.run, args.data_dir)
    splits = _load_data(config)
    mean, stderr = mean_log_prob(distribution, splits.test)
    print(f"{config['flow']} on {config['data']}: test log-likelihood {mean:.4f} +- "
          f"{stderr:.4f} nats ({len(splits.test)} points)")
    return dict(test_log_likelihood=mean, test_log_likelihood_stderr=stderr)


def _sample(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    if not args.output.endswith(".npy"):
        raise UsageError(f"--output must be a .npy file; got {args.output!r}")
    if args.num_samples < 1:
        raise UsageError(f"-n must be a positive integer; got {args.num_samples}")
    config, distribution = _restore(args.run)
    samples = tf.function(lambda: distribution.sample(args.num_samples, seed=args.seed))()
    np.save(args.output, samples.numpy())
    print(f"wrote {args.num_samples} samples of {config['flow']} ({config['data']}, "
          f"standardised units) to {args.output}")


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"fit": _fit, "evaluate": _evaluate, "sample": _sample}
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
        argv = ["fit", *argv]  # `fit` is the default command
    args = parser.parse_args(argv)
    try:
        commands[args.command](args)
    except UsageError as error:
        parser.exit(2, f"tfp-tnaf: error: {error}\n")
