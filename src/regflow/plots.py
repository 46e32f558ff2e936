"""PNG plots through matplotlib's Agg backend (no display needed): each returns PNG bytes."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_POINTS = 5000  # scatter plots of millions of points say nothing more and take minutes


def _sample(n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    if n <= MAX_POINTS:
        return np.arange(n), ""
    rows = np.sort(np.random.default_rng(seed).choice(n, MAX_POINTS, replace=False))
    return rows, f" ({MAX_POINTS:,} of {n:,} rows shown)"


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    # Agg canvas, no pyplot: no display needed, no global figure state across runs or threads.
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def loss_curve(losses: list[float], title: str) -> bytes:
    fig, ax = _figure(6, 4)
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, marker="o" if len(losses) <= 50 else None, markersize=3)
    if min(losses) > 0 and max(losses) / min(losses) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _png(fig)


def fitted_line(
    x: np.ndarray, y: np.ndarray, weight: float, intercept: float, feature: str, target: str
) -> bytes:
    rows, note = _sample(len(x))
    fig, ax = _figure(6, 4)
    ax.scatter(x[rows], y[rows], s=12, alpha=0.7, label="data")
    grid = np.linspace(float(np.min(x)), float(np.max(x)), 100)
    ax.plot(
        grid, weight * grid + intercept, color="C3", label=f"fit: {weight:.4g}x + {intercept:.4g}"
    )
    return _finish(fig, ax, feature, target, f"data and fitted line{note}")


def _by_split(
    predictions: pd.DataFrame, x: str, y: str, size: tuple[float, float]
) -> tuple[Figure, Axes, pd.DataFrame, str]:
    """A scatter of `y` against `x`, one colour per split, on a sample of the rows."""
    rows, note = _sample(len(predictions))
    sample = predictions.iloc[rows]
    fig, ax = _figure(*size)
    for split, group in sample.groupby("split", sort=True):
        ax.scatter(group[x], group[y], s=12, alpha=0.7, label=str(split))
    return fig, ax, sample, note


def _finish(fig: Figure, ax: Axes, xlabel: str, ylabel: str, title: str) -> bytes:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def predicted_vs_true(predictions: pd.DataFrame) -> bytes:
    fig, ax, sample, note = _by_split(predictions, "true", "predicted", (5, 5))
    low = float(min(sample["true"].min(), sample["predicted"].min()))
    high = float(max(sample["true"].max(), sample["predicted"].max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
    return _finish(fig, ax, "true", "predicted", f"predicted against true{note}")


def residuals(predictions: pd.DataFrame) -> bytes:
    fig, ax, _, note = _by_split(predictions, "predicted", "residual", (6, 4))
    ax.axhline(0.0, color="grey", linestyle="--")
    return _finish(fig, ax, "predicted", "residual (true - predicted)", f"residuals{note}")
