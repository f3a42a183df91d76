"""The flow registry: every flow by name, with its default sizes and training recipe.

`FLOWS` is the one place that says how each named flow is built and trained
by default; `make_flow` builds one, the command line, the benchmarks, the
tutorials and the tests all read it.

```python
flow = make_flow("tnaf", 43)                     # the default T-NAF
flow = make_flow("tnaf", 43, num_examples=len(x_train))  # its options for this much data
distribution = make_distribution(flow, 43)
optimizer = FLOWS["tnaf"].recipe.optimizer()     # its learning rate and clipping
```
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import baselines, checks
from tfp_tnaf.bijectors import (
    BlockNeuralAutoregressive,
    NeuralAutoregressive,
    TransformerAutoregressive,
)
from tfp_tnaf.bijectors.transformer_autoregressive import PAPER

tfb, tfd = tfp.bijectors, tfp.distributions

__all__ = ["FLOWS", "FLOW_NAMES", "LARGE_DATA", "FlowEntry", "Recipe", "count_parameters",
           "make_distribution", "make_flow", "resolved_options", "stack_with_reversals"]

# The keyword arguments `make_flow` passes to every layer itself.
_COMMON = ("event_size", "name", "dtype", "conditional_event_size")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a flow is trained by default: Adam's learning rate and gradient clipping.

    Attributes:
      learning_rate: Adam's step size.
      global_clipnorm: scale all gradients together so that their global norm
        is at most this (`tf_keras`' `global_clipnorm`; PyTorch's
        `clip_grad_norm_`, as the official T-NAF code clips), or None.
    """

    learning_rate: float = 1e-3
    global_clipnorm: float | None = None

    def optimizer(self, learning_rate: float | None = None,
                  global_clipnorm: float | None = None) -> tf_keras.optimizers.Optimizer:
        """A fresh Adam of this recipe; arguments given override it."""
        return tf_keras.optimizers.Adam(
            self.learning_rate if learning_rate is None else learning_rate,
            global_clipnorm=self.global_clipnorm if global_clipnorm is None
            else global_clipnorm)


@dataclasses.dataclass(frozen=True)
class FlowEntry:
    """One named flow.

    Attributes:
      label: its name in tables and plots.
      build: `build(event_size, name=..., dtype=..., [conditional_event_size=...],
        **options)` -> one layer.
      options: default keyword arguments of `build`.
      num_flows: layers stacked by default.
      recipe: its default training recipe.
      conditional: whether it models `p(y | c)`.
      sized: `sized(num_examples)` -> the options that follow the size of the
        training set, over `options` (`make_flow`'s `num_examples`), or None.
    """

    label: str
    build: Callable[..., tfb.Bijector]
    options: dict[str, Any]
    num_flows: int
    recipe: Recipe
    conditional: bool = True
    sized: Callable[[int], dict[str, Any]] | None = None

    def defaults(self, num_examples: int | None = None) -> dict[str, Any]:
        """The registry's options, and those for `num_examples` training rows if given."""
        if num_examples is None:
            return dict(self.options)
        num_examples = checks.positive_int(num_examples, "num_examples")
        return {**self.options, **(self.sized(num_examples) if self.sized else {})}

    def option_names(self) -> list[str]:
        """The options `make_flow` accepts for this flow."""
        return [p for p in inspect.signature(self.build).parameters if p not in _COMMON]


# T-NAF's dropout (0.05 by default) is a regulariser for small data sets; from
# `LARGE_DATA` training rows on, the registry builds T-NAF without it. Measured
# at equal wall-clock (`benchmarks.equal_time`, ablation rows 20 and 21: the
# default with and without dropout, one core each, 2026-12-06/07), dropout
# paid on `digits` (1,347 rows: +2.3 nats) and MINIBOONE (2,956: +1.1 and
# +1.6) and cost on siggraph (7,800: with three seeds of three), BSDS300 cut to
# 10,000 patches (-3.7) and BSDS300 (100,000: -1.6 and -1.25); on moons
# (10,000) it was level (-0.006 on average over four seeds, within noise).
# benchmarks/results/equal-time-cpu-2026-12-07/results.md has the table.
LARGE_DATA = 5_000


def _tnaf_sized(num_examples: int) -> dict[str, Any]:
    """T-NAF's options for `num_examples` training rows: no dropout on large data."""
    return {"dropout": 0.0} if num_examples >= LARGE_DATA else {}


FLOWS: dict[str, FlowEntry] = {
    # The default sizes, two layers, and a larger step than the paper's (chosen by
    # the ablation of benchmarks.equal_time: the per-dimension bases learn at the
    # step size; two one-block layers beat one two-block layer on three of five
    # data sets, MINIBOONE and BSDS300 among them; the layer's DSF transform
    # beat the monotone network on siggraph by 0.3 nats).
    "tnaf": FlowEntry("T-NAF", TransformerAutoregressive, {}, 2,
                      Recipe(learning_rate=1e-2, global_clipnorm=0.1), sized=_tnaf_sized),
    # The official configuration and recipe (`TransformerAutoregressive.paper`).
    "tnaf-paper": FlowEntry("T-NAF (paper)", TransformerAutoregressive, dict(PAPER), 1,
                            Recipe(global_clipnorm=0.1)),
    "naf": FlowEntry("NAF", NeuralAutoregressive,
                     dict(hidden_units=(64, 64), transform_units=16), 2, Recipe()),
    # Weight normalisation wants a larger step.
    "bnaf": FlowEntry("B-NAF", BlockNeuralAutoregressive, dict(transform_units=16), 2,
                      Recipe(learning_rate=1e-2)),
    "maf": FlowEntry("MAF", baselines.masked_autoregressive_flow,
                     dict(hidden_units=(64, 64)), 5, Recipe()),
    "realnvp": FlowEntry("RealNVP", baselines.real_nvp, dict(hidden_units=(64, 64)), 5,
                         Recipe(), conditional=False),
}
FLOW_NAMES = tuple(FLOWS)


def stack_with_reversals(make_layer: Callable[[int], tfb.Bijector], event_size: int,
                         num_flows: int) -> tfb.Chain:
    """`num_flows` layers `make_layer(k)` with `tfb.Permute` reversals between them."""
    num_flows = checks.positive_int(num_flows, "num_flows")
    reverse = list(reversed(range(event_size)))
    layers = []
    for k in range(num_flows):
        if k:
            layers.append(tfb.Permute(reverse))
        layers.append(make_layer(k))
    return tfb.Chain(layers)


def _entry(name: str) -> FlowEntry:
    """`FLOWS[name]`; an unknown name is a ValueError that lists the valid ones."""
    if name not in FLOWS:
        raise ValueError(f"`flow` must be one of {', '.join(FLOW_NAMES)}; got {name!r}.")
    return FLOWS[name]


def _checked_entry(name: str, options: dict[str, Any]) -> FlowEntry:
    """`FLOWS[name]`; ValueError on an unknown name or an option it does not take."""
    entry = _entry(name)
    unknown = sorted(set(options) - set(entry.option_names()) - {"num_flows"})
    if unknown:
        raise ValueError(f"Flow {name!r} takes no `{unknown[0]}`; its options are "
                         f"{', '.join(entry.option_names())}.")
    return entry


def make_flow(name: str, event_size: int, num_flows: int | None = None,
              conditional_event_size: int | None = None, dtype: Any = tf.float32,
              num_examples: int | None = None, **options: Any) -> tfb.Chain:
    """The flow `name` for `event_size`-dim data: `num_flows` layers, reversals between.

    Layer k is named `f"{name}_{k}"` (its key in `bijector_kwargs`).

    Args:
      name: one of `FLOW_NAMES`: `"tnaf"`, `"naf"`, `"bnaf"`, `"maf"`, `"realnvp"`.
      event_size: D.
      num_flows: layers stacked with `tfb.Permute` reversals between them
        (default: the registry's).
      conditional_event_size: context size, for the flows that take one.
      dtype: float dtype.
      num_examples: the number of training rows, if known: the registry's
        defaults then follow it (`FlowEntry.sized`; T-NAF drops its dropout
        from `LARGE_DATA` rows on). `options` given override them.
      **options: constructor arguments of the layer, over the registry's
        defaults (`FLOWS[name].option_names()` lists them).

    Raises:
      ValueError: on an unknown name (the message lists the valid ones), an
        option the flow does not take (the message lists those it does), or a
        `num_examples` that is not a positive integer.
    """
    entry = _checked_entry(name, options)
    if conditional_event_size is not None and not entry.conditional:
        raise ValueError(f"Flow {name!r} takes no `conditional_event_size`.")
    options = {**entry.defaults(num_examples), "dtype": dtype, **options}
    if conditional_event_size is not None:
        options["conditional_event_size"] = conditional_event_size
    num_flows = entry.num_flows if num_flows is None else num_flows
    return stack_with_reversals(
        lambda k: entry.build(event_size, name=f"{name}_{k}", **options), event_size,
        num_flows)


def resolved_options(name: str, num_examples: int | None = None,
                     **options: Any) -> dict[str, Any]:
    """Every `make_flow(name, D, num_examples=num_examples, **options)` option
    that has a plain value, resolved: `num_flows` and the layer's constructor
    defaults under the registry's options (for `num_examples` training rows, if
    given) and the given ones. Building from them gives the same flow after a
    default changes (run folders record them).

    Raises:
      ValueError: on an unknown name, an option the flow does not take, or a
        bad `num_examples`.
    """
    entry = _checked_entry(name, options)
    plain = (bool, int, float, str, type(None))
    defaults = {p.name: p.default for p in inspect.signature(entry.build).parameters.values()
                if p.name not in _COMMON and isinstance(p.default, plain)}
    return {**defaults, "num_flows": entry.num_flows, **entry.defaults(num_examples),
            **options}


def make_distribution(flow: tfb.Bijector, event_size: int,
                      dtype: Any = tf.float32) -> tfd.TransformedDistribution:
    """`flow` over a standard Normal base of `event_size` dimensions (as MAF)."""
    base = tfd.Sample(tfd.Normal(tf.constant(0.0, dtype), tf.constant(1.0, dtype)),
                      [event_size])
    return tfd.TransformedDistribution(base, flow)


def count_parameters(module: tf.Module) -> int:
    """The number of trainable values of `module` (MADE's masked zeros included)."""
    return int(sum(np.prod(v.shape) for v in module.trainable_variables))
