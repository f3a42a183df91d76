"""Test log-likelihood of a fitted distribution."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["mean_log_prob"]

tfd = tfp.distributions


def mean_log_prob(distribution: tfd.Distribution, data: np.ndarray,
                  batch_size: int = 4096, **kwargs: Any) -> tuple[float, float]:
    """Mean log-likelihood of `data` and its standard error over the points.

    `kwargs` go to `log_prob` (`bijector_kwargs=...`).
    """
    dtype = distribution.dtype
    log_prob = tf.function(lambda y: distribution.log_prob(y, **kwargs))
    values = np.concatenate([
        log_prob(tf.constant(data[i:i + batch_size], dtype)).numpy()
        for i in range(0, len(data), batch_size)])
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
