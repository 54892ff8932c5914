"""The files of an export, a folder or a ``.zip``, by relative path; and their fingerprint.

:class:`SourceTree` lists the files under the export's root (relative POSIX paths) and
reads them, the same way for a folder and a zip. An export wrapped in one top-level
folder (``my_task/labelmap.txt`` inside the zip) is read from inside that folder.
Hidden files and folders (``.DS_Store``, ``.git/``) and macOS' ``__MACOSX/`` are left out.

A zip is read in place, never extracted, and a hostile one is refused when it is opened:
an entry whose path leaves the archive (``../x``, ``/etc/x``, ``C:\\x``), a symbolic-link
entry, or two entries with one name. No file is read past :data:`MAX_FILE_BYTES` (a class
or subset list past :data:`MAX_TEXT_BYTES`), judged by the size the archive or the folder
states, so a zip bomb costs nothing: :mod:`zipfile` never inflates an entry past its
stated size.

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
import stat
import threading
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from pixelwise.data.paths import ZIP_SUFFIX


#: The largest image or mask file read (1 GiB): past any real photo, short of a bomb.
MAX_FILE_BYTES = 1 << 30
#: The largest class file or subset list read (16 MiB: a million-line list).
MAX_TEXT_BYTES = 16 << 20


class UnreadableFileError(ValueError):
    """A file of the export that cannot be read: past the size limit, or a corrupt zip entry."""


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
            _refuse_hostile_entries(path, infos)
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

    def read(self, rel: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        """The bytes of the file ``rel`` (relative to the root).

        Raises:
            UnreadableFileError: the file states a size over ``max_bytes`` (checked before
                reading), or its zip entry is corrupt (bad CRC, bad compressed data,
                encrypted, an unknown compression method).
            OSError: a folder's file removed or unreadable since it was listed.
        """
        if self.kind == "folder":
            path = self.path / self.prefix / rel
            self._check_size(rel, path.stat().st_size, max_bytes)
            return path.read_bytes()
        with self._lock:  # one open archive, read from one thread at a time
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.path)
            info = self._zip.getinfo(self.prefix + rel)
            self._check_size(rel, info.file_size, max_bytes)
            try:
                return self._zip.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError,
                    NotImplementedError) as exc:  # RuntimeError: encrypted entry
                raise UnreadableFileError(
                    f"cannot read {rel!r} from {self.root}: {exc}; expected an intact, "
                    "unencrypted zip entry. Export the dataset again.") from None

    def _check_size(self, rel: str, size: int, max_bytes: int) -> None:
        if size > max_bytes:
            raise UnreadableFileError(
                f"{rel!r} in {self.root} is {size:,} bytes, over the {max_bytes:,}-byte limit "
                "for such a file; expected an annotation export's file. Remove or shrink it.")

    def read_text(self, rel: str) -> str:
        """A text file (at most :data:`MAX_TEXT_BYTES`), UTF-8; a byte-order mark is dropped.

        Raises:
            UnreadableFileError: too large, or a corrupt zip entry.
            ValueError: not UTF-8 text.
        """
        data = self.read(rel, MAX_TEXT_BYTES)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{rel!r} in {self.root} is not UTF-8 text (byte {exc.start}: "
                f"{data[exc.start:exc.start + 1]!r}); expected a UTF-8 text file. Save it as "
                "UTF-8.") from None

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


def _refuse_hostile_entries(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Raise ``ValueError`` for an entry that escapes the archive, a symlink, or a repeated name.

    Nothing is extracted, so none of these could write anywhere; but a name with ``..``
    would become an example's file name, which later commands write files after.
    """
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            problem = "a path that leaves the archive (absolute, a drive, or '..')"
        elif stat.S_ISLNK(info.external_attr >> 16):
            problem = "a symbolic link"
        elif name in seen:
            problem = "a second entry of that name"
        else:
            seen.add(name)
            continue
        raise ValueError(
            f"{str(path)!r} holds the entry {name!r}, {problem}; expected an annotation tool's "
            "export of regular files at relative paths. This archive is refused as unsafe: "
            "export the dataset again.")


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
