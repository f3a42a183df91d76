"""Test log-likelihood of a fitted distribution."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["compiled_log_prob", "mean_log_prob"]

tfd = tfp.distributions

# distribution -> {(dtype, event size): its log_prob traced for [None, D] batches}.
# The traced function holds the distribution by a weak reference (its variables
# it captures), so an entry goes when its distribution does.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_log_prob(distribution: tfd.Distribution, event_size: int,
                      **kwargs: Any) -> tf.types.experimental.ConcreteFunction:
    """`distribution.log_prob` traced once, for batches `[N, event_size]` of any N.

    A concrete function of one `[None, event_size]` argument: every batch size,
    a short last batch included, runs the same graph, and calling it never
    traces again. Without `kwargs` it is traced once per distribution and kept
    (while the distribution lives), so repeated evaluations do not trace;
    `kwargs` (passed to `log_prob`, e.g. `bijector_kwargs=...`) are captured in a
    new trace on each call.
    """
    key = (tf.as_dtype(distribution.dtype).name, int(event_size))
    cached = _COMPILED.setdefault(distribution, {}) if not kwargs else {}
    if key not in cached:
        reference = weakref.ref(distribution)
        spec = tf.TensorSpec([None, event_size], distribution.dtype)
        cached[key] = tf.function(
            lambda y: reference().log_prob(y, **kwargs)).get_concrete_function(spec)
    return cached[key]


def mean_log_prob(distribution: tfd.Distribution, data: np.ndarray,
                  batch_size: int = 4096, **kwargs: Any) -> tuple[float, float]:
    """Mean log-likelihood of `data` and its standard error over the points.

    `data` goes through `compiled_log_prob` in batches of `batch_size` (one
    trace, whatever the batch sizes); `kwargs` go to `log_prob`
    (`bijector_kwargs=...`).
    """
    log_prob = compiled_log_prob(distribution, data.shape[-1], **kwargs)
    values = np.concatenate([
        log_prob(tf.cast(data[i:i + batch_size], distribution.dtype)).numpy()
        for i in range(0, len(data), batch_size)])
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
