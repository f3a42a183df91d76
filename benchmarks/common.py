"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf import fused
from tfp_tnaf.models import count_parameters, make_flow

__all__ = ["count_parameters", "flops", "forward_flops_per_point", "markdown_table", "maf",
           "matmul_gflops", "time_call", "train_step_fn"]

tfb, tfd = tfp.bijectors, tfp.distributions


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds, after `warmup` calls (tracing, compiling)."""
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _block(result) -> None:
    for t in tf.nest.flatten(result):
        if hasattr(t, "numpy"):
            t.numpy()


def train_step_fn(distribution: tfd.Distribution, batch: tf.Tensor,
                  jit_compile: bool | None = None, compiled: bool = True) -> Callable:
    """A function running one Adam step on `-mean log_prob(batch)`."""
    import tf_keras

    variables = distribution.trainable_variables
    optimizer = tf_keras.optimizers.Adam(1e-4)

    def step():
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(batch))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    return tf.function(step, jit_compile=jit_compile) if compiled else step


def flops(fn: Callable, *input_specs: tf.TensorSpec) -> float:
    """Floating-point operations of one call of `fn`, from the traced graph's cost model
    (TensorFlow's profiler: matmuls counted as 2 m n k, elementwise ops as one per value).
    Traced with `tfp_tnaf.fused.plain()`: the profiler sees no ops inside compiled
    functions, so the fused kernels are counted as the ops they fuse."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    with fused.plain():
        graph = tf.function(fn).get_concrete_function(*input_specs).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(model_analyzer.profile(graph, options=options).total_float_ops)


def forward_flops_per_point(distribution: tfd.Distribution, event_size: int,
                            batch_size: int = 64) -> float:
    """FLOPs of `distribution.log_prob` per point (the training direction's forward pass)."""
    spec = tf.TensorSpec([batch_size, event_size], distribution.dtype)
    return flops(distribution.log_prob, spec) / batch_size


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matmul rate (GFLOP/s), `size`^3, measured now."""
    a = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.linalg.matmul(a, a))
    return 2 * size**3 / time_call(matmul, repeats=repeats) / 1e9


def maf(event_size: int, num_layers: int = 5, hidden_units: tuple[int, ...] = (512, 512),
        ) -> tfb.Bijector:
    """TFP's MAF: `num_layers` MADE-conditioned affine layers with reversals between."""
    return make_flow("maf", event_size, num_flows=num_layers, hidden_units=hidden_units)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
