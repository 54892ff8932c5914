"""pixelwise.files: outputs appear whole or not at all, with the permissions they had in 0.1.0."""

from __future__ import annotations

import stat

import pytest


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomic_writes_bytes_or_text_and_leaves_no_temporary_file(tmp_path):
    from pixelwise.files import write_atomic

    assert write_atomic(tmp_path / "new" / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    path = write_atomic(tmp_path / "a.txt", "first")
    assert write_atomic(path, "second") == path and path.read_text() == "second"
    assert _mode(path) == 0o600  # mkstemp's mode, as 0.1.0 wrote predictions and results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "new"]


def test_a_failure_in_one_file_leaves_every_file_as_it_was(tmp_path):
    from pixelwise.files import write_all_atomic

    (tmp_path / "a.json").write_text("old a")
    with pytest.raises(TypeError):
        write_all_atomic({tmp_path / "a.json": "new a", tmp_path / "b.png": object()})
    assert (tmp_path / "a.json").read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    written = write_all_atomic({tmp_path / "a.json": "new a", tmp_path / "b.png": b"png"})
    assert written == [tmp_path / "a.json", tmp_path / "b.png"]
    assert (tmp_path / "a.json").read_text() == "new a" and (tmp_path / "b.png").read_bytes() == b"png"


def test_replace_dir_swaps_a_finished_folder_in(tmp_path):
    from pixelwise.files import replace_dir, staging_dir

    out = tmp_path / "export"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with staging_dir(out) as staging:
        assert staging.parent == tmp_path and _mode(staging) == 0o700
        (staging / "result").mkdir()
        (staging / "result" / "model.txt").write_text("new")
        assert replace_dir(staging / "result", out) == out
    assert sorted(p.name for p in out.iterdir()) == ["model.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no staging, no .old


def test_staging_dir_is_removed_when_the_build_fails(tmp_path):
    from pixelwise.files import staging_dir

    with pytest.raises(RuntimeError), staging_dir(tmp_path / "out") as staging:
        (staging / "half").write_text("x")
        raise RuntimeError("conversion failed")
    assert list(tmp_path.iterdir()) == []
