"""Export a fitted flow as a SavedModel that serves without `tfp_tnaf`.

The SavedModel holds the graph of `log_prob` and `sample` and the variables,
so `tf.saved_model.load` in a process with only TensorFlow installed (no
TensorFlow Probability, no `tfp_tnaf`) gives the same numbers as the Python
distribution, up to the rounding of graph rewrites (about 1e-7 relative in
float32). Sampling is stateless: the same `seed` gives the same samples.

```python
export_saved_model(distribution, "flow_savedmodel")
# A conditional flow built by `make_flow` is a Chain: name its layers.
export_saved_model(conditional, "cond_savedmodel", conditional_event_size=3,
                   conditional_kwargs=lambda c: {name: {"conditional_input": c}
                                                 for name in ("tnaf_0", "tnaf_1")})

# Elsewhere, with only TensorFlow:
flow = tf.saved_model.load("flow_savedmodel")
flow.log_prob(points)                           # [batch]
flow.sample(1000, seed=[1, 2])                  # [1000, D]
flow.signatures["log_prob"](y=points)           # {"log_prob": [batch]}
flow.signatures["sample"](num_samples=tf.constant(1000), seed=tf.constant([1, 2]))
```
"""

from __future__ import annotations

import os
from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf import fused
from tfp_tnaf.training import single_bijector_kwargs

__all__ = ["ExportedFlow", "export_saved_model"]

tfd = tfp.distributions


class ExportedFlow(tf.Module):
    """`log_prob` and `sample` of a distribution over vectors, as `tf.function`s
    with fixed input signatures (what `tf.saved_model.save` writes).

    Args:
      distribution: a distribution over events of shape `[D]`.
      conditional_event_size: size of the context of a conditional flow; then
        both functions take a `conditional_input` (one context per point for
        `log_prob`, one for all samples of `sample`).
      conditional_kwargs: maps a context to `bijector_kwargs`, as for
        `FlowModel`; default `{"conditional_input": context}`.

    Raises:
      ValueError: if the distribution's events are not vectors of known size.
    """

    def __init__(self, distribution: tfd.Distribution, conditional_event_size: int | None = None,
                 conditional_kwargs: Callable[[tf.Tensor], dict] | None = None):
        super().__init__(name="exported_flow")
        event_shape = distribution.event_shape
        if event_shape.rank != 1 or event_shape[0] is None:
            raise ValueError("`distribution` must have events of shape [D] with D known; "
                             f"got event shape {event_shape}.")
        self.distribution = distribution
        dtype = distribution.dtype
        points = tf.TensorSpec([None, event_shape[0]], dtype, name="y")
        count = tf.TensorSpec([], tf.int32, name="num_samples")
        seed = tf.TensorSpec([2], tf.int32, name="seed")
        if conditional_event_size is None:
            self.log_prob = tf.function(distribution.log_prob, input_signature=[points])
            self.sample = tf.function(
                lambda num_samples, seed: distribution.sample(num_samples, seed=seed),
                input_signature=[count, seed])
            return
        to_kwargs = conditional_kwargs or single_bijector_kwargs
        context = tf.TensorSpec([None, conditional_event_size], dtype, name="conditional_input")
        self.log_prob = tf.function(
            lambda y, conditional_input: distribution.log_prob(
                y, bijector_kwargs=to_kwargs(conditional_input)),
            input_signature=[points, context])
        self.sample = tf.function(
            lambda num_samples, seed, conditional_input: distribution.sample(
                num_samples, seed=seed, bijector_kwargs=to_kwargs(conditional_input)),
            input_signature=[count, seed, tf.TensorSpec([conditional_event_size], dtype,
                                                        name="conditional_input")])

    def serving_signatures(self) -> dict:
        """Serving signatures `log_prob` and `sample`, whose outputs are named."""
        log_prob = tf.function(lambda *args: {"log_prob": self.log_prob(*args)},
                               input_signature=self.log_prob.input_signature)
        sample = tf.function(lambda *args: {"samples": self.sample(*args)},
                             input_signature=self.sample.input_signature)
        return {"log_prob": log_prob.get_concrete_function(),
                "sample": sample.get_concrete_function()}


def export_saved_model(distribution: tfd.Distribution, export_dir: str | os.PathLike,
                       conditional_event_size: int | None = None,
                       conditional_kwargs: Callable[[tf.Tensor], dict] | None = None) -> str:
    """Writes `distribution` as a SavedModel with `log_prob` and `sample`
    functions and serving signatures (see `ExportedFlow`); returns the folder.

    The graph is traced with `fused.plain()`: ordinary TensorFlow ops, so
    serving needs no XLA and compiles nothing per request batch size."""
    module = ExportedFlow(distribution, conditional_event_size, conditional_kwargs)
    export_dir = os.fspath(export_dir)
    with fused.plain():
        tf.saved_model.save(module, export_dir, signatures=module.serving_signatures())
    return export_dir
