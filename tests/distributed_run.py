"""Trains a small T-NAF under a tf.distribute strategy and writes its losses (run by
test_distribute.py in subprocesses: logical devices and TF_CONFIG are per process)."""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--strategy", nargs="+", default=["default"])
parser.add_argument("--logical-cpus", type=int, default=0)
parser.add_argument("--out", required=True)
parser.add_argument("--epochs", type=int, default=4)
args = parser.parse_args()
if args.logical_cpus:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

from tfp_tnaf.distribute import check_global_batch, make_strategy  # noqa: E402

strategies = {name: make_strategy(name, peer_timeout=60) for name in args.strategy}

import tf_keras  # noqa: E402

from tests.support.flows import DISTRIBUTED_TNAF  # noqa: E402
from tfp_tnaf import TransformerAutoregressive  # noqa: E402
from tfp_tnaf.data import two_moons  # noqa: E402
from tfp_tnaf.models import make_distribution  # noqa: E402
from tfp_tnaf.training import FlowModel, save_weights  # noqa: E402

splits = two_moons(num_train=128, num_validation=10, num_test=32, seed=3)
results = {}
for name, strategy in strategies.items():
    tf_keras.utils.set_random_seed(7)
    with strategy.scope():
        distribution = make_distribution(TransformerAutoregressive(2, **DISTRIBUTED_TNAF), 2)
        model = FlowModel(distribution)
        # Two steps per call: one call an epoch (128 rows, batch 64), under every strategy.
        model.compile(tf_keras.optimizers.Adam(1e-2), steps_per_execution=2)
    history = model.fit(splits.train, batch_size=64, epochs=args.epochs, shuffle=False,
                        verbose=0)
    save_weights(distribution, os.path.join(args.out, name, "weights"))
    try:
        check_global_batch(201, strategy)
        batch_error = None
    except ValueError as error:
        batch_error = str(error)
    results[name] = dict(
        replicas=strategy.num_replicas_in_sync, losses=history.history["loss"],
        batch_error=batch_error,
        log_prob=distribution.log_prob(tf.constant(splits.test)).numpy().tolist())
with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(results, f)
