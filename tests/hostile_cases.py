"""What the hostile-input suite (tests/test_hostile_*.py) shares: case counts, hostile files, checks.

``tried(kind)`` counts one case of a kind (a hypothesis example or a hand-written file).
With ``PIXELWISE_HOSTILE_COUNTS=FILE.json`` set, the counts are written to that file when
the test process ends; docs/own-data.md's table of cases comes from such a run.

Usage::

    tried("zip export")
    check_one_line_error(code, err, "datasets build")
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

from hypothesis import HealthCheck, settings

#: Cases tried so far in this process, by kind.
CASES: collections.Counter = collections.Counter()

#: Hypothesis settings of the suite: few examples (the suite must stay within CI's time),
#: no deadline (the machine may be busy), the same examples on every run (derandomize:
#: CI fails or passes the same way; no example database left in the work tree), fixtures
#: reused across examples on purpose.
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def tried(kind: str, count: int = 1) -> None:
    """Count ``count`` cases of ``kind``."""
    CASES[kind] += count


def _write_counts() -> None:
    target = os.environ.get("PIXELWISE_HOSTILE_COUNTS")
    if target and CASES:
        Path(target).write_text(json.dumps(dict(sorted(CASES.items())), indent=2) + "\n")


atexit.register(_write_counts)


def check_one_line_error(code: int, err: str, command: str) -> str:
    """Assert a CLI run failed with exit 2 and one line ``pixelwise COMMAND: error: ...``."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("pixelwise")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"pixelwise {command}: error: "), err
    return lines[0]


def listing(root: Path, leave_out: Path | None = None) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of everything under ``root`` but ``leave_out``."""
    found = {}
    for folder, dirs, names in os.walk(root):
        if leave_out is not None:
            dirs[:] = [d for d in dirs if Path(folder, d) != leave_out]
        for name in names + dirs:
            path = Path(folder, name)
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def png_claiming(width: int, height: int, mode: int = 2) -> bytes:
    """A PNG whose header says ``width`` x ``height`` (colour type ``mode``), with a few pixels.

    A reader that trusts the header allocates ``width * height * 3`` bytes for ~70 bytes.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(1 + 3 * 16))) + chunk(b"IEND", b""))


def write_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    """A zip of ``(name or ZipInfo, bytes)`` entries in order (duplicates kept), deflated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted here
        for name, data in entries:
            archive.writestr(name, data)
    return path


def forge_entry(path: Path, name: str, *, file_size: int | None = None, crc: int | None = None,
                compress_type: int | None = None) -> None:
    """Rewrite what the zip ``path`` states of entry ``name`` (local header and central
    directory): its uncompressed size, CRC-32 or compression method. The data stay.

    A zip bomb states a small size and inflates far past it, or states a huge one.
    """
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    encoded = name.encode()
    local = info.header_offset
    central = data.find(b"PK\x01\x02")
    while (bytes(data[central + 46:central + 46 + len(encoded)]) != encoded
           or struct.unpack_from("<I", data, central + 42)[0] != local):
        central = data.find(b"PK\x01\x02", central + 1)
        assert central >= 0, f"no central directory record of {name!r}"
    for offset, fields in ((local, (8, 14, 22)), (central, (10, 16, 24))):
        method_at, crc_at, size_at = (offset + f for f in fields)
        if compress_type is not None:
            struct.pack_into("<H", data, method_at, compress_type)
        if crc is not None:
            struct.pack_into("<I", data, crc_at, crc)
        if file_size is not None:
            struct.pack_into("<I", data, size_at, file_size)
    path.write_bytes(bytes(data))
