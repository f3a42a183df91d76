"""The benchmark suite: likelihood and parameter efficiency per data set, and speed.

    python -m benchmarks.run --quick            # minutes on 2 cores: small data, 1 epoch
    python -m benchmarks.run --out results      # the full comparison (hours on a CPU)

Writes `results.md` (markdown tables), `results.json` and `params_vs_ll.png`
(parameters, log scale, against test log-likelihood per data set, as the T-NAF
paper's Figure 2) to `--out`, and prints the tables. The device TensorFlow
used is recorded; the script runs unchanged on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from benchmarks.common import markdown_table, time_call, train_step_fn
from tfp_tnaf import data
from tfp_tnaf.comparison import FlowSpec, compare_flows
from tfp_tnaf.models import make_distribution, make_flow

tfd = tfp.distributions

# Published test log-likelihoods (nats); our data differ (see the data loaders' docstrings).
PUBLISHED = {"bsds300": "MAF(5) 155.69, NAF 157.73, B-NAF 157.36",
             "miniboone": "MAF(5) -11.75, NAF -8.86, B-NAF -8.95"}


def flow_specs(quick: bool) -> dict[str, tuple[str, dict]]:
    """name -> (registry flow, its `make_flow` options); each trains by its registry recipe."""
    tnaf = dict(num_layers=1) if quick else {}
    return {
        "MAF": ("maf", {}),
        "RealNVP": ("realnvp", {}),
        "NAF-DSF": ("naf", {}),
        "NAF-DDSF": ("naf", dict(transform="ddsf")),
        "B-NAF": ("bnaf", {}),
        "T-NAF": ("tnaf", tnaf),
    }


def load_dataset(name: str, seed: int, max_train: int | None,
                 max_eval: int | None) -> data.Splits:
    """The data set's splits, the training split cut to `max_train` rows and the
    validation and test splits to `max_eval` (None: all)."""
    if name == "bsds300":
        splits = data.bsds300(num_train=min(max_train or 1_000_000, 1_000_000),
                              num_validation=min(max_eval or 50_000, 50_000),
                              num_test=min(max_eval or 250_000, 250_000), seed=seed)
    else:
        splits = data.load(name, seed=seed)
    return data.Splits(splits.train[:max_train], splits.validation[:max_eval],
                       splits.test[:max_eval])


def likelihood(args) -> list[dict]:
    rows = []
    specs = flow_specs(args.quick)
    # Seeds outermost, and the rows so far written after each data set, so that
    # a run stopped early still leaves every data set's first seed.
    for seed in range(args.seeds):
        for dataset in args.datasets:
            splits = load_dataset(dataset, seed, args.max_train, args.max_eval)
            d = splits.train.shape[1]
            chosen = {name: FlowSpec.named(flow, d, **options)
                      for name, (flow, options) in specs.items() if name in args.flows}
            for r in compare_flows(chosen, splits, epochs=args.epochs, patience=args.patience,
                                   batch_size=args.batch_size, seed=seed):
                rows.append(dict(dataset=dataset, flow=r.name, seed=seed, dims=d,
                                 parameters=r.num_parameters, test_ll=r.test_log_likelihood,
                                 test_stderr=r.test_stderr, train_s=r.train_seconds,
                                 sample_s=r.sample_seconds))
            with open(os.path.join(args.out, "likelihood_partial.json"), "w") as f:
                json.dump(rows, f, indent=1)
    return rows


def likelihood_table(rows: list[dict]) -> str:
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        table = []
        for flow in dict.fromkeys(r["flow"] for r in rows if r["dataset"] == dataset):
            runs = [r for r in rows if r["dataset"] == dataset and r["flow"] == flow]
            lls = np.array([r["test_ll"] for r in runs])
            # One seed: the standard error over test points; several: over seeds.
            se = runs[0]["test_stderr"] if len(runs) == 1 else lls.std(ddof=1) / np.sqrt(len(lls))
            table.append([flow, f"{runs[0]['parameters']:,}", f"{lls.mean():.3f} +- {se:.3f}",
                          len(runs), f"{np.mean([r['train_s'] for r in runs]):.1f}",
                          f"{np.mean([r['sample_s'] for r in runs]):.3f}"])
        note = f" (published, other data: {PUBLISHED[dataset]})" if dataset in PUBLISHED else ""
        dims = next(r["dims"] for r in rows if r["dataset"] == dataset)
        header = ["flow", "parameters", "test log-likelihood", "seeds", "train (s)",
                  "1000 samples (s)"]
        lines += [f"\n#### {dataset} (D={dims}){note}\n", markdown_table(header, table)]
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    """One point per flow and seed; a diverged run (a log-likelihood far below
    the others) is counted in the panel's title rather than squashing the axis."""
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig = Figure(figsize=(4 * len(datasets), 3.4))
    for ax, dataset in zip(fig.subplots(1, len(datasets), squeeze=False)[0], datasets,
                           strict=True):
        values = np.array([r["test_ll"] for r in rows if r["dataset"] == dataset])
        finite = values[np.isfinite(values)]
        title = dataset
        if finite.size:
            q1, median, q3 = np.percentile(finite, [25, 50, 75])
            shown = finite[finite >= median - 100 * (q3 - q1 + 1.0)]
            margin = 0.1 * (shown.max() - shown.min() + 1e-9)
            ax.set_ylim(shown.min() - margin, shown.max() + margin)
            off = values.size - shown.size
            title += f" ({off} off-scale or NaN)" if off else ""
        for flow in dict.fromkeys(r["flow"] for r in rows):
            runs = [r for r in rows if r["dataset"] == dataset and r["flow"] == flow]
            if runs:
                ax.scatter([r["parameters"] for r in runs], [r["test_ll"] for r in runs],
                           label=flow)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("parameters")
    fig.axes[0].set_ylabel("test log-likelihood (nats)")
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def speed(args) -> tuple[list[dict], str]:
    rows, lines = [], []
    specs = flow_specs(args.quick)
    repeats = 2 if args.quick else 5
    for d in args.dims:
        batch = tf.random.normal([512, d])
        table, reference = [], None
        for name, (n, o) in specs.items():
            if name not in args.flows or (n == "realnvp" and d < 2):
                continue
            dist = make_distribution(make_flow(n, d, **o), d)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            steps = [time_call(train_step_fn(dist, batch, **kw), repeats=repeats)
                     for kw in (dict(compiled=False), {}, dict(jit_compile=True))]
            log_prob = time_call(
                tf.function(lambda dist=dist, batch=batch: dist.log_prob(batch)), repeats)
            sample = time_call(tf.function(lambda dist=dist: dist.sample(1000, seed=1)), repeats)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if tf.config.list_logical_devices("GPU"):
                peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 1024
            reference = reference or (steps[1], sample)
            row = dict(dims=d, flow=name, eager_ms=steps[0] * 1e3, graph_ms=steps[1] * 1e3,
                       xla_ms=steps[2] * 1e3, log_prob_per_s=512 / log_prob,
                       samples_per_s=1000 / sample, peak_mb=peak / 1024,
                       peak_growth_mb=(peak - before) / 1024)
            rows.append(row)
            table.append([name, row["eager_ms"], row["graph_ms"], row["xla_ms"],
                          steps[1] / reference[0], row["log_prob_per_s"], row["samples_per_s"],
                          sample / reference[1], row["peak_mb"]])
        lines += [f"\n#### D={d}, batch 512\n", markdown_table(
            ["flow", "eager step (ms)", "tf.function step (ms)", "XLA step (ms)",
             "step / MAF", "log_prob points/s", "samples/s", "sampling time / MAF",
             "peak memory (MB)"], table)]
    return rows, "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmark-results")
    parser.add_argument("--datasets", default="moons,siggraph,miniboone,bsds300,digits")
    parser.add_argument("--flows", default=",".join(flow_specs(False)))
    parser.add_argument("--dims", default="8,43,63")
    parser.add_argument("--sections", default="likelihood,speed")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--max-train", type=int, help="cap on training rows per data set")
    parser.add_argument("--max-eval", type=int, help="cap on validation and test rows")
    args = parser.parse_args(argv)
    args.datasets = args.datasets.split(",")
    args.flows = args.flows.split(",")
    args.dims = [int(d) for d in args.dims.split(",")]
    if args.quick:
        args.dims = args.dims[:1]
    args.epochs = args.epochs or (1 if args.quick else 100)
    args.seeds = args.seeds or (1 if args.quick else 3)
    if args.quick:
        args.max_train = args.max_train or 2000
        args.max_eval = args.max_eval or 1000
    args.patience = args.patience if args.patience is not None else (None if args.quick else 10)
    os.makedirs(args.out, exist_ok=True)
    device = tf.config.list_logical_devices()[-1].name
    start = time.perf_counter()
    report = [f"# Benchmark results\n\ndevice: {device}; mode: "
              f"{'quick' if args.quick else 'full'}; epochs {args.epochs}, seeds {args.seeds}, "
              f"patience {args.patience}, batch {args.batch_size}, training rows <= "
              f"{args.max_train or 'all'}, validation/test rows <= {args.max_eval or 'all'}"]
    results = dict(device=device, quick=args.quick)
    if "likelihood" in args.sections:
        rows = likelihood(args)
        results["likelihood"] = rows
        report += ["\n### Test log-likelihood (nats)", likelihood_table(rows)]
        plot(rows, os.path.join(args.out, "params_vs_ll.png"))
    if "speed" in args.sections:
        rows, table = speed(args)
        results["speed"] = rows
        report += ["\n### Speed (ratios against TFP's MAF in the same run)", table]
    report.append(f"\n(total {time.perf_counter() - start:.0f} s)")
    text = "\n".join(report)
    print(text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
