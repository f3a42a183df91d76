"""Flows compared at equal wall-clock: every flow trains for the same seconds.

    python -m benchmarks.equal_time --out benchmarks/results/equal-time   # the full run
    python -m benchmarks.equal_time --quick --out /tmp/et                 # a smoke run
    python -m benchmarks.equal_time --datasets miniboone,bsds300 --seconds 120 \\
        --variants ablation --out /tmp/ablation                          # T-NAF ablation

Each flow is built by `make_flow` with its registry options for the training
set's size (`num_examples`: T-NAF drops its dropout from `LARGE_DATA` rows on;
the ablation's rows build the options they name instead), trained with
`FlowModel.fit` by its registry recipe (`FLOWS[name].recipe`) under a
`TimeBudget` of the data set's seconds (tracing counts, validation does not),
its learning rate annealed to 0 over those seconds (`DecayOverBudget`; `--decay
constant` keeps it fixed), and keeps its best-validation weights (`BestWeights`, fed by the budget's
validation trace every `--record-every` seconds as well as at the end of each
epoch); MAF's batch normalisations then take the training set's statistics
(`set_batch_norm_statistics`, the MAF recipe) before the test. Every flow gets
the same batch size, the same data and the same execution mode (tf.function;
`--jit` compiles every flow with XLA instead), with `--steps-per-execution`
train steps per call of the compiled step (default
`tfp_tnaf.training.STEPS_PER_EXECUTION`, as `tfp-tnaf fit`; 1, Keras' own,
before 2026-12-06).

For each run the table gives the test log-likelihood +- standard error over
test points, parameters, forward FLOPs per point (TensorFlow's cost model of
`log_prob`), train steps done, milliseconds per step, and when the best
validation came; one plot per data set draws the validation NLL against
seconds. The float32 matmul rate of the machine is measured in the same run,
so each flow's achieved GFLOP/s (3x the forward FLOPs per step) can be read
against it.

Writes `results.json` (after every run, so a stopped run keeps what it did),
`results.md` and `validation-DATASET.png` to `--out`; `--report A,B` writes the
last two for several runs' `results.json` together (runs on separate cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras

from benchmarks.common import forward_flops_per_point, markdown_table, matmul_gflops
from benchmarks.run import load_dataset
from tfp_tnaf import checks
from tfp_tnaf.baselines import set_batch_norm_statistics
from tfp_tnaf.bijectors.transformer_autoregressive import PAPER
from tfp_tnaf.models import (
    FLOWS,
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
    TimeBudget,
    mean_log_prob,
)

# The budgets: seconds of training per flow and data set.
SECONDS = {"moons": 60, "siggraph": 60, "miniboone": 300, "bsds300": 300, "digits": 300}
FLOW_NAMES = ("tnaf", "tnaf-paper", "naf", "bnaf", "maf", "realnvp")

# The T-NAF ablation: one change at a time, from the paper's configuration and
# recipe to the default, then candidates tried and not kept. Each entry: (label,
# registry flow, options over the registry's, recipe overrides: `learning_rate`,
# `global_clipnorm`, `decay`). Rows 5-16 were measured on the one-layer default
# of two blocks (`_ONE_LAYER`, the default until 2026-12-06), rows 5-18 on the
# monotone network (`_NETWORK`, the default transform before the DSF), and
# keep them. Rows 20 and 21 are the registry's T-NAF below and from
# `tfp_tnaf.models.LARGE_DATA` training rows (dropout 0.05 and 0).
_LOW_RANK = dict(hypernetwork="low-rank", transform_units=32, psi_units=32, head_units=64)
_SMALL_BLOCKS = dict(_LOW_RANK, num_layers=2, num_heads=1)
_NETWORK = dict(transform="network", transform_units=32)  # the default transform before the DSF
_ONE_LAYER = dict(_NETWORK, num_flows=1, num_layers=2)
_TWO_LAYERS = dict(_NETWORK, num_flows=2, num_layers=1)
_DSF = dict(_TWO_LAYERS, transform="dsf")  # rows give its sigmoids (`transform_units`)


def _one_layer(**options):
    return dict(_ONE_LAYER, **options)


ABLATION = (
    ("paper (official configuration and recipe)", "tnaf-paper", {}, {}),
    ("+ low-rank hypernetwork (base per dimension + psi U)", "tnaf-paper",
     dict(hypernetwork="low-rank"), {}),
    ("+ monotone network H=32, psi 32, head 64", "tnaf-paper", _LOW_RANK, {}),
    ("+ 2 blocks of 1 head (width 16)", "tnaf-paper", _SMALL_BLOCKS, {}),
    ("+ learning rate 1e-2", "tnaf-paper", _SMALL_BLOCKS, dict(learning_rate=1e-2)),
    ("+ width 32, 2 heads", "tnaf", _one_layer(dropout=0.0), {}),
    ("+ dropout 0.05 (one layer of 2 blocks)", "tnaf", _one_layer(), {}),
    ("one layer, linear token embedding", "tnaf", _one_layer(token_activation="linear"), {}),
    ("one layer, dropout 0.1", "tnaf", _one_layer(dropout=0.1), {}),
    ("one layer, no clipping (global norm 1e6)", "tnaf", _one_layer(),
     dict(global_clipnorm=1e6)),
    ("one layer, constant learning rate (no decay over the budget)", "tnaf", _one_layer(),
     dict(decay="constant")),
    ("one layer, monotone network H=16", "tnaf", _one_layer(transform_units=16), {}),
    ("one layer, tanh in the transformer's MLPs", "tnaf", _one_layer(mlp_activation="tanh"),
     {}),
    ("one layer, 1 transformer block", "tnaf", _one_layer(num_layers=1), {}),
    ("one layer, 3 transformer blocks", "tnaf", _one_layer(num_layers=3), {}),
    ("one layer, width 48, 3 heads", "tnaf", _one_layer(embedding_units=48, num_heads=3), {}),
    ("one layer, MLP width 128", "tnaf", _one_layer(mlp_units=128), {}),
    ("+ two layers of 1 block, reversed between", "tnaf", _TWO_LAYERS, {}),
    ("two layers, dropout 0", "tnaf", dict(_TWO_LAYERS, dropout=0.0), {}),
    ("two layers, DSF transform of 16 sigmoids", "tnaf", dict(_DSF, transform_units=16), {}),
    ("+ DSF of 32 sigmoids = default (`tnaf`)", "tnaf", dict(_DSF, transform_units=32), {}),
    ("default, dropout 0", "tnaf", dict(_DSF, transform_units=32, dropout=0.0), {}),
)


# Registry options replaced on 2-D data. MAF's batch normalisation there holds a
# thin dimension at a variance of 0.004-0.05, and one Two Moons test point then
# scores about -4e5 (the mean -89 to -108). Without it MAF is outlier-free, at
# some cost on siggraph (60 s, seed 0, 2026-12-06: moons -2.259 against -108.2,
# siggraph -2.676 against -2.528).
TWO_DIMENSIONAL = {"maf": dict(batch_norm=False)}


def variants(kind: str, flows: list[str], rows: list[int] | None = None,
             dims: int | None = None) -> list[tuple[str, str, dict, dict]]:
    """The runs of one data set of `dims` dimensions: the registry flows (with
    `TWO_DIMENSIONAL`'s options on 2-D data), or the T-NAF ablation (its `rows`,
    by index; default all)."""
    if kind == "ablation":
        return [ABLATION[i] for i in (range(len(ABLATION)) if rows is None else rows)]
    runs = []
    for name in flows:
        options = TWO_DIMENSIONAL.get(name, {}) if dims == 2 else {}
        label = FLOWS[name].label + "".join(f", {k}={v}" for k, v in options.items())
        runs.append((label, name, options, {}))
    return runs


def train(flow: str, options: dict, overrides: dict, splits, seconds: float, args) -> dict:
    """One flow trained for `seconds`; its figures and validation trace."""
    optimizer = dict(overrides)
    decay = optimizer.pop("decay", args.decay)
    tf_keras.utils.set_random_seed(args.seed)
    d = splits.train.shape[1]
    # The registry's flows take their defaults for the data's size; the ablation's
    # rows are the options they name.
    num_examples = len(splits.train) if args.variants == "flows" else None
    distribution = make_distribution(make_flow(flow, d, num_examples=num_examples,
                                               **options), d)
    model = FlowModel(distribution)
    model.compile(FLOWS[flow].recipe.optimizer(**optimizer), jit_compile=args.jit,
                  steps_per_execution=args.steps_per_execution)
    best = BestWeights()
    budget = TimeBudget(seconds, validation_data=(splits.validation,),
                        record_every=args.record_every, best=best)
    schedule = [DecayOverBudget(budget)] if decay == "cosine" else []
    start = time.perf_counter()
    model.fit(splits.train, validation_data=(splits.validation,), epochs=10**6,
              batch_size=args.batch_size, callbacks=[best, budget, *schedule], verbose=0)
    wall = time.perf_counter() - start
    set_batch_norm_statistics(distribution.bijector, splits.train)  # MAF's; others: no-op
    test, stderr = mean_log_prob(distribution, splits.test)
    best_time = seconds_at(best.best_step, budget.trace)
    recipe = dataclasses.asdict(FLOWS[flow].recipe)
    return dict(flow=flow, options=options,
                architecture=resolved_options(flow, num_examples, **options),
                recipe=dict(recipe, **optimizer, decay=decay),
                parameters=count_parameters(distribution),
                flops_per_point=forward_flops_per_point(distribution, d), steps=budget.steps,
                train_seconds=budget.seconds, wall_seconds=wall,
                seconds_per_step=budget.seconds / max(budget.steps, 1),
                best_step=best.best_step, best_seconds=best_time,
                best_validation_nll=best.best_value, test_ll=test, test_stderr=stderr,
                diverged=best.stopped_non_finite, trace=budget.trace)


def seconds_at(step: int | None, trace: list[dict]) -> float | None:
    """The training seconds at which `step` ended, read off the trace (linear
    between its records, which come every few seconds): the best weights may
    come from Keras' validation at an epoch's end, between two records."""
    if step is None or not trace:
        return None
    return float(np.interp(step, [0] + [t["steps"] for t in trace],
                           [0.0] + [t["seconds"] for t in trace]))


def table(rows: list[dict], matmul: float, batch_size: int) -> str:
    """One markdown table per data set."""
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        body = []
        for r in (r for r in rows if r["dataset"] == dataset):
            # forward + backward ~ 3x the forward pass.
            gflops = 3 * r["flops_per_point"] * batch_size / r["seconds_per_step"] / 1e9
            when = seconds_at(r["best_step"], r["trace"])
            best = "-" if when is None else f"{when:.0f} (step {r['best_step']})"
            body.append([r["label"], f"{r['test_ll']:.3f} +- {r['test_stderr']:.3f}",
                         f"{r['parameters']:,}", f"{r['flops_per_point'] / 1e6:.3g}",
                         r["steps"], f"{r['seconds_per_step'] * 1e3:.1f}", best,
                         f"{gflops:.1f} ({gflops / matmul:.0%})"])
        first = next(r for r in rows if r["dataset"] == dataset)
        lines += [f"\n#### {dataset} (D={first['dims']}, {first['budget']:.0f} s each)\n",
                  markdown_table(["flow", "test log-likelihood", "parameters",
                                  "forward MFLOP / point", "steps", "ms / step",
                                  "best validation at (s)", "GFLOP/s (of matmul)"], body)]
    return "\n".join(lines)


def plot(rows: list[dict], dataset: str, path: str) -> None:
    """Validation NLL against seconds of training, one line per flow."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    values = []
    for r in (r for r in rows if r["dataset"] == dataset):
        trace = [(t["seconds"], t["validation_nll"]) for t in r["trace"]
                 if np.isfinite(t["validation_nll"])]
        if trace:
            ax.plot(*zip(*trace, strict=True), label=r["label"], marker=".", markersize=3)
            values += [v for _, v in trace]
    if values:  # the axis follows the best runs, not a diverging start
        low, high = np.percentile(values, [0, 60])
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))
    ax.set(xlabel="training seconds", ylabel="validation NLL (nats)",
           title=f"{dataset}: equal wall-clock")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="equal-time-results")
    parser.add_argument("--datasets", default=",".join(SECONDS))
    parser.add_argument("--flows", default=",".join(FLOW_NAMES))
    parser.add_argument("--variants", choices=("flows", "ablation"), default="flows")
    parser.add_argument("--rows", help="with --variants ablation: the ablation's rows to "
                                       "run, comma-separated indices from 0 (default all)")
    parser.add_argument("--seconds", type=float, help="one budget for every data set "
                                                      "(default: the issue's, per data set)")
    parser.add_argument("--record-every", type=float, default=10.0)
    parser.add_argument("--decay", choices=DECAYS, default="cosine",
                        help="every flow's learning-rate schedule: cosine annealing to 0 "
                             "over its budget (`DecayOverBudget`), or constant")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bsds300-train", type=int, default=100_000)
    parser.add_argument("--max-eval", type=int, default=5000,
                        help="cap on validation and test rows")
    parser.add_argument("--jit", action="store_true",
                        help="compile every flow's train step with XLA (compiling counts)")
    parser.add_argument("--steps-per-execution", type=int, default=STEPS_PER_EXECUTION,
                        help="train steps per call of the compiled step, every flow "
                             "(default: the CLI's)")
    parser.add_argument("--threads", type=int, help="TensorFlow's intra- and inter-op threads "
                                                    "(default: TensorFlow's choice)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2-D data, 5 s per flow")
    parser.add_argument("--report", help="no training: the tables and plots of these "
                                         "results.json files (comma-separated), together")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seconds, args.record_every = "moons", args.seconds or 5.0, 2.0
    args.datasets, args.flows = args.datasets.split(","), args.flows.split(",")
    args.rows = None if args.rows is None else [int(i) for i in args.rows.split(",")]
    try:
        checks.positive_int(args.steps_per_execution, "--steps-per-execution")
    except ValueError as error:
        parser.error(str(error))
    return args


def report(runs: list[dict], out: str) -> str:
    """`results.md` and the plots of one or more runs' `results.json` contents."""
    # A run compiled with XLA (`--jit`) labels its rows so, beside the same
    # flows' rows from a run without it.
    rows = [dict(row, label=row["label"] + (", XLA" if run["jit"] else ""))
            for run in runs for row in run["rows"]]
    lines = ["# Equal wall-clock\n"]
    for run in runs:
        lines.append(f"- `{run['command']}`: {run['device']} ({run['cpus']} CPUs, "
                     f"{run['threads'] or 'default'} TF threads), float32 matmul "
                     f"{run['matmul_gflops']:.1f} GFLOP/s, XLA {'on' if run['jit'] else 'off'}, "
                     f"{run.get('decay', 'constant')} learning rate, "
                     f"batch {run['batch_size']}, "
                     f"{run.get('steps_per_execution', 1)} steps per execution, "
                     f"seed {run['seed']}, "
                     f"{run.get('total_seconds', float('nan')):.0f} s in all")
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        plot(rows, dataset, os.path.join(out, f"validation-{dataset}.png"))
    text = "\n".join(lines) + "\n" + table(rows, runs[0]["matmul_gflops"],
                                          runs[0]["batch_size"]) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    return text


def run(args, argv) -> dict:
    """Trains every variant on every data set; writes `results.json` as it goes."""
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    start = time.perf_counter()
    result = dict(device=tf.config.list_logical_devices()[-1].name,
                  cpus=len(os.sched_getaffinity(0)), threads=args.threads,
                  machine=platform.processor() or platform.machine(),
                  matmul_gflops=matmul_gflops(), jit=args.jit, decay=args.decay,
                  batch_size=args.batch_size, steps_per_execution=args.steps_per_execution,
                  seed=args.seed, paper=PAPER,
                  command=" ".join(["python -m benchmarks.equal_time", *argv]), rows=[])
    for dataset in args.datasets:
        seconds = args.seconds or SECONDS[dataset]
        splits = load_dataset(dataset, args.seed, args.bsds300_train if dataset == "bsds300"
                              else None, args.max_eval)
        dims = splits.train.shape[1]
        for label, flow, options, optimizer in variants(args.variants, args.flows, args.rows,
                                                         dims):
            row = train(flow, options, optimizer, splits, seconds, args)
            row.update(dataset=dataset, label=label, dims=dims, budget=seconds)
            result["rows"].append(row)
            result["total_seconds"] = time.perf_counter() - start
            print(f"{dataset} {label}: test {row['test_ll']:.3f}, {row['steps']} steps, "
                  f"{row['seconds_per_step'] * 1e3:.1f} ms/step", flush=True)
            with open(os.path.join(args.out, "results.json"), "w") as f:
                json.dump(result, f, indent=1, default=float)
    return result


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _arguments(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.report:
        runs = []
        for path in args.report.split(","):
            with open(path) as f:
                runs.append(json.load(f))
    else:
        runs = [run(args, argv)]
    print(report(runs, args.out))


if __name__ == "__main__":
    main()
