"""Data sets as float32 train / validation / test arrays."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Splits", "standardise", "two_moons"]


class Splits(NamedTuple):
    """Train, validation and test arrays of one data set, float32, shape [n, D]."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def standardise(splits: Splits) -> Splits:
    """Centres and scales every split by the training mean and standard deviation."""
    mean = splits.train.mean(axis=0)
    std = splits.train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return Splits(*((s - mean) / std for s in splits))


def two_moons(num_train: int = 10_000, num_validation: int = 1_000, num_test: int = 5_000,
              noise: float = 0.05, seed: int = 0) -> Splits:
    """Two Moons (`sklearn.datasets.make_moons`), standardised with training statistics."""
    from sklearn.datasets import make_moons

    total = num_train + num_validation + num_test
    points, _ = make_moons(total, noise=noise, random_state=seed)
    points = points.astype(np.float32)
    splits = Splits(points[:num_train], points[num_train:num_train + num_validation],
                    points[num_train + num_validation:])
    return Splits(*(s.astype(np.float32) for s in standardise(splits)))
