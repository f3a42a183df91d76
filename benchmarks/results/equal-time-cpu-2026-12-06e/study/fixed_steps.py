"""Validation NLL after a fixed number of steps at a constant learning rate.

The study ran at commit 636fb35, where `tnaf` was one layer of two blocks: its
rows' options are over that default. At later commits the same options build
other flows (pin `num_flows=1, num_layers=2` for the study's baseline). Rows
are appended to the JSONL file named below, in the current folder.

The driver of `fixed_steps_runs.jsonl`: each variant trains for `--steps`
steps of batch 200 (four quarters, the validation NLL after each), by its
registry recipe at a constant rate, one thread (the row with `env` set ran
with the study's uncommitted token-initialisation patch). Run from the
repository root:

    PYTHONPATH=. taskset -c 0 python benchmarks/results/equal-time-cpu-2026-12-06e/study/\\
        fixed_steps.py --dataset moons --flow naf --options '{"num_flows": 1}'
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf
import tf_keras

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", default="moons")
parser.add_argument("--flow", default="tnaf")
parser.add_argument("--options", default="{}", help="make_flow options, JSON")
parser.add_argument("--steps", type=int, default=3000)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
parser.add_argument("--tag", default="")
args = parser.parse_args()
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from benchmarks.run import load_dataset  # noqa: E402
from tfp_tnaf.models import FLOWS, make_distribution, make_flow  # noqa: E402
from tfp_tnaf.training import FlowModel, mean_log_prob  # noqa: E402

splits = load_dataset(args.dataset, args.seed, None, 5000)
d = splits.train.shape[1]
tf_keras.utils.set_random_seed(args.seed)
distribution = make_distribution(make_flow(args.flow, d, **json.loads(args.options)), d)
model = FlowModel(distribution)
model.compile(FLOWS[args.flow].recipe.optimizer(learning_rate=args.lr))
rng = np.random.default_rng(args.seed)
epochs = args.steps * 200 // len(splits.train) + 2
order = np.concatenate([rng.permutation(len(splits.train)) for _ in range(epochs)])
data = splits.train[order[: args.steps * 200]]
quarter, marks, start = args.steps // 4, [], time.perf_counter()
for k in range(4):
    model.fit(data[k * quarter * 200:(k + 1) * quarter * 200], batch_size=200, epochs=1,
              verbose=0)
    marks.append(round(-mean_log_prob(distribution, splits.validation)[0], 3))
row = dict(tag=args.tag, dataset=args.dataset, flow=args.flow, options=args.options,
           lr=args.lr, seed=args.seed, val=marks,
           sec=round(time.perf_counter() - start, 1))
print("RESULT", json.dumps(row), flush=True)
with open("fixed_steps_runs.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
