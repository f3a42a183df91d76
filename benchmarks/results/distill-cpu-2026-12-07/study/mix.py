"""The forward-KL term's study (scratch driver, kept for the record; 108de40).

    python benchmarks/results/distill-cpu-2026-12-07/study/mix.py DATASET SEED SECONDS VARIANT...

(run from the repository root with `PYTHONPATH=.`, one core, one thread).
Trains a T-NAF teacher for 60 s (`benchmarks.distill.train_teacher`), draws a
pool of 20,000 teacher samples, then distils one `Invert(NAF)` student per
VARIANT from the same teacher for SECONDS, each from the same initial weights:

- `rkl`: the reverse KL alone, `tfp_tnaf.distillation.RECIPE`'s step;
- `warm:N`: N forward-KL warm-start steps first (5,000 teacher samples);
- `mix:L`: every step minimises `KL(q || p) + L * mean(-log q(pool batch))`;
- `mix:L:key=N,...`: the same with other integer `make_flow` options of the
  student, e.g. `mix:3:num_flows=4,transform_units=32` (added later, for the
  deeper student of the results' last section);
- `cos:L[:key=N,...]`: `mix:L` with the learning rate annealed to 0 over the
  SECONDS by a cosine of the elapsed time (`DecayOverBudget`'s schedule;
  added for `distill-cpu-2026-12-07b`).

Prints the student's test log-likelihood and KL estimate per variant. The
`mix` loop is what `distill(..., forward_kl_weight=L)` now does.
"""
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from benchmarks.distill import train_teacher
from benchmarks.run import load_dataset
from tfp_tnaf.distillation import RECIPE, distill, kl_estimate
from tfp_tnaf.models import make_distribution, make_flow
from tfp_tnaf.training import cosine_factor, mean_log_prob

tfb = tfp.bijectors


def mixed(teacher, student, pool, weight: float, seconds: float, seed: int,
          cosine: bool = False) -> int:
    """Steps of the reverse KL plus `weight` times the NLL of pool batches; steps taken."""
    opt = RECIPE.optimizer()
    student.sample(2, seed=[1, 1])
    variables = student.trainable_variables
    opt.build(variables)
    rate = float(opt.learning_rate.numpy())

    @tf.function
    def step(key, x):
        with tf.GradientTape() as tape:
            y, log_q = student.experimental_sample_and_log_prob(256, seed=key)
            loss = tf.reduce_mean(log_q - teacher.log_prob(y))
            loss += weight * -tf.reduce_mean(student.log_prob(x))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    rng, start, n = np.random.default_rng(seed), time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        if cosine:
            opt.learning_rate.assign(rate * cosine_factor(elapsed / seconds))
        step(tf.constant([seed, n + 1]), tf.constant(pool[rng.integers(0, len(pool), 256)]))
        n += 1
    return n


def main(dataset: str, seed: int, seconds: float, variants: list[str]) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    splits = load_dataset(dataset, seed, None, 5000)
    d = splits.train.shape[1]
    teacher, _ = train_teacher(splits, 60, seed)
    print("teacher", mean_log_prob(teacher, splits.test), flush=True)
    pool = tf.function(lambda: teacher.sample(20_000, seed=seed + 11))().numpy()
    for variant in variants:
        tf_keras.utils.set_random_seed(seed)
        kind, *value = variant.split(":")
        options = {k: int(v) for k, v in (kv.split("=") for kv in value[1].split(","))
                   } if len(value) > 1 else {}
        student = make_distribution(tfb.Invert(make_flow("naf", d, **options)), d)
        start = time.perf_counter()
        if kind in ("mix", "cos"):
            steps = mixed(teacher, student, pool, float(value[0]), seconds, seed, kind == "cos")
        else:
            steps = distill(teacher, student, max_time=seconds, seed=seed,
                            warm_start_steps=int(value[0]) if kind == "warm" else 0,
                            warm_start_samples=5000).steps
        test, se = mean_log_prob(student, splits.test)
        kl, _ = kl_estimate(teacher, student, 10_000, seed=seed + 1)
        print(f"RESULT {dataset} s{seed} {variant}: test {test:.3f} +- {se:.3f} KL {kl:.3f} "
              f"steps {steps} {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
