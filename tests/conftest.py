"""Fixtures of the whole suite (helpers live in `tests/support`)."""

import pytest
import tf_keras


@pytest.fixture(autouse=True)
def _seed():
    # Python, NumPy and TensorFlow seeds: initialisations do not depend on test order.
    tf_keras.utils.set_random_seed(0)
