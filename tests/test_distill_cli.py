"""`tfp-tnaf distill`: a tiny fitted run distilled into a student run folder that
`sample` and `evaluate` accept."""

import json
import os

import numpy as np
import pytest

from tfp_tnaf import cli, distillation, runs

pytestmark = pytest.mark.xdist_group("distill-cli")


def main(capsys, *args) -> str:
    cli.main(list(args))
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "moons-naf"
    runs.fit(runs.FitConfig(data="moons", flow="naf", options=dict(
        num_flows=1, hidden_units=(8,), transform_units=4), epochs=2, samples=200,
        out=str(out), verbose=0))
    return out


def test_distill_writes_a_run_that_sample_and_evaluate_accept(teacher, tmp_path, capsys,
                                                              monkeypatch):
    out = tmp_path / "student"
    given, distill = {}, distillation.distill

    def passing(*args, **kwargs):  # the options the command hands the library
        given.update(kwargs)
        return distill(*args, **kwargs)

    monkeypatch.setattr(distillation, "distill", passing)
    output = main(capsys, "distill", "--run", str(teacher), "--out", str(out), "--student",
                  "maf", "--num-flows", "2", "--hidden-units", "16", "--steps", "150",
                  "--samples", "200", "--forward-kl-weight", "0.5", "--forward-kl-samples",
                  "500", "--decay", "cosine")
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert {"config.json", "metrics.json", "checkpoint", "density.png"} <= set(os.listdir(out))
    assert config["invert"] and config["flow"] == "maf"
    assert config["options"] == {"num_flows": 2, "hidden_units": [16], "batch_norm": False}
    assert config["distilled_from"] == str(teacher) and config["teacher"]["flow"] == "naf"
    assert (config["distill"]["forward_kl_weight"], config["distill"]["forward_kl_samples"]) == (
        0.5, 500)
    assert "forward-KL term of weight 0.5, learning rate cosine" in output
    assert config["distill"]["decay"] == "cosine" and given["decay"] == "cosine"
    assert (given["forward_kl_weight"], given["steps"]) == (0.5, 150)
    # The reverse KL's own step, not the student flow's recipe (MAF's: 1e-3, unclipped).
    assert (config["learning_rate"], config["global_clipnorm"]) == (
        distillation.RECIPE.learning_rate, distillation.RECIPE.global_clipnorm)
    assert metrics["distill_steps"] == 150 and metrics["samples_finite"]
    # The KL estimate is a mean of log-ratios: >= 0 up to its Monte-Carlo error.
    assert metrics["kl"] + 4 * metrics["kl_stderr"] >= 0 and np.isfinite(metrics["kl"])
    assert metrics["kl"] < metrics["history"][0]["kl"]
    assert f"{metrics['kl']:.4f}" in output and "teacher" in output

    output = main(capsys, "evaluate", "--run", str(out))
    assert f"test log-likelihood {metrics['test_log_likelihood']:.4f}" in output
    assert "sequentially" in output

    path = tmp_path / "samples.npy"
    main(capsys, "sample", "--run", str(out), "-n", "64", "--output", str(path))
    samples = np.load(path)
    assert samples.shape == (64, 2) and np.all(np.isfinite(samples))
    # The run folder rebuilds the very student that was saved: its samples agree.
    _, student = runs.restore(str(out))
    np.testing.assert_allclose(samples, runs.sample(str(out), 64), rtol=1e-5, atol=1e-5)
    assert student.bijector.name.startswith("invert")


def test_distill_refuses_bad_runs(teacher, tmp_path, capsys):
    def error(*args) -> str:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["distill", *args])
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    assert "not a run folder" in error("--run", str(tmp_path), "--out", str(tmp_path / "s"))
    assert "must not be its teacher" in error("--run", str(teacher), "--out", str(teacher))
    assert "invalid choice" in error("--run", str(teacher), "--out", "x", "--student", "glow")
    assert "invalid choice" in error("--run", str(teacher), "--out", "x", "--decay", "linear")


def test_a_bad_decay_is_refused_before_the_folder_is_touched(teacher, tmp_path):
    out = tmp_path / "student"
    with pytest.raises(runs.RunError, match="decay must be one of constant, cosine; got 'lin'"):
        runs.distill(runs.DistillConfig(run=str(teacher), out=str(out), decay="lin", steps=1))
    assert not out.exists()
