"""A run's ``history.csv`` (one row per epoch, from Keras' ``CSVLogger``): read, trim, summarise.

Standard library only, so the resume checks of :mod:`pixelwise.config` and anything
reading a finished run need neither TensorFlow nor Keras.

Example:
    >>> rows = [{"epoch": 0, "val_mean_iou": 0.31}, {"epoch": 1, "val_mean_iou": 0.42},
    ...         {"epoch": 2, "val_mean_iou": float("nan")}]
    >>> best_row(rows)["epoch"]
    1
    >>> summary = summarize_history(rows)
    >>> summary["epochs_finished"], summary["final"]["val_mean_iou"], summary["best"]["epoch"]
    (3, None, 1)
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

#: The metric the best checkpoint and early stopping follow.
MONITOR = "val_mean_iou"


def read_history(path) -> list[dict]:
    """Rows of a CSVLogger ``history.csv`` as dicts of floats (``epoch`` as int); [] if absent."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            parsed = {}
            for key, value in row.items():
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            if "epoch" in parsed:
                parsed["epoch"] = int(parsed["epoch"])
            rows.append(parsed)
    return rows


def truncate_history(path, first_epoch: int) -> int:
    """Drop rows of epochs ``>= first_epoch`` (they will be trained again); return rows kept."""
    path = Path(path)
    if not path.exists():
        return 0
    with path.open(newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    if not lines:
        return 0
    header, body = lines[0], lines[1:]
    kept = [line for line in body if line.strip() and int(float(line.split(",", 1)[0])) < first_epoch]
    if len(kept) != len(body):
        path.write_text(header + "".join(kept))
    return len(kept)


def best_row(rows: list[dict], monitor: str = MONITOR) -> dict | None:
    """The history row with the highest finite ``monitor`` value (first one on ties)."""
    scored = [r for r in rows if isinstance(r.get(monitor), float) and math.isfinite(r[monitor])]
    return max(scored, key=lambda r: r[monitor]) if scored else None


def summarize_history(rows: list[dict], monitor: str = MONITOR) -> dict:
    """``metrics.json`` content: the final epoch's logs and the best epoch's logs.

    Non-finite values become None (JSON has no NaN).
    """

    def clean(row):
        if row is None:
            return None
        return {k: (v if not (isinstance(v, float) and not math.isfinite(v)) else None)
                for k, v in row.items()}

    return {
        "monitor": monitor,
        "epochs_finished": len(rows),
        "final": clean(rows[-1] if rows else None),
        "best": clean(best_row(rows, monitor)),
    }


__all__ = ["MONITOR", "read_history", "truncate_history", "best_row", "summarize_history"]
