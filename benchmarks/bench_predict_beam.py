"""Batch-prediction benchmark: ``pixelwise predict`` against ``predict --beam`` with 1 and 2 workers,
and a Beam job killed in the middle, then resumed.

Generated inputs: ``--num-images`` random RGB PNGs (default 1,000 of 256x256) of which
``--broken`` (default 10) are not images (truncated PNGs, text, empty files), and a run folder of
the chapter's U-Net at ``--base-filters`` (default 16; random weights: time does not depend on
them), 12 classes. Each measurement is the ``pixelwise`` command in its own process, into a
fresh output folder, so its time includes starting Python and TensorFlow and loading the run
(once per worker on Beam), as a user's command does; images/s is images over that time.

1. **Throughput**: the plain loop (``pixelwise predict``), ``predict --beam`` with
   ``--direct_num_workers=1`` and ``=2`` (DirectRunner, multi-processing): seconds, images/s,
   speed against the plain loop; the complete outputs (all four files) and the dead-letter lines
   (the issue's check: 990 complete, 10 reasons).
2. **Kill and resume**: ``predict --beam`` with 2 workers is killed (SIGKILL to its process
   group) once ``--kill-after`` of the images (default a half) are complete; a re-run over the
   same folder must leave every output complete before the kill untouched (same mtime) and
   finish the rest. Reported: complete at the kill, predicted and skipped by the re-run (from its
   summary line), and ``redone_completed`` (must be 0).

Usage::

    python benchmarks/bench_predict_beam.py            # 1,000 images, 10 broken (~tens of minutes)
    python benchmarks/bench_predict_beam.py --quick    # smoke run: 24 small images, 3 broken
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import harness  # noqa: E402

#: Measurement name -> Beam options (None: the plain ``predict`` loop).
MEASUREMENTS = {"plain": None, "beam_1_worker": "--direct_num_workers=1",
                "beam_2_workers": "--direct_num_workers=2"}
_CLI = "import sys; from pixelwise.cli import main; sys.exit(main(sys.argv[1:]))"
_SUMMARY = re.compile(r"(\d+) images: (\d+) predicted, (\d+) already complete, (\d+) failed")


def make_inputs(folder: Path, num_images: int, broken: int, side: int) -> list[Path]:
    """``num_images`` PNGs in ``folder``, ``broken`` of them unreadable; returns all paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    every = max(num_images // max(broken, 1), 1)
    broken_at = list(range(every // 2, num_images, every))[:broken]
    unreadable = (b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # empty, text, truncated
    paths = []
    for index in range(num_images):
        path = folder / f"image{index:05d}.png"
        if index in broken_at:
            path.write_bytes(unreadable[broken_at.index(index) % len(unreadable)])
        else:
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def make_run(folder: Path, base_filters: int, num_classes: int = 12) -> Path:
    """A run folder (class_set.json, config.json, checkpoints/best.keras) of a random U-Net."""
    import keras

    from pixelwise import models
    from pixelwise.class_sets import ClassSet

    keras.utils.set_random_seed(0)
    model = models.build("unet", input_size=(None, None, 3), num_classes=num_classes,
                         base_filters=base_filters)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    names = tuple(f"class{i}" for i in range(num_classes))
    palette = tuple(tuple(int(c) for c in np.random.default_rng(i).integers(0, 256, 3))
                    for i in range(num_classes))
    (folder / "class_set.json").write_text(ClassSet("bench", names, palette).to_json())
    (folder / "config.json").write_text(json.dumps({"image_size": 64}))
    model.save(folder / "checkpoints" / "best.keras")
    return folder


def complete_outputs(out: Path) -> dict[str, int]:
    """``{name: mtime_ns of NAME.json}`` of every image whose four outputs exist."""
    from pixelwise.inference.outputs import output_filenames

    done = {}
    for described in out.glob("*.json"):
        name = described.stem
        if all((out / f).exists() for f in output_filenames(name).values()):
            done[name] = described.stat().st_mtime_ns
    return done


def _command(images: Path, run: Path, out: Path, side: int, beam_options: str | None) -> list[str]:
    """``pixelwise predict``: the plain loop over ``images.txt``, or ``--beam`` over a glob."""
    command = [sys.executable, "-c", _CLI, "predict", "--run", str(run), "--out", str(out),
               "--input-size", str(side)]
    if beam_options is None:
        return command + ["--file-list", str(images.parent / "images.txt")]
    return command + [str(images / "*.png"), "--beam", f"--beam-options={beam_options}"]


def measure(images: Path, run: Path, out: Path, side: int, beam_options: str | None,
            num_images: int) -> dict:
    """One ``pixelwise predict`` command in its own process: time, images/s, what it wrote."""
    start = time.perf_counter()
    proc = subprocess.run(_command(images, run, out, side, beam_options), capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"predict failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    dead = out / "dead-letter.jsonl"
    return {"seconds": seconds, "images_per_s": num_images / seconds,
            "complete": len(complete_outputs(out)),
            "dead_letter_lines": len(dead.read_text().splitlines()) if dead.exists() else None}


def kill_and_resume(images: Path, run: Path, out: Path, side: int, kill_after: int) -> dict:
    """Kill a 2-worker Beam job once ``kill_after`` images are complete; re-run; compare."""
    command = _command(images, run, out, side, "--direct_num_workers=2")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while proc.poll() is None and len(complete_outputs(out)) < kill_after:
        time.sleep(0.2)
    finished_before_kill = proc.poll() is not None
    if not finished_before_kill:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its Beam workers
    proc.wait()
    before = complete_outputs(out)
    rerun = subprocess.run(command, capture_output=True, text=True, check=False)
    after = complete_outputs(out)
    summary = _SUMMARY.search(rerun.stdout)
    if summary is None:
        raise RuntimeError(f"the re-run printed no summary (exit {rerun.returncode}):\n"
                           f"{rerun.stderr[-3000:]}")
    total, predicted, skipped, failed = map(int, summary.groups())
    return {"complete_at_kill": len(before), "finished_before_kill": finished_before_kill,
            "rerun": {"images": total, "predicted": predicted, "skipped": skipped,
                      "failed": failed},
            "redone_completed": sum(1 for name, mtime in before.items() if after.get(name) != mtime),
            "complete_after_rerun": len(after)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="24 images of 64x64, 3 broken")
    parser.add_argument("--num-images", type=int, default=1000)
    parser.add_argument("--broken", type=int, default=10)
    parser.add_argument("--side", type=int, default=256, help="image side (a multiple of 64)")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--kill-after", type=float, default=0.5,
                        help="share of the images complete when the job is killed")
    parser.add_argument("--out", default=None, help="results JSON (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.num_images, args.broken, args.side, args.base_filters = 24, 3, 64, 4

    with tempfile.TemporaryDirectory(prefix="bench_predict_beam-") as temp:
        temp = Path(temp)
        paths = make_inputs(temp / "images", args.num_images, args.broken, args.side)
        (temp / "images.txt").write_text("".join(f"{p}\n" for p in paths))
        run = make_run(temp / "run", args.base_filters)
        results = {"machine": harness.machine_info(),
                   "inputs": {"num_images": args.num_images, "broken": args.broken,
                              "side": args.side, "base_filters": args.base_filters}}
        for name, beam_options in MEASUREMENTS.items():
            results[name] = measure(temp / "images", run, temp / name, args.side, beam_options,
                                    args.num_images)
        for name in MEASUREMENTS:
            results[name]["speed_vs_plain"] = (results[name]["images_per_s"]
                                               / results["plain"]["images_per_s"])
        kill_after = max(1, int(args.kill_after * (args.num_images - args.broken)))
        results["kill_and_resume"] = kill_and_resume(temp / "images", run, temp / "resumed",
                                                     args.side, kill_after)
    harness.report("predict_beam", results, quick=args.quick, out=args.out)
    return results


if __name__ == "__main__":
    main()
