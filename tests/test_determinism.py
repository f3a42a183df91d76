"""Reproducibility on CPU: a fixed seed fixes the training run; restored
weights give the same log_prob and, with the same seed, the same samples.

Bit-for-bit needs Grappler's arithmetic optimizer off: in TensorFlow 2.21 it
can order a graph's floating-point sums differently from one trace (or
process) to the next, so two NAF trainings could differ in the last bit (seen
in CI). On a GPU also call `tf.config.experimental.enable_op_determinism()`.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.support.flows import SMALL_MAKE_FLOW
from tfp_tnaf import FlowModel, load_weights, save_weights
from tfp_tnaf.data import two_moons
from tfp_tnaf.models import make_distribution, make_flow

TRAIN = two_moons(num_train=384, num_validation=64, seed=0)


def _train(name, seed):
    """Builds the flow and fits it with Keras (shuffled batches) from `seed`."""
    tf_keras.utils.set_random_seed(seed)
    distribution = make_distribution(make_flow(name, 2, **SMALL_MAKE_FLOW[name]), 2)
    model = FlowModel(distribution)
    model.compile(tf_keras.optimizers.Adam(3e-3))
    history = model.fit(TRAIN.train, validation_data=(TRAIN.validation,), epochs=1,
                        batch_size=64, verbose=0)
    return distribution, np.array(history.history["loss"] + history.history["val_loss"])


@pytest.fixture
def reproducible_graphs():
    """The README's recipe for bit-identical runs, undone after the test."""
    before = tf.config.optimizer.get_experimental_options().get("arithmetic_optimization", True)
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    yield
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": before})


@pytest.mark.usefixtures("reproducible_graphs")
@pytest.mark.parametrize("name", list(SMALL_MAKE_FLOW))
def test_fixed_seed_reproduces_training_and_restored_flows_match(name, tmp_path):
    first, losses = _train(name, seed=3)
    second, again = _train(name, seed=3)
    np.testing.assert_array_equal(again, losses)
    for a, b in zip(first.trainable_variables, second.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    path = save_weights(first, tmp_path / "weights")
    tf_keras.utils.set_random_seed(5)
    restored = make_distribution(make_flow(name, 2, **SMALL_MAKE_FLOW[name]), 2)
    x = tf.constant(TRAIN.test[:50])
    assert not np.array_equal(restored.log_prob(x).numpy(), first.log_prob(x).numpy())
    load_weights(restored, path)
    np.testing.assert_array_equal(restored.log_prob(x).numpy(), first.log_prob(x).numpy())
    seed = tf.constant([7, 8])
    np.testing.assert_array_equal(restored.sample(20, seed=seed).numpy(),
                                  first.sample(20, seed=seed).numpy())
    assert not np.array_equal(first.sample(20, seed=tf.constant([7, 9])).numpy(),
                              first.sample(20, seed=seed).numpy())
