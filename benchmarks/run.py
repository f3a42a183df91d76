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
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from benchmarks.common import markdown_table, time_call, train_step_fn
from tfp_tnaf import data
from tfp_tnaf.comparison import FlowSpec, compare_flows
from tfp_tnaf.models import make_distribution, make_flow

tfd = tfp.distributions

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
            chosen = {name: FlowSpec.named(flow, d, num_examples=len(splits.train), **options)
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


def _peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux's `VmHWM`), in MB; NaN elsewhere.

    Not `ru_maxrss`: Linux keeps that across `execve`, so a fresh child process
    would report at least its parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return float("nan")


def speed_row(name: str, flow: str, options: dict, d: int, repeats: int) -> dict:
    """Times one flow at batch 512 and reads its peak memory; run it in a fresh
    process (`speed_row_in_subprocess`), where the memory is this flow's alone.

    The memory is, on a GPU, the most its allocator held; on the CPU, how far
    the flow's training steps, log_prob and sampling raised the process's peak
    resident set above that of a warmed-up TensorFlow (tracing and XLA's
    compilation included). TensorFlow's CPU allocator statistics are no
    measure: with oneDNN they leave out small tensors, without it there are none.
    """
    tf.random.set_seed(0)
    batch = tf.random.normal([512, d])
    for jit_compile in (False, True):  # the runtime's own first-use costs, before the flow
        tf.function(lambda: tf.reduce_sum(tf.tanh(batch @ tf.transpose(batch))),
                    jit_compile=jit_compile)()
    gpu = bool(tf.config.list_logical_devices("GPU"))
    before = _peak_rss_mb()
    dist = make_distribution(make_flow(flow, d, **options), d)
    steps = [time_call(train_step_fn(dist, batch, **kw), repeats=repeats)
             for kw in (dict(compiled=False), {}, dict(jit_compile=True))]
    log_prob = time_call(tf.function(lambda: dist.log_prob(batch)), repeats)
    sample = time_call(tf.function(lambda: dist.sample(1000, seed=1)), repeats)
    peak = (tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if gpu
            else _peak_rss_mb() - before)
    return dict(dims=d, flow=name, eager_ms=steps[0] * 1e3, graph_ms=steps[1] * 1e3,
                xla_ms=steps[2] * 1e3, log_prob_per_s=512 / log_prob,
                samples_per_s=1000 / sample, peak_mb=peak,
                memory="GPU allocator peak" if gpu else "peak resident set growth")


_CHILD = ("import json, sys\nfrom benchmarks.run import speed_row\n"
          "print(json.dumps(speed_row(*json.loads(sys.argv[1]))))")


def speed_row_in_subprocess(*args) -> dict:
    """`speed_row(*args)` in a fresh Python process: a process's peak memory only
    grows, so in one process shared by the flows it would tell nothing per flow."""
    result = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], cwd=REPOSITORY,
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the speed run of {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed(args) -> tuple[list[dict], str]:
    rows, lines = [], []
    specs = flow_specs(args.quick)
    repeats = 2 if args.quick else 5
    for d in args.dims:
        table = []
        for name, (n, o) in specs.items():
            if name not in args.flows or (n == "realnvp" and d < 2):
                continue
            row = speed_row_in_subprocess(name, n, o, d, repeats)
            rows.append(row)
            reference = next(r for r in rows if r["dims"] == d)  # the first flow: MAF
            table.append([name, row["eager_ms"], row["graph_ms"], row["xla_ms"],
                          row["graph_ms"] / reference["graph_ms"], row["log_prob_per_s"],
                          row["samples_per_s"], reference["samples_per_s"] / row["samples_per_s"],
                          row["peak_mb"]])
        lines += [f"\n#### D={d}, batch 512\n", markdown_table(
            ["flow", "eager step (ms)", "tf.function step (ms)", "XLA step (ms)",
             "step / MAF", "log_prob points/s", "samples/s", "sampling time / MAF",
             "peak memory (MB)"], table)]
    lines.append("\nPeak memory: each flow is measured in a fresh process; on a GPU the most "
                 "its allocator held, on the CPU how far the flow raised the process's peak "
                 "resident set above a warmed-up TensorFlow's (`speed_row`).")
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
