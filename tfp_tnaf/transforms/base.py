"""`MonotoneTransform`: an increasing scalar map of R onto R set by pseudo-parameters.

Every scalar transform of the package (DSF, DDSF, T-NAF's monotone network,
B-NAF's per-position path) is one of these. It owns three facts: how many
pseudo-parameters an element takes, their layout (named groups, in order, with
the value each group starts from), and the map itself with its log-derivative.
Conditioners emit flat pseudo-parameters in that layout; elementwise bijectors,
the autoregressive flows and the root solver only call the transform.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf

__all__ = ["LINEAR_SLOPE", "MonotoneTransform", "ParamGroup", "initial_values", "zeros"]

# Default slope of the positive linear term every transform adds to its
# output: it bounds the derivative below, keeps the numerical inverse well
# conditioned far from the data, and (with a bounded network) makes the map
# onto R.
LINEAR_SLOPE = 0.1

# initializer(shape, dtype) -> tensor, as Keras initializers are called.
Initializer = Callable[..., Any]


def zeros(shape, dtype=tf.float32):
    """The default initial value of a group of pseudo-parameters."""
    return tf.zeros(shape, dtype)


@dataclasses.dataclass(frozen=True)
class ParamGroup:
    """One named group of an element's pseudo-parameters.

    Attributes:
      name: the group's name, e.g. `"w1"`.
      size: how many values it holds.
      initializer: `initializer(shape, dtype)`, the values a conditioner's
        output should start from (Keras initializer convention); the bias of
        a hypernetwork head, say.
    """

    name: str
    size: int
    initializer: Initializer = zeros


def initial_values(layout, dtype: Any = tf.float32) -> tf.Tensor:
    """One element's starting pseudo-parameters in `layout`, `[sum of sizes]`."""
    return tf.concat([tf.cast(g.initializer([g.size], dtype=dtype), dtype) for g in layout], 0)


class MonotoneTransform(tf.Module):
    """Base class: `y -> (x, log dx/dy)`, elementwise, strictly increasing, onto R.

    `y` is data and `x` noise, as `inverse` of a TFP bijector maps them.
    Subclasses set `layout` (a tuple of `ParamGroup`) and implement
    `_transform(y, groups)`, where `groups` maps each group's name to its
    values (`params` split on the last axis). A transform may own variables
    shared by every element (T-NAF's hidden-to-hidden weights); they are
    tracked as those of any `tf.Module`.
    """

    layout: tuple[ParamGroup, ...] = ()

    @property
    def num_params(self) -> int:
        """Pseudo-parameters per element: the sum of the layout's sizes."""
        return sum(group.size for group in self.layout)

    def split(self, params: tf.Tensor) -> dict[str, tf.Tensor]:
        """`params` `[..., num_params]` -> `{name: [..., size]}` in layout order."""
        parts = tf.split(params, [group.size for group in self.layout], axis=-1)
        return {group.name: part for group, part in zip(self.layout, parts, strict=True)}

    def initial_params(self, dtype: Any = tf.float32) -> tf.Tensor:
        """One element's starting pseudo-parameters, `[num_params]`."""
        return initial_values(self.layout, dtype)

    def check_params(self, params: tf.Tensor) -> None:
        """Raises `ValueError` if the last axis of `params` is not `num_params` long."""
        if params.shape.rank is not None and params.shape.rank < 1:
            raise ValueError("`params` must have at least one axis (the last one holds "
                             f"the pseudo-parameters); got shape {params.shape}.")
        given = tf.compat.dimension_value(params.shape[-1])
        if given is not None and given != self.num_params:
            raise ValueError(f"`params` must have {self.num_params} pseudo-parameters on its "
                             f"last axis for these sizes; got {given}.")

    def __call__(self, y: tf.Tensor, params: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The map and its log-derivative, `(x, log dx/dy)`.

        Args:
          y: data values, shape `S`.
          params: pseudo-parameters, shape `S + [num_params]` (leading axes
            broadcasting with `y`).
        """
        shape = tf.broadcast_dynamic_shape(tf.shape(y), tf.shape(params)[:-1])
        y = tf.broadcast_to(y, shape)
        params = tf.broadcast_to(params, tf.concat([shape, tf.shape(params)[-1:]], 0))
        return self._transform(y, self.split(params))

    def _transform(self, y: tf.Tensor, groups: dict[str, tf.Tensor]):
        raise NotImplementedError

    def prepare(self, params: tf.Tensor) -> Any:
        """What `evaluate` needs of `params`, computed once for the many
        evaluations of a root solve at the same pseudo-parameters: a nest of
        tensors. By default `params` itself; a transform may add what does not
        depend on `y` (its positive weights, say).

        Args:
          params: pseudo-parameters, shape `S + [num_params]`.
        """
        return params

    def evaluate(self, y: tf.Tensor, prepared: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """The map a root solve iterates: `(x, log dx/dy)` at `y` (shape `S`)
        from `prepare(params)`. By default the transform itself.

        `x` must be the value `__call__` gives (the solve finds its root);
        `log dx/dy` need only be good enough for a Newton step, and may be
        non-finite where it is not (the solver then bisects): the polish and
        the implicit gradients use `__call__`.
        """
        return self(y, prepared)

    def bracket(self, x: tf.Tensor, params: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | None:
        """An interval `(lo, hi)` that holds the `y` with `transform(y) = x`, or `None`.

        The root solver starts its search from it (from `[-1, 1]` for `None`,
        the default). A transform whose output is a bounded term plus a linear
        one knows the interval in closed form; its solve then needs no bracket
        search, and Newton starts close to the root.

        Args:
          x: noise values, shape `S`.
          params: pseudo-parameters, shape `S + [num_params]`.
        """
        return None
