"""Probability density distillation of T-NAF teachers into one-pass students.

    python -m benchmarks.distill --out benchmarks/results/distill-cpu-2026-12-02
    python -m benchmarks.distill --datasets moons --teacher-seconds 10 --seconds 10 --out /tmp/d

For each data set a T-NAF teacher (`tnaf`, the registry's recipe, best-validation
weights, batch 200) trains for the data set's teacher budget; each student,
`tfb.Invert` of a registry flow, is then distilled from it by
`tfp_tnaf.distill` (the reverse KL on its own samples, batch 256, the
default step `tfp_tnaf.distillation.RECIPE`) for the student budget
(wall-clock, warm start included). Reported per data set and student:

- the time to draw 1,000 samples, teacher (D sequential root-solving steps) and
  student (one pass per layer), median of repeated calls after tracing;
- the test log-likelihood of teacher and student (the student's is a
  sequential pass), and of a standard Normal, with the share of the teacher's
  gain over the standard Normal that the student recovers,
  `(LL_student - LL_normal) / (LL_teacher - LL_normal)`;
- the reverse-KL estimate `KL(student || teacher)` (10,000 samples) and the
  distillation's steps and seconds.

On the 2-D sets a third student measures the forward-KL warm start: the
default student again, its first `--warm-start-steps` steps maximum
likelihood on `--warm-start-samples` teacher samples, within the same
wall-clock (`--students naf,maf+warm` chooses others). `--forward-kl-weight`
adds `distill`'s forward-KL term to every student's steps, `--decay cosine`
anneals their learning rate to 0 over the budget.

Writes `results.json` after every row and `results.md` at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from benchmarks.common import markdown_table, time_call
from benchmarks.run import load_dataset
from tfp_tnaf.distillation import FORWARD_KL_SAMPLES, RECIPE, distill, kl_estimate
from tfp_tnaf.models import FLOWS, count_parameters, make_distribution, make_flow
from tfp_tnaf.training import DECAYS, BestWeights, FlowModel, TimeBudget, mean_log_prob

tfb = tfp.bijectors

# Seconds of teacher training and of distillation per data set.
TEACHER_SECONDS = {"moons": 60, "siggraph": 60, "miniboone": 120, "bsds300": 120}
STUDENT_SECONDS = {"moons": 60, "siggraph": 60, "miniboone": 120, "bsds300": 120}
# The students by name: (label, registry flow, options, warm start). By default
# every data set gets `naf` and `maf`, the 2-D sets `naf+warm` too (`--students`).
STUDENTS = {
    "naf": ("Invert(NAF)", "naf", {}, False),
    "maf": ("IAF (Invert(MAF))", "maf", dict(batch_norm=False), False),
    "naf+warm": ("Invert(NAF), warm start", "naf", {}, True),
    "maf+warm": ("IAF (Invert(MAF)), warm start", "maf", dict(batch_norm=False), True),
    # Twice the layers and width of the default Invert(NAF).
    "naf-large": ("Invert(NAF) 4 x (128, 128), 32 units", "naf",
                  dict(num_flows=4, hidden_units=(128, 128), transform_units=32), False),
    # Twice the layers, twice the sigmoids, the default MADE.
    "naf-deep": ("Invert(NAF) 4 x (64, 64), 32 units", "naf",
                 dict(num_flows=4, transform_units=32), False),
    # The teacher's own architecture, inverted: one transformer pass to sample.
    "tnaf": ("Invert(T-NAF)", "tnaf", {}, False),
    "tnaf+warm": ("Invert(T-NAF), warm start", "tnaf", {}, True),
    # A coupling flow: one pass both ways, so its forward-KL steps are cheap too.
    "realnvp": ("RealNVP", "realnvp", {}, False),
    "realnvp+warm": ("RealNVP, warm start", "realnvp", {}, True),
    # Twice the layers, twice the width, or both (make_flow takes `num_flows` too).
    "realnvp-deep+warm": ("RealNVP 10 x (64, 64), warm start", "realnvp",
                          dict(num_flows=10), True),
    "realnvp-8+warm": ("RealNVP 8 x (64, 64), warm start", "realnvp", dict(num_flows=8), True),
    "realnvp-wide+warm": ("RealNVP 5 x (128, 128), warm start", "realnvp",
                          dict(hidden_units=(128, 128)), True),
    "realnvp-large+warm": ("RealNVP 10 x (128, 128), warm start", "realnvp",
                           dict(num_flows=10, hidden_units=(128, 128)), True),
}


def train_teacher(splits, seconds: float, seed: int):
    """A T-NAF fitted for `seconds` by its registry recipe (best-validation weights)."""
    tf_keras.utils.set_random_seed(seed)
    d = splits.train.shape[1]
    teacher = make_distribution(make_flow("tnaf", d, num_examples=len(splits.train)), d)
    model = FlowModel(teacher)
    model.compile(FLOWS["tnaf"].recipe.optimizer())
    best, budget = BestWeights(), TimeBudget(seconds)
    model.fit(splits.train, validation_data=(splits.validation,), epochs=10**6, batch_size=200,
              callbacks=[best, budget], verbose=0)
    return teacher, budget.steps


def sampling_seconds(distribution, repeats: int) -> float:
    """Median seconds to draw 1,000 samples, after tracing."""
    draw = tf.function(lambda: distribution.sample(1000, seed=[1, 2]))
    return time_call(draw, repeats=repeats)


def normal_log_likelihood(test: np.ndarray) -> float:
    """The mean test log-likelihood of a standard Normal (the data are standardised)."""
    return float(np.mean(-0.5 * np.sum(test**2, axis=1) - 0.5 * test.shape[1] * np.log(2 * np.pi)))


def distil_student(teacher, splits, student: tuple, seconds: float, args) -> dict:
    """One student distilled from `teacher` within `seconds`; its figures."""
    label, flow, options, warm = student
    tf_keras.utils.set_random_seed(args.seed)
    d = splits.train.shape[1]
    distribution = make_distribution(tfb.Invert(make_flow(flow, d, **options)), d)
    result = distill(teacher, distribution, max_time=seconds, batch_size=256, seed=args.seed,
                     warm_start_steps=args.warm_start_steps if warm else 0,
                     warm_start_samples=args.warm_start_samples, record_every=100,
                     forward_kl_weight=args.forward_kl_weight,
                     forward_kl_samples=args.forward_kl_samples, decay=args.decay)
    if args.forward_kl_weight:
        label += f", forward KL x {args.forward_kl_weight:g}"
        if args.forward_kl_samples != FORWARD_KL_SAMPLES:
            label += f" on {args.forward_kl_samples:,} samples"
    if args.decay != "constant":
        label += f", {args.decay} learning rate"
    kl, kl_stderr = kl_estimate(teacher, distribution, 10_000, seed=args.seed + 1)
    start = time.perf_counter()
    test, test_stderr = mean_log_prob(distribution, splits.test)
    return dict(student=label, flow=flow, options=options, warm_start=warm,
                forward_kl_weight=args.forward_kl_weight, decay=args.decay,
                parameters=count_parameters(distribution), steps=result.steps,
                skipped_steps=result.skipped_steps, distill_seconds=result.seconds,
                warm_start_seconds=result.warm_start_seconds,
                warm_start_steps_taken=result.warm_start_steps, kl=kl, kl_stderr=kl_stderr,
                test_ll=test, test_stderr=test_stderr,
                test_seconds=time.perf_counter() - start,
                sample_seconds=sampling_seconds(distribution, repeats=5), history=result.history)


def run_dataset(dataset: str, args, result: dict) -> None:
    """The teacher and its students on one data set; rows appended to `result`."""
    splits = load_dataset(dataset, args.seed, args.bsds300_train if dataset == "bsds300"
                          else None, args.max_eval)
    teacher_seconds = args.teacher_seconds or TEACHER_SECONDS[dataset]
    teacher, steps = train_teacher(splits, teacher_seconds, args.seed)
    test, stderr = mean_log_prob(teacher, splits.test)
    teacher_row = dict(dataset=dataset, dims=splits.train.shape[1], teacher_seconds=teacher_seconds,
                       teacher_steps=steps, teacher_parameters=count_parameters(teacher),
                       teacher_test_ll=test, teacher_test_stderr=stderr,
                       teacher_sample_seconds=sampling_seconds(teacher, repeats=1),
                       normal_test_ll=normal_log_likelihood(splits.test),
                       num_test=len(splits.test))
    print(f"{dataset}: teacher test {test:.3f}, 1000 samples in "
          f"{teacher_row['teacher_sample_seconds']:.2f} s", flush=True)
    names = args.students or ["naf", "maf"] + (["naf+warm"] if splits.train.shape[1] == 2
                                               else [])
    for student in (STUDENTS[name] for name in names):
        row = dict(teacher_row, **distil_student(
            teacher, splits, student, args.seconds or STUDENT_SECONDS[dataset], args))
        gain = row["teacher_test_ll"] - row["normal_test_ll"]
        row["recovered"] = (row["test_ll"] - row["normal_test_ll"]) / gain
        row["speedup"] = row["teacher_sample_seconds"] / row["sample_seconds"]
        result["rows"].append(row)
        print(f"{dataset} {row['student']}: test {row['test_ll']:.3f}, KL {row['kl']:.3f}, "
              f"{row['speedup']:.0f}x faster sampling", flush=True)
        result["total_seconds"] = time.perf_counter() - result["_start"]
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({k: v for k, v in result.items() if not k.startswith("_")}, f, indent=1,
                      default=float)


def table(rows: list[dict]) -> str:
    header = ["data set", "D", "student", "teacher 1k samples (s)", "student 1k samples (s)",
              "speed-up", "teacher test LL", "student test LL", "N(0,I) test LL",
              "gain recovered", "KL(student||teacher)", "distil steps", "distil s"]
    return markdown_table(header, [[
        r["dataset"], r["dims"], r["student"], r["teacher_sample_seconds"], r["sample_seconds"],
        f"{r['speedup']:.0f}x", f"{r['teacher_test_ll']:.3f} +- {r['teacher_test_stderr']:.3f}",
        f"{r['test_ll']:.3f} +- {r['test_stderr']:.3f}", f"{r['normal_test_ll']:.3f}",
        f"{100 * r['recovered']:.1f}%", f"{r['kl']:.3f} +- {r['kl_stderr']:.3f}", r["steps"],
        f"{r['distill_seconds']:.0f}"] for r in rows])


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="distill-results")
    parser.add_argument("--datasets", default=",".join(TEACHER_SECONDS))
    parser.add_argument("--teacher-seconds", type=float, help="one teacher budget for all")
    parser.add_argument("--seconds", type=float, help="one distillation budget for all")
    parser.add_argument("--students", help=f"names of {', '.join(STUDENTS)} (default naf,maf "
                                           f"and, on 2-D data, naf+warm)")
    parser.add_argument("--warm-start-steps", type=int, default=300)
    parser.add_argument("--warm-start-samples", type=int, default=5000)
    parser.add_argument("--forward-kl-weight", type=float, default=0.0,
                        help="every student's forward-KL term (`distill`'s "
                             "`forward_kl_weight`; default 0: the reverse KL alone)")
    parser.add_argument("--forward-kl-samples", type=int, default=FORWARD_KL_SAMPLES,
                        help="the teacher samples of the forward-KL term's pool")
    parser.add_argument("--decay", choices=DECAYS, default="constant",
                        help="every student's learning-rate schedule (`distill`'s `decay`)")
    parser.add_argument("--bsds300-train", type=int, default=100_000)
    parser.add_argument("--max-eval", type=int, default=5000,
                        help="validation and test points (the student's test is sequential)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow's threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.datasets = args.datasets.split(",")
    args.students = args.students.split(",") if args.students else None
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _arguments(argv)
    os.makedirs(args.out, exist_ok=True)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    result = dict(command=" ".join(["python -m benchmarks.distill", *argv]),
                  machine=platform.processor() or platform.machine(),
                  cpus=len(os.sched_getaffinity(0)), threads=args.threads, seed=args.seed,
                  reverse_kl_step=dataclasses.asdict(RECIPE), rows=[],
                  _start=time.perf_counter())
    for dataset in args.datasets:
        run_dataset(dataset, args, result)
    text = (f"# Distillation of T-NAF teachers\n\n`{result['command']}` ({result['cpus']} CPU, "
            f"{args.threads} TF thread)\n\n" + table(result["rows"]) + "\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
