"""Small instances of every autoregressive flow of the package, for the shared test battery."""

import contextlib
import random

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import BlockNeuralAutoregressive, NeuralAutoregressive, TransformerAutoregressive

tfd = tfp.distributions

SMALL_NAF = dict(transform_units=4, hidden_units=[16, 16])
SMALL_TNAF = dict(num_layers=2, num_heads=2, embedding_units=8, mlp_units=16, head_units=16,
                  psi_units=8, transform_units=8, hypernetwork_units=8)
# The paper's T-NAF (`TransformerAutoregressive.paper`) at the same small sizes.
SMALL_TNAF_PAPER = dict(SMALL_TNAF, hypernetwork="mlp", token_activation="tanh", dropout=0.0)
SMALL_BNAF = dict(transform_units=4, transform_layers=2)
# The T-NAF that tests/test_distribute.py and the script it runs train under each
# strategy. No dropout: each replica would draw its own masks, and the runs are
# compared exactly.
DISTRIBUTED_TNAF = dict(num_layers=1, num_heads=2, embedding_units=8, mlp_units=16,
                        head_units=16, psi_units=8, transform_units=8, hypernetwork_units=8,
                        dropout=0.0)

# The same sizes as options of `tfp_tnaf.models.make_flow`, by its flow name.
SMALL_MAKE_FLOW = {
    "tnaf": dict(SMALL_TNAF, num_flows=1),
    "naf": dict(SMALL_NAF, num_flows=2),
    "bnaf": dict(SMALL_BNAF, num_flows=2),
}

# name -> (class, small keyword arguments, scale of the weight perturbation)
FLOWS = {
    "naf-dsf": (NeuralAutoregressive, dict(SMALL_NAF, transform="dsf"), 0.3),
    "naf-ddsf": (NeuralAutoregressive, dict(SMALL_NAF, transform="ddsf"), 0.3),
    "tnaf": (TransformerAutoregressive, SMALL_TNAF, 0.3),
    "tnaf-paper": (TransformerAutoregressive, SMALL_TNAF_PAPER, 0.3),
    "bnaf": (BlockNeuralAutoregressive, SMALL_BNAF, 0.3),
}


def randomize_variables(module: tf.Module, scale: float = 0.5, seed: int = 0) -> None:
    """Adds Gaussian noise to every trainable variable (away from the initialisation).

    Variable constraints are applied afterwards, as an optimizer does: TFP's MADE
    keeps its autoregressive masks through kernel constraints.
    """
    rng = np.random.default_rng(seed)
    for v in module.trainable_variables:
        v.assign_add(rng.normal(scale=scale, size=v.shape).astype(v.dtype.as_numpy_dtype))
        if v.constraint is not None:
            v.assign(v.constraint(v))


def make_flow(name, event_size=4, dtype=tf.float32, scale=None, **kwargs):
    """A small flow of kind `name`, its weights perturbed away from the initialisation."""
    cls, options, default_scale = FLOWS[name]
    flow = cls(event_size, dtype=dtype, **dict(options, **kwargs))
    randomize_variables(flow, scale=default_scale if scale is None else scale)
    return flow


def normal_base(size, dtype=tf.float32):
    return tfd.Sample(tfd.Normal(tf.constant(0.0, dtype), 1.0), [size])


@contextlib.contextmanager
def seeded(seed: int):
    """Builds networks reproducibly inside a hypothesis strategy.

    Keras' unseeded initialisers, TF's random ops and random input orders draw
    from global state, which other tests and hypothesis itself move: seed it
    all (`tf_keras.utils.set_random_seed`), then give Python's and NumPy's
    generators their states back, which hypothesis expects unchanged.
    """
    python, numpy = random.getstate(), np.random.get_state()
    tf_keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
