"""SavedModel export: a fitted flow serves `log_prob` and `sample` in a fresh
process that cannot import TensorFlow Probability or tfp_tnaf, from 8 threads at
once as from one."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import SMALL_MAKE_FLOW
from tfp_tnaf import data
from tfp_tnaf.models import make_distribution, make_flow
from tfp_tnaf.serving import ExportedFlow, export_saved_model
from tfp_tnaf.training import fit_steps

tfb, tfd = tfp.bijectors, tfp.distributions

# Loads every exported model with imports of TFP and tfp_tnaf made to fail.
SERVE = r"""
import importlib.abc, json, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tfp_tnaf", "tensorflow_probability"):
            raise ImportError(f"{name} must not be needed to serve")
sys.meta_path.insert(0, Refuse())
import threading
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import tensorflow as tf

def served(flow, ref, k, context, one_context, barrier=None):
    # thread k: its own points and seed
    if barrier is not None:
        barrier.wait()  # all 8 threads call at once
    log_prob = flow.log_prob(tf.constant(ref["y"] * (1 + 0.25 * k)), *context).numpy()
    return log_prob, flow.sample(tf.constant(5), tf.constant([k, 1]), *one_context).numpy()

def concurrent_calls_agree(flow, ref, context, one_context):
    alone = [served(flow, ref, k, context, one_context) for k in range(8)]
    barrier = threading.Barrier(8)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda k: served(flow, ref, k, context, one_context, barrier),
                                 range(8)))
    for (a, b), (c, d) in zip(alone, together):
        np.testing.assert_allclose(c, a, rtol=1e-6)
        np.testing.assert_allclose(d, b, rtol=1e-6, atol=1e-7)

for case in json.loads(sys.argv[1]):
    flow = tf.saved_model.load(case["dir"])
    ref = np.load(case["dir"] + ".npz")
    context = [tf.constant(ref["context"])] if case["conditional"] else []
    one_context = [tf.constant(ref["context"][0])] if case["conditional"] else []
    # The reference is eager: graph rewrites may round differently (1 ulp).
    np.testing.assert_allclose(flow.log_prob(tf.constant(ref["y"]), *context), ref["log_prob"],
                               rtol=1e-6)
    np.testing.assert_allclose(
        flow.sample(tf.constant(7), tf.constant([3, 4]), *one_context), ref["samples"],
        rtol=1e-5, atol=1e-6)
    kwargs = {"conditional_input": context[0]} if context else {}
    signed = flow.signatures["log_prob"](y=tf.constant(ref["y"]), **kwargs)["log_prob"]
    np.testing.assert_allclose(signed, ref["log_prob"], rtol=1e-6)
    one = {"conditional_input": one_context[0]} if context else {}
    drawn = flow.signatures["sample"](num_samples=tf.constant(7), seed=tf.constant([3, 4]),
                                      **one)["samples"]
    np.testing.assert_allclose(drawn, ref["samples"], rtol=1e-5, atol=1e-6)
    if not context:  # plain Python arguments, as in the README
        np.testing.assert_allclose(flow.sample(7, seed=[3, 4]), ref["samples"], rtol=1e-5,
                                   atol=1e-6)
    concurrent_calls_agree(flow, ref, context, one_context)
    print(case["dir"], "ok")
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in
                         ("tfp_tnaf", "tensorflow_probability")))
"""

CASES = {
    "tnaf": dict(flow="tnaf", options=SMALL_MAKE_FLOW["tnaf"]),
    "naf-in-chain": dict(flow="naf", options=SMALL_MAKE_FLOW["naf"]),
    "bnaf-conditional": dict(flow="bnaf", conditional=True,
                             options=dict(SMALL_MAKE_FLOW["bnaf"], num_flows=1)),
}


def _fitted(case, train):
    flow = make_flow(case["flow"], 2, conditional_event_size=2 if case.get("conditional")
                     else None, **case["options"])
    if case["flow"] == "naf":
        # A TFP MAF and permutation around the package's flows, as users compose.
        flow = tfb.Chain([tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(
            2, event_shape=[2], hidden_units=[8])), tfb.Permute([1, 0]), flow])
    distribution = make_distribution(flow, 2)
    if not case.get("conditional"):  # the conditional case keeps its initial weights
        losses, _ = fit_steps(distribution, train, num_steps=30, batch_size=64,
                              optimizer=tf_keras.optimizers.Adam(3e-3))
        assert losses[-5:].mean() < losses[:5].mean()
    return distribution


def test_exported_flows_serve_identical_results_without_tfp(tmp_path):
    train = data.two_moons(num_train=2000, seed=0).train
    rng = np.random.default_rng(0)
    y = np.concatenate([train[:6], [[8.0, -8.0]]]).astype(np.float32)
    context = rng.normal(size=(len(y), 2)).astype(np.float32)
    cases = []
    for key, case in CASES.items():
        distribution = _fitted(case, train)
        conditional = bool(case.get("conditional"))
        export_dir = str(tmp_path / key)
        if conditional:
            # make_flow names its layers; the context reaches them by name.
            to_kwargs = lambda c: {"bnaf_0": {"conditional_input": c}}
            export_saved_model(distribution, export_dir, conditional_event_size=2,
                               conditional_kwargs=to_kwargs)
            log_prob = distribution.log_prob(y, bijector_kwargs=to_kwargs(context))
            samples = distribution.sample(7, seed=tf.constant([3, 4]),
                                          bijector_kwargs=to_kwargs(context[0]))
        else:
            export_saved_model(distribution, export_dir)
            log_prob = distribution.log_prob(y)
            samples = distribution.sample(7, seed=tf.constant([3, 4]))
        assert np.all(np.isfinite(log_prob)) and np.all(np.isfinite(samples))
        np.savez(export_dir + ".npz", y=y, context=context, log_prob=log_prob.numpy(),
                 samples=samples.numpy())
        cases.append(dict(dir=export_dir, conditional=conditional))
    result = subprocess.run([sys.executable, "-c", SERVE, json.dumps(cases)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == len(CASES)
    assert "modules: []" in result.stdout
    # T-NAF's fused kernels are exported as plain ops: nothing for XLA to compile.
    assert not _compiled_functions(tmp_path / "tnaf")


def _compiled_functions(export_dir) -> list[str]:
    """Names of the functions of a SavedModel that XLA must compile."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((export_dir / "saved_model.pb").read_bytes())
    return [f.signature.name for graph in proto.meta_graphs
            for f in graph.graph_def.library.function if f.attr["_XlaMustCompile"].b]


def test_exported_flow_rejects_non_vector_events():
    matrix = tfd.Sample(tfd.Normal(0.0, 1.0), [2, 3])
    with pytest.raises(ValueError, match="events of shape \\[D\\]"):
        ExportedFlow(matrix)
