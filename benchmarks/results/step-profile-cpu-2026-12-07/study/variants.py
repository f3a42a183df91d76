"""Step time, FLOPs and matmul fraction of T-NAF variants, D=43, batch 512 (scratch driver).

    PYTHONPATH=. taskset -c 1 python \
        benchmarks/results/step-profile-cpu-2026-12-07/study/variants.py [NAME...]

One thread; the matmul rate is `benchmarks.common.matmul_gflops(2048)`,
measured in the same process before and after the variants.
"""
import sys

import tensorflow as tf
import tensorflow_probability as tfp

from benchmarks.common import flops, matmul_gflops, time_call, train_step_fn
from tfp_tnaf.models import count_parameters, make_flow

tfd = tfp.distributions
VARIANTS = {"default": {}, "dsf16": dict(transform_units=16), "heads1": dict(num_heads=1),
            "mlp32": dict(mlp_units=32), "dsf16+heads1": dict(transform_units=16, num_heads=1)}


def measure(options: dict, batch: tf.Tensor) -> tuple[int, float, float]:
    """(parameters, FLOPs of one forward and backward pass, seconds per train step)."""
    d = batch.shape[-1]
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), [d]),
                                       make_flow("tnaf", d, **options))

    def loss_and_grads(y):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(y))
        return tape.gradient(loss, dist.trainable_variables)

    count = flops(loss_and_grads, tf.TensorSpec(batch.shape, batch.dtype))
    step = time_call(train_step_fn(dist, batch), repeats=15, warmup=3)
    return count_parameters(dist), count, step


def main(names: list[str]) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    batch = tf.random.normal([512, 43])
    peak = matmul_gflops(2048, repeats=5)
    print(f"matmul {peak:.1f} GFLOP/s")
    for name in names or VARIANTS:
        parameters, count, step = measure(VARIANTS[name], batch)
        rate = count / step / 1e9
        print(f"| {name} | {parameters} | {count / 1e9:.3f} | {step * 1e3:.1f} | {rate:.1f} | "
              f"{rate / peak:.3f} |", flush=True)
    print(f"matmul again {matmul_gflops(2048, repeats=5):.1f} GFLOP/s")


if __name__ == "__main__":
    main(sys.argv[1:])
