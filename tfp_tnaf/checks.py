"""Argument checks shared by every layer of the package: one rule per kind of argument.

Each check returns the value in its canonical type, or raises `ValueError`
naming the argument and what was expected. Integers may be Python or NumPy
integers, never `bool`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["floating_dtype", "fraction", "input_order", "non_negative", "one_of",
           "optional_positive_int", "positive", "positive_int", "positive_ints"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(value: Any, name: str) -> int:
    """`value` as an `int` >= 1."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {value!r}.")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    """`value` as an `int` >= 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer; got {value!r}.")
    return int(value)


def optional_positive_int(value: Any, name: str) -> int | None:
    """`None`, or `value` as an `int` >= 1."""
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer or None; got {value!r}.")
    return int(value)


def positive_ints(values: Iterable[Any], name: str) -> list[int]:
    """A non-empty list of positive integers (layer sizes)."""
    values = list(values) if isinstance(values, Iterable) else [values]
    if not values or not all(_is_int(v) and v >= 1 for v in values):
        raise ValueError(f"`{name}` must be a non-empty list of positive integers; "
                         f"got {values!r}.")
    return [int(v) for v in values]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def non_negative(value: Any, name: str) -> float:
    """`value` as a finite `float` >= 0."""
    if not _number(value) or not 0 <= value < np.inf:
        raise ValueError(f"`{name}` must be a finite, non-negative number; got {value!r}.")
    return float(value)


def positive(value: Any, name: str) -> float:
    """`value` as a `float` > 0."""
    if not _number(value) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number; got {value!r}.")
    return float(value)


def fraction(value: Any, name: str) -> float:
    """`value` as a `float` in [0, 1) (a dropout rate)."""
    if not _number(value) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be in [0, 1); got {value!r}.")
    return float(value)


def one_of(value: Any, choices: Sequence[str], name: str) -> str:
    """`value`, if it is one of the names `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; "
                         f"got {value!r}.")
    return value


def floating_dtype(dtype: Any) -> tf.DType:
    """`dtype` as a floating `tf.DType`."""
    dtype = tf.as_dtype(dtype)
    if not dtype.is_floating:
        raise ValueError(f"`dtype` must be a floating dtype; got {dtype.name}.")
    return dtype


def input_order(event_size: int, order: Any = "left-to-right",
                seed: int | None = None) -> np.ndarray:
    """Degrees 1..D of the dimensions, as `tfb.AutoregressiveNetwork` takes them.

    Args:
      event_size: D.
      order: `'left-to-right'`, `'right-to-left'`, `'random'` or an array
        holding a permutation of `1..D` (dimension `i` is visited `order[i]`-th).
      seed: seed of the `'random'` order; without one, NumPy's global state
        draws it, as in TFP's MADE (so `tf_keras.utils.set_random_seed` fixes it).
    """
    event_size = positive_int(event_size, "event_size")
    if isinstance(order, str):
        if order == "left-to-right":
            return np.arange(1, event_size + 1)
        if order == "right-to-left":
            return np.arange(event_size, 0, -1)
        if order == "random":
            rng = np.random if seed is None else np.random.RandomState(seed)
            return rng.permutation(event_size) + 1
        raise ValueError("`input_order` must be 'left-to-right', 'right-to-left', 'random' or "
                         f"a permutation of 1..{event_size}; got {order!r}.")
    degrees = np.asarray(order)
    if degrees.shape != (event_size,) or not np.array_equal(np.sort(degrees),
                                                            np.arange(1, event_size + 1)):
        raise ValueError(f"`input_order` must be a permutation of 1..{event_size}; "
                         f"got {order!r}.")
    return degrees.astype(np.int64)
