"""One writer at a time: a run folder is refused to a second training, and a lock left by a
killed process is taken over. Locks are held by real other processes here."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys

import pytest

from pixelwise.cli import main
from pixelwise.locks import FileLock, Holder, LockedError, StaleLockWarning
from pixelwise.runs import RunFolder

HOLD = ("import sys; from pixelwise.locks import FileLock; "
        "FileLock(sys.argv[1], sys.argv[2]).acquire(); print('held', flush=True); sys.stdin.read()")


@contextlib.contextmanager
def held_by_another_process(path, purpose="pixelwise train into elsewhere"):
    """A Python process holding the lock ``path`` until the block ends; yields it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), purpose],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_a_second_training_into_one_run_folder_is_refused_at_once(tmp_path, capsys):
    run = RunFolder(tmp_path / "run")
    with held_by_another_process(run.lock_path) as holder:
        code = main(["train", "--dataset", "synthetic_shapes", "--data-dir", str(tmp_path / "tfds"),
                     "--out", str(run.path), "--epochs", "1"])
        written = sorted(p.name for p in run.path.iterdir())
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"Run folder {str(run.path)!r} is in use by pid {holder.pid} on host " \
           f"{socket.gethostname()}" in lines[0]
    assert "--out runs/NEW_NAME" in lines[0]
    # Refused before anything else: the holder's lock is all there is, nothing was built.
    assert written == ["train.lock"]
    assert not (tmp_path / "tfds").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_warning(tmp_path):
    run = RunFolder(tmp_path / "run")
    with held_by_another_process(run.lock_path) as holder:
        pass  # killed while holding it: the lock file stays, naming a process that is gone
    assert Holder.parse(run.lock_path.read_text()).pid == holder.pid
    with pytest.warns(StaleLockWarning, match=f"took over the lock of pid {holder.pid} "):
        with run.locked():
            assert Holder.parse(run.lock_path.read_text()).purpose == \
                f"pixelwise train into {run.path}"
    assert not run.lock_path.exists()


def test_the_lock_is_released_on_an_exception_and_a_folder_made_for_it_removed(tmp_path):
    run = RunFolder(tmp_path / "runs" / "new")
    with pytest.raises(RuntimeError, match="crash"):
        with run.locked():
            assert run.lock_path.exists()
            raise RuntimeError("crash")
    assert not (tmp_path / "runs").exists()
    with run.locked():  # free again
        pass


def test_a_held_lock_refuses_another_holder_in_the_same_process(tmp_path):
    path = tmp_path / "x.lock"
    with FileLock(path, "first"):
        with pytest.raises(LockedError, match="is held by pid .* \\(first, since") as refused:
            FileLock(path, "second").acquire()
    assert refused.value.holder.purpose == "first"
