"""Where the default T-NAF's train step spends its time (scratch driver, kept for the record).

    PYTHONPATH=. taskset -c 1 python benchmarks/results/step-profile-cpu-2026-12-07/study/profile.py

One thread. Times the train step (D=43, batch 512, `benchmarks.common.train_step_fn`),
then profiles 5 steps with TensorFlow's profiler and sums each op's time per
step by the part of the flow its name places it in: the transformer (its
matmuls and small ops), the XLA-compiled kernels of `tfp_tnaf.fused`, the
DSF transform, the low-rank hypernetwork, the optimizer, the rest.
"""
import collections
import glob
import re
import shutil

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from benchmarks.common import time_call, train_step_fn
from tfp_tnaf.models import make_flow

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tfd = tfp.distributions
STEPS, LOGDIR = 5, "/tmp/tnaf-step-profile"


def part(name: str) -> str:
    """The part of the flow an op event belongs to, from its name."""
    if name.startswith("Cpu") or "fusion" in name or "wrapped" in name:
        return "fused kernels (XLA)"
    found = re.search(r"/tnaf_\d/inverse/([^/:]+)", name)
    if found:
        scope = re.sub(r"_\d+$", "", found.group(1))
        return scope if scope.startswith(("autoregressive_transformer", "low_rank")) else "DSF"
    return "optimizer" if ("Adam" in name or "Assign" in name) else "other"


def events(path: str):
    """(name :: type, microseconds) of every op event on the CPU's compute lines."""
    space = xplane_pb2.XSpace()
    space.ParseFromString(open(path, "rb").read())
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    meta = plane.event_metadata[event.metadata_id]
                    yield f"{meta.name} :: {meta.display_name}", event.duration_ps / 1e6


def main() -> None:
    d, b = 43, 512
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), [d]), make_flow("tnaf", d))
    step = train_step_fn(dist, tf.random.normal([b, d]))
    print(f"step {time_call(step, repeats=10, warmup=2) * 1e3:.1f} ms")
    shutil.rmtree(LOGDIR, ignore_errors=True)
    tf.profiler.experimental.start(LOGDIR)
    for _ in range(STEPS):
        step()
    tf.profiler.experimental.stop()
    path = glob.glob(f"{LOGDIR}/**/*.xplane.pb", recursive=True)[0]
    parts, kinds = collections.Counter(), collections.defaultdict(collections.Counter)
    for name, us in events(path):
        if name.startswith(("Executor", "end:", "Thread", "CpuExecutable")):
            continue  # wrappers around the ops, counted in them
        parts[part(name)] += us / STEPS / 1e3
        kinds[part(name)][name.split(" :: ")[-1]] += us / STEPS / 1e3
    for name, ms in parts.most_common():
        top = ", ".join(f"{k} {v:.1f}" for k, v in kinds[name].most_common(6))
        print(f"| {name} | {ms:.1f} | {top} |")


if __name__ == "__main__":
    main()
