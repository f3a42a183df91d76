"""A short version of `benchmarks/long_training.py`: small flows trained on
SIGGRAPH and rebuilt BSDS300 patches keep finite losses and gradients."""

import numpy as np
import pytest
import tf_keras

from tests.support.flows import SMALL_MAKE_FLOW
from tfp_tnaf import data
from tfp_tnaf.models import FLOWS, make_distribution, make_flow
from tfp_tnaf.training import fit_steps


@pytest.fixture(scope="module")
def datasets():
    return {"siggraph": data.siggraph(seed=0).train,
            "bsds300": data.bsds300(num_train=5000, num_validation=10, num_test=10).train}


@pytest.mark.parametrize("flow,dataset", [("tnaf", "bsds300"), ("naf", "bsds300"),
                                          ("bnaf", "siggraph")])
def test_training_keeps_losses_and_gradients_finite(flow, dataset, datasets):
    train = datasets[dataset]
    tf_keras.utils.set_random_seed(0)
    d = train.shape[1]
    distribution = make_distribution(make_flow(flow, d, **SMALL_MAKE_FLOW[flow]), d)
    # Each flow's own recipe: its learning rate and clipping.
    losses, norms = fit_steps(distribution, train, num_steps=100, batch_size=64,
                              optimizer=FLOWS[flow].recipe.optimizer())
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(norms))
    assert losses[-20:].mean() < losses[:20].mean()
