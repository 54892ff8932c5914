"""Writing outputs so that no reader ever sees half of one: temporary name, then rename.

Every file pixelwise writes for a user (predictions, evaluation results, exports) goes
through here. A file is written under a temporary name in its own folder (same file
system, so the rename is atomic) and renamed only once complete; an interrupted call
leaves either the previous file or the new one. Temporary files are created by
:func:`tempfile.mkstemp`, so the files written are readable by their owner only
(mode 0600).

Importable without TensorFlow.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "hello.txt", "hello").read_text()
    'hello'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def write_atomic(path, data: bytes | str) -> Path:
    """Write one file under a temporary name, then rename it to ``path``.

    Args:
        path: The file; its folder is created if missing.
        data: Bytes, or text (written as UTF-8).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    [written] = write_all_atomic({path: data})
    return written


def write_all_atomic(files: Mapping[os.PathLike | str, bytes | str]) -> list[Path]:
    """Write several files as one: all under temporary names first, then each renamed.

    A failure while writing any of them leaves none of them changed (a failure between
    two renames, e.g. the process killed there, may leave some renamed).

    Args:
        files: ``{path: bytes or text}``; folders are created if missing.

    Returns:
        The paths written, in the order given.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((temp, path))
            with os.fdopen(handle, "wb") as file:
                file.write(data.encode() if isinstance(data, str) else data)
        for temp, path in staged:
            os.replace(temp, path)
    finally:
        for temp, _ in staged:
            Path(temp).unlink(missing_ok=True)
    return [path for _, path in staged]


@contextlib.contextmanager
def staging_dir(out) -> Iterator[Path]:
    """A temporary folder beside ``out`` to build a folder in; removed on exit.

    Beside ``out`` (not in ``/tmp``) so that :func:`replace_dir` is a rename on one
    file system. Build a subfolder in it and move that: the staging folder itself is
    private (mode 0700).

    Example:
        >>> out = Path(tempfile.mkdtemp()) / "export"
        >>> with staging_dir(out) as staging:
        ...     _ = write_atomic(staging / "result" / "model.txt", "weights")
        ...     _ = replace_dir(staging / "result", out)
        >>> sorted(p.name for p in out.iterdir())
        ['model.txt']
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_dir(new, out) -> Path:
    """Move the complete folder ``new`` to ``out``; an existing ``out`` is removed only after.

    Args:
        new: A finished folder on the same file system as ``out`` (see :func:`staging_dir`).
        out: Where it goes; an existing folder there is replaced.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    new, out = Path(new), Path(out)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, out)
    return out
