"""Dataset-build benchmark: label conversion vs the chapter's loop, and a full VOC-layout build.

1. **Label conversion** on the same label PNGs: the chapter's per-colour ``tf.Variable`` loop
   (``chapter_reference.chapter_decode_label``) vs ``pixelwise.datasets.decoding.decode_label``.
   The PNGs are VOC-style labels made from real CamVid annotations (``trainannot/``): class id
   ``i`` -> VOC palette index ``i``, CamVid void (11) -> VOC void (255). They are written twice,
   as palette PNGs (VOC's real format) and as RGB PNGs (what the chapter assumes), so both of
   pixelwise's decoding paths are timed. Without CamVid, synthetic blob labels are used.
   Both sides include PNG decoding. Target: >= 100x.
2. **Full build**: ``download_and_prepare`` of ``voc2007_semantic`` from a manual directory
   holding VOC 2007-layout tar archives of 200 examples at roughly VOC's image size (CamVid
   pairs re-encoded as VOC JPEGs + palette PNGs, see :func:`write_voc_archives`); examples/s
   over all splits. Target: >= 50 examples/s.

Usage::

    python benchmarks/bench_dataset_build.py            # full: 40 labels x 5 repeats, 200 examples
    python benchmarks/bench_dataset_build.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import harness  # noqa: E402

CAMVID_VOID = 11


def _voc_palette_bytes() -> list[int]:
    from pixelwise.class_sets import VOC

    table = VOC.lookup_table()  # ids -> palette, 255 -> void colour
    return table.reshape(-1).tolist()


def _synthetic_ids(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    for _ in range(8):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(20, height // 2), rng.integers(20, width // 2)
        ids[y:y + h, x:x + w] = rng.integers(1, 21)
    ids[::37, :] = 255  # thin void lines, as VOC's object borders
    return ids


def make_label_pngs(count: int) -> tuple[list[bytes], list[bytes], str]:
    """``count`` VOC-style labels as (palette PNG bytes, RGB PNG bytes, source description)."""
    camvid = harness.SHARED_DATASETS / "CamVid" / "trainannot"
    palette = _voc_palette_bytes()
    id_maps = []
    if camvid.is_dir():
        for path in sorted(camvid.glob("*.png"))[:count]:
            ids = np.asarray(Image.open(path), dtype=np.uint8).copy()
            ids[ids == CAMVID_VOID] = 255
            id_maps.append(ids)
        source = f"{len(id_maps)} CamVid trainannot labels (480x360) re-encoded VOC-style"
    else:
        rng = np.random.default_rng(0)
        id_maps = [_synthetic_ids(rng, 375, 500) for _ in range(count)]
        source = f"{count} synthetic 500x375 labels (CamVid not found at {camvid})"
    palette_pngs, rgb_pngs = [], []
    for ids in id_maps:
        pil = Image.fromarray(ids, mode="P")
        pil.putpalette(palette)
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        palette_pngs.append(buffer.getvalue())
        buffer = io.BytesIO()
        pil.convert("RGB").save(buffer, format="PNG")
        rgb_pngs.append(buffer.getvalue())
    return palette_pngs, rgb_pngs, source


def bench_label_conversion(count: int, repeats: int) -> dict:
    from chapter_reference import chapter_decode_label
    from pixelwise.class_sets import VOC
    from pixelwise.datasets.decoding import decode_label

    palette_pngs, rgb_pngs, source = make_label_pngs(count)

    # Correctness first: where the chapter's LUT knows the colour (all but void), both agree.
    mismatched = 0
    for data in palette_pngs[:5]:
        ours = decode_label(data, VOC)[..., 0]
        theirs = chapter_decode_label(data)
        if theirs is not None:
            known = ours != 255
            mismatched += int((ours[known] != theirs[..., 0][known]).sum())

    def run_chapter():
        return [chapter_decode_label(p) for p in palette_pngs]

    def run_palette():
        return [decode_label(p, VOC) for p in palette_pngs]

    def run_rgb():
        return [decode_label(p, VOC) for p in rgb_pngs]

    runs = {"chapter": run_chapter, "pixelwise_palette": run_palette, "pixelwise_rgb": run_rgb}
    times = {name: [] for name in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(repeats):  # interleaved: all three see the same machine load
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    chapter, ours_palette, ours_rgb = (harness.summary(times[name]) for name in runs)
    per_label = lambda s: s["median_s"] / count * 1e3  # noqa: E731
    return {
        "labels": source,
        "labels_per_repeat": count,
        "pixels_disagreeing_outside_void": mismatched,
        "chapter_tf_variable_loop_ms_per_label": per_label(chapter),
        "pixelwise_palette_png_ms_per_label": per_label(ours_palette),
        "pixelwise_rgb_png_ms_per_label": per_label(ours_rgb),
        "speedup_palette_png": chapter["median_s"] / ours_palette["median_s"],
        "speedup_rgb_png": chapter["median_s"] / ours_rgb["median_s"],
        "target_speedup": 100,
        "timings": {"chapter": chapter, "pixelwise_palette": ours_palette,
                    "pixelwise_rgb": ours_rgb},
    }


def write_voc_archives(root: Path, num_examples: int) -> dict:
    """A VOC 2007-layout manual directory with ``num_examples`` real-sized examples.

    Images and labels are CamVid ``train``/``trainannot`` pairs (480x360, close to VOC's
    ~500x375) re-encoded the VOC way: JPEG images (quality 90) and palette PNG labels
    (VOC colour map, void = 255), split 35/35/30 % into train/val/test and packed into the
    official ``VOCtrainval_06-Nov-2007.tar`` and ``VOCtest_06-Nov-2007.tar``. Without CamVid,
    synthetic 500x375 examples are written instead.
    """
    import tarfile

    palette = _voc_palette_bytes()
    camvid = harness.SHARED_DATASETS / "CamVid"
    pairs = sorted(zip(sorted((camvid / "train").glob("*.png")),
                       sorted((camvid / "trainannot").glob("*.png"))))[:num_examples]
    rng = np.random.default_rng(0)
    parts = {"trainval": root / "staging-trainval", "test": root / "staging-test"}
    lists = {"train": [], "val": [], "test": []}
    for index in range(num_examples):
        if pairs:
            image = np.asarray(Image.open(pairs[index % len(pairs)][0]).convert("RGB"))
            ids = np.asarray(Image.open(pairs[index % len(pairs)][1]), dtype=np.uint8).copy()
            ids[ids == CAMVID_VOID] = 255
        else:
            ids = _synthetic_ids(rng, 375, 500)
            image = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
        fraction = index / num_examples
        list_name = "train" if fraction < 0.35 else "val" if fraction < 0.7 else "test"
        part = "test" if list_name == "test" else "trainval"
        voc = parts[part] / "VOCdevkit" / "VOC2007"
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (voc / sub).mkdir(parents=True, exist_ok=True)
        example_id = f"{index:06d}"
        Image.fromarray(image).save(voc / "JPEGImages" / f"{example_id}.jpg", quality=90)
        label = Image.fromarray(ids, mode="P")
        label.putpalette(palette)
        label.save(voc / "SegmentationClass" / f"{example_id}.png")
        lists[list_name].append(example_id)
    for list_name, ids in lists.items():
        part = "test" if list_name == "test" else "trainval"
        path = parts[part] / "VOCdevkit" / "VOC2007" / "ImageSets" / "Segmentation"
        (path / f"{list_name}.txt").write_text("".join(f"{i}\n" for i in ids))
    trainval = parts["trainval"] / "VOCdevkit/VOC2007/ImageSets/Segmentation/trainval.txt"
    trainval.write_text("".join(f"{i}\n" for i in sorted(lists["train"] + lists["val"])))
    names = {"trainval": "VOCtrainval_06-Nov-2007.tar", "test": "VOCtest_06-Nov-2007.tar"}
    for part, staging in parts.items():
        with tarfile.open(root / names[part], "w") as tar:
            tar.add(staging / "VOCdevkit", arcname="VOCdevkit")
    return {
        "source": "CamVid train pairs re-encoded VOC-style (480x360)" if pairs
        else "synthetic 500x375",
        "examples": {name: len(ids) for name, ids in lists.items()},
        "tar_mib": round(sum((root / n).stat().st_size for n in names.values()) / 2**20, 1),
    }


def bench_full_build(num_examples: int, repeats: int) -> dict:
    import shutil

    import tensorflow_datasets as tfds

    from pixelwise.datasets.voc2007_semantic.voc2007_semantic_dataset_builder import Builder

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        manual_dir = Path(tmp) / "manual"
        manual_dir.mkdir()
        start = time.perf_counter()
        archive = write_voc_archives(manual_dir, num_examples)
        for staging in manual_dir.glob("staging-*"):
            shutil.rmtree(staging)
        archive["write_s"] = time.perf_counter() - start
        for attempt in range(repeats):
            data_dir = Path(tmp) / f"data{attempt}"
            builder = Builder(data_dir=str(data_dir))
            start = time.perf_counter()
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
            )
            results.append(time.perf_counter() - start)
            shutil.rmtree(data_dir, ignore_errors=True)
        built = sum(split.num_examples for split in builder.info.splits.values())
    timing = harness.summary(results)
    return {
        "archive": archive,
        "examples_built": built,
        "build_s": timing,
        "examples_per_s": built / timing["median_s"],
        "target_examples_per_s": 50,
        "note": "download_and_prepare from the manual dir: tar extraction, decoding and "
                "checking every pair, TFRecord writing, statistics; a fresh data_dir per repeat",
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few labels, tiny build")
    parser.add_argument("--skip-build", action="store_true", help="only the label conversion")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    results = {"machine": harness.machine_info()}
    count, repeats = (4, 2) if args.quick else (40, 5)
    results["label_conversion"] = bench_label_conversion(count, repeats)
    if not args.skip_build:
        num, build_repeats = (12, 1) if args.quick else (200, 3)
        try:
            results["full_build"] = bench_full_build(num, build_repeats)
        except ImportError as exc:
            results["full_build"] = {"not_measured": f"{type(exc).__name__}: {exc}"}
    harness.report("dataset_build", results, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
