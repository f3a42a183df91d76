"""Training steps per second on one device against MirroredStrategy over several.

    python -m benchmarks.distribute [--devices 2] [--flow tnaf] [--event-size 8]

On a CPU machine the devices are logical CPUs carved out of the one physical
CPU (so the ratio shows the strategy's overhead, not a speed-up); on a GPU
machine they are the GPUs. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import tensorflow as tf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--flow", default="tnaf")
    parser.add_argument("--event-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)

    import numpy as np
    import tf_keras

    from benchmarks.common import markdown_table
    from tfp_tnaf.distribute import make_strategy
    from tfp_tnaf.models import make_distribution, make_flow
    from tfp_tnaf.training import FlowModel

    d = args.event_size
    points = np.random.default_rng(0).normal(size=(args.batch_size * args.steps, d))
    points = points.astype(np.float32)
    rows, reference = [], None
    for name in ("default", "mirrored"):
        strategy = make_strategy(name)
        with strategy.scope():
            model = FlowModel(make_distribution(make_flow(args.flow, d), d))
            model.compile(tf_keras.optimizers.Adam(1e-4))
        model.fit(points[:args.batch_size * 2], batch_size=args.batch_size, verbose=0)  # trace
        start = time.perf_counter()
        model.fit(points, batch_size=args.batch_size, verbose=0)
        rate = args.steps / (time.perf_counter() - start)
        reference = reference or rate
        rows.append([name, strategy.num_replicas_in_sync, rate, rate / reference])
    devices = [d.name for d in tf.config.list_logical_devices()]
    print(f"{args.flow}, D={d}, global batch {args.batch_size}, devices {devices}\n")
    print(markdown_table(["strategy", "replicas", "steps/s", "vs one device"], rows))


if __name__ == "__main__":
    main()
