"""The files of an export, a folder or a ``.zip``, by relative path; and their fingerprint.

:class:`SourceTree` lists the files under the export's root (relative POSIX paths) and
reads them, the same way for a folder and a zip. An export wrapped in one top-level
folder (``my_task/labelmap.txt`` inside the zip) is read from inside that folder.
Hidden files and folders (``.DS_Store``, ``.git/``) and macOS' ``__MACOSX/`` are left out.

The fingerprint decides whether a prepared dataset is stale (see :func:`fingerprint`).

Example:
    >>> tree = SourceTree.open("exports/cvat_task.zip")  # doctest: +SKIP
    >>> sorted(tree.files)[:2]  # doctest: +SKIP
    ['ImageSets/Segmentation/default.txt', 'JPEGImages/frame_000000.jpg']
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path

from pixelwise.dataset_paths import ZIP_SUFFIX


@dataclasses.dataclass(frozen=True)
class FileStamp:
    """What the fingerprint knows of one file: its size and a change marker.

    Attributes:
        size: Bytes.
        marker: A folder's file: its modification time in ns; a zip entry: its CRC-32.
    """

    size: int
    marker: int


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


class SourceTree:
    """The files of a folder or zip export, under its root, by relative POSIX path.

    Use :meth:`open`; ``files`` maps each relative path to its :class:`FileStamp`,
    ``root`` names where the export starts (for messages).
    """

    def __init__(self, path: Path, kind: str, prefix: str, files: dict[str, FileStamp]):
        self.path, self.kind, self.prefix, self.files = path, kind, prefix, files
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path) -> "SourceTree":
        """List a folder or ``.zip`` export.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: a file that is not a folder or a readable zip.
        """
        path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        if not path.exists():
            raise FileNotFoundError(
                f"Dataset source {str(path)!r} does not exist; expected a folder or a .zip export "
                "(CVAT 'Segmentation mask 1.1', or images/ + masks/). Check the path."
            )
        if path.is_dir():
            files = {}
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _hidden(d))
                rel_folder = Path(folder).relative_to(path).as_posix()
                for name in names:
                    if _hidden(name):
                        continue
                    stat = os.stat(os.path.join(folder, name))
                    rel = name if rel_folder == "." else f"{rel_folder}/{name}"
                    files[rel] = FileStamp(stat.st_size, stat.st_mtime_ns)
            kind = "folder"
        elif path.suffix.lower() == ZIP_SUFFIX or zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    infos = archive.infolist()
            except zipfile.BadZipFile as exc:
                raise ValueError(f"{str(path)!r} is not a readable zip file ({exc}); expected the "
                                 "export as a folder or a .zip. Export it again.") from None
            files = {info.filename: FileStamp(info.file_size, info.CRC) for info in infos
                     if not info.is_dir() and not any(_hidden(p) for p in info.filename.split("/"))}
            kind = "zip"
        else:
            raise ValueError(f"Dataset source {str(path)!r} is a file but not a .zip; expected a "
                             "folder or a .zip export.")
        prefix = _single_folder_prefix(files)
        files = {rel[len(prefix):]: stamp for rel, stamp in files.items()}
        return cls(path, kind, prefix, files)

    @property
    def root(self) -> str:
        """The export's root, for messages (``/data/task.zip:task_7/``)."""
        inside = f":{self.prefix}" if self.kind == "zip" and self.prefix else ""
        return str(self.path / self.prefix) if self.kind == "folder" else f"{self.path}{inside}"

    def read(self, rel: str) -> bytes:
        """The bytes of the file ``rel`` (relative to the root)."""
        if self.kind == "folder":
            return (self.path / self.prefix / rel).read_bytes()
        with self._lock:  # one open archive, read from one thread at a time
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.path)
            return self._zip.read(self.prefix + rel)

    def read_text(self, rel: str) -> str:
        """A text file, UTF-8 (a byte-order mark is dropped)."""
        return self.read(rel).decode("utf-8-sig")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _single_folder_prefix(files: Iterable[str]) -> str:
    """``"task_7/"`` when every file sits in one top-level folder (a zipped folder), else ``""``."""
    prefix = ""
    while True:
        tops = {rel[len(prefix):].split("/", 1)[0] for rel in files}
        nested = all("/" in rel[len(prefix):] for rel in files)
        if len(tops) != 1 or not nested:
            return prefix
        prefix += tops.pop() + "/"


#: Bumped when pixelwise reads exports differently, so every prepared export is rebuilt once.
FINGERPRINT_FORMAT = 1


def fingerprint(tree: SourceTree, used: Iterable[str], options: dict) -> str:
    """SHA-256 over the used files' relative paths and stamps, and the build options.

    A folder's files are stamped with size and modification time (``mtime_ns``), as
    ``make`` and ``rsync`` do: one ``stat`` per file, so checking an unchanged export of
    thousands of images costs milliseconds, where hashing its contents would read every
    byte on every use. Any edit through a tool, a copy or a save changes the time; what
    this misses (content rewritten with the size and time forged back) is not how
    annotations change. A zip's entries are stamped with their CRC-32, which the archive
    stores: content-exact at no cost. Only the files the layout reads count, so a
    ``runs/`` folder or notes beside the data never cause a rebuild.
    """
    digest = hashlib.sha256(f"format {FINGERPRINT_FORMAT} {tree.kind}\n".encode())
    for key in sorted(options):
        digest.update(f"option {key}={options[key]!r}\n".encode())
    for rel in sorted(set(used)):
        stamp = tree.files[rel]
        digest.update(f"{rel}\t{stamp.size}\t{stamp.marker}\n".encode())
    return digest.hexdigest()
