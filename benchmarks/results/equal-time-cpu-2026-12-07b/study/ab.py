"""Old and new transformer code interleaved in one process (scratch driver, kept for the record).

    PYTHONPATH=. python benchmarks/results/equal-time-cpu-2026-12-07b/study/ab.py step D BATCH
    PYTHONPATH=. python benchmarks/results/equal-time-cpu-2026-12-07b/study/ab.py fit D BATCH
    PYTHONPATH=. python benchmarks/results/equal-time-cpu-2026-12-07b/study/ab.py sample

`step`: `tf.function` steps of `-mean log_prob` and its gradient on one batch,
the old `_norm`/`_mlp` (plain ops, the Keras GELU layer) against the fused
kernels, both flows built from one seed; 8 alternations of 10 steps.
`fit`: the same inside Keras `fit` (`steps_per_execution=10`), 5 alternations
of 400 steps. `sample`: the default T-NAF's decoder (10,000 points, D=43)
traced with and without `fused.plain()`, 4 alternations, TensorFlow's
default threads (`step` and `fit`: one thread).
"""
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras

from tfp_tnaf import fused
from tfp_tnaf.models import FLOWS, make_distribution, make_flow
from tfp_tnaf.nn import transformer
from tfp_tnaf.training import FlowModel

Transformer = transformer.AutoregressiveTransformer
NEW = (Transformer._norm, Transformer._mlp)


def old_norm(layer, t):
    mean, variance = tf.nn.moments(t, axes=[-1], keepdims=True)
    return (t - mean) * tf.math.rsqrt(variance + layer.epsilon) * layer.gamma + layer.beta


def old_mlp(self, block, t):
    return t + self._drop(block["mlp_out"](block["mlp_in"](self._norm(block["norm_mlp"], t))))


VARIANTS = {"old": (staticmethod(old_norm), old_mlp), "new": (staticmethod(NEW[0]), NEW[1])}


def interleaved(runs: dict, rounds: int) -> None:
    """Calls each `runs` value in turn, `rounds` times; prints min and median (ms)."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            per_step = run()
            times[name].append((time.perf_counter() - start) / per_step * 1e3)
    for name, values in times.items():
        print(f"{name} ms/step min {min(values):.2f} median {np.median(values):.2f}")


def step_runs(d: int, batch: int) -> dict:
    x = tf.constant(np.random.RandomState(0).randn(batch, d).astype("float32"))
    runs = {}
    for name, (norm, mlp) in VARIANTS.items():
        Transformer._norm, Transformer._mlp = norm, mlp
        tf.random.set_seed(0)
        dist = make_distribution(make_flow("tnaf", d), d)

        def step(x, dist=dist):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(dist.log_prob(x))
            return loss, tape.gradient(loss, dist.trainable_variables)

        compiled = tf.function(step)
        for _ in range(5):
            compiled(x)
        runs[name] = lambda f=compiled: [f(x) for _ in range(10)] and 10
    return runs


def fit_runs(d: int, batch: int) -> dict:
    data = np.random.RandomState(0).randn(batch * 400, d).astype("float32")
    runs = {}
    for name, (norm, mlp) in VARIANTS.items():
        Transformer._norm, Transformer._mlp = norm, mlp
        tf_keras.utils.set_random_seed(0)
        model = FlowModel(make_distribution(make_flow("tnaf", d, num_examples=len(data)), d))
        model.compile(FLOWS["tnaf"].recipe.optimizer(), steps_per_execution=10)
        model.fit(data, batch_size=batch, epochs=1, verbose=0)
        runs[name] = lambda m=model: m.fit(data, batch_size=batch, epochs=1, verbose=0) and 400
    return runs


def sample_runs() -> dict:
    tf.random.set_seed(0)
    flow = make_flow("tnaf", 43)
    z = tf.random.normal([10_000, 43])
    kernels = tf.function(lambda: flow.forward(z))
    kernels()
    with fused.plain():
        plain = tf.function(lambda: flow.forward(z))
        plain()
    return {"fused": lambda: kernels() is not None and 1,
            "plain": lambda: plain() is not None and 1}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "sample":
        interleaved(sample_runs(), 4)
    else:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        build = step_runs if mode == "step" else fit_runs
        interleaved(build(int(sys.argv[2]), int(sys.argv[3])), 8 if mode == "step" else 5)
