"""Smoke test of the benchmark suite's quick mode, run as its users run it (the full
run is not a test)."""

import json
import os
import subprocess
import sys

from tfp_tnaf.training import STEPS_PER_EXECUTION

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_writes_tables_and_plot(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--datasets", "moons", "--flows",
         "MAF,NAF-DSF", "--dims", "4", "--out", str(tmp_path)], cwd=REPOSITORY,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["flow"] for r in results["likelihood"]] == ["MAF", "NAF-DSF"]
    assert all(r["test_ll"] > -10 for r in results["likelihood"])
    assert [r["flow"] for r in results["speed"]] == ["MAF", "NAF-DSF"]
    assert all(r["samples_per_s"] > 0 for r in results["speed"])
    text = (tmp_path / "results.md").read_text()
    assert "#### moons (D=2)" in text and "#### D=4, batch 512" in text
    assert (tmp_path / "params_vs_ll.png").stat().st_size > 1000


def test_equal_time_quick_run_trains_each_flow_for_its_budget(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.equal_time", "--quick", "--seconds", "3",
         "--record-every", "1", "--flows", "tnaf,maf", "--out", str(tmp_path)], cwd=REPOSITORY,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["decay"] == "cosine"
    assert [r["flow"] for r in results["rows"]] == ["tnaf", "maf"]
    # MAF on 2-D data without batch normalisation (`TWO_DIMENSIONAL`)
    assert [r["options"] for r in results["rows"]] == [{}, {"batch_norm": False}]
    assert results["steps_per_execution"] == STEPS_PER_EXECUTION  # the CLI's, by default
    for row in results["rows"]:
        assert row["recipe"]["decay"] == "cosine" and row["steps"] > 0
        # The budget is checked after each call of the train step (ten steps).
        call = results["steps_per_execution"] * row["seconds_per_step"]
        assert 3 <= row["train_seconds"] < 3 + 2 * call + 1
        assert row["trace"] and row["trace"][-1]["steps"] == row["steps"]
        assert not row["diverged"] and row["test_ll"] > -5
    text = (tmp_path / "results.md").read_text()
    assert "cosine learning rate" in text and "#### moons (D=2, 3 s each)" in text
    assert (tmp_path / "validation-moons.png").stat().st_size > 1000
    # Merged with a run under XLA (`--jit`), whose rows say so.
    from benchmarks.equal_time import report

    merged = report([results, dict(results, jit=True)], str(tmp_path))
    assert merged.count("| T-NAF, XLA |") == 1 and merged.count("| T-NAF |") == 1
