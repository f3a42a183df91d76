"""`Conditioner`: data -> each dimension's pseudo-parameters, autoregressively.

The one interface behind every flow of the package. `conditioner(y)` is the
parallel pass: `y` `[N, D]` (dimensions in their natural order) -> `[N, D, P]`,
where dimension i's pseudo-parameters depend only on the dimensions of lower
degree (`input_order`, as `tfb.AutoregressiveNetwork` takes it).
`conditioner.decoder(...)` serves sampling, one dimension at a time, with
whatever state the conditioner can carry from one step to the next (the
transformer's keys and values).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from tfp_tnaf import checks

__all__ = ["Conditioner", "Step"]

# step(i, y, state) -> (params [N, P] of dimension i, new state); `y` [N, D]
# holds the dimensions solved so far (zeros elsewhere).
Step = Callable[[tf.Tensor, tf.Tensor, Any], tuple[tf.Tensor, Any]]


class Conditioner(tf.Module):
    """Base class: autoregressive pseudo-parameters of an `event_size`-dim vector.

    Subclasses implement `_params(y, conditional_input)` (the parallel pass on
    `[N, D]`) and may override `decoder` with a faster sequential path.

    Args:
      event_size: D.
      input_order: degrees `1..D` of the dimensions (`checks.input_order`).
      num_params: P, pseudo-parameters per dimension.
      conditional_event_size: size of a context vector, or None.
      dtype: float dtype of the variables and inputs.
    """

    def __init__(self, event_size: int, input_order: np.ndarray, num_params: int,
                 conditional_event_size: int | None = None, dtype: Any = tf.float32,
                 name: str | None = None):
        super().__init__(name=name)
        self.event_size = checks.positive_int(event_size, "event_size")
        self.input_order = checks.input_order(self.event_size, input_order)
        self.num_params = checks.positive_int(num_params, "num_params")
        self.conditional_event_size = checks.optional_positive_int(
            conditional_event_size, "conditional_event_size")
        self.dtype = checks.floating_dtype(dtype)
        # The dimensions in the order they are visited, and each one's place in it.
        self.sequence = np.argsort(self.input_order, kind="stable")
        self.positions = self.input_order - 1
        self._natural_order = bool(np.array_equal(self.sequence, np.arange(self.event_size)))

    def __call__(self, y: tf.Tensor, conditional_input: tf.Tensor | None = None) -> tf.Tensor:
        """The parallel pass: `y` `[N, D]` (and `[N, C]` context) -> `[N, D, P]`."""
        return self._params(y, conditional_input)

    def _params(self, y, conditional_input):
        raise NotImplementedError

    def decoder(self, batch_size: tf.Tensor, conditional_input: tf.Tensor | None = None,
                cached: bool = True) -> tuple[Step, Any]:
        """The sequential pass for sampling: `(step, initial state)`.

        This default reruns the parallel pass at every step (there is nothing
        to keep between steps); `cached` selects a conditioner's faster path
        where it has one.
        """
        del batch_size, cached

        def step(i, y, state):
            return tf.gather(self(y, conditional_input), i, axis=-2), state

        return step, ()

    def to_sequence(self, t: tf.Tensor) -> tf.Tensor:
        """The last axis from dimensions to their places in the sequence."""
        return t if self._natural_order else tf.gather(t, self.sequence, axis=-1)

    def from_sequence(self, t: tf.Tensor, axis: int = -1) -> tf.Tensor:
        """`axis` from places in the sequence back to dimensions (no gather, nor its
        gradient, in the natural order)."""
        return t if self._natural_order else tf.gather(t, self.positions, axis=axis)
