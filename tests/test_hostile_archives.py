"""Hostile zip exports: paths that leave the archive, symlinks, duplicate names, zip bombs, garbage.

A zip export is read in place (pixelwise.datasets.folder.source_tree): a hostile entry is
refused when the archive is opened, a file is never read past the size it states nor past
a limit, and a corrupt entry skips its example with a reason. Each case checks that nothing
appears outside the test's own folder.
"""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hostile_cases import FUZZ, check_one_line_error, forge_entry, listing, tried, write_zip

CLASSES = b"background\ncell\n"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def export_entries(count: int = 3) -> list[tuple[str, bytes]]:
    """An images/ + masks/ export of ``count`` 8x8 examples, as zip entries; mask of example i
    is class 1 in its first i rows."""
    rng = np.random.default_rng(0)
    entries = [("classes.txt", CLASSES)]
    for i in range(count):
        mask = np.zeros((8, 8), np.uint8)
        mask[:i] = 1
        entries += [(f"images/ex{i}.png", _png(rng.integers(0, 256, (8, 8, 3), np.uint8))),
                    (f"masks/ex{i}.png", _png(mask))]
    return entries


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


HOSTILE_ENTRIES = {
    "parent": ("../evil.png", b"x"),
    "nested parent": ("images/../../evil.png", b"x"),
    "absolute": ("/tmp/evil.png", b"x"),
    "windows parent": ("..\\evil.png", b"x"),
    "drive letter": ("C:/evil.png", b"x"),
    "symlink to /etc/passwd": _symlink("classes.txt", "/etc/passwd"),
    "symlink image": _symlink("images/ex9.png", "../../../../etc/shadow"),
}


@pytest.fixture
def cli(capsys):
    from pixelwise.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


@pytest.mark.parametrize("case", sorted(HOSTILE_ENTRIES))
def test_an_entry_that_leaves_the_archive_or_is_a_symlink_refuses_the_zip(case, tmp_path, cli):
    from pixelwise.datasets.folder.source_tree import SourceTree

    tried("zip: traversal, absolute, symlink entry")
    work = tmp_path / "work"
    entries = export_entries()
    if case.startswith("symlink to"):
        entries = [e for e in entries if e[0] != "classes.txt"]
    archive = write_zip(work / "export.zip", [*entries, HOSTILE_ENTRIES[case]])
    before = listing(tmp_path.parent, leave_out=tmp_path)
    with pytest.raises(ValueError, match="refused as unsafe"):
        SourceTree.open(archive)
    code, _, err = cli("datasets", "build", archive, "--data-dir", work / "tfds")
    line = check_one_line_error(code, err, "datasets")
    assert repr(HOSTILE_ENTRIES[case][0].filename if isinstance(HOSTILE_ENTRIES[case][0], zipfile.ZipInfo)
                else HOSTILE_ENTRIES[case][0]) in line
    assert listing(tmp_path.parent, leave_out=tmp_path) == before
    assert not list(tmp_path.rglob("evil*")) and not (work / "tfds" / "export").exists()


def test_two_entries_of_one_name_refuse_the_zip(tmp_path):
    from pixelwise.datasets.folder.source_tree import SourceTree

    tried("zip: duplicate names")
    archive = write_zip(tmp_path / "export.zip", [*export_entries(), ("classes.txt", b"a\nb\nc\n")])
    with pytest.raises(ValueError, match="'classes.txt', a second entry of that name"):
        SourceTree.open(archive)


def test_a_class_file_bomb_is_refused_from_its_stated_size(tmp_path):
    """17 MiB of 'a' deflates to ~17 KiB; the limit on class files is 16 MiB."""
    from pixelwise.datasets.folder.layouts import read_layout
    from pixelwise.datasets.folder.source_tree import MAX_TEXT_BYTES, SourceTree

    tried("zip: bombs (stated or real size)")
    entries = [e for e in export_entries() if e[0] != "classes.txt"]
    archive = write_zip(tmp_path / "bomb.zip", [("classes.txt", b"a" * (MAX_TEXT_BYTES + 1)), *entries])
    assert archive.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"'classes.txt' in .* is 16,777,217 bytes, over the "
                                         r"16,777,216-byte limit"):
        read_layout(SourceTree.open(archive), "bomb", validation_fraction=0.0, seed=0)


def test_bombs_and_corrupt_entries_skip_their_examples_and_the_rest_builds(tmp_path, cli):
    """Example 0 states 2 GiB (a bomb by its header), example 1's mask inflates 50 MB into a
    stated 100 bytes (stopped at 100 bytes: its CRC fails), example 2's image has an unknown
    compression method; example 3 and 4 are sound."""
    import tensorflow_datasets as tfds

    tried("zip: bombs (stated or real size)", 2)
    tried("zip: corrupt entries")
    entries = [e for e in export_entries(5) if e[0] != "masks/ex1.png"]
    archive = write_zip(tmp_path / "export.zip", [*entries, ("masks/ex1.png", b"\0" * 50_000_000)])
    forge_entry(archive, "images/ex0.png", file_size=2**31)
    forge_entry(archive, "masks/ex1.png", file_size=100)
    forge_entry(archive, "images/ex2.png", compress_type=99)
    assert archive.stat().st_size < 200_000
    before = listing(tmp_path.parent, leave_out=tmp_path)
    code, out, err = cli("datasets", "build", archive, "--data-dir", tmp_path / "tfds",
                         "--validation-fraction", "0")
    assert code == 0, err
    assert "2,147,483,648 bytes, over the 1,073,741,824-byte limit" in out + err
    assert "Bad CRC-32" in out + err or "CRC" in out + err
    assert "compression method" in out + err
    examples = tfds.as_numpy(tfds.builder("export", data_dir=tmp_path / "tfds").as_dataset("train"))
    names = sorted(e["image/filename"].decode() for e in examples)
    assert names == ["ex3.png", "ex4.png"]
    assert listing(tmp_path.parent, leave_out=tmp_path) == before


@FUZZ
@given(names=st.lists(st.text(alphabet="ab./\\:_ ", min_size=1, max_size=12), min_size=1, max_size=6))
def test_generated_entry_names_are_refused_or_stay_inside_the_root(names, tmp_path):
    from pixelwise.datasets.folder.source_tree import SourceTree

    tried("zip: generated entry names")
    archive = write_zip(tmp_path / "names.zip", [(name, b"data") for name in names])
    try:
        tree = SourceTree.open(archive)
    except ValueError as exc:
        assert "refused as unsafe" in str(exc) or "not a readable zip" in str(exc), exc
        return
    root = (tmp_path / "root").resolve()
    for rel in tree.files:
        assert (root / rel).resolve().is_relative_to(root), rel
        assert tree.read(rel) == b"data"


@FUZZ
@given(data=st.data())
def test_damaged_zip_exports_give_a_value_error_or_a_layout(data, tmp_path):
    """Bytes of a sound export flipped, cut or replaced: ValueError (ours) or a layout."""
    from pixelwise.datasets.folder.layouts import read_layout
    from pixelwise.datasets.folder.source_tree import SourceTree

    tried("zip: damaged archives")
    sound = write_zip(tmp_path / "sound.zip", export_entries()).read_bytes()
    damaged = bytearray(sound)
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(sound) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(22, len(sound)))
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(damaged[:cut]))
    try:
        tree = SourceTree.open(archive)
        layout = read_layout(tree, "damaged", validation_fraction=0.0, seed=0)
        for plan in layout.plans.values():
            for pair in plan.pairs():
                for rel in (pair.image_path, pair.label_path):
                    if rel:
                        tree.read(rel)
    except ValueError:
        pass  # ours: UnreadableFileError, a refused zip, a bad class file, no usable example

