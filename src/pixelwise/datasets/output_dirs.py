"""The folders a dataset command writes: made (or refused) up front, tidied when it fails.

One build of a dataset runs at a time (:func:`building`). A failed build must not
leave TFDS' temporary folders (``*.tar.tmp.<hex>`` per download, ``incomplete.*``
while extracting or generating) nor empty dataset, download or output folders
behind. :func:`make_folder` creates an output folder before any work starts, or
says in one sentence why it cannot; :func:`tidied` removes what a block added under
its folders: the temporary folders always, the empty new folders when the block fails.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> try:
    ...     with tidied([root / "data"]):
    ...         _ = make_folder(root / "data" / "downloads", "downloads", "download_dir")
    ...         raise ConnectionError("offline")
    ... except ConnectionError:
    ...     pass
    >>> list(root.iterdir())
    []
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from pixelwise.locks import FileLock

# TFDS' temporary folders: a download in progress, an extraction or a dataset being written.
_TEMPORARY = re.compile(r"\.tmp\.[0-9a-f]{32}$|^incomplete\.")


@contextlib.contextmanager
def building(data_dir, name: str) -> Iterator[None]:
    """Hold the lock of a build of dataset ``name`` into ``data_dir``: ``<data_dir>/<name>.lock``.

    Two builds of one dataset at once (two trainings started together on a fresh machine)
    would write the same TFDS folders: the second waits for the first, saying so in one
    line with its pid, and should then find the dataset prepared. ``data_dir`` is made
    (:func:`make_folder`) and removed again if it is left empty.
    """
    data_dir = Path(data_dir)
    made = _new_ancestors(data_dir)
    make_folder(data_dir, "the prepared dataset", "data_dir")
    try:
        lock = FileLock(data_dir / f"{name}.lock", f"building {name} into {data_dir}")
        with lock.acquire(wait=True):
            yield
    finally:
        _remove_empty(made)


def make_folder(path, what: str, argument: str) -> Path:
    """Create folder ``path`` (with its parents) for ``what``, or raise why it cannot be written.

    Args:
        path: The folder.
        what: What goes there, for the message (e.g. ``"the prepared dataset"``).
        argument: The Python argument that chooses it (e.g. ``"data_dir"``); the CLI adds
            its flag to the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        NotADirectoryError, PermissionError, OSError: the folder cannot be made or
            written, in one line naming the path, the reason and ``argument``.
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != path else ""
        raise type(exc)(
            f"Cannot write {what} to {path}: {reason}{where}; pass {argument}=FOLDER, a folder you "
            "can write."
        ) from None
    if not writable:
        raise PermissionError(
            f"Cannot write {what} to {path}: the folder is not writable; pass {argument}=FOLDER, a "
            "folder you can write."
        )
    return path


def _folders_under(root: Path) -> set[Path]:
    folders = {root}
    for parent, names, _ in os.walk(root):
        folders.update(Path(parent, name) for name in names)
    return folders


def _new_ancestors(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(folders: Iterable[Path]) -> None:
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty, or already gone: keep going
            folder.rmdir()


@contextlib.contextmanager
def tidied(roots: Iterable[os.PathLike | str]) -> Iterator[None]:
    """Remove what the block adds under ``roots``: TFDS' temporary folders; on failure, new empty folders.

    Files are never removed (an archive downloaded before a later one failed is
    kept for the next try), nor anything that existed before the block.

    Args:
        roots: Folders the block may create or write in (they need not exist yet).
    """
    roots = [Path(root).expanduser() for root in roots]
    before: set[Path] = set()
    created: list[Path] = []
    for root in roots:
        created.extend(_new_ancestors(root))
        if root.is_dir():
            before |= _folders_under(root)
    try:
        yield
    except BaseException:
        new = _remove_temporary(roots, before)
        _remove_empty([*new, *created])
        raise
    _remove_temporary(roots, before)


def _remove_temporary(roots: list[Path], before: set[Path]) -> set[Path]:
    """Remove the new temporary folders under ``roots``; return the other new folders."""
    new = set()
    for root in roots:
        if not root.is_dir():
            continue
        for folder in _folders_under(root) - before:
            if _TEMPORARY.search(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                new.add(folder)
    return {folder for folder in new if folder.is_dir()}
