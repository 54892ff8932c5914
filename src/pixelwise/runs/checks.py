"""What must hold of a run folder before a training writes to it: writable, new, or resumable."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pixelwise.runs.folder import RunFolder
from pixelwise.training.config import RESUMABLE_CHANGES, TrainConfig
from pixelwise.training.history import read_history


def check_writable(path: Path) -> None:
    """Raise if the run folder ``path`` is a file or cannot be created or written.

    Creates and removes an empty folder in ``path`` or its nearest existing parent to find out.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"Run folder {str(path)!r} exists and is not a folder; pass another out=."
        )
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        what = "is not writable" if ancestor.is_dir() else "is a file, not a folder"
        raise PermissionError(
            f"Cannot write the run folder {str(path)!r}: {str(ancestor)!r} {what}; "
            "pass out= a folder you can write."
        )
    # Permission bits are not the whole story: /proc, a read-only mount or a full disk
    # refuse a new folder that os.access allows (and root passes every access check).
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pixelwise-probe-", dir=ancestor))
    except OSError as exc:
        raise type(exc)(
            f"Cannot write the run folder {str(path)!r} (out=): {str(ancestor)!r} refused a new "
            f"folder ({exc.strerror or type(exc).__name__}); pass out= a folder you can write, "
            "e.g. out='runs/NAME'."
        ) from None



def check_new_run(run: RunFolder) -> None:
    """Raise if ``run`` already holds a run (a new run must not overwrite one)."""
    if run.path.is_dir() and any(p != run.lock_path for p in run.path.iterdir()):
        raise FileExistsError(
            f"Run folder {str(run.path)!r} already holds a run; pass resume=True to continue it, or "
            "out='runs/NEW_NAME' to start another (nothing there was changed)."
        )



def check_resume(run: RunFolder, config: TrainConfig) -> int:
    """Validate resuming ``run`` with ``config``; return the number of epochs already finished.

    That is also Keras' 0-based index of the epoch training continues with (epoch
    ``finished + 1`` in ``history.csv``'s numbering, which counts from 1).

    Only :data:`RESUMABLE_CHANGES` may differ from the stored ``config.json``, the
    BackupAndRestore state must exist once an epoch has finished, and ``config.epochs``
    must leave epochs to train.
    """
    if not run.config_path.exists():
        raise FileNotFoundError(
            f"Cannot resume: {str(run.config_path)!r} does not exist, so {str(run.path)!r} holds "
            "no run to continue. Leave out resume=True to start a new run there."
        )
    stored = json.loads(run.config_path.read_text())
    current = config.to_dict()
    differs = sorted(k for k in current if k not in RESUMABLE_CHANGES and k in stored
                     and json.dumps(stored[k]) != json.dumps(current[k]))
    if differs:
        detail = ", ".join(f"{k}: {stored[k]!r} -> {current[k]!r}" for k in differs)
        raise ValueError(
            f"Cannot resume {str(run.path)!r} with a different configuration ({detail}); only "
            f"{sorted(RESUMABLE_CHANGES)} may change. Drop those options, or start a new run "
            "with out='runs/NEW_NAME'."
        )
    # Keras' BackupAndRestore records the next epoch to train in this file.
    metadata = run.backup_dir / "training_metadata.json"
    finished = json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0
    if not metadata.exists() and read_history(run.history_path):
        raise FileNotFoundError(
            f"Cannot resume {str(run.path)!r}: history.csv records finished epochs but the "
            f"BackupAndRestore state {str(metadata)!r} is missing. Start a new run with another out=."
        )
    if finished >= config.epochs:
        raise ValueError(
            f"Run {str(run.path)!r} already finished {finished} of {config.epochs} epochs; pass "
            f"epochs=N with N > {finished} together with resume=True to train further."
        )
    return finished
