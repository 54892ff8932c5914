"""The NumPy side of ``camvid_screen.py``: packs, splits, resizing and augmentation, no TensorFlow.

A pack is a folder of ``images/*.jpg`` (native size), ``labels/*.png`` (uint8 class ids,
255: void) and ``index.json`` (dataset, group rule, class set, and each example's
``filename``, ``split`` and ``group``). :func:`augment_pair` ports
``pixelwise.data.transforms.augment_pair`` (same ranges and geometry; Pillow's bilinear resize
is antialiased when shrinking, as the tf.data pipeline's is); :func:`training_batches`
feeds ``fit`` from a thread pool.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from pixelwise.class_sets import ClassSet
from pixelwise.data.groups import GroupRule
from pixelwise.data.splits import NO_VALIDATION, plan_split

INDEX = "index.json"


def write_pack(out, examples, class_set: ClassSet, group_rule: str, dataset: str = "camvid",
               quality: int = 95) -> int:
    """Write ``(filename, split, group, image, label)`` examples as a pack; returns its bytes.

    Images are JPEG (``quality``), labels lossless PNG of uint8 class ids (255: void).
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    index, seen = [], set()
    for filename, split, group, image, label in examples:
        stem = Path(filename).stem
        if stem in seen:
            raise ValueError(f"Expected unique file names across splits, received {filename!r} twice.")
        seen.add(stem)
        Image.fromarray(np.asarray(image, np.uint8)).save(out / "images" / f"{stem}.jpg", quality=quality)
        Image.fromarray(np.asarray(label, np.uint8).reshape(label.shape[:2])).save(
            out / "labels" / f"{stem}.png", optimize=True)
        index.append({"filename": filename, "split": split, "group": group,
                      "image": f"images/{stem}.jpg", "label": f"labels/{stem}.png"})
    (out / INDEX).write_text(json.dumps({
        "dataset": dataset, "group_rule": group_rule, "class_set": json.loads(class_set.to_json()),
        "examples": index}, indent=1) + "\n")
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


# =========================================================================== the pack as arrays


def load_pack(folder):
    """``(index, images, labels)``: the index dict and the native uint8 arrays, in index order."""
    folder = Path(folder)
    if not (folder / INDEX).is_file():
        raise FileNotFoundError(f"Expected a pack made by `camvid_screen.py pack` at {str(folder)!r} "
                                f"(with {INDEX}); run `pack --out {folder}` first.")
    index = json.loads((folder / INDEX).read_text())

    def read(example):
        return (np.asarray(Image.open(folder / example["image"]).convert("RGB")),
                np.asarray(Image.open(folder / example["label"])))

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        pairs = list(pool.map(read, index["examples"]))
    return index, [p[0] for p in pairs], [p[1] for p in pairs]


def split_examples(config, index) -> tuple[list[int], list[int]]:
    """Positions of the training and validation examples, by ``pixelwise train``'s rules."""
    examples = index["examples"]
    splits = sorted({e["split"] for e in examples})

    def of(expression, option):
        parts = expression.split("+")
        if any(p not in splits for p in parts):
            raise ValueError(f"Expected {option} made of the pack's splits {splits} joined by '+', "
                             f"received {expression!r} (TFDS slices are not supported here).")
        return [i for i, e in enumerate(examples) if e["split"] in parts]

    train = of(config.train_split, "train_split")
    if config.validation_groups:
        rule = GroupRule.parse(index["group_rule"] if config.groups == "auto" else config.groups)
        names = [examples[i]["filename"] for i in train]
        held = set(plan_split(names, rule=rule, held_out_groups=config.validation_groups).validation)
        return ([i for i in train if examples[i]["filename"] not in held],
                [i for i in train if examples[i]["filename"] in held])
    if config.validation_split == NO_VALIDATION:
        raise ValueError("The screen selects epochs on validation, received validation_split: none; "
                         "pass validation_groups (e.g. [0006R0]) or a validation_split.")
    return train, of(config.validation_split, "validation_split")


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """Bilinear (antialiased when shrinking, as ``pixelwise.data.transforms``), uint8 out."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_label(label: np.ndarray, size) -> np.ndarray:
    """Nearest neighbour with half-pixel centres (``tf.image.resize`` ``"nearest"``)."""
    rows, cols = (np.minimum(((np.arange(out) + 0.5) * source / out).astype(int), source - 1)
                  for out, source in zip(size, label.shape[:2]))
    return label[rows[:, None], cols]


# =========================================================================== augmentation (NumPy port)

# pixelwise.data.transforms' photometric jitter: saturation and hue as one linear map (YIQ).
_LUMA = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _window(size, crop, scale):
    window = int(np.clip(np.round(crop / scale), 1, size))
    return window, crop if window < size else int(np.clip(np.round(window * scale), 1, crop))


def photometric_jitter(image, brightness, contrast, saturation, hue):
    """``x -> clip(M (c x + (1 - c) mean + b))``: ``pixelwise.data.transforms``' jitter of a [0, 1] image.

    ``M`` applies ``saturation`` (a blend with the grey image) and ``hue`` (a rotation of the
    YIQ chroma plane by ``hue`` turns); ``mean`` is each channel's mean over the image.
    """
    angle = hue * 2 * np.pi
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                         [0, np.sin(angle), np.cos(angle)]])
    saturate = saturation * np.eye(3) + (1 - saturation) * np.tile(_LUMA, (3, 1))
    matrix = _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ @ saturate
    flat = image.reshape(-1, 3)
    offset = matrix @ ((1 - contrast) * flat.mean(axis=0) + brightness)
    flat = flat @ (contrast * matrix).T.astype(np.float32) + offset.astype(np.float32)
    return np.clip(flat, 0.0, 1.0, out=flat).reshape(image.shape)


def augment_pair(image, label, rng, crop_size, scale_range=(0.5, 2.0), photometric=True,
                 ignore_label=255):
    """``pixelwise.data.transforms.augment_pair`` in NumPy: flip, scale + crop (void-padded), jitter.

    ``image`` ``(H, W, 3)`` uint8, ``label`` ``(H, W)`` uint8; returns float32 in [0, 1] and uint8.
    """
    height, width = image.shape[:2]
    crop_h, crop_w = crop_size
    if rng.uniform() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    scale = rng.uniform(*scale_range)
    window_h, out_h = _window(height, crop_h, scale)
    window_w, out_w = _window(width, crop_w, scale)
    top, left = rng.integers(0, height - window_h + 1), rng.integers(0, width - window_w + 1)
    image = np.ascontiguousarray(image[top:top + window_h, left:left + window_w])
    label = label[top:top + window_h, left:left + window_w]
    image = resize_image(image, (out_h, out_w))
    label = resize_label(label, (out_h, out_w))
    pad_h, pad_w = crop_h - out_h, crop_w - out_w
    pad_top, pad_left = rng.integers(0, pad_h + 1), rng.integers(0, pad_w + 1)
    pads = ((pad_top, pad_h - pad_top), (pad_left, pad_w - pad_left))
    image = np.pad(image, (*pads, (0, 0))).astype(np.float32) / np.float32(255)
    label = np.pad(label, pads, constant_values=ignore_label)
    if photometric:
        image = photometric_jitter(image, rng.uniform(-32 / 255, 32 / 255), rng.uniform(0.5, 1.5),
                                   rng.uniform(0.5, 1.5), rng.uniform(-0.05, 0.05))
    return image, label


def training_batches(images, labels, config, steps_per_epoch, ignore_label, workers):
    """All epochs' ``(images, labels)`` batches, made by ``workers`` threads ahead of the model.

    Each epoch is a fresh permutation; each example's augmentation draws from its own
    generator seeded by ``(seed, epoch, position)``, so batches do not depend on thread timing.
    """
    seed = config.seed if config.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    size, batch_size = tuple(config.image_size), config.batch_size

    def make(epoch, order):
        pairs = []
        for position in order:
            if config.augment:
                rng = np.random.default_rng([seed, epoch, int(position)])
                pairs.append(augment_pair(images[position], labels[position], rng, size,
                                          ignore_label=ignore_label))
            else:
                pairs.append((images[position] / np.float32(255), labels[position]))
        return (np.stack([p[0] for p in pairs]).astype(np.float32),
                np.stack([p[1] for p in pairs])[..., None].astype(np.int32))

    def jobs():
        shuffle = np.random.default_rng(seed)
        for epoch in range(config.epochs):
            order = shuffle.permutation(len(images))  # the whole split, as tf.data's 1024 buffer
            for step in range(steps_per_epoch):
                yield epoch, order[step * batch_size:(step + 1) * batch_size]

    waiting = jobs()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque(pool.submit(make, *job)
                                    for job in itertools.islice(waiting, 2 * workers))
        while pending:
            batch = pending.popleft().result()
            pending.extend(pool.submit(make, *job) for job in itertools.islice(waiting, 1))
            yield batch
