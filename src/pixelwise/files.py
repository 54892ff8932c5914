"""Writing outputs so that no reader ever sees half of one: temporary name, then rename.

Every file pixelwise writes for a user (predictions, evaluation results, exports) goes
through here. A file is written under a temporary name in its own folder (same file
system, so the rename is atomic) and renamed only once complete; an interrupted call
leaves either the previous file or the new one. Files get the mode any new file gets
(0666 less the umask: 0644 under the usual umask 022), not :func:`tempfile.mkstemp`'s
private 0600.

An output that cannot be written (its folder is a file, read-only, not permitted, full)
raises an ``OSError`` of the same kind whose message names the path, the reason and the
fix (choose another ``--out``), with nothing left behind.

Importable without TensorFlow.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "hello.txt", "hello").read_text()
    'hello'
"""

from __future__ import annotations

import contextlib
import errno
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
    mode = new_file_mode()
    try:
        for path, data in files.items():
            path = Path(path)
            with explained(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                staged.append((temp, path))
                with os.fdopen(handle, "wb") as file:
                    file.write(data.encode() if isinstance(data, str) else data)
                os.chmod(temp, mode)
        for temp, path in staged:
            with explained(path):
                os.replace(temp, path)
    finally:
        for temp, _ in staged:
            Path(temp).unlink(missing_ok=True)
    return [path for _, path in staged]


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary file beside ``path`` for a writer that takes a file name; renamed on success.

    The temporary name keeps ``path``'s extension (``keras.utils.plot_model`` picks the
    format from it). The file is renamed to ``path`` when the block ends without error,
    and removed otherwise.

    Example:
        >>> out = Path(tempfile.mkdtemp()) / "graph.dot"
        >>> with atomic_path(out) as temp:
        ...     _ = temp.write_text("digraph {}")
        >>> out.read_text()
        'digraph {}'
    """
    path = Path(path)
    with explained(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(handle)
    try:
        os.chmod(temp, new_file_mode())
        yield Path(temp)
        with explained(path):
            os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


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
    with explained(out):
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
    with explained(out):
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(new, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(new, out)
    return out


# ----------------------------------------------------------------------------- modes and errors


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the process umask."""
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # No /proc (macOS, kernels before 4.7): reading it means setting it; set it back at once.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def check_can_write(folder) -> Path:
    """Fail now, before long work, when files clearly cannot be written in ``folder``.

    Creates nothing. Checks the nearest part of ``folder`` that exists: a folder, on a
    file system mounted read-write, that this user may write in. Writing can still fail
    later (a full disk, or ``/proc``, where even root's permissions do not help); the
    writers then raise the same kind of error.

    Returns:
        ``folder`` as a :class:`~pathlib.Path`.

    Raises:
        NotADirectoryError, PermissionError, OSError: Naming ``folder``, the cause and ``--out``.
    """
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return folder
    if not existing.is_dir():
        raise NotADirectoryError(
            f"Cannot write in {str(folder)!r}: {str(existing)!r} is a file, not a folder; "
            "choose another --out."
        )
    if hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise OSError(f"Cannot write in {str(folder)!r}: {_REASONS[errno.EROFS]} "
                      f"({str(existing)!r}); choose an --out you can write to.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            f"Cannot write in {str(folder)!r}: permission denied ({str(existing)!r}); choose an "
            "--out you can write to."
        )
    return folder


def make_dirs(folder) -> Path:
    """``folder`` and its parents, created if missing; a clear error when that cannot be done."""
    folder = Path(folder)
    with explained(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


_REASONS = {
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only", errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
}


@contextlib.contextmanager
def explained(path) -> Iterator[None]:
    """Re-raise an ``OSError`` met while writing ``path`` as one naming the path, the cause and the fix.

    The new error has the same class (``PermissionError`` stays one), except that a
    file where a folder should be is a ``NotADirectoryError`` (``mkdir`` reports it as
    ``FileExistsError``).

    Example:
        >>> afile = Path(tempfile.mkdtemp()) / "afile"
        >>> _ = afile.write_text("x")
        >>> make_dirs(afile / "out")          # doctest: +ELLIPSIS
        Traceback (most recent call last):
        NotADirectoryError: Cannot write '.../afile/out': '.../afile' is a file, not a folder; choose another --out.
    """
    path = Path(path)
    try:
        yield
    except OSError as exc:
        blocker = _file_in_the_way(path)
        if blocker is not None:
            raise NotADirectoryError(
                f"Cannot write {str(path)!r}: {str(blocker)!r} is a file, not a folder; choose "
                "another --out."
            ) from exc
        reason = _REASONS.get(exc.errno) or exc.strerror or str(exc)
        raise type(exc)(
            f"Cannot write {str(path)!r}: {reason}; choose an --out you can write to."
        ) from exc


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (itself excluded) when it is not a folder."""
    for ancestor in path.parents:
        if ancestor.exists() or ancestor.is_symlink():
            return None if ancestor.is_dir() else ancestor
    return None


def check_can_write_file(out, what: str = "the file", example: str = "out.json") -> Path:
    """Fail at once, before long work (a run evaluated, its images predicted), when the file
    ``out`` cannot be written: a folder, a file where a folder should be, no permission, a
    read-only file system or one such as ``/proc`` that refuses new files.

    Creates nothing: a probe file is made and removed in the nearest folder that exists.

    Raises:
        IsADirectoryError, NotADirectoryError, PermissionError, OSError: naming ``out``,
            the cause and ``--out``.
    """
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"Cannot write {what} {str(out)!r}: it is a folder; pass "
                                f"--out {str(out / example)!r} or another file.")
    check_can_write(out.parent if out.exists() else out)  # the message names out
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    with explained(out):
        descriptor, probe = tempfile.mkstemp(prefix=".pixelwise-probe-", dir=existing)
        os.close(descriptor)
        os.remove(probe)
    return out
