"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf.models import count_parameters, make_flow

__all__ = ["count_parameters", "markdown_table", "maf", "time_call", "train_step_fn"]

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
