import sys, time, numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from tfp_tnaf.models import make_flow, make_distribution
from tfp_tnaf.nn import transformer as T
new_norm, new_mlp = T.AutoregressiveTransformer._norm, T.AutoregressiveTransformer._mlp
def old_norm(layer, t):
    mean, variance = tf.nn.moments(t, axes=[-1], keepdims=True)
    return (t - mean) * tf.math.rsqrt(variance + layer.epsilon) * layer.gamma + layer.beta
def old_mlp(self, block, t):
    return t + self._drop(block["mlp_out"](block["mlp_in"](self._norm(block["norm_mlp"], t))))
d, b = int(sys.argv[1]), int(sys.argv[2])
jit = len(sys.argv) > 3
x = tf.constant(np.random.RandomState(0).randn(b, d).astype("float32"))
steps = {}
for name, patch in (("old", (staticmethod(old_norm), old_mlp)), ("new", (staticmethod(new_norm), new_mlp))):
    T.AutoregressiveTransformer._norm, T.AutoregressiveTransformer._mlp = patch
    tf.random.set_seed(0)
    dist = make_distribution(make_flow("tnaf", d), d)
    vs = dist.trainable_variables
    def step(x, dist=dist, vs=vs):
        with tf.GradientTape() as t:
            l = -tf.reduce_mean(dist.log_prob(x))
        return l, t.gradient(l, vs)
    f = tf.function(step, jit_compile=jit)
    for _ in range(5): f(x)
    steps[name] = f
res = {k: [] for k in steps}
for r in range(8):
    for k, f in steps.items():
        t0 = time.perf_counter()
        for _ in range(10): f(x)
        res[k].append((time.perf_counter() - t0) / 10 * 1e3)
for k, v in res.items(): print(k, "min %.1f median %.1f" % (min(v), np.median(v)))
print("ratio of medians new/old %.3f" % (np.median(res["new"]) / np.median(res["old"])))
