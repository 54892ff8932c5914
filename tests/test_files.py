"""pixelwise.files: outputs appear whole or not at all, with the umask's permissions, and an
output that cannot be written is one clear error with nothing left behind."""

from __future__ import annotations

import contextlib
import os
import stat

import pytest


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(mask: int):
    """Run the block under ``mask`` (the process umask), then restore the previous one."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def test_write_atomic_writes_bytes_or_text_and_leaves_no_temporary_file(tmp_path):
    from pixelwise.files import write_atomic

    assert write_atomic(tmp_path / "new" / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    path = write_atomic(tmp_path / "a.txt", "first")
    assert write_atomic(path, "second") == path and path.read_text() == "second"
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


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_gives_new_files(tmp_path, mask, expected):
    from pixelwise.files import atomic_path, write_all_atomic, write_atomic

    with umask(mask):
        (tmp_path / "by_open.txt").write_text("reference")  # what any program's new file gets
        single = write_atomic(tmp_path / "single.txt", "x")
        several = write_all_atomic({tmp_path / "a.json": "{}", tmp_path / "sub" / "b.png": b"png"})
        with atomic_path(tmp_path / "graph.dot") as temp:
            temp.write_text("digraph {}")
    assert _mode(tmp_path / "by_open.txt") == expected
    assert [_mode(p) for p in (single, *several, tmp_path / "graph.dot")] == [expected] * 4
    assert _mode(tmp_path / "sub") == 0o777 & ~mask


def test_reading_the_umask_does_not_change_it():
    from pixelwise.files import current_umask

    with umask(0o027):
        assert current_umask() == 0o027
        assert os.umask(0o027) == 0o027


def test_atomic_path_keeps_the_extension_and_leaves_nothing_when_the_writer_fails(tmp_path):
    from pixelwise.files import atomic_path

    with pytest.raises(RuntimeError), atomic_path(tmp_path / "graph.png") as temp:
        assert temp.parent == tmp_path and temp.suffix == ".png" and temp != tmp_path / "graph.png"
        temp.write_bytes(b"half")
        raise RuntimeError("dot failed")
    assert list(tmp_path.iterdir()) == []


# A folder whose parent is a regular file cannot be created, even by root (tests may run as
# root, for whom chmod does not make a folder read-only).
@pytest.mark.parametrize("writer", ["write_atomic", "atomic_path", "staging_dir"])
def test_an_output_under_a_file_names_the_file_in_the_way_and_leaves_nothing(tmp_path, writer):
    from pixelwise import files

    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "out" / "result.png"
    with pytest.raises(NotADirectoryError) as raised:
        if writer == "write_atomic":
            files.write_atomic(out, b"png")
        else:
            with getattr(files, writer)(out):
                pass
    message = str(raised.value)
    assert str(out) in message and f"{str(tmp_path / 'afile')!r} is a file, not a folder" in message
    assert "--out" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_an_output_the_system_refuses_names_the_path_and_the_fix():
    from pixelwise.files import write_all_atomic

    # /proc takes no new files, for root too.
    out = "/proc/pixelwise-test/result.json"
    with pytest.raises(OSError) as raised:
        write_all_atomic({out: "{}"})
    assert str(raised.value).startswith(f"Cannot write {out!r}: ")
    assert str(raised.value).endswith("; choose an --out you can write to.")
    assert not os.path.exists("/proc/pixelwise-test")


def test_check_can_write_fails_early_without_creating_anything(tmp_path):
    from pixelwise.files import check_can_write

    assert check_can_write(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    (tmp_path / "afile").write_text("not a folder")
    for folder in (tmp_path / "afile", tmp_path / "afile" / "out"):
        with pytest.raises(NotADirectoryError, match=r"is a file, not a folder; choose another --out"):
            check_can_write(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
