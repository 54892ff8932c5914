"""A fresh clone has no ``../shared``: whatever reads it skips, with a reason, instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCES = PROJECT_ROOT / "src" / "pixelwise"


@pytest.mark.slow  # ~11 s: doctests in a fresh pytest process
def test_doctests_reading_shared_data_skip_with_a_reason_where_it_is_absent(tmp_path):
    readers = [str(path) for path in sorted(SOURCES.rglob("*.py"))
               if 'shared_dataset("' in path.read_text() or "shared/datasets" in path.read_text()]
    assert len(readers) >= 2, readers
    env = {**os.environ, "PIXELWISE_SHARED_DATASETS": str(tmp_path / "absent")}
    run = subprocess.run([sys.executable, "-m", "pytest", *readers, "-q", "-rs", "-p", "no:xdist",
                          "-p", "no:cacheprovider"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "failed" not in run.stdout and "error" not in run.stdout, run.stdout[-3000:]
    assert f"real data 'CamVid' not found at {tmp_path / 'absent' / 'CamVid'}" in run.stdout
    assert f"real data 'isbi2012' not found at {tmp_path / 'absent' / 'isbi2012'}" in run.stdout
