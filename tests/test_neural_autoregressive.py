"""NAF-specific tests; the shared battery is in test_flow_battery.py."""

import numpy as np
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import SMALL_NAF as SMALL
from tests.support.flows import normal_base
from tfp_tnaf import NeuralAutoregressive
from tfp_tnaf.data import two_moons
from tfp_tnaf.training import fit_steps, mean_log_prob

tfb, tfd = tfp.bijectors, tfp.distributions

def test_trainable_variables_complete_at_construction():
    flow = NeuralAutoregressive(6, **SMALL)
    made_weights = sum(int(np.prod(v.shape)) for v in flow.conditioner.trainable_variables)
    assert len(flow.trainable_variables) == 6  # three Dense layers, kernel + bias
    assert sum(int(np.prod(v.shape)) for v in flow.trainable_variables) == made_weights
    assert made_weights == (6 * 16 + 16) + (16 * 16 + 16) + (16 * 6 * 12 + 6 * 12)


def test_fits_two_moons_better_than_maf():
    splits = two_moons(num_train=4000, num_validation=10, num_test=2000, seed=1)
    tf_keras.utils.set_random_seed(1)
    naf = tfb.Chain([NeuralAutoregressive(2, transform_units=16, hidden_units=[64, 64]),
                     tfb.Permute([1, 0]),
                     NeuralAutoregressive(2, transform_units=16, hidden_units=[64, 64])])
    layers = []
    for _ in range(5):
        layers += [tfb.MaskedAutoregressiveFlow(
            tfb.AutoregressiveNetwork(params=2, hidden_units=[64, 64])), tfb.Permute([1, 0])]
    maf = tfb.Chain(layers[:-1])
    results = {}
    for name, bijector in (("naf", naf), ("maf", maf)):
        dist = tfd.TransformedDistribution(normal_base(2), bijector)
        dist.log_prob(splits.train[:1])  # builds the MADE variables of TFP's MAF
        count = sum(int(np.prod(v.shape)) for v in dist.trainable_variables)
        losses, _ = fit_steps(dist, splits.train, num_steps=800, batch_size=256, seed=1,
                              optimizer=tf_keras.optimizers.Adam(1e-3))
        assert np.all(np.isfinite(losses))
        results[name] = (mean_log_prob(dist, splits.test)[0], count)
    (naf_ll, naf_count), (maf_ll, maf_count) = results["naf"], results["maf"]
    assert 0.8 < naf_count / maf_count < 1.2  # similar size
    # A standard Normal fit of standardised data scores -2.84 nats; NAF reaches about -1.4
    # and this MAF about -2.5 (at a learning rate of 3e-3 TFP's MAF diverges here).
    assert naf_ll > -1.6
    assert naf_ll > maf_ll + 0.3
