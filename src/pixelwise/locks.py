"""One writer at a time: a lock file for a run folder or a dataset build.

A :class:`FileLock` is a file locked with ``flock`` while held, holding its holder's pid,
host and purpose so that whoever finds it taken can be told who has it. The kernel drops
an ``flock`` when its process ends, however it ends: a lock file that is there but not
locked was left by a process that was killed, and the next holder takes it over with a
warning. Releasing removes the file, and the folders made for it when they are empty.

Used by :meth:`pixelwise.runs.RunFolder.locked` (a second training into one ``--out`` is
refused at once) and :func:`pixelwise.datasets.api.build` (a second build of a dataset
waits for the first and then uses what it built). Imports no TensorFlow.

Example:
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "run" / "train.lock"
    >>> with FileLock(path, "an example"):
    ...     print(Holder.parse(path.read_text()).purpose)
    an example
    >>> path.exists(), path.parent.exists()
    (False, False)
    >>> folder.cleanup()
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import socket
import time
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)


class LockedError(OSError):
    """Another process holds the lock; ``holder`` says which."""

    def __init__(self, message: str, holder: "Holder | None"):
        super().__init__(message)
        self.holder = holder


class StaleLockWarning(UserWarning):
    """A lock left by a process that ended without releasing it was taken over."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written in its file."""

    pid: int
    host: str
    purpose: str
    since: str

    @classmethod
    def this_process(cls, purpose: str) -> "Holder":
        return cls(os.getpid(), socket.gethostname(), purpose, time.strftime("%Y-%m-%d %H:%M:%S"))

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        """The holder written in ``text``; None for an empty or half-written file."""
        try:
            values = json.loads(text)
            return cls(int(values["pid"]), str(values["host"]), str(values["purpose"]),
                       str(values["since"]))
        except (ValueError, TypeError, KeyError):
            return None

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host} ({self.purpose}, since {self.since})"


class FileLock:
    """An exclusive lock on ``path``, held from :meth:`acquire` to :meth:`release`.

    ``with lock:`` acquires without waiting; ``with lock.acquire(wait=True):`` waits.
    Locks conflict between processes and between two ``FileLock`` objects of one process.

    Args:
        path: The lock file; it and its missing parent folders are made on acquiring.
        purpose: What the holder does, for whoever finds the lock taken (e.g.
            ``"pixelwise train into runs/voc"``).
    """

    def __init__(self, path, purpose: str):
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None
        self._made: list[Path] = []

    def acquire(self, wait: bool = False) -> "FileLock":
        """Take the lock.

        Args:
            wait: When another process holds it: False raises :class:`LockedError` at
                once; True logs one line naming the holder and blocks until it releases.

        Raises:
            LockedError: held by another process (``wait=False``).
            OSError: the lock file cannot be made.
        """
        while True:
            fd = self._open()
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _holder_of(fd)
                    who = holder or "another process"
                    if not wait:
                        raise LockedError(f"{self.path} is held by {who}", holder) from None
                    logger.warning("Waiting for %s to release %s.", who, self.path)
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                break
            # The holder released the lock and removed its file while we waited: lock anew.
            os.close(fd)
        # A released lock's file is removed: one that still names a holder outlived it.
        left = _read(fd)
        if left:
            left_by = Holder.parse(left) or "a process"
            warnings.warn(f"{self.path}: took over the lock of {left_by}, which ended without "
                          "releasing it", StaleLockWarning, stacklevel=2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dataclasses.asdict(Holder.this_process(self.purpose))).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file (then unlock), and the folders made for it if they are empty."""
        if self._fd is None:
            return
        # Unlink before unlocking, so that a waiter wakes to a removed file and locks anew.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone: stop there
                break
        self._made = []

    def __enter__(self) -> "FileLock":
        # Not again when held: `with lock.acquire(wait=True):` waits, then releases on exit.
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _open(self) -> int:
        missing = [p for p in [self.path.parent, *self.path.parent.parents] if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._made += [p for p in reversed(missing) if p not in self._made]
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)


def _holder_of(fd: int, seconds: float = 2.0) -> "Holder | None":
    """The holder of a busy lock. A new holder locks before it writes its name: wait for it."""
    deadline = time.monotonic() + seconds
    while (holder := Holder.parse(_read(fd))) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder


def _read(fd: int) -> str:
    return os.pread(fd, 65536, 0).decode(errors="replace")


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
