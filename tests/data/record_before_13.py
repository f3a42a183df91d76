"""Records seeded flows' numbers with the code as it is (before the #13 redesign)."""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tfp_tnaf import (NeuralAutoregressive, TransformerAutoregressive, BlockNeuralAutoregressive,
                      DeepSigmoidal, DeepDenseSigmoidal)
from tfp_tnaf.models import make_flow
tfd = tfp.distributions

def perturb(module, scale):
    for v in module.trainable_variables:
        value = v.numpy().astype(np.float64)
        index = np.arange(value.size, dtype=np.float64).reshape(value.shape)
        v.assign((value + scale * np.sin(37.0 * value + 0.61803 * index + 1.0)).astype(v.dtype.as_numpy_dtype))
        if v.constraint is not None:
            v.assign(v.constraint(v))

D, C = 5, 3
SMALL_NAF = dict(transform_units=4, hidden_units=[16, 16])
SMALL_TNAF = dict(num_layers=2, num_heads=2, embedding_units=8, mlp_units=16, head_units=16,
                  psi_units=8, transform_units=8, hypernetwork_units=8)
SMALL_BNAF = dict(hidden_units=4, num_layers=2)
ORDER = [3, 1, 5, 2, 4]
CASES = {
  "naf-dsf": lambda **kw: NeuralAutoregressive(D, transform="dsf", **SMALL_NAF, **kw),
  "naf-ddsf": lambda **kw: NeuralAutoregressive(D, transform="ddsf", **SMALL_NAF, **kw),
  "tnaf": lambda **kw: TransformerAutoregressive(D, **SMALL_TNAF, **kw),
  "tnaf-default": lambda **kw: TransformerAutoregressive(D, **kw),
  "bnaf": lambda **kw: BlockNeuralAutoregressive(D, **SMALL_BNAF, **kw),
  "bnaf-gated": lambda **kw: BlockNeuralAutoregressive(D, gated_residual=True, **SMALL_BNAF, **kw),
}
rng = np.random.default_rng(2024)
Y = rng.normal(scale=1.5, size=(6, D))
X = rng.normal(size=(6, D))
CTX = rng.normal(size=(6, C))
out = {"y": Y, "x": X, "context": CTX}
for dtype in (tf.float64, tf.float32):
    for name, build in CASES.items():
        for conditional in (False, True):
            if dtype == tf.float32 and conditional: continue
            key = f"{name}/{dtype.name}/{'conditional' if conditional else 'plain'}"
            tf_keras.utils.set_random_seed(11)
            kw = dict(dtype=dtype, input_order=ORDER)
            if conditional: kw["conditional_event_size"] = C
            flow = build(**kw)
            perturb(flow, 0.3)
            dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(tf.constant(0., dtype), 1.), [D]), flow)
            bk = {"conditional_input": tf.constant(CTX, dtype)} if conditional else {}
            y = tf.constant(Y, dtype); x = tf.constant(X, dtype)
            out[key + "/log_prob"] = dist.log_prob(y, bijector_kwargs=bk).numpy()
            out[key + "/inverse"] = flow.inverse(tf.identity(y), **bk).numpy()
            out[key + "/forward"] = flow.forward(x, **bk).numpy()
            sk = {"conditional_input": tf.constant(CTX[0], dtype)} if conditional else {}
            out[key + "/sample"] = dist.sample(4, seed=tf.constant([1, 2]), bijector_kwargs=sk).numpy()
            print(key, out[key + "/log_prob"][:3], flush=True)
# make_flow stacks (float32), the unseeded default order
for name, opts in {"naf": dict(SMALL_NAF, num_flows=2), "tnaf": dict(SMALL_TNAF, num_flows=2),
                   "bnaf": dict(num_flows=2, transform_units=4, num_layers=2)}.items():
    tf_keras.utils.set_random_seed(12)
    flow = make_flow(name, D, **opts)
    perturb(flow, 0.3)
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), [D]), flow)
    y = tf.constant(Y, tf.float32)
    key = f"make_flow-{name}"
    out[key + "/log_prob"] = dist.log_prob(y).numpy()
    out[key + "/sample"] = dist.sample(4, seed=tf.constant([3, 4])).numpy()
    print(key, out[key + "/log_prob"][:3], flush=True)
# elementwise transforms
for cls, units, layers in ((DeepSigmoidal, 4, 2), (DeepDenseSigmoidal, 3, 3)):
    params = np.random.default_rng(7).normal(scale=2.0, size=(7, cls.num_params(units, layers)))
    b = cls(tf.constant(params), units, layers)
    yy = tf.constant(np.linspace(-30, 30, 7))
    key = f"elementwise-{cls.__name__}"
    out[key + "/params"] = params
    out[key + "/inverse"] = b.inverse(yy).numpy()
    out[key + "/ildj"] = b.inverse_log_det_jacobian(yy).numpy()
    out[key + "/forward"] = b.forward(yy).numpy()
np.savez(sys.argv[1], **out)
print("wrote", len(out), "arrays")
