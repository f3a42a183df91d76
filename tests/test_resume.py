"""Training that survives a kill: `ResumableTraining` in process, and `tfp-tnaf fit`
killed with SIGKILL and run again."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.support.flows import SMALL_NAF
from tfp_tnaf import NeuralAutoregressive
from tfp_tnaf.data import two_moons
from tfp_tnaf.models import make_distribution
from tfp_tnaf.training import (
    BestWeights,
    DecayOverBudget,
    FlowModel,
    ResumableTraining,
    TimeBudget,
)

MOONS = two_moons(num_train=640, num_validation=200, num_test=200, seed=4)
EPOCHS, BATCH = 5, 64


class Interrupt(tf_keras.callbacks.Callback):
    """Stands for a kill: raises when epoch `at` begins (its predecessors done)."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt(f"killed at epoch {epoch}")


def _model():
    tf_keras.utils.set_random_seed(0)
    model = FlowModel(make_distribution(NeuralAutoregressive(2, **SMALL_NAF), 2))
    model.compile(tf_keras.optimizers.Adam(1e-2))
    model(MOONS.train[:1])
    return model


def _fit(model, directory, extra=()):
    best, budget = BestWeights(), TimeBudget(10_000.0)
    decay = DecayOverBudget(budget)  # over 10,000 s: the rate hardly moves
    resume = ResumableTraining(directory, callbacks=[best, budget, decay])
    # Unshuffled batches: a resumed run then replays exactly what an unbroken one does.
    model.fit(MOONS.train, validation_data=(MOONS.validation,), epochs=EPOCHS,
              batch_size=BATCH, shuffle=False, callbacks=[best, budget, decay, resume, *extra],
              verbose=0)
    return best, budget, resume


def test_a_resumed_fit_continues_where_the_killed_one_stopped(tmp_path):
    unbroken = _model()
    best_unbroken, _, resume_unbroken = _fit(unbroken, tmp_path / "unbroken")
    assert resume_unbroken.resumed_from is None
    assert not (tmp_path / "unbroken").exists()  # deleted at the end by default

    killed = _model()
    with pytest.raises(KeyboardInterrupt):
        _fit(killed, tmp_path / "run", extra=[Interrupt(at=3)])
    spent = json.loads(tf.train.load_variable(  # what the checkpoint holds
        tf.train.latest_checkpoint(tmp_path / "run" / "chief"),
        "resume_state/text/.ATTRIBUTES/VARIABLE_VALUE").decode())
    assert spent["epochs_done"] == 3
    assert spent["callbacks"][2] == dict(initial_learning_rate=pytest.approx(1e-2))

    fresh = _model()  # a new process would build the flow from scratch
    best, budget, resume = _fit(fresh, tmp_path / "run")
    assert resume.resumed_from == 3
    # The optimizer's moments, the best weights and the epoch came back: the
    # resumed run ends where the unbroken one does.
    for a, b in zip(fresh.get_weights(), unbroken.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resume.history["val_loss"],
                               resume_unbroken.history["val_loss"], rtol=1e-5)
    assert len(resume.history["loss"]) == EPOCHS
    assert best.best_epoch == best_unbroken.best_epoch
    assert best.steps == best_unbroken.steps == EPOCHS * len(MOONS.train) // BATCH
    # The budget counts the seconds spent before the kill too.
    assert budget.steps == best.steps
    assert budget.seconds > spent["callbacks"][1]["seconds"] > 0


def test_a_finished_budget_resumes_as_finished(tmp_path):
    """A run stopped by its budget and killed before its results were written
    trains no further when resumed."""
    model = _model()
    best, budget = BestWeights(), TimeBudget(1e-3)
    resume = ResumableTraining(tmp_path / "run", callbacks=[best, budget],
                               delete_checkpoint=False)
    model.fit(MOONS.train, epochs=EPOCHS, batch_size=BATCH, callbacks=[best, budget, resume],
              verbose=0)
    assert budget.exhausted and best.steps == 1
    again = _model()
    best, budget = BestWeights(), TimeBudget(1e-3)
    resume = ResumableTraining(tmp_path / "run", callbacks=[best, budget])
    again.fit(MOONS.train, epochs=EPOCHS, batch_size=BATCH, callbacks=[best, budget, resume],
              verbose=0)
    assert resume.resumed_from == EPOCHS and best.steps == budget.steps == 1
    for a, b in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unbuilt_model_is_refused(tmp_path):
    model = FlowModel(make_distribution(NeuralAutoregressive(2, **SMALL_NAF), 2))
    model.compile(tf_keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="call it on a batch"):
        model.fit(MOONS.train, epochs=1, callbacks=[ResumableTraining(tmp_path)], verbose=0)


def _command(out):
    return [sys.executable, "-m", "tfp_tnaf", "fit", "--data", "moons", "--flow", "naf",
            "--hidden-units", "8", "--num-flows", "1", "--transform-units", "4",
            "--epochs", "40", "--batch-size", "500", "--samples", "200", "--verbose", "2",
            "--out", str(out)]


def _environment():
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return dict(os.environ, PYTHONPATH=repository, TF_CPP_MIN_LOG_LEVEL="2")


def test_tfp_tnaf_fit_killed_with_sigkill_resumes(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=_environment())
    seen = []
    for line in process.stdout:  # Keras prints "Epoch 4/40" once epoch 3 is checkpointed
        seen.append(line)
        if line.startswith("Epoch 4/"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    assert not (out / "metrics.json").exists() and (out / "resume").is_dir()

    # Steps per call are how the run executes, not what it is: another value resumes.
    result = subprocess.run(_command(out) + ["--steps-per-execution", "3"], capture_output=True,
                            text=True, env=_environment(), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "holds an unfinished run of this configuration: resuming it" in output
    done = int(output.split("resumed after epoch ")[1].split()[0])
    assert 3 <= done < 40
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] == done
    assert len(metrics["history"]["val_loss"]) == 40
    # The same folder as an unbroken run: results in place, nothing left to resume.
    assert {"config.json", "metrics.json", "density.png", "checkpoint"} == set(os.listdir(out))
    assert metrics["steps"] == 40 * -(-len(two_moons().train) // 500)


def test_an_unfinished_run_of_an_older_default_resumes_the_flow_it_built(tmp_path):
    # The same command, begun when T-NAF's dropout on Two Moons was 0.05: its
    # folder records that architecture, and running the command again resumes
    # that flow instead of refusing the folder or building today's.
    from tfp_tnaf import runs

    out = tmp_path / "run"
    config = runs.FitConfig(flow="tnaf", epochs=1, out=str(out), verbose=0, samples=50,
                            options=dict(num_flows=1, transform_units=4))
    runs.fit(config)
    saved = json.loads((out / "config.json").read_text())
    assert saved["architecture"]["dropout"] == 0.0  # today's, for 10,000 rows
    saved["architecture"]["dropout"] = 0.05
    (out / "config.json").write_text(json.dumps(saved))
    (out / "resume").mkdir()  # unfinished
    runs.fit(config)
    assert json.loads((out / "config.json").read_text())["architecture"]["dropout"] == 0.05
    transformer = runs.restore(str(out))[1].bijector.bijectors[0].conditioner.transformer
    assert transformer.dropout.rate == 0.05
    # Another difference is still another configuration.
    (out / "resume").mkdir()
    with pytest.raises(runs.RunError, match=r"another configuration \(it differs in .*epochs"):
        runs.fit(runs.FitConfig(**{**dataclasses.asdict(config), "epochs": 2}))


def test_a_bad_option_fails_before_the_run_folder_is_touched(tmp_path):
    from tfp_tnaf import runs

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # a finished run's output
    with pytest.raises(runs.RunError, match="takes no `dropout`"):
        runs.fit(runs.FitConfig(flow="naf", epochs=1, out=str(out), verbose=0,
                                options=dict(dropout=0.1)))
    assert (out / "metrics.json").read_text() == "{}"


def test_another_configuration_does_not_overwrite_an_unfinished_run(tmp_path):
    out = tmp_path / "run"
    (out / "resume").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(dict(flow="naf", epochs=3)))
    from tfp_tnaf import runs

    with pytest.raises(runs.RunError, match=r"another configuration \(it differs in .*epochs"):
        runs.fit(runs.FitConfig(flow="naf", epochs=1, out=str(out), verbose=0,
                                options=dict(num_flows=1, hidden_units=[8])))
    assert (out / "resume").is_dir()
