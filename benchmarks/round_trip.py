"""Round trips of trained flows in float32, and how much of their error is conditioning.

    python -m benchmarks.round_trip --out benchmarks/results/round-trip   # 20 seeds
    python -m benchmarks.round_trip --seeds 2 --flows tnaf --out /tmp/rt  # a smoke run

Issue #15's protocol: each flow is built at D=43 by `make_flow` with its
registry options, given 30 Adam steps (learning rate 1e-2, batch 64) on
Gaussian data of mean 3 and scale 2, then 200 inputs from N(0, 1) and from
U(-50, 50) are round-tripped both ways in float32: `inverse(forward(x))` and
`forward(inverse(y))`. Two float32 solves are measured, without and with the
root solver's float64 polish (`RootSolver(polish_steps=0)` and the default).

The conditioning floor: a float64 twin of the flow (the same weights) maps the
float32 `inverse(y)` forward exactly. Its distance to `y` is the error that
rounding `x` to float32 alone causes; no float32 solve can do better by more
than its own rounding. Writes `results.json` (per seed) and `results.md`
(worst over seeds) to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tf_keras

from benchmarks.common import markdown_table
from tfp_tnaf.models import make_distribution, make_flow
from tfp_tnaf.roots import RootSolver

FLOWS = ("tnaf", "tnaf-paper", "naf", "bnaf")
INPUTS = {"N(0,1)": lambda rng, shape: rng.normal(size=shape),
          "U(-50,50)": lambda rng, shape: rng.uniform(-50, 50, size=shape)}
D = 43


def trained(name: str, seed: int, dtype=tf.float32):
    """`make_flow(name, D)` after the protocol's 30 Adam steps."""
    tf_keras.utils.set_random_seed(seed)
    flow = make_flow(name, D, dtype=dtype)
    distribution = make_distribution(flow, D, dtype)
    data = (np.random.default_rng(seed).normal(size=(2000, D)) * 2 + 3).astype(np.float32)
    optimizer = tf_keras.optimizers.Adam(1e-2)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(batch))
        variables = distribution.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    for i in range(30):
        step(data[(i * 64) % 1900:(i * 64) % 1900 + 64])
    return flow


def twin(flow, name: str):
    """The float64 flow with `flow`'s weights."""
    wide = make_flow(name, D, dtype=tf.float64)
    wide.inverse(tf.zeros([1, D], tf.float64))  # Keras layers build on their first call
    for a, b in zip(wide.variables, flow.variables, strict=True):
        a.assign(tf.cast(b, tf.float64))
    return wide


def with_solver(flow, solver: RootSolver):
    """`flow` with `solver` as every autoregressive layer's root solver."""
    for layer in getattr(flow, "bijectors", [flow]):
        if hasattr(layer, "_root_solver"):
            layer._root_solver = solver
    return flow


def errors(name: str, seed: int) -> dict:
    """The worst round-trip errors of one trained flow, per input kind."""
    flow = trained(name, seed)
    wide = twin(flow, name)
    rng = np.random.default_rng(1000 + seed)
    row = {}
    for kind, draw in INPUTS.items():
        values = tf.constant(draw(rng, (200, D)), tf.float32)
        x = tf.function(flow.inverse)(values)
        floor = tf.function(wide.forward)(tf.cast(x, tf.float64)).numpy() - values.numpy()
        row[kind] = dict(conditioning=float(np.abs(floor).max()))
        for steps in (0, 1):
            # Traced afresh for each solver; separate calls: no cached results.
            forward, inverse = tf.function(
                with_solver(flow, RootSolver(polish_steps=steps)).forward), tf.function(
                flow.inverse)
            back = forward(x).numpy() - values.numpy()
            again = inverse(forward(values)).numpy() - values.numpy()
            row[kind][f"y_x_y_polish{steps}"] = float(np.abs(back).max())
            row[kind][f"x_y_x_polish{steps}"] = float(np.abs(again).max())
    return row


def report(results: dict) -> str:
    body = []
    for name, seeds in results["flows"].items():
        for kind in INPUTS:
            worst = {k: max(s[kind][k] for s in seeds.values()) for k in seeds["0"][kind]}
            body.append([name, kind, len(seeds), f"{worst['x_y_x_polish0']:.2e}",
                         f"{worst['x_y_x_polish1']:.2e}", f"{worst['y_x_y_polish0']:.2e}",
                         f"{worst['y_x_y_polish1']:.2e}", f"{worst['conditioning']:.2e}"])
    return ("# Float32 round trips of trained flows (worst over seeds)\n\n"
            f"`{results['command']}`\n\n"
            + markdown_table(["flow", "inputs", "seeds", "x->y->x, no polish",
                              "x->y->x, polished", "y->x->y, no polish", "y->x->y, polished",
                              "conditioning floor of y->x->y"], body) + "\n")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="round-trip-results")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    results = dict(command=" ".join(["python -m benchmarks.round_trip", *argv]), flows={})
    for name in args.flows.split(","):
        results["flows"][name] = {}
        for seed in range(args.seeds):
            results["flows"][name][str(seed)] = errors(name, seed)
            print(name, seed, results["flows"][name][str(seed)], flush=True)
            with open(os.path.join(args.out, "results.json"), "w") as f:
                json.dump(results, f, indent=1)
    text = report(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
