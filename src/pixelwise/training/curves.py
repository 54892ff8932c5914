"""Training curves: ``curves.png`` (loss, pixel accuracy, mean IoU; train and validation) from ``history.csv`` rows.

Drawn by the run-summary callback after each epoch and by ``pixelwise report``; matplotlib's object
API only (no pyplot global state), so it runs headless and in threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


# (title, metric name in the logs) of the panels of curves.png
_CURVES = (("loss", "loss"), ("pixel accuracy", "pixel_accuracy"), ("mean IoU", "mean_iou"))



def plot_curves(rows: list[dict], path=None) -> Figure:
    """Draw ``curves.png``: loss, pixel accuracy and mean IoU, train and validation.

    Uses matplotlib's object API (no pyplot global state).

    Args:
        rows: ``history.csv`` rows (:func:`~pixelwise.training.history.read_history`).
        path: Where to write the PNG (default None: nothing is written).

    Returns:
        The figure: one axes per panel, one line per split (x: the rows' epochs, from 1).
    """
    figure = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(_CURVES))
    epochs = [r["epoch"] for r in rows]
    for ax, (title, key) in zip(axes, _CURVES):
        if rows and key not in rows[0] and key == "pixel_accuracy" and "accuracy" in rows[0]:
            key = "accuracy"
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [r.get(prefix + key) for r in rows]
            if any(isinstance(v, float) for v in values):
                ax.plot(epochs, [v if isinstance(v, float) else np.nan for v in values],
                        marker="o", markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.2
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    if path is not None:
        figure.savefig(str(path), dpi=100)
    return figure
