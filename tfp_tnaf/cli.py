"""Command line tool `tfp-tnaf` (also `python -m tfp_tnaf`): fit, evaluate and sample flows.

    tfp-tnaf                                   # = tfp-tnaf fit: T-NAF on Two Moons
    tfp-tnaf fit --data miniboone --flow naf --epochs 50 --out runs/miniboone-naf
    tfp-tnaf fit --data miniboone --flow tnaf --max-time 600   # 10 minutes of training
    tfp-tnaf evaluate --run runs/miniboone-naf
    tfp-tnaf sample --run runs/miniboone-naf -n 1000 --output samples.npy
    tfp-tnaf distill --run runs/miniboone-tnaf --out runs/miniboone-student --max-time 300

A thin layer over `tfp_tnaf.runs`: it parses the arguments, runs, and prints.
TensorFlow's C++ logs (start-up, CUDA) are kept out of the output unless
`--verbose 2` is given or `TF_CPP_MIN_LOG_LEVEL` is set.
"""

from __future__ import annotations

import argparse
import sys

# Only the standard library so far: TensorFlow must not be imported before main
# has quieted its logs (the package's root imports nothing by itself).
from tfp_tnaf.logs import quiet_tensorflow

__all__ = ["main"]

DEFAULT_EPOCHS = 20
UNBOUNDED_EPOCHS = 1_000_000  # --max-time without --epochs: the clock alone stops the run


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas; got {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds; got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfp-tnaf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    _add_fit(sub)
    evaluate = sub.add_parser("evaluate", help="test log-likelihood of a fitted run")
    evaluate.add_argument("--run", required=True, help="a run folder written by `fit`")
    evaluate.add_argument("--data-dir")
    sample = sub.add_parser("sample", help="draw samples from a fitted run")
    sample.add_argument("--run", required=True)
    sample.add_argument("-n", "--num-samples", type=int, default=1000)
    sample.add_argument("--output", required=True, help="a .npy file")
    sample.add_argument("--seed", type=int, default=0)
    _add_distill(sub)
    return parser


def _add_fit(sub) -> None:
    """The `fit` command and its arguments."""
    from tfp_tnaf.data import DATASETS
    from tfp_tnaf.models import FLOW_NAMES

    fit = sub.add_parser("fit", help="fit a flow by maximum likelihood (default command)")
    fit.add_argument("--data", default="moons",
                     help=f"one of {', '.join(DATASETS)}, or a file of points [n, D]: .npy, "
                          f".npz or .csv (with or without a header row)")
    fit.add_argument("--data-key", metavar="NAME",
                     help="the array of an .npz file (needed when it holds several)")
    fit.add_argument("--drop-nonfinite", action="store_true",
                     help="drop the rows of a data file that hold NaN or inf (and say how "
                          "many) instead of refusing the file")
    fit.add_argument("--data-dir", help="the data folder (default: $TFP_TNAF_DATA, "
                                        "then ../shared/data next to the repository)")
    fit.add_argument("--flow", default="tnaf", choices=FLOW_NAMES)
    _add_flow_options(fit)
    _add_budget_and_recipe(fit)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--samples", type=int, default=2000, help="samples drawn for the plots")
    fit.add_argument("--out", help="run folder (default runs/DATA-FLOW)")
    fit.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    fit.add_argument("--steps-per-execution", type=int, metavar="K",
                     help="train steps per call of the compiled step (default "
                          "tfp_tnaf.training.STEPS_PER_EXECUTION); --max-time is checked "
                          "between calls")
    fit.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                     help="0: errors only; 1 (default): a progress bar on a terminal, one "
                          "line per epoch otherwise (a log file, CI); 2: as 1, with "
                          "TensorFlow's own logs (start-up, CUDA), which are otherwise hidden "
                          "unless TF_CPP_MIN_LOG_LEVEL is set")
    fit.add_argument("--tensorboard", metavar="DIR",
                     help="write Keras TensorBoard logs (loss and validation NLL per epoch) "
                          "to DIR")
    fit.add_argument("--strategy", default="default",
                     choices=("default", "mirrored", "multiworker"),
                     help="tf.distribute strategy: one device, all local devices, or the "
                          "cluster in TF_CONFIG (--batch-size is then the global batch)")
    fit.add_argument("--restart", action="store_true",
                     help="discard an unfinished run of another configuration in the run "
                          "folder (a killed run of the same command resumes by itself)")
    fit.add_argument("--peer-timeout", type=float, default=60.0,
                     help="multiworker: seconds to wait for the other workers")


def _add_flow_options(fit) -> None:
    """`fit`'s options of the flow's shape (`_FLOW_OPTIONS`)."""
    from tfp_tnaf.transforms import TRANSFORMS

    fit.add_argument("--num-flows", type=int, help="stacked layers (flow's default)")
    fit.add_argument("--hidden-units", type=_int_list,
                     help="MADE / coupling network sizes, e.g. 64,64 (naf, maf, realnvp)")
    fit.add_argument("--transform-units", type=int,
                     help="hidden width of each dimension's monotone transform (tnaf, naf, "
                          "bnaf)")
    fit.add_argument("--transform", choices=tuple(TRANSFORMS),
                     help="each dimension's monotone transform (tnaf, naf; default: the "
                          "flow's, dsf; tnaf-paper: network)")
    fit.add_argument("--dropout", type=float,
                     help="dropout rate in T-NAF's transformer (tnaf; default 0.05 on small "
                          "data sets, where it pays, and 0 from tfp_tnaf.models.LARGE_DATA "
                          "training rows on; see the README)")


def _add_budget_and_recipe(fit) -> None:
    """`fit`'s training budget and optimizer arguments."""
    from tfp_tnaf.training import DECAYS

    fit.add_argument("--epochs", type=int,
                     help=f"epochs (default {DEFAULT_EPOCHS}; with --max-time, no limit)")
    fit.add_argument("--max-time", type=_seconds, metavar="SECONDS",
                     help="training-time budget: stop after the call of the train step "
                          "(--steps-per-execution steps) that reaches it "
                          "(validation not counted); keeps the best-validation weights")
    fit.add_argument("--decay", default="constant", choices=DECAYS,
                     help="learning-rate schedule: constant, or cosine, annealed to 0 over "
                          "--max-time (default constant)")
    fit.add_argument("--batch-size", type=int, default=200)
    fit.add_argument("--lr", type=float, help="Adam learning rate (default: the flow's)")
    fit.add_argument("--global-clipnorm", type=float,
                     help="clip the global gradient norm (default: the flow's)")


def _add_distill(sub) -> None:
    """The `distill` command and its arguments."""
    from tfp_tnaf import distillation
    from tfp_tnaf.models import FLOW_NAMES
    from tfp_tnaf.training import DECAYS
    from tfp_tnaf.transforms import TRANSFORMS

    distill = sub.add_parser(
        "distill", help="distil a fitted run into a student that samples in one pass")
    distill.add_argument("--run", required=True, help="the teacher: a run folder of `fit`")
    distill.add_argument("--out", required=True, help="the student's run folder")
    distill.add_argument("--student", default="naf", choices=FLOW_NAMES,
                         help="the student is tfb.Invert of this flow (default naf; maf: an "
                              "IAF on TFP's MADE)")
    distill.add_argument("--num-flows", type=int, help="the student's stacked layers")
    distill.add_argument("--hidden-units", type=_int_list, help="the student's MADE sizes")
    distill.add_argument("--transform-units", type=int,
                         help="the student's transform width (tnaf, naf, bnaf)")
    distill.add_argument("--transform", choices=tuple(TRANSFORMS),
                         help="the student's transform (tnaf, naf)")
    distill.add_argument("--max-time", type=_seconds, metavar="SECONDS",
                         help="wall-clock budget of the distillation (default 60 without "
                              "--steps)")
    distill.add_argument("--steps", type=int, help="reverse-KL steps (an upper bound)")
    distill.add_argument("--batch-size", type=int, default=256, help="student samples a step")
    distill.add_argument("--lr", type=float, help="Adam learning rate of the reverse KL "
                                                  "(default: tfp_tnaf.distillation.RECIPE's)")
    distill.add_argument("--global-clipnorm", type=float,
                         help="clip of the gradients' global norm (default: RECIPE's; "
                              "a large value such as 1e9 leaves them unclipped)")
    distill.add_argument("--warm-start-steps", type=int, default=0,
                         help="forward-KL steps on teacher samples first (default none)")
    distill.add_argument("--warm-start-samples", type=int,
                         default=distillation.WARM_START_SAMPLES)
    distill.add_argument("--forward-kl-weight", type=float, default=0.0,
                         help="weight of a forward-KL term in every step, on teacher samples "
                              "(default 0: the reverse KL alone; see the README)")
    distill.add_argument("--forward-kl-samples", type=int,
                         default=distillation.FORWARD_KL_SAMPLES,
                         help="teacher samples the forward-KL term draws from")
    distill.add_argument("--decay", default="constant", choices=DECAYS,
                         help="learning-rate schedule of the steps: constant, or cosine, "
                              "annealed to 0 over the budget (default constant)")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--samples", type=int, default=2000, help="samples for the plots")
    distill.add_argument("--no-evaluate", action="store_true",
                         help="skip the student's test log-likelihood (sequential)")
    distill.add_argument("--data-dir")
    distill.add_argument("--verbose", type=int, default=1, choices=(0, 1))


# The `make_flow` options that `fit` and `distill` take from the command line.
_FLOW_OPTIONS = ("num_flows", "hidden_units", "transform", "transform_units", "dropout")


def _flow_options(args: argparse.Namespace) -> dict:
    """The flow options given on the command line (a flow's own defaults for the rest)."""
    return {name: getattr(args, name) for name in _FLOW_OPTIONS
            if getattr(args, name, None) is not None}


def _distill(args: argparse.Namespace) -> dict:
    from tfp_tnaf import runs

    options = _flow_options(args)
    max_time = 60.0 if args.max_time is None and args.steps is None else args.max_time
    return runs.distill(runs.DistillConfig(
        run=args.run, out=args.out, student=args.student, options=options, max_time=max_time,
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
        global_clipnorm=args.global_clipnorm, warm_start_steps=args.warm_start_steps,
        warm_start_samples=args.warm_start_samples, forward_kl_weight=args.forward_kl_weight,
        forward_kl_samples=args.forward_kl_samples, decay=args.decay, seed=args.seed,
        samples=args.samples,
        evaluate=not args.no_evaluate, data_dir=args.data_dir, verbose=args.verbose))


def _fit(args: argparse.Namespace) -> dict:
    from tfp_tnaf import runs

    options = _flow_options(args)
    epochs = args.epochs if args.epochs is not None else (
        DEFAULT_EPOCHS if args.max_time is None else UNBOUNDED_EPOCHS)
    return runs.fit(runs.FitConfig(
        data=args.data, data_dir=args.data_dir, flow=args.flow, options=options,
        epochs=epochs, max_time=args.max_time, batch_size=args.batch_size, learning_rate=args.lr,
        global_clipnorm=args.global_clipnorm, decay=args.decay, seed=args.seed,
        samples=args.samples, out=args.out,
        jit=args.jit, verbose="auto" if args.verbose else 0, strategy=args.strategy,
        **({} if args.steps_per_execution is None
           else dict(steps_per_execution=args.steps_per_execution)),
        peer_timeout=args.peer_timeout, data_key=args.data_key,
        drop_nonfinite=args.drop_nonfinite, restart=args.restart, tensorboard=args.tensorboard))


def _evaluate(args: argparse.Namespace) -> dict:
    from tfp_tnaf import runs

    result = runs.evaluate(args.run, args.data_dir)
    print(f"{result['flow']} on {result['data']}: test log-likelihood "
          f"{result['test_log_likelihood']:.4f} +- {result['test_log_likelihood_stderr']:.4f} "
          f"nats ({result['num_points']} points)")
    if result.get("student"):
        print("(a distilled student: it samples in one pass, but its density is scored "
              "sequentially, D steps per layer)")
    return result


def _sample(args: argparse.Namespace) -> None:
    import numpy as np

    from tfp_tnaf import runs

    if not args.output.endswith(".npy"):
        raise runs.RunError(f"--output must be a .npy file; got {args.output!r}")
    from tfp_tnaf.files import atomic_path

    samples = runs.sample(args.run, args.num_samples, args.seed)
    with atomic_path(args.output) as temporary:
        np.save(temporary, samples)
    print(f"wrote {len(samples)} samples of {args.run} (standardised units) to {args.output}")


def _shows_tensorflow_logs(argv: list[str]) -> bool:
    """Whether `argv` asks for `--verbose 2`, read before the parser exists (building
    it imports TensorFlow)."""
    for i, word in enumerate(argv):
        if (word == "--verbose" and argv[i + 1:i + 2] == ["2"]) or word == "--verbose=2":
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not _shows_tensorflow_logs(argv):
        quiet_tensorflow()  # before TensorFlow is imported; TF_CPP_MIN_LOG_LEVEL, if set, wins
    parser = _parser()
    commands = {"fit": _fit, "evaluate": _evaluate, "sample": _sample, "distill": _distill}
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
        argv = ["fit", *argv]  # `fit` is the default command
    args = parser.parse_args(argv)
    from tfp_tnaf.runs import RunError

    try:
        commands[args.command](args)
    except RunError as error:
        parser.exit(2, f"tfp-tnaf: error: {error}\n")
