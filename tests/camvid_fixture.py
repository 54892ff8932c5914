"""Shared helper of the CamVid tests (test_camvid, test_group_split): real subsets of CamVid."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_real_lines(camvid_dir: Path, dest: Path, listed: dict[str, list[str]]) -> None:
    """Copy the real examples of the given list lines (per split folder), lines unchanged."""
    for folder, lines in listed.items():
        (dest / folder).mkdir(parents=True)
        (dest / f"{folder}annot").mkdir()
        for line in lines:
            for path in line.split():
                relative = Path(*Path(path).parts[-2:])
                shutil.copy(camvid_dir / relative, dest / relative)
        (dest / f"{folder}.txt").write_text("\n".join(lines) + "\n")
