"""A run's ``history.csv`` (one row per epoch, from Keras' ``CSVLogger``): read, trim, summarise.

Epochs count from 1 wherever a person reads them: the console, ``history.csv``'s ``epoch``
column, ``metrics.json``, ``curves.png`` and TensorBoard (the first epoch is epoch 1, as
Keras' progress bar says "Epoch 1/50"). Keras' callbacks count from 0 internally;
:class:`pixelwise.training.callbacks.HistoryLogger` writes ``epoch + 1``. A ``history.csv`` of
pixelwise 0.1.0, which counted from 0, is read (and, on resume, rewritten) as 1-based.

Standard library only, so the resume checks of :mod:`pixelwise.training.config` and anything
reading a finished run need neither TensorFlow nor Keras.

Example:
    >>> rows = [{"epoch": 1, "val_mean_iou": 0.31}, {"epoch": 2, "val_mean_iou": 0.42},
    ...         {"epoch": 3, "val_mean_iou": float("nan")}]
    >>> best_row(rows)["epoch"]
    2
    >>> summary = summarize_history(rows)
    >>> summary["epochs_finished"], summary["final"]["val_mean_iou"], summary["best"]["epoch"]
    (3, None, 2)
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

#: The metric the best checkpoint and early stopping follow.
MONITOR = "val_mean_iou"


def _epoch_offset(first_epoch: int) -> int:
    """What to add to the ``epoch`` column to count from 1 (pixelwise 0.1.0 counted from 0)."""
    return 1 if first_epoch == 0 else 0


def _epoch(value, path: Path) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"Expected whole epoch numbers in {str(path)!r}, received {value!r}; the "
                     "file is not a history.csv that training wrote. Remove or restore it.")


def read_history(path) -> list[dict]:
    """Rows of a CSVLogger ``history.csv`` as dicts of floats, ``epoch`` an int from 1; [] if absent."""
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
                parsed["epoch"] = _epoch(parsed["epoch"], path)
            rows.append(parsed)
    if rows and "epoch" in rows[0]:
        offset = _epoch_offset(rows[0]["epoch"])
        for row in rows:
            row["epoch"] += offset
    return rows


def truncate_history(path, epochs_finished: int) -> int:
    """Keep the rows of epochs ``1..epochs_finished``; the later ones will be trained again.

    Also renumbers a 0-based ``history.csv`` of pixelwise 0.1.0 from 1, so the rows a
    resumed run appends continue its numbering. Returns the number of rows kept.
    """
    path = Path(path)
    if not path.exists():
        return 0
    with path.open(newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    if not lines:
        return 0
    header, body = lines[0], [line for line in lines[1:] if line.strip()]
    epochs = [int(float(line.split(",", 1)[0])) for line in body]
    offset = _epoch_offset(epochs[0]) if epochs else 0
    # The epoch column renumbered, every other byte of the row as CSVLogger wrote it.
    kept = [str(epoch + offset) + line[len(line.split(",", 1)[0].rstrip("\r\n")):]
            for epoch, line in zip(epochs, body) if epoch + offset <= epochs_finished]
    if kept != body:
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
