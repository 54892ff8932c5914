"""Look at a dataset: image | colour label | overlay, with a class legend, as PNG files.

Like mmsegmentation's ``browse_dataset`` tool: one PNG per example, so a person can
check that images and labels line up and that class ids mean what the class set
says. The legend lists the classes present in the example with their share of
the pixels, plus the ignore label when present.

Example:
    >>> from pixelwise.datasets.browse import browse
    >>> paths = browse("camvid", "validation", "/tmp/camvid_browse", num_examples=4,
    ...                manual_dir="../shared/datasets/CamVid")  # doctest: +SKIP
    >>> paths[0].name  # doctest: +SKIP
    'camvid_validation_000_0016E5_07959.png'
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pixelwise.class_sets import ClassSet, class_set_from_info
from pixelwise.defaults import BROWSE_ALPHA, BROWSE_NUM_EXAMPLES, BROWSE_SPLIT
from pixelwise.datasets import api
from pixelwise.datasets.output_dirs import make_folder, tidied
from pixelwise.inference.drawing import overlay
from pixelwise.files import write_all_atomic

#: Default number of examples written by :func:`browse` (old name of
#: :data:`pixelwise.defaults.BROWSE_NUM_EXAMPLES`).
DEFAULT_NUM_EXAMPLES = BROWSE_NUM_EXAMPLES
#: Default opacity of the colour label in the overlay panel.
DEFAULT_ALPHA = BROWSE_ALPHA
_PANEL_INCHES = 4.0
_LEGEND_INCHES = 2.6


def legend_entries(label: np.ndarray, class_set: ClassSet) -> list[tuple[str, tuple[int, int, int]]]:
    """``(text, rgb)`` for each value present in ``label``: class id, name, pixel share.

    Values that are neither a class nor the ignore label are listed as
    ``unknown value V`` (drawn black), so a broken label is visible.

    Example:
        >>> from pixelwise.class_sets import CAMVID
        >>> legend_entries(np.array([[3, 3, 255, 8]]), CAMVID)[0]
        ('3 Road (50.0%)', (128, 64, 128))
    """
    values, counts = np.unique(np.asarray(label), return_counts=True)
    total = counts.sum()
    entries = []
    for value, count in zip(values.tolist(), counts.tolist()):
        share = f"({100.0 * count / total:.1f}%)"
        if value < class_set.num_classes:
            entries.append((f"{value} {class_set.class_names[value]} {share}", class_set.palette[value]))
        elif value == class_set.ignore_label:
            entries.append((f"{value} ignore {share}", class_set.void_color))
        else:
            entries.append((f"unknown value {value} {share}", (0, 0, 0)))
    return entries


def render_example(image: np.ndarray, label: np.ndarray, class_set: ClassSet, title: str = "",
                   alpha: float = DEFAULT_ALPHA) -> Figure:
    """A figure with image | colour label | overlay and a legend of the classes present.

    Args:
        image: uint8 ``(H, W, 3)`` or ``(H, W, 1)``.
        label: integer ``(H, W)`` or ``(H, W, 1)`` class ids.
        class_set: Names, palette and ignore label used for colours and legend.
        title: Figure title (e.g. dataset, split and file name).
        alpha: Opacity of the colour label in the overlay, default 0.5.

    Returns:
        A ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot state); save it
        with ``fig.savefig(path)``.
    """
    label = np.asarray(label)
    if label.ndim == 3:
        label = label[..., 0]
    if image.shape[:2] != label.shape:
        raise ValueError(
            f"Expected image and label of the same size, received {image.shape[:2]} and {label.shape}."
        )
    colour = class_set.colorize(label)
    height, width = label.shape
    panel_h = _PANEL_INCHES * height / width
    fig = Figure(figsize=(3 * _PANEL_INCHES + _LEGEND_INCHES, panel_h + 0.8), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    gray = image.shape[-1] == 1
    panels = (
        ("image", image[..., 0] if gray else image),
        ("label", colour),
        (f"overlay (alpha {alpha:g})", overlay(image, colour, alpha)),
    )
    for ax, (name, picture) in zip(axes, panels):
        # Nearest: every drawn pixel is a real palette colour, never a blend of two classes.
        ax.imshow(picture, interpolation="nearest", cmap="gray" if picture.ndim == 2 else None,
                  vmin=0, vmax=255)
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    handles = [Patch(facecolor=np.asarray(rgb) / 255.0, edgecolor="0.3", label=text)
               for text, rgb in legend_entries(label, class_set)]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False,
               title=f"{class_set.name}: classes present", title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=1 - (_LEGEND_INCHES + 0.1) / fig.get_figwidth(),
                        top=1 - 0.6 / fig.get_figheight(), bottom=0.02, wspace=0.03)
    return fig


def _safe_stem(filename: str) -> str:
    stem = os.path.splitext(os.path.basename(filename))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "example"


def _default_split(splits: list[str]) -> str:
    if BROWSE_SPLIT in splits or not splits:
        return BROWSE_SPLIT
    return "default" if "default" in splits else splits[0]


def browse(name: str, split: str | None, out_dir, num_examples: int = DEFAULT_NUM_EXAMPLES,
           data_dir=None, manual_dir=None, alpha: float = DEFAULT_ALPHA) -> list[Path]:
    """Write one image | label | overlay PNG for each of the first examples of a split.

    The pictures are written together once all are drawn: a failure leaves none
    of them, and no new empty ``out_dir``.

    Args:
        name: A pixelwise dataset (see ``pixelwise datasets list``), an adapted TFDS
            one, or the path of a folder or ``.zip`` export (built first when needed).
        split: Split to read, e.g. ``"train"``; None: ``train``, or the dataset's
            ``default`` (a CVAT export's only subset) or only split when it has no ``train``.
        out_dir: Folder for the PNGs (created if needed), named
            ``<dataset name>_<split>_<index>_<file stem>.png``.
        num_examples: How many examples, from the start of the split (default 8).
        data_dir: TFDS data directory (default TFDS' own).
        manual_dir: When given, the dataset is built from it first if it is not
            prepared yet (:func:`pixelwise.datasets.api.build`); otherwise it must
            already be prepared.
        alpha: Opacity of the colour label in the overlay panel.

    Returns:
        The paths written, in split order.

    Raises:
        FileNotFoundError: the dataset is not built and no ``manual_dir`` was given.
        ValueError: unknown dataset or split, a dataset pixelwise cannot read, or
            ``num_examples`` < 1.
        OSError: ``out_dir`` cannot be written (checked before the dataset is read).
    """
    if num_examples < 1:
        raise ValueError(f"Expected num_examples >= 1, received {num_examples}.")
    out_dir = Path(out_dir).expanduser()
    with tidied([out_dir]):
        make_folder(out_dir, "the pictures", "out_dir")
        builder = api.build(name, data_dir=data_dir, manual_dir=manual_dir, download=False)
        splits = sorted(builder.info.splits)
        split = split or _default_split(splits)
        if split not in splits:
            raise ValueError(f"Dataset {name!r} has no split {split!r}; expected one of {splits}.")
        class_set = class_set_from_info(builder.info)
        pictures = {}
        dataset = builder.as_dataset(split=split, shuffle_files=False).take(num_examples)
        for index, example in enumerate(tfds.as_numpy(dataset)):
            filename = example["image/filename"].decode()
            fig = render_example(example["image"], example["label"], class_set,
                                 title=f"{builder.name} / {split} #{index}: {filename}", alpha=alpha)
            # builder.name: an export's dataset name, never its path.
            path = out_dir / f"{builder.name}_{split}_{index:03d}_{_safe_stem(filename)}.png"
            pictures[path] = _png_bytes(fig)
        return write_all_atomic(pictures)


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
