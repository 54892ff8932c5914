"""`tfds build --imports pixelwise.datasets voc2007_semantic` (TFDS' own command line).

tfds 4.9.10's CLI does not start without apache-beam and mlcroissant (the
`tfds-cli` extra), so this test skips, saying so, when they are not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

_MISSING = [m for m in ("apache_beam", "mlcroissant") if importlib.util.find_spec(m) is None]


@pytest.mark.slow
@pytest.mark.skipif(bool(_MISSING), reason=f"tfds CLI needs {_MISSING}: pip install -e '.[tfds-cli]'")
def test_tfds_build_imports_pixelwise(voc2007, tmp_path):
    fixture = voc2007
    result = subprocess.run(
        [sys.executable, "-m", "tensorflow_datasets.scripts.cli.main", "build",
         "--imports", "pixelwise.datasets", "voc2007_semantic",
         "--manual_dir", str(fixture.root), "--data_dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    builder = tfds.builder("voc2007_semantic", data_dir=tmp_path / "data")
    assert {name: split.num_examples for name, split in builder.info.splits.items()} == fixture.num_examples
    assert len(builder.info.metadata["skipped"]["train"]) == len(fixture.skipped["train"])
