"""The student's own ceiling: `Invert(NAF)` fitted to the data by maximum likelihood (scratch).

    PYTHONPATH=. python benchmarks/results/distill-cpu-2026-12-07b/study/mle.py \
        DATASET SEED SECONDS [FLOW [key=N,...]]

(run from the repository root, one core, one thread). Fits
`tfb.Invert(make_flow(FLOW, D))` (default `naf`: the distillation benchmark's
default student) to the training split for SECONDS by Keras `fit`, as the
benchmarks fit teachers (batch 200, the flow's registry recipe, cosine decay
over the budget, best-validation weights), and prints its test
log-likelihood. Its density is the sequential direction (root solves), cheap
at D=2. Compare with the T-NAF teachers of the same seed. `key=N,...` are
integer `make_flow` options (a pair of equal numbers for `hidden_units`),
e.g. `naf num_flows=4,transform_units=32,hidden_units=128`.
"""
import sys

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from benchmarks.run import load_dataset
from tfp_tnaf.models import FLOWS, count_parameters, make_distribution, make_flow
from tfp_tnaf.training import BestWeights, DecayOverBudget, FlowModel, TimeBudget, mean_log_prob

tfb = tfp.bijectors


def options_of(text: str) -> dict:
    """`"a=1,hidden_units=128"` -> `{"a": 1, "hidden_units": (128, 128)}`."""
    options = {k: int(v) for k, v in (kv.split("=") for kv in text.split(",") if kv)}
    if "hidden_units" in options:
        options["hidden_units"] = (options["hidden_units"],) * 2
    return options


def main(dataset: str, seed: int, seconds: float, flow: str = "naf", options: str = "") -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    splits = load_dataset(dataset, seed, None, 5000)
    d = splits.train.shape[1]
    tf_keras.utils.set_random_seed(seed)
    student = make_distribution(tfb.Invert(make_flow(flow, d, **options_of(options))), d)
    model = FlowModel(student)
    model.compile(FLOWS[flow].recipe.optimizer())
    best, budget = BestWeights(), TimeBudget(seconds)
    model.fit(splits.train, validation_data=(splits.validation,), epochs=10**6, batch_size=200,
              callbacks=[best, budget, DecayOverBudget(budget)], verbose=0)
    test, se = mean_log_prob(student, splits.test)
    print(f"RESULT {dataset} s{seed} Invert({flow} {options}) by maximum likelihood, "
          f"{seconds:g} s: test {test:.3f} +- {se:.3f}, {budget.steps} steps, "
          f"{count_parameters(student)} parameters", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:])
