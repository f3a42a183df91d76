"""Figures of a fitted flow: a 2-D density next to data and samples; marginals and pairs."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

__all__ = ["plot_density_2d", "plot_marginals", "plot_pairs"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_density_2d(log_prob: Callable[[np.ndarray], np.ndarray], data: np.ndarray,
                    samples: np.ndarray, path: str | os.PathLike, resolution: int = 200,
                    title: str = "") -> None:
    """Three panels: the density `exp(log_prob)` on a grid, the data, the samples."""
    plt = _pyplot()
    low, high = np.percentile(data, 0.5, axis=0), np.percentile(data, 99.5, axis=0)
    margin = 0.15 * (high - low)
    low, high = low - margin, high + margin
    xs, ys = (np.linspace(low[k], high[k], resolution) for k in range(2))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(data.dtype)
    density = np.exp(log_prob(grid)).reshape(resolution, resolution)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharex=True, sharey=True)
    axes[0].imshow(density, origin="lower", extent=(low[0], high[0], low[1], high[1]),
                   aspect="auto", cmap="magma")
    axes[0].set_title("density")
    for ax, points, name in ((axes[1], data, "data"), (axes[2], samples, "samples")):
        ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.4)
        ax.set_title(f"{name} ({len(points)})")
    axes[0].set_xlim(low[0], high[0])
    axes[0].set_ylim(low[1], high[1])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_marginals(data: np.ndarray, samples: np.ndarray, path: str | os.PathLike,
                   max_dims: int = 16, title: str = "") -> None:
    """Histograms of the first `max_dims` marginals, data against samples."""
    plt = _pyplot()
    dims = min(max_dims, data.shape[1])
    cols = min(4, dims)
    rows = int(np.ceil(dims / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= dims:
            ax.axis("off")
            continue
        low, high = np.percentile(data[:, k], [0.5, 99.5])
        bins = np.linspace(low, high, 40)
        ax.hist(data[:, k], bins=bins, density=True, alpha=0.5, label="data")
        ax.hist(samples[:, k], bins=bins, density=True, alpha=0.5, label="samples")
        ax.set_title(f"dim {k}", fontsize=9)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_pairs(data: np.ndarray, samples: np.ndarray, path: str | os.PathLike,
               pairs: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (0, 2)),
               title: str = "") -> None:
    """Scatter plots of a few pairs of dimensions, data (top) against samples (bottom)."""
    plt = _pyplot()
    pairs = tuple(p for p in pairs if max(p) < data.shape[1])
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.6 * len(pairs), 7), squeeze=False)
    for j, (a, b) in enumerate(pairs):
        for i, (points, name) in enumerate(((data, "data"), (samples, "samples"))):
            axes[i, j].scatter(points[:, a], points[:, b], s=1, alpha=0.3)
            axes[i, j].set_title(f"{name}: dims {a}, {b}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
