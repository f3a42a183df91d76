"""Weights on disk with `tf.train.Checkpoint`: Keras `.h5`/`.keras` files silently lose
weights owned by a `tf.Module`."""

from __future__ import annotations

import os

import tensorflow as tf

__all__ = ["load_weights", "save_weights"]


def save_weights(module: tf.Module, path: str | os.PathLike) -> str:
    """Writes the variables of `module` (a distribution, bijector or model) with
    `tf.train.Checkpoint`; returns the checkpoint prefix `path`."""
    return tf.train.Checkpoint(model=module).write(os.fspath(path))


def load_weights(module: tf.Module, path: str | os.PathLike) -> None:
    """Restores `save_weights(module, path)` into a module built the same way.

    Raises:
      FileNotFoundError: if there is no checkpoint at `path`.
      AssertionError: if the checkpoint and the module do not match exactly.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"No checkpoint at {path!r} (expected {path}.index).")
    tf.train.Checkpoint(model=module).read(path).assert_consumed()
