"""Training under tf.distribute: MirroredStrategy on two logical CPUs, and
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.support.flows import DISTRIBUTED_TNAF
from tfp_tnaf import TransformerAutoregressive
from tfp_tnaf.data import two_moons
from tfp_tnaf.distribute import make_strategy
from tfp_tnaf.models import make_distribution
from tfp_tnaf.training import load_weights

# The module fixture is expensive: one xdist worker runs all of this file.
pytestmark = pytest.mark.xdist_group("distribute")

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "distributed_run.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """One process with two logical CPUs: a single-device run, then a mirrored one."""
    out = tmp_path_factory.mktemp("mirrored")
    result = subprocess.run([sys.executable, SCRIPT, "--strategy", "default", "mirrored",
                             "--logical-cpus", "2", "--out", str(out)], env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_mirrored_matches_single_device(mirrored):
    _, results = mirrored
    single, replicated = results["default"], results["mirrored"]
    assert (single["replicas"], replicated["replicas"]) == (1, 2)
    # Same seed, same global batch of 64 (32 per replica): the same steps.
    assert single["losses"][-1] < single["losses"][0]
    np.testing.assert_allclose(replicated["losses"], single["losses"], rtol=1e-5)
    np.testing.assert_allclose(replicated["log_prob"], single["log_prob"], rtol=1e-5)


def test_mirrored_checkpoint_restores_on_one_device(mirrored):
    out, results = mirrored
    distribution = make_distribution(TransformerAutoregressive(2, **DISTRIBUTED_TNAF), 2)
    load_weights(distribution, out / "mirrored" / "weights")
    test = two_moons(num_train=128, num_validation=10, num_test=32, seed=3).test
    np.testing.assert_allclose(distribution.log_prob(tf.constant(test)).numpy(),
                               results["mirrored"]["log_prob"], rtol=1e-6)


def test_uneven_global_batch_is_explained(mirrored):
    _, results = mirrored
    assert results["default"]["batch_error"] is None
    message = results["mirrored"]["batch_error"]
    assert "201" in message and "divisible by the 2 replicas" in message


def test_two_workers_match_single_device(mirrored, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]}
    workers = []
    for index in range(2):
        env = dict(ENV, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, SCRIPT, "--strategy", "multiworker", "--out",
             str(tmp_path / f"worker{index}")], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    single = mirrored[1]["default"]
    for index in range(2):
        result = json.loads((tmp_path / f"worker{index}" / "results.json").read_text())
        run = result["multiworker"]
        assert run["replicas"] == 2
        np.testing.assert_allclose(run["losses"], single["losses"], rtol=1e-5)
        np.testing.assert_allclose(run["log_prob"], single["log_prob"], rtol=1e-5)


def test_unreachable_peer_times_out_naming_it(tmp_path):
    own, peer = (f"127.0.0.1:{free_port()}" for _ in range(2))
    env = dict(ENV, TF_CONFIG=json.dumps({"cluster": {"worker": [own, peer]},
                                          "task": {"type": "worker", "index": 0}}))
    result = subprocess.run([sys.executable, "-m", "tfp_tnaf", "fit", "--strategy",
                             "multiworker", "--peer-timeout", "2", "--out", str(tmp_path)],
                            env=dict(env, PYTHONPATH=os.path.dirname(HERE)), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"could not reach its peer(s) at {peer} within 2 s" in result.stderr


def test_strategy_errors(monkeypatch):
    with pytest.raises(ValueError, match="default, mirrored, multiworker"):
        make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multiworker")
