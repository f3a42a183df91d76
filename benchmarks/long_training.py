"""Long training: no NaN or inf in the loss or the gradients over thousands of steps.

    python -m benchmarks.long_training                      # 3000 steps per run
    python -m benchmarks.long_training --steps 200 --flows T-NAF

Trains T-NAF, NAF and B-NAF (the default sizes and learning rates of
`benchmarks.run`) on SIGGRAPH and on rebuilt BSDS300 patches, and prints per
run: non-finite losses and gradients, the worst gradient norm seen (before
clipping), the first and last losses, the test log-likelihood and the time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tf_keras

from benchmarks.common import markdown_table
from benchmarks.run import flow_specs
from tfp_tnaf import data
from tfp_tnaf.models import FLOWS, make_distribution, make_flow
from tfp_tnaf.training import fit_steps, mean_log_prob

DATASETS = {
    "siggraph": lambda seed: data.siggraph(seed=seed),
    "bsds300": lambda seed: data.bsds300(num_train=100_000, num_validation=1_000,
                                         num_test=5_000, seed=seed),
}


def long_run(flow: str, dataset: str, steps: int, batch_size: int, seed: int = 0) -> dict:
    """Trains `flow` (a `flow_specs` name) on `dataset` and reports its health."""
    name, options = flow_specs(quick=False)[flow]
    splits = DATASETS[dataset](seed)
    d = splits.train.shape[1]
    tf_keras.utils.set_random_seed(seed)
    distribution = make_distribution(make_flow(name, d, **options), d)
    start = time.perf_counter()
    losses, norms = fit_steps(distribution, splits.train, steps, FLOWS[name].recipe.optimizer(),
                              batch_size=batch_size, seed=seed)
    seconds = time.perf_counter() - start
    test_ll, stderr = mean_log_prob(distribution, splits.test)
    finite_norms = norms[np.isfinite(norms)]
    return dict(flow=flow, dataset=dataset, dims=d, steps=steps,
                non_finite_losses=int(np.sum(~np.isfinite(losses))),
                non_finite_gradients=len(norms) - len(finite_norms),
                worst_gradient_norm=float(finite_norms.max()) if len(finite_norms) else np.nan,
                first_loss=float(np.mean(losses[:20])), last_loss=float(np.mean(losses[-100:])),
                test_ll=test_ll, test_stderr=stderr, seconds=seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--flows", default="T-NAF,NAF-DSF,B-NAF")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args(argv)
    rows = []
    for dataset in args.datasets.split(","):
        for flow in args.flows.split(","):
            r = long_run(flow, dataset, args.steps, args.batch_size)
            rows.append([r["flow"], f"{r['dataset']} (D={r['dims']})", r["steps"],
                         r["non_finite_losses"], r["non_finite_gradients"],
                         f"{r['worst_gradient_norm']:.4g}", f"{r['first_loss']:.3f}",
                         f"{r['last_loss']:.3f}",
                         f"{r['test_ll']:.3f} +- {r['test_stderr']:.3f}", f"{r['seconds']:.0f}"])
            print(rows[-1], flush=True)
    print(f"\n### Long training, batch {args.batch_size}\n")
    print(markdown_table(["flow", "data", "steps", "non-finite losses", "non-finite gradients",
                          "worst gradient norm", "loss (first 20)", "loss (last 100)",
                          "test log-likelihood", "time (s)"], rows))


if __name__ == "__main__":
    main()
