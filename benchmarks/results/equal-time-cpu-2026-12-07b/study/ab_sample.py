import time, numpy as np, tensorflow as tf, tensorflow_probability as tfp
from tfp_tnaf import fused
from tfp_tnaf.models import make_flow
tfd = tfp.distributions
d, n = 43, 10000
tf.random.set_seed(0)
flow = make_flow("tnaf", d)
z = tf.random.normal([n, d])
f_new = tf.function(lambda: flow.forward(z))
f_new()
with fused.plain():
    f_old = tf.function(lambda: flow.forward(z))
    f_old()
res = {"fused": [], "plain": []}
for r in range(4):
    for k, f in (("fused", f_new), ("plain", f_old)):
        t0 = time.perf_counter(); f(); res[k].append(time.perf_counter() - t0)
for k, v in res.items(): print(k, "sample s min %.3f median %.3f" % (min(v), np.median(v)))
