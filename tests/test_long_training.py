"""A short version of `benchmarks/long_training.py`: small flows trained on
SIGGRAPH and rebuilt BSDS300 patches keep finite losses and gradients."""

import numpy as np
import pytest
import tf_keras
from flows import SMALL_MAKE_FLOW

from benchmarks.run import flow_specs
from tfp_tnaf import data
from tfp_tnaf.models import make_distribution, make_flow
from tfp_tnaf.training import fit_maximum_likelihood

# name -> (benchmarks.run flow, small options): the benchmark's learning rate and clipping.
FLOWS = {
    "tnaf": ("T-NAF", SMALL_MAKE_FLOW["tnaf"]),
    "naf": ("NAF-DSF", SMALL_MAKE_FLOW["naf"]),
    "bnaf": ("B-NAF", SMALL_MAKE_FLOW["bnaf"]),
}


@pytest.fixture(scope="module")
def datasets():
    return {"siggraph": data.siggraph(seed=0).train,
            "bsds300": data.bsds300(num_train=5000, num_validation=10, num_test=10).train}


@pytest.mark.parametrize("flow,dataset", [("tnaf", "bsds300"), ("naf", "bsds300"),
                                          ("bnaf", "siggraph")])
def test_training_keeps_losses_and_gradients_finite(flow, dataset, datasets):
    spec, options = FLOWS[flow]
    name, _, lr, clipnorm = flow_specs(quick=False)[spec]
    train = datasets[dataset]
    tf_keras.utils.set_random_seed(0)
    distribution = make_distribution(make_flow(name, train.shape[1], **options), train.shape[1])
    losses, norms = fit_maximum_likelihood(distribution, train, num_steps=100, batch_size=64,
                                           learning_rate=lr, clipnorm=clipnorm,
                                           gradient_norms=True)
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(norms))
    assert losses[-20:].mean() < losses[:20].mean()
