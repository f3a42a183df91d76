"""The `tfp-tnaf` command line tool, run in subprocesses on tiny settings (its
usage errors in-process)."""

import json
import os
import pty
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfp_tnaf import cli, runs
from tfp_tnaf.logs import drop_logs

# The module fixture is expensive: one xdist worker runs all of this file.
pytestmark = pytest.mark.xdist_group("cli")

TINY = ["--num-flows", "1", "--transform-units", "4", "--epochs", "2", "--samples", "200"]

# What TensorFlow's C++ logging writes: absl's format ("I0000 00:00:17...") and
# preamble, and the start-up lines about oneDNN and CUDA.
TF_LOGS = re.compile(r"^[IWEF]\d{4} |absl|oneDNN|cuda|cuInit", re.IGNORECASE | re.MULTILINE)


def run(*args, cwd=None):
    """`python -m tfp_tnaf ARGS` -> (exit code, stdout + stderr), with the default
    logging (TF_CPP_MIN_LOG_LEVEL unset) and stdout not a terminal."""
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repository)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, "-m", "tfp_tnaf", *args], capture_output=True,
                            text=True, env=env, cwd=cwd, timeout=300)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "moons-naf"
    code, output = run("fit", "--data", "moons", "--flow", "naf", "--hidden-units", "8", *TINY,
                       "--out", str(out), "--tensorboard", str(out.parent / "tensorboard"))
    assert code == 0, output
    return out, output


def test_fit_writes_checkpoint_metrics_and_plots(fitted):
    out, output = fitted
    assert "test log-likelihood:" in output and "val_loss" in output
    assert {"config.json", "metrics.json", "density.png", "checkpoint"} <= set(os.listdir(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_log_likelihood"]) and metrics["samples_finite"]
    assert len(metrics["history"]["val_loss"]) == 2
    assert f"{metrics['test_log_likelihood']:.4f}" in output
    # 10,000 Two Moons training points in batches of 200, for 2 epochs; no time budget.
    assert metrics["steps"] == 100 and metrics["max_time"] is None
    assert not metrics["stopped_by_time"] and 1 <= metrics["best_step"] <= 100
    # The flow as built, defaults resolved: a later default change cannot alter it.
    architecture = json.loads((out / "config.json").read_text())["architecture"]
    assert architecture["num_flows"] == 1 and architecture["hidden_units"] == [8]
    assert architecture["transform"] == "dsf" and architecture["transform_units"] == 4


def test_fit_prints_no_tensorflow_logs_and_one_line_per_epoch_off_a_terminal(fitted):
    _, output = fitted
    assert not TF_LOGS.search(output), output
    # Keras' verbose=2: no progress bar, whose updates rewrite the line with \r and \b.
    assert "\r" not in output and "\b" not in output and "[====" not in output
    epochs = [line for line in output.splitlines() if re.match(r"50/50 - .* val_loss: ", line)]
    assert len(epochs) == 2 and "Epoch 2/2" in output, output


def test_a_terminal_gets_the_progress_bar(monkeypatch):
    assert runs.keras_verbosity("auto") == 2  # pytest captures stdout: not a terminal
    main, replica = pty.openpty()
    with os.fdopen(main, "rb"), os.fdopen(replica, "w") as terminal:
        monkeypatch.setattr(sys, "stdout", terminal)
        assert runs.keras_verbosity("auto") == 1
    assert [runs.keras_verbosity(v) for v in (0, 1, 2)] == [0, 1, 2]


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of the TensorBoard event files in `folder`."""
    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


def test_tensorboard_logs_hold_the_loss_and_the_validation_nll(fitted):
    out, _ = fitted
    history = json.loads((out / "metrics.json").read_text())["history"]
    train = tensorboard_scalars(out.parent / "tensorboard" / "train")
    validation = tensorboard_scalars(out.parent / "tensorboard" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in validation["epoch_loss"]], history["val_loss"],
                               rtol=1e-6)


def test_verbose_2_shows_tensorflow_logs_and_nothing_else_differs(tmp_path):
    # A quick run (the file is missing): TensorFlow starts, then the error ends it.
    missing = str(tmp_path / "missing.npy")
    code, quiet = run("fit", "--data", missing)
    assert code == 2 and quiet == f"tfp-tnaf: error: data file not found: {missing}\n", quiet
    code, loud = run("fit", "--data", missing, "--verbose", "2")
    # TensorFlow 2.21 on an x86 machine logs oneDNN (and, without a GPU, the CUDA stub).
    assert code == 2 and loud.endswith(quiet) and TF_LOGS.search(loud), loud


def test_the_command_line_module_imports_no_tensorflow_before_main_runs():
    # The package's root is lazy, so `main` can quiet TensorFlow before importing it.
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    check = ("import sys, tfp_tnaf, tfp_tnaf.cli; print(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('tensorflow', 'tf_keras', 'tensorflow_probability')))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=repository), timeout=60)
    assert result.returncode == 0 and result.stdout == "[]\n", result.stdout + result.stderr
    import tfp_tnaf

    assert tfp_tnaf.FLOWS is tfp_tnaf.models.FLOWS and "FlowModel" in dir(tfp_tnaf)
    with pytest.raises(AttributeError, match="no attribute 'Glow'"):
        tfp_tnaf.Glow  # noqa: B018


def test_drop_logs_keeps_all_but_the_logs_below_the_level():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796232173.420010   15674 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796232173.420363   15674 cudart_stub.cc:31] Could not find cuda drivers\n"
        "W0000 00:00:1796232176.579800   15674 some.cc:31] a warning\n"
        "E0000 00:00:1796232179.744403   15674 cuda_platform.cc:52] failed call to cuInit\n"
        "a line of the program\n")
    assert drop_logs(text, 3) == "a line of the program\n"
    assert drop_logs(text, 2) == text.splitlines(keepends=True)[4] + "a line of the program\n"
    assert drop_logs(text, 1).splitlines()[0].startswith("W0000")
    assert drop_logs(text, 0) == text


def test_evaluate_reproduces_the_fitted_test_log_likelihood(fitted):
    out, _ = fitted
    code, output = run("evaluate", "--run", str(out))
    assert code == 0, output
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"test log-likelihood {metrics['test_log_likelihood']:.4f}" in output


def test_sample_writes_an_array(fitted, tmp_path):
    out, _ = fitted
    path = tmp_path / "samples.npy"
    code, output = run("sample", "--run", str(out), "-n", "50", "--output", str(path))
    assert code == 0, output
    samples = np.load(path)
    assert samples.shape == (50, 2) and np.all(np.isfinite(samples))


def test_higher_dimensional_npy_gets_marginal_and_pair_plots(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "points.npy", rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4)))
    out = tmp_path / "run"
    code, output = run("fit", "--data", str(tmp_path / "points.npy"), "--flow", "bnaf", *TINY,
                       "--out", str(out))
    assert code == 0, output
    assert {"marginals.png", "pairs.png"} <= set(os.listdir(out))


def test_one_dimensional_npy_trains_evaluates_and_plots(tmp_path, capsys):
    # D=1: an [n, 1] array (a 1-D array is refused as ambiguous; see test_hostile_inputs).
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(-2.0, 0.5, 200), rng.normal(1.0, 1.0, 200)])[:, None]
    np.save(tmp_path / "line.npy", points)
    out = tmp_path / "run"
    code, output = run("fit", "--data", str(tmp_path / "line.npy"), "--flow", "naf",
                       "--hidden-units", "8", *TINY, "--out", str(out))
    assert code == 0 and "Traceback" not in output, output
    assert "D=1" in output and set(os.listdir(out)) >= {"density.png", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["plots"] == [str(out / "density.png")] and metrics["samples_finite"]
    assert (out / "density.png").stat().st_size > 10_000
    cli.main(["evaluate", "--run", str(out)])  # in-process: no second interpreter start-up
    output = capsys.readouterr().out
    assert f"test log-likelihood {metrics['test_log_likelihood']:.4f}" in output


def run_in_process(capsys, *args):
    """`cli.main(ARGS)` -> (exit code, stdout + stderr): no interpreter start-up
    per case, and any exception other than a usage error fails the test."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_max_time_stops_the_fit_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    at = TINY.index("--epochs")
    without_epochs = TINY[:at] + TINY[at + 2:]
    cli.main(["fit", "--flow", "naf", "--hidden-units", "8", *without_epochs, "--max-time", "1.5",
              "--decay", "cosine", "--out", str(out)])  # in-process: no interpreter start-up
    assert "time budget spent" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    # Without --epochs the clock alone bounds the run.
    assert config["max_time"] == metrics["max_time"] == 1.5 and metrics["stopped_by_time"]
    assert config["epochs"] == cli.UNBOUNDED_EPOCHS and config["decay"] == "cosine"
    epochs = len(metrics["history"]["val_loss"])  # the partial last epoch is validated
    assert 0 < metrics["steps"] < cli.UNBOUNDED_EPOCHS * 50 and epochs == -(-metrics["steps"] // 50)
    assert np.isfinite(metrics["test_log_likelihood"])


def test_fit_takes_the_transform_and_dropout_of_t_naf(tmp_path, capsys):
    # The paper's transform and a dropout rate are reachable from the command
    # line, and recorded; without `--dropout` the rate follows the data's size:
    # Two Moons' 10,000 training rows are at least `LARGE_DATA` (no dropout),
    # 400 points of a file are not (the bijector's 0.05).
    np.save(tmp_path / "few.npy", np.random.default_rng(0).normal(size=(400, 2)))
    for data, dropout, rate in (("moons", ["--dropout", "0.1"], 0.1), ("moons", [], 0.0),
                                (str(tmp_path / "few.npy"), [], 0.05)):
        out = tmp_path / f"run{rate}"
        cli.main(["fit", "--data", data, "--flow", "tnaf", "--transform", "network", *dropout,
                  *TINY[:4], "--epochs", "1", "--samples", "50", "--verbose", "0",
                  "--out", str(out)])
        architecture = json.loads((out / "config.json").read_text())["architecture"]
        assert architecture["transform"] == "network"
        assert architecture["transform_units"] == 4 and architecture["num_flows"] == 1
        assert architecture["dropout"] == rate
        transformer = runs.restore(str(out))[1].bijector.bijectors[0].conditioner.transformer
        if rate:
            assert transformer.dropout.rate == rate
        else:
            assert transformer.dropout is None  # rate 0: no dropout layer at all
    code, output = run_in_process(capsys, "fit", "--transform", "spline")
    assert code == 2 and "invalid choice: 'spline'" in output and "network" in output
    code, output = run_in_process(capsys, "fit", "--dropout", "1.5")
    assert code == 2 and "dropout" in output and "Traceback" not in output


def test_errors_are_explained(tmp_path, capsys):
    code, output = run_in_process(capsys, "fit", "--data", "mnist")
    assert code == 2 and "moons, siggraph, miniboone, bsds300, digits" in output
    code, output = run_in_process(capsys, "fit", "--flow", "glow")
    assert code == 2 and "invalid choice: 'glow'" in output and "tnaf" in output
    for seconds in ("-1", "abc", "0", "inf"):
        code, output = run_in_process(capsys, "fit", "--max-time", seconds)
        assert code == 2 and f"argument --max-time: expected a positive number of seconds; " \
                             f"got '{seconds}'" in output
    code, output = run_in_process(capsys, "fit", "--strategy", "multiworker", "--max-time", "5")
    assert code == 2 and "not supported with the multiworker strategy" in output
    code, output = run_in_process(capsys, "fit", "--steps-per-execution", "0")
    assert code == 2 and "`steps_per_execution` must be a positive integer; got 0" in output
    code, output = run_in_process(capsys, "fit", "--decay", "cosine")
    assert code == 2 and "decay 'cosine' anneals over max_time: give max_time" in output
    np.save(tmp_path / "flat.npy", np.zeros(30))
    code, output = run_in_process(capsys, "fit", "--data", str(tmp_path / "flat.npy"))
    assert code == 2 and "[num_points, num_dims]" in output
    code, output = run_in_process(capsys, "evaluate", "--run", str(tmp_path))
    assert code == 2 and "no config.json" in output
    (tmp_path / "config.json").write_text(json.dumps(dict(
        data="moons", data_dir=None, flow="naf", seed=0, event_size=2, options={})))
    code, output = run_in_process(capsys, "sample", "--run", str(tmp_path), "--output",
                                  str(tmp_path / "s.npy"))
    assert code == 2 and "has no checkpoint" in output
    assert "Traceback" not in output
