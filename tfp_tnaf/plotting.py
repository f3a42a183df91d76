"""Figures of a fitted flow: a 1-D or 2-D density next to data and samples; marginals and
pairs."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

__all__ = ["plot_densities", "plot_density_1d", "plot_density_2d", "plot_layers",
           "plot_marginals", "plot_pairs"]


def _figure(rows: int, cols: int, width: float, height: float, **kwargs):
    """A figure and its axes grid, without pyplot: no display or global backend needed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows))
    return fig, fig.subplots(rows, cols, squeeze=False, **kwargs)


def _grid(data: np.ndarray, resolution: int):
    """A `resolution`^2 grid over the bulk of 2-D `data`, with a margin."""
    low, high = np.percentile(data, 0.5, axis=0), np.percentile(data, 99.5, axis=0)
    margin = 0.15 * (high - low)
    low, high = low - margin, high + margin
    xs, ys = (np.linspace(low[k], high[k], resolution) for k in range(2))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(data.dtype)
    return grid, (low[0], high[0], low[1], high[1])


def plot_densities(log_probs: dict[str, Callable[[np.ndarray], np.ndarray]], data: np.ndarray,
                   samples: dict[str, np.ndarray] | None = None, resolution: int = 120,
                   path: str | os.PathLike | None = None):
    """One column per flow: its density on a grid over `data` and, below, its samples.

    Returns the matplotlib figure (and writes it to `path` if given).
    """
    grid, extent = _grid(data, resolution)
    fig, axes = _figure(1 if samples is None else 2, len(log_probs), 2.8, 2.8)
    for j, (name, log_prob) in enumerate(log_probs.items()):
        density = np.exp(log_prob(grid)).reshape(resolution, resolution)
        axes[0, j].imshow(density, origin="lower", extent=extent, aspect="auto", cmap="magma")
        axes[0, j].set_title(name, fontsize=9)
        if samples is not None:
            axes[1, j].scatter(samples[name][:, 0], samples[name][:, 1], s=0.5, alpha=0.4)
            axes[1, j].set_xlim(extent[:2])
            axes[1, j].set_ylim(extent[2:])
    return _untick_and_save(fig, axes, path)


def _untick_and_save(fig, axes, path: str | os.PathLike | None):
    """A panel grid's last step: no ticks, tight layout, written to `path` if given."""
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=80)
    return fig


def plot_layers(rows: dict[str, list[tuple[str, np.ndarray]]],
                path: str | os.PathLike | None = None):
    """One row per flow: 2-D base samples, then the same points after each layer.

    `rows[flow]` is a list of `(title, points [n, 2])` stages, the base samples
    first. Every point keeps the colour of its base sample's angle, so a region
    can be followed as the layers stretch and fold the plane (the TFP tutorial's
    picture of a flow pulling taffy). Returns the matplotlib figure (and writes
    it to `path` if given).
    """
    fig, axes = _figure(len(rows), max(len(stages) for stages in rows.values()), 2.4, 2.4)
    for i, (name, stages) in enumerate(rows.items()):
        base = stages[0][1]
        colour = np.arctan2(base[:, 1], base[:, 0])
        for j, ax in enumerate(axes[i]):
            if j >= len(stages):
                ax.axis("off")
                continue
            title, points = stages[j]
            ax.scatter(points[:, 0], points[:, 1], s=0.6, c=colour, cmap="hsv", alpha=0.7)
            low, high = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
            margin = 0.1 * (high - low)
            ax.set_xlim(low[0] - margin[0], high[0] + margin[0])
            ax.set_ylim(low[1] - margin[1], high[1] + margin[1])
            ax.set_title(f"{name}: {title}" if j == 0 else title, fontsize=9)
    return _untick_and_save(fig, axes, path)


def plot_density_2d(log_prob: Callable[[np.ndarray], np.ndarray], data: np.ndarray,
                    samples: np.ndarray, path: str | os.PathLike, resolution: int = 200,
                    title: str = "") -> None:
    """Three panels: the density `exp(log_prob)` on a grid, the data, the samples."""
    grid, extent = _grid(data, resolution)
    density = np.exp(log_prob(grid)).reshape(resolution, resolution)
    fig, axes = _figure(1, 3, 4.3, 4.2, sharex=True, sharey=True)
    axes = axes[0]
    axes[0].imshow(density, origin="lower", extent=extent, aspect="auto", cmap="magma")
    axes[0].set_title("density")
    for ax, points, name in ((axes[1], data, "data"), (axes[2], samples, "samples")):
        ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.4)
        ax.set_title(f"{name} ({len(points)})")
    axes[0].set_xlim(extent[:2])
    axes[0].set_ylim(extent[2:])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_density_1d(log_prob: Callable[[np.ndarray], np.ndarray], data: np.ndarray,
                    samples: np.ndarray, path: str | os.PathLike, resolution: int = 400,
                    title: str = "") -> None:
    """One panel for 1-D points `[n, 1]`: the density `exp(log_prob)` on a line over the bulk
    of `data`, against histograms of the data and of the (finite) samples."""
    low, high = np.percentile(data[:, 0], [0.5, 99.5])
    margin = 0.15 * (high - low) if high > low else 1.0
    line = np.linspace(low - margin, high + margin, resolution).astype(data.dtype)
    density = np.exp(log_prob(line[:, None]))
    bins = np.linspace(line[0], line[-1], int(np.clip(2 * np.sqrt(len(data)), 10, 60)) + 1)
    fig, axes = _figure(1, 1, 6.4, 4.2)
    ax = axes[0, 0]
    for points, name in ((data, "data"), (samples, "samples")):
        values = points[np.isfinite(points[:, 0]), 0]
        ax.hist(values, bins=bins, density=True, alpha=0.45, label=f"{name} ({len(values)})")
    ax.plot(line, density, color="black", linewidth=1.5, label="density")
    ax.set_xlim(line[0], line[-1])
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_marginals(data: np.ndarray, samples: np.ndarray, path: str | os.PathLike,
                   max_dims: int = 16, title: str = "") -> None:
    """Histograms of the first `max_dims` marginals, data against samples."""
    dims = min(max_dims, data.shape[1])
    cols = min(4, dims)
    fig, axes = _figure(int(np.ceil(dims / cols)), cols, 3.2, 2.4)
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


def plot_pairs(data: np.ndarray, samples: np.ndarray, path: str | os.PathLike,
               pairs: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (0, 2)),
               title: str = "") -> None:
    """Scatter plots of a few pairs of dimensions, data (top) against samples (bottom)."""
    pairs = tuple(p for p in pairs if max(p) < data.shape[1])
    if not pairs:
        raise ValueError(f"no pair of dimensions to plot in {data.shape[1]}-D points "
                         f"(plot_density_1d shows one dimension)")
    fig, axes = _figure(2, len(pairs), 3.6, 3.5)
    for j, (a, b) in enumerate(pairs):
        for i, (points, name) in enumerate(((data, "data"), (samples, "samples"))):
            axes[i, j].scatter(points[:, a], points[:, b], s=1, alpha=0.3)
            axes[i, j].set_title(f"{name}: dims {a}, {b}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
