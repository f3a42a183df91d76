"""One flow variant at equal wall-clock, through `benchmarks.equal_time.train`.

The study ran at commit 636fb35, where `tnaf` was one layer of two blocks: its
rows' options are over that default. At later commits the same options build
other flows (pin `num_flows=1, num_layers=2` for the study's baseline). Rows
are appended to the JSONL file named below, in the current folder.

The driver of this study's equal-time rows (`equal_time_runs.jsonl`): the same
`train` as `python -m benchmarks.equal_time` (cosine decay over the budget,
records every 10 s, batch 200, best-validation weights, one thread), one
variant per call. Run from the repository root, pinned to a core:

    PYTHONPATH=. taskset -c 0 python benchmarks/results/equal-time-cpu-2026-12-06e/study/\\
        equal_time_run.py --dataset moons --seed 1 --options '{"num_flows": 2, "num_layers": 1}'
"""

import argparse
import json
import os

import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("--dataset")
parser.add_argument("--flow", default="tnaf")
parser.add_argument("--options", default="{}", help="make_flow options, JSON")
parser.add_argument("--overrides", default="{}", help="recipe overrides, JSON")
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--batch-size", type=int, default=200)
parser.add_argument("--tag", default="")
parser.add_argument("--env", default="", help="K=V;... set before the flow is built")
args = parser.parse_args()
for pair in filter(None, args.env.split(";")):
    key, value = pair.split("=", 1)
    os.environ[key] = value
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from benchmarks.equal_time import train  # noqa: E402
from benchmarks.run import load_dataset  # noqa: E402

splits = load_dataset(args.dataset, args.seed,
                      100_000 if args.dataset == "bsds300" else None, 5000)
settings = argparse.Namespace(decay="cosine", seed=args.seed, record_every=10.0, jit=False,
                              batch_size=args.batch_size)
r = train(args.flow, json.loads(args.options), json.loads(args.overrides), splits,
          args.seconds, settings)
row = dict(tag=args.tag, env=args.env, dataset=args.dataset, flow=args.flow,
           options=args.options, overrides=args.overrides, seed=args.seed,
           batch=args.batch_size, jit=False, test_ll=round(r["test_ll"], 4),
           se=round(r["test_stderr"], 4), steps=r["steps"],
           ms=round(r["seconds_per_step"] * 1e3, 2), params=r["parameters"],
           trace=[(t["steps"], round(t["validation_nll"], 3)) for t in r["trace"]])
print("RESULT " + json.dumps(row), flush=True)
with open("equal_time_runs.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
