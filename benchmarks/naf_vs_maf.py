"""NAF against TFP's MAF of similar size at D=43: train step and sampling time.

    python -m benchmarks.naf_vs_maf [--event-size 43] [--batch-size 512] [--samples 1000]

Prints a markdown table with the ratio NAF / MAF (the machines are noisy, so
compare the ratios).
"""

from __future__ import annotations

import argparse

import tensorflow as tf
import tensorflow_probability as tfp

from benchmarks.common import count_parameters, maf, markdown_table, time_call, train_step_fn
from tfp_tnaf import NeuralAutoregressive

tfd = tfp.distributions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--event-size", type=int, default=43)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    d = args.event_size
    tf.random.set_seed(0)
    flows = {
        "NAF (DSF, d=16, MADE 2x512)": NeuralAutoregressive(d, transform_units=16,
                                                            hidden_units=[512, 512]),
    }
    naf_size = count_parameters(flows["NAF (DSF, d=16, MADE 2x512)"])
    # Pick MAF's hidden width so that its five layers have about NAF's size.
    width = 64
    while count_parameters(maf(d, hidden_units=(width + 16, width + 16))) < naf_size:
        width += 16
    flows[f"MAF (5 layers, MADE 2x{width})"] = maf(d, hidden_units=(width, width))
    base = tfd.Sample(tfd.Normal(0.0, 1.0), [d])
    batch = tf.random.normal([args.batch_size, d])
    rows, times = [], {}
    for name, bijector in flows.items():
        dist = tfd.TransformedDistribution(base, bijector)
        step = time_call(train_step_fn(dist, batch), repeats=args.repeats)
        sample = tf.function(lambda dist=dist: dist.sample(args.samples, seed=1))
        sampling = time_call(sample, repeats=max(1, args.repeats // 2))
        times[name] = (step, sampling)
        rows.append([name, count_parameters(bijector), step * 1e3, sampling])
    naf_name, maf_name = list(flows)
    rows.append(["ratio NAF / MAF", "", times[naf_name][0] / times[maf_name][0],
                 times[naf_name][1] / times[maf_name][1]])
    print(f"D={d}, batch {args.batch_size}, {args.samples} samples, tf.function, "
          f"device {tf.config.list_logical_devices()[-1].device_type}")
    print(markdown_table(["flow", "parameters", "train step (ms)",
                          f"{args.samples} samples (s)"], rows))


if __name__ == "__main__":
    main()
