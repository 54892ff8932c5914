"""One writer at a time: a second training into a run folder is refused, a second build of a
dataset waits for the first, and a lock left by a killed process is taken over. Locks are held
by real other processes (or threads, for builds)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading

import pytest

from own_data_fixture import write_images_masks
from pixelwise.cli import main
from pixelwise.datasets import api
from pixelwise.locks import FileLock, Holder, LockedError, StaleLockWarning
from pixelwise.runs.folder import RunFolder

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
    assert "or pass out='runs/NEW_NAME'. (command line: --out for out=)" in lines[0]
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



def _two_at_once(function):
    """Run ``function()`` in two threads started together; return (results, errors)."""
    start = threading.Barrier(2)
    results, errors = [], []

    def run():
        start.wait()
        try:
            results.append(function())
        except Exception as exc:  # reported by the test, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return results, errors


@pytest.mark.parametrize("kind", ["tfds builder", "folder export"])
@pytest.mark.slow  # ~9 s: two processes build one dataset
def test_two_builds_of_one_dataset_at_once_both_succeed_and_it_is_built_once(kind, tmp_path, caplog):
    """The second build waits for the first (one line naming its pid), then reads what it built.

    Without the lock the second failed: "Failed to finalize writing of split 'train'".
    """
    data_dir = tmp_path / "tfds"
    if kind == "tfds builder":
        name = source = "synthetic_shapes"
    else:
        source = str(write_images_masks(tmp_path / "cells", num_good=6, broken=False).path)
        name = "cells"
    caplog.set_level(logging.INFO)
    builders, errors = _two_at_once(lambda: api.build(source, data_dir=data_dir))
    assert not errors, errors
    finished = [r for r in caplog.records if f"{name}: build finished" in r.getMessage()]
    waited = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Waiting for")]
    assert len(finished) == 1
    assert len(waited) == 1 and f"pid {os.getpid()} on host" in waited[0], waited
    assert str(data_dir / f"{name}.lock") in waited[0]
    counts = [b.info.splits["train"].num_examples for b in builders]
    assert counts[0] == counts[1] > 0
    assert not (data_dir / f"{name}.lock").exists()
