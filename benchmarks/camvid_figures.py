"""Small figures of a CamVid run for the docs: training curves and validation overlays.

Writes into ``--out`` (default ``docs/camvid/``), each PNG kept under 300 KB:

* ``curves.png``: loss, pixel accuracy and mean IoU per epoch, train and validation
  (re-drawn from the run's ``history.csv`` at a small size);
* ``val_<n>.png`` for a few validation images spread over the split: the image, its ground
  truth and the prediction (``pixelwise.inference.prediction.predict_array`` at the run's training size,
  probabilities resized back to 360x480 before the argmax, as ``pixelwise evaluate`` does),
  void drawn in the class set's void colour.

Usage::

    python benchmarks/camvid_figures.py --run runs/camvid --data-dir ~/tensorflow_datasets
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import harness  # noqa: E402

MAX_BYTES = 300 * 1024


def save_small_png(image: Image.Image, path: Path) -> int:
    """Save as PNG; if over 300 KB, quantise to 256 colours (then shrink) until it fits."""
    for attempt in range(4):
        buffer = io.BytesIO()
        candidate = image if attempt == 0 else image.quantize(256, dither=Image.Dither.NONE)
        candidate.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            path.write_bytes(buffer.getvalue())
            return buffer.tell()
        if attempt >= 1:
            image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.BILINEAR)
    raise ValueError(f"could not fit {path.name} under {MAX_BYTES} bytes")


def plot_curves(history_path: Path, out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(history_path.open()))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), dpi=90)
    for ax, key, title in zip(axes, ("loss", "pixel_accuracy", "mean_iou"),
                              ("loss", "pixel accuracy", "mean IoU (void excluded)")):
        ax.plot(epochs, [float(r[key]) for r in rows], label="train")
        ax.plot(epochs, [float(r[f"val_{key}"]) for r in rows], label="validation")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return save_small_png(Image.open(buffer).convert("RGB"), out)


def overlays(run: Path, data_dir, count: int, out_dir: Path) -> list[dict]:
    from pixelwise.data.pipeline import load_split
    from pixelwise.inference.options import PredictOptions
    from pixelwise.inference.prediction import predict_array
    from pixelwise.runs.folder import RunFolder

    folder = RunFolder(run)
    model = folder.load_model("best")
    class_set = folder.class_set()
    size = tuple(folder.config()["image_size"])
    examples, info = load_split("camvid", "validation", data_dir,
                                str(harness.SHARED_DATASETS / "CamVid"))
    total = info.splits["validation"].num_examples
    wanted = {int(i) for i in np.linspace(0, total - 1, count)}
    written = []
    for index, example in enumerate(examples.as_numpy_iterator()):
        if index not in wanted:
            continue
        image, label = example["image"], example["label"][..., 0]
        predicted, _, _ = predict_array(model, image, PredictOptions(model_size=size))
        valid = label != class_set.ignore_label
        accuracy = float((predicted[valid] == label[valid]).mean())
        panel = np.concatenate([image, class_set.colorize(label), class_set.colorize(predicted)],
                               axis=1)
        name = f"val_{len(written) + 1}.png"
        small = Image.fromarray(panel).resize((panel.shape[1] // 2, panel.shape[0] // 2),
                                              Image.BILINEAR)
        size_bytes = save_small_png(small, out_dir / name)
        written.append({"file": name, "source": example["image/filename"].decode(),
                        "pixel_accuracy": accuracy, "bytes": size_bytes})
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="run folder of a camvid training")
    parser.add_argument("--data-dir", default=None, help="TFDS data dir with the camvid build")
    parser.add_argument("--count", type=int, default=3, help="validation overlays")
    parser.add_argument("--out", default=str(harness.PROJECT_ROOT / "docs" / "camvid"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves = plot_curves(Path(args.run) / "history.csv", out / "curves.png")
    written = overlays(Path(args.run), args.data_dir, args.count, out)
    print({"curves_bytes": curves, "overlays": written})


if __name__ == "__main__":
    main()
