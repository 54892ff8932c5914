"""The confusion matrix of an evaluation as a heat map (rows normalised, void excluded): PNG bytes or a Figure."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure


def normalised_confusion(confusion) -> np.ndarray:
    """Rows divided by their sums (each true class's distribution of predictions); 0 for empty rows."""
    confusion = np.asarray(confusion, np.float64)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)



def plot_confusion(confusion, class_names) -> bytes:
    """PNG bytes of the row-normalised confusion matrix as a heat map (:func:`confusion_figure`).

    Args:
        confusion: (K, K) counts, rows = true class, columns = predicted class.
        class_names: K names for the axes; cells are annotated up to 25 classes.
    """
    buffer = io.BytesIO()
    confusion_figure(confusion, class_names).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()



def confusion_figure(confusion, class_names) -> Figure:
    """The heat map of :func:`plot_confusion` as a matplotlib ``Figure`` (Agg, no pyplot).

    Its title, tick labels and colour bar lie inside the figure at any class count: the
    layout is constrained, and the title is two short lines, since one line was wider than
    the figure of a few classes and was cut off.
    """
    # A bare Figure renders with Agg and never touches pyplot's global state or a display.
    matrix = normalised_confusion(confusion)
    k = len(class_names)
    side = max(4.0, 0.45 * k + 2.0)
    figure = Figure(figsize=(side + 1.0, side), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(k), class_names, rotation=90)
    axes.set_yticks(range(k), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("Confusion matrix\n(rows normalised, void excluded)")
    if k <= 25:
        for t in range(k):
            for p in range(k):
                if matrix[t, p] >= 0.005:
                    axes.text(p, t, f"{matrix[t, p]:.2f}", ha="center", va="center", fontsize=7,
                              color="white" if matrix[t, p] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return figure
