"""Folder-build benchmark: an export of 500x375 JPEG + PNG pairs built as a TFDS dataset.

Two exports of the same examples are written, one per layout pixelwise reads:

* **images/ + masks/** with ``classes.txt``: JPEG images (quality 90) and palette PNG
  index masks (the decoding path of a 1-channel mask);
* **CVAT "Segmentation mask 1.1"** zipped: the same JPEGs and RGB PNG masks in the
  ``labelmap.txt`` colours (the colour look-up path), read from the ``.zip``.

Images and labels are CamVid ``train``/``trainannot`` pairs resized to 500x375 (bilinear /
nearest; CamVid void 11 -> 255) when ``../shared/datasets/CamVid`` is there, else synthetic.
Timed: ``prepare(folder_builder(path, data_dir))`` into a fresh data dir per repeat, i.e.
listing, fingerprint, decoding and checking every pair, TFRecord writing and the skip
report. Target: >= 50 examples/s.

Usage::

    python benchmarks/bench_folder_build.py            # 200 examples, 3 repeats per layout
    python benchmarks/bench_folder_build.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import harness  # noqa: E402

SIZE = (500, 375)  # (width, height), VOC's typical image
CAMVID_VOID = 11
CLASS_NAMES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
               "Car", "Pedestrian", "Bicyclist")


def _pairs(num_examples: int):
    """``num_examples`` (RGB image, class ids) pairs at 500x375, and where they come from."""
    camvid = harness.SHARED_DATASETS / "CamVid"
    files = sorted(zip(sorted((camvid / "train").glob("*.png")),
                       sorted((camvid / "trainannot").glob("*.png"))))
    rng = np.random.default_rng(0)
    for index in range(num_examples):
        if files:
            image_path, label_path = files[index % len(files)]
            image = Image.open(image_path).convert("RGB").resize(SIZE, Image.BILINEAR)
            ids = np.asarray(Image.open(label_path).resize(SIZE, Image.NEAREST), np.uint8).copy()
            ids[ids == CAMVID_VOID] = 255
            yield np.asarray(image), ids
        else:
            ids = rng.integers(0, len(CLASS_NAMES), (SIZE[1] // 25, SIZE[0] // 25), dtype=np.uint8)
            ids = ids.repeat(25, 0).repeat(25, 1)
            yield rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8), ids


def write_exports(root: Path, num_examples: int) -> dict:
    """The images/ + masks/ folder and the CVAT zip of the same examples under ``root``."""
    from pixelwise.class_sets import CAMVID

    flat, cvat = root / "flat_export", root / "cvat_export"
    for folder in ("images", "masks"):
        (flat / folder).mkdir(parents=True)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (cvat / folder).mkdir(parents=True)
    (flat / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    # CamVid draws void black: a "Void" label makes its colour the void colour (255).
    (cvat / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + "".join(
        f"{n}:{r},{g},{b}::\n" for n, (r, g, b) in zip(CLASS_NAMES, CAMVID.palette))
        + "Void:{},{},{}::\n".format(*CAMVID.void_color))
    palette = CAMVID.lookup_table()
    stems = []
    for index, (image, ids) in enumerate(_pairs(num_examples)):
        stem = f"frame_{index:06d}"
        Image.fromarray(image).save(flat / "images" / f"{stem}.jpg", quality=90)
        shutil.copy(flat / "images" / f"{stem}.jpg", cvat / "JPEGImages" / f"{stem}.jpg")
        mask = Image.fromarray(ids, mode="P")
        mask.putpalette(palette.reshape(-1).tolist())
        mask.save(flat / "masks" / f"{stem}.png")
        Image.fromarray(palette[ids]).save(cvat / "SegmentationClass" / f"{stem}.png")
        stems.append(stem)
    split = int(len(stems) * 0.8)
    sets = cvat / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(f"{s}\n" for s in stems[:split]))
    (sets / "val.txt").write_text("".join(f"{s}\n" for s in stems[split:]))
    archive = root / "cvat_export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # CVAT stores JPEG/PNG as is
        for file in sorted(cvat.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(cvat).as_posix())
    shutil.rmtree(cvat)
    camvid = (harness.SHARED_DATASETS / "CamVid" / "train").is_dir()
    return {
        "source": ("CamVid train pairs resized to 500x375" if camvid else "synthetic 500x375"),
        "exports": {"images_masks_folder": flat, "cvat_zip": archive},
        "folder_mib": round(sum(p.stat().st_size for p in flat.rglob("*.*")) / 2**20, 1),
        "zip_mib": round(archive.stat().st_size / 2**20, 1),
    }


def bench_build(path: Path, data_root: Path, repeats: int) -> dict:
    from pixelwise.datasets.folder import folder_builder, prepare

    times, built = [], 0
    for attempt in range(repeats):
        data_dir = data_root / f"data{attempt}"
        start = time.perf_counter()
        builder = prepare(folder_builder(path, data_dir=data_dir))
        times.append(time.perf_counter() - start)
        built = sum(split.num_examples for split in builder.info.splits.values())
        shutil.rmtree(data_dir, ignore_errors=True)
    # An unchanged export is not rebuilt: the check alone (listing + fingerprint).
    data_dir = data_root / "kept"
    prepare(folder_builder(path, data_dir=data_dir))
    start = time.perf_counter()
    prepare(folder_builder(path, data_dir=data_dir))
    check_s = time.perf_counter() - start
    timing = harness.summary(times)
    return {"examples_built": built, "build_s": timing,
            "examples_per_s": built / timing["median_s"], "unchanged_check_s": check_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 examples, 1 repeat")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    logging.getLogger("pixelwise").setLevel(logging.ERROR)

    num, repeats = (12, 1) if args.quick else (200, 3)
    results = {"machine": harness.machine_info()}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        exports = write_exports(Path(tmp), num)
        exports["write_s"] = time.perf_counter() - start
        results["exports"] = {k: v for k, v in exports.items() if k != "exports"}
        for layout, path in exports["exports"].items():
            results[layout] = bench_build(path, Path(tmp), repeats)
    results["target_examples_per_s"] = 50
    results["note"] = ("prepare(folder_builder(...)) into a fresh data_dir per repeat: listing, "
                       "fingerprint, decoding and checking every pair, TFRecord writing, "
                       "skip report")
    harness.report("folder_build", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
