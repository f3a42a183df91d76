import sys, time, numpy as np, tensorflow as tf, tf_keras
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from tfp_tnaf.models import make_flow, make_distribution, FLOWS
from tfp_tnaf.training import FlowModel
from tfp_tnaf.nn import transformer as T
new_norm, new_mlp = T.AutoregressiveTransformer._norm, T.AutoregressiveTransformer._mlp
def old_norm(layer, t):
    mean, variance = tf.nn.moments(t, axes=[-1], keepdims=True)
    return (t - mean) * tf.math.rsqrt(variance + layer.epsilon) * layer.gamma + layer.beta
def old_mlp(self, block, t):
    return t + self._drop(block["mlp_out"](block["mlp_in"](self._norm(block["norm_mlp"], t))))
d, b = int(sys.argv[1]), int(sys.argv[2])
data = np.random.RandomState(0).randn(b * 400, d).astype("float32")
models = {}
for name, patch in (("old", (staticmethod(old_norm), old_mlp)), ("new", (staticmethod(new_norm), new_mlp))):
    T.AutoregressiveTransformer._norm, T.AutoregressiveTransformer._mlp = patch
    tf_keras.utils.set_random_seed(0)
    dist = make_distribution(make_flow("tnaf", d, num_examples=len(data)), d)
    m = FlowModel(dist)
    m.compile(FLOWS["tnaf"].recipe.optimizer(), steps_per_execution=10)
    m.fit(data, batch_size=b, epochs=1, verbose=0)
    models[name] = m
res = {k: [] for k in models}
for r in range(5):
    for k, m in models.items():
        t0 = time.perf_counter()
        m.fit(data, batch_size=b, epochs=1, verbose=0)
        res[k].append((time.perf_counter() - t0) / 400 * 1e3)
for k, v in res.items(): print(k, "ms/step min %.2f median %.2f" % (min(v), np.median(v)))
