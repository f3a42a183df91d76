"""T-NAF against NAF, B-NAF and TFP's MAF: parameters, sampling, train-step speed, MINIBOONE.

    python -m benchmarks.tnaf [--sections params,sampling,flows,speed,quality] [--quick]
                              [--run RUN_FOLDER ...]

Every section prints a markdown table. Times are medians of repeated calls
after a warm-up (tracing / compiling excluded); ratios are within one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from benchmarks.common import (
    count_parameters,
    maf,
    markdown_table,
    matmul_gflops,
    time_call,
    train_step_fn,
)
from benchmarks.common import flops as count_flops
from tfp_tnaf import NeuralAutoregressive, TransformerAutoregressive
from tfp_tnaf.data import miniboone
from tfp_tnaf.models import FLOWS as REGISTRY
from tfp_tnaf.models import make_flow
from tfp_tnaf.runs import restore
from tfp_tnaf.training import fit_steps, mean_log_prob

tfd = tfp.distributions


def naf_paper_size(event_size: int) -> tf.Module:
    """NAF with a DSF of 16 units and a 2 x 512 MADE (one flow)."""
    return NeuralAutoregressive(event_size, transform_units=16, hidden_units=[512, 512])


def tnaf(event_size: int) -> tf.Module:
    """The default T-NAF: the registry's two layers of one block, reversed between."""
    return make_flow("tnaf", event_size)


def bnaf(event_size: int) -> tf.Module:
    """B-NAF: two flows of 16 hidden values per dimension, 2 hidden layers."""
    return make_flow("bnaf", event_size, num_flows=2, transform_units=16)


# name -> (builder, registry flow whose training recipe it uses) for the flows compared.
FLOWS = {
    "T-NAF (2 flows, default)": (tnaf, "tnaf"),
    "NAF (DSF 16, MADE 2x512)": (naf_paper_size, "naf"),
    "B-NAF (2 flows, 16/dim)": (bnaf, "bnaf"),
    "MAF (5 layers, MADE 2x512)": (maf, "maf"),
}


def normal_base(d: int) -> tfd.Distribution:
    return tfd.Sample(tfd.Normal(0.0, 1.0), [d])


def section_params(args) -> None:
    rows = []
    for d in (6, 8, 21, 43, 63):
        default = count_parameters(tnaf(d))
        paper = count_parameters(TransformerAutoregressive.paper(d))
        naf_default = count_parameters(make_flow("naf", d))
        naf_large = count_parameters(naf_paper_size(d))
        rows.append([d, default, paper, naf_default, naf_large, count_parameters(bnaf(d)),
                     naf_default / default])
    print("\n### Parameters (variables' sizes; MADE and B-NAF count their masked zeros)\n")
    print(markdown_table(["D", "T-NAF (default)", "T-NAF (paper)", "NAF (make_flow default)",
                          "NAF (DSF 16, MADE 2x512)", "B-NAF (2 flows, 16/dim)",
                          "NAF default / T-NAF default"], rows))


def section_sampling(args) -> None:
    n = 1000 if args.quick else 10_000
    rows = []
    for d in (43, 63):
        for name, build in (("T-NAF default", tnaf),
                            ("T-NAF paper", TransformerAutoregressive.paper)):
            flow = build(d)
            z, y = tf.random.normal([n, d]), tf.random.normal([n, d])
            dist = tfd.TransformedDistribution(normal_base(d), flow)
            log_prob = tf.function(lambda y=y, dist=dist: dist.log_prob(y))
            # Each layer's forward is its cached decoding (`solve_forward`).
            cached = tf.function(lambda z=z, flow=flow: flow.forward(z))
            t_lp = time_call(log_prob, repeats=3)
            t_cached = time_call(cached, repeats=2)
            rows.append([name, d, t_lp, t_cached, t_cached / t_lp])
    print(f"\n### T-NAF: sampling {n} points (cached decoding) vs log_prob on {n} points "
          "(seconds, tf.function, initial weights)\n")
    print(markdown_table(["flow", "D", "log_prob", "sample", "sample / log_prob"], rows))
    if args.run:
        _trained_sampling(args.run, n, args.data_dir)


def _trained_sampling(runs: list[str], n: int, data_dir: str | None) -> None:
    """The same timing for the flows of `tfp-tnaf fit` run folders (trained
    weights), with the round trip of the samples back to their noise."""
    rows = []
    for run in runs:
        config, dist = restore(run, data_dir)
        z = dist.distribution.sample(n, seed=1)
        forward = tf.function(lambda z=z, dist=dist: dist.bijector.forward(z))
        y = forward()
        log_prob = tf.function(lambda y=y, dist=dist: dist.log_prob(y))
        t_lp, t_sample = time_call(log_prob, repeats=3), time_call(forward, repeats=2)
        error = float(tf.reduce_max(tf.abs(dist.bijector.inverse(y) - z)))
        rows.append([run, config["flow"], z.shape[-1], t_lp, t_sample, t_sample / t_lp, error])
    print(f"\n### Trained flows: sampling {n} points vs log_prob on them (seconds)\n")
    print(markdown_table(["run", "flow", "D", "log_prob", "sample", "sample / log_prob",
                          "max |inverse(sample) - noise|"], rows))


def section_flows(args) -> None:
    d, batch_size, n = 43, 512, 1000
    batch = tf.random.normal([batch_size, d])
    rows, maf_times = [], None
    for name, (build, _) in reversed(FLOWS.items()):  # MAF first: the reference
        dist = tfd.TransformedDistribution(normal_base(d), build(d))
        step = time_call(train_step_fn(dist, batch), repeats=3)
        log_prob = time_call(tf.function(lambda dist=dist: dist.log_prob(batch)), repeats=3)
        sample = time_call(tf.function(lambda dist=dist: dist.sample(n, seed=1)), repeats=2)
        maf_times = maf_times or (step, log_prob, sample)
        rows.append([name, count_parameters(dist), step * 1e3, step / maf_times[0],
                     log_prob * 1e3, sample, sample / maf_times[2]])
    print(f"\n### Flows at D={d}: train step (batch {batch_size}), log_prob (batch "
          f"{batch_size}), {n} samples; tf.function\n")
    print(markdown_table(["flow", "parameters", "train step (ms)", "step / MAF",
                          "log_prob (ms)", f"{n} samples (s)", "sampling / MAF"], rows[::-1]))


def _speed_rows(name: str, flow: tf.Module, batch: tf.Tensor, peak: float) -> list[list]:
    """Eager, tf.function and XLA train steps of `flow`, against the matmul rate."""
    dist = tfd.TransformedDistribution(normal_base(batch.shape[-1]), flow)
    variables = flow.trainable_variables

    def loss_and_grads(y):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(y))
        return tape.gradient(loss, variables)

    flops = count_flops(loss_and_grads, tf.TensorSpec(batch.shape, batch.dtype))
    rows = []
    for mode, kwargs in (("eager", dict(compiled=False)), ("tf.function", {}),
                         ("XLA", dict(jit_compile=True))):
        step = time_call(train_step_fn(dist, batch, **kwargs), repeats=3 if kwargs else 2)
        rows.append([name, f"{flops / 1e9:.3f}", mode, step * 1e3, flops / step / 1e9,
                     flops / step / 1e9 / peak])
    return rows


def section_speed(args) -> None:
    d, batch_size, size = 43, 512, 4096
    batch = tf.random.normal([batch_size, d])
    peak = matmul_gflops(size, repeats=3)
    rows = []
    for name, build in (("T-NAF default", tnaf),
                        ("T-NAF paper", TransformerAutoregressive.paper)):
        rows += _speed_rows(name, build(d), batch, peak)
    print(f"\n### T-NAF train step, D={d}, batch {batch_size} (float32 matmul {size}^3: "
          f"{peak:.1f} GFLOP/s, measured in this run)\n")
    print(markdown_table(["flow", "GFLOP per forward+backward", "mode", "step (ms)",
                          "GFLOP/s", "fraction of matmul"], rows))


def section_quality(args) -> None:
    splits = miniboone(seed=0)
    train, test = splits.train, splits.test
    d = train.shape[1]
    steps = args.epochs * int(np.ceil(len(train) / args.batch_size))
    rows = []
    for name, (build, flow) in FLOWS.items():
        tf_keras.utils.set_random_seed(0)
        bijector = build(d)
        dist = tfd.TransformedDistribution(normal_base(d), bijector)
        recipe = REGISTRY[flow].recipe
        start = time.perf_counter()
        losses, _ = fit_steps(dist, train, steps, recipe.optimizer(),
                              batch_size=args.batch_size, seed=0)
        seconds = time.perf_counter() - start
        mean, stderr = mean_log_prob(dist, test)
        rows.append([name, count_parameters(bijector), f"{mean:.2f} +- {stderr:.2f}",
                     f"{losses[-20:].mean():.2f}", recipe.learning_rate, f"{seconds:.0f}"])
    print(f"\n### MINIBOONE test log-likelihood, {args.epochs} epochs ({steps} steps), batch "
          f"{args.batch_size} (trained on {len(train)} rows of the validation split only: "
          "NOT comparable with published numbers, e.g. MAF(5) -11.75, NAF -8.86, "
          "B-NAF -8.95)\n")
    print(markdown_table(["flow", "parameters", "test LL (nats)", "final train NLL",
                          "learning rate", "train time (s)"], rows))


SECTIONS = {"params": section_params, "sampling": section_sampling, "flows": section_flows,
            "speed": section_speed, "quality": section_quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--run", action="append", default=[],
                        help="sampling: also time the flow of this `tfp-tnaf fit` run folder "
                             "(repeatable)")
    parser.add_argument("--data-dir", default=None, help="the runs' data folder")
    args = parser.parse_args()
    print(f"device: {tf.config.list_logical_devices()[-1]}")
    for name in args.sections.split(","):
        start = time.perf_counter()
        SECTIONS[name](args)
        print(f"\n({name}: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
