"""Run folders outlive default changes: `config.json` records the flow as built
(`architecture`), older folders rebuild the defaults of their day, and a
checkpoint that does not fit its config is said as a `RunError`."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_tnaf import runs
from tfp_tnaf.models import make_distribution, make_flow, resolved_options
from tfp_tnaf.training import save_weights


def write_run(folder, distribution, config: dict) -> None:
    save_weights(distribution, folder / "checkpoint" / "weights")
    (folder / "config.json").write_text(json.dumps(config))


def moved(distribution):
    """Weights off their initial values, so that a score depends on all of them."""
    rng = np.random.default_rng(0)
    for v in distribution.trainable_variables:
        v.assign_add(0.1 * rng.standard_normal(v.shape).astype(np.float32))
    return distribution


def test_a_folder_without_architecture_rebuilds_the_one_layer_t_naf_of_its_day(tmp_path):
    tf_keras.utils.set_random_seed(0)
    old = moved(make_distribution(make_flow("tnaf", 2, num_flows=1, num_layers=2,
                                            transform="network", transform_units=4), 2))
    write_run(tmp_path, old, dict(flow="tnaf", options={"transform_units": 4}, event_size=2))
    _, restored = runs.restore(str(tmp_path))
    y = tf.constant(np.random.default_rng(1).normal(size=(8, 2)), tf.float32)
    np.testing.assert_allclose(restored.log_prob(y), old.log_prob(y), rtol=1e-6)
    # Today's default is another flow: two layers of one block, driving a DSF.
    assert resolved_options("tnaf")["num_flows"] == 2
    assert resolved_options("tnaf")["transform"] == "dsf"
    assert len(restored.bijector.bijectors) == 1
    assert type(restored.bijector.bijectors[0].transform).__name__ == "MonotoneNetworkTransform"


def test_a_checkpoint_that_does_not_fit_its_config_is_a_run_error(tmp_path):
    tf_keras.utils.set_random_seed(0)
    old = make_distribution(
        make_flow("tnaf", 2, num_flows=1, num_layers=2, transform_units=4), 2)
    write_run(tmp_path, old, dict(flow="tnaf", options={"transform_units": 4}, event_size=2,
                                  architecture=resolved_options("tnaf", transform_units=4)))
    with pytest.raises(runs.RunError, match="does not fit the flow its config.json describes"):
        runs.restore(str(tmp_path))
