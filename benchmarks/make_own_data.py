"""Generate an own-data export (images/ + masks/ + classes.txt) of N pairs, some of them broken.

The export is what ``pixelwise datasets build PATH`` reads (docs/own-data.md): JPEG images
(quality 90) and 8-bit index PNG masks of drawn class blocks, 500x375 by default. Every
``--broken-every``-th pair is broken, in turn one of four kinds a build must skip and name in
its skip report: an image without a mask, an undecodable image, a mask of another size, a
mask value outside ``classes.txt``. Pairs are drawn from a seed per index, so the same
arguments write the same bytes.

Usage::

    python benchmarks/make_own_data.py /tmp/own_20k --num-pairs 20000     # ~1.2 GB, 1 % broken
    python benchmarks/make_own_data.py /tmp/own_small --num-pairs 50 --broken-every 10
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ("background", "road", "building", "tree", "car")
#: The kinds of broken pair, in the order they are written, and a word of each skip reason.
BROKEN_KINDS = {
    "no_mask": "image without a mask",
    "corrupt": "cannot decode image",
    "wide": "(WxH) but mask",
    "bad_value": "mask holds class index",
}
BLOCK = 25  # side of the drawn class blocks, in pixels


def _pair(index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image and its class ids, ``size`` = (width, height): blocks of classes + noise."""
    width, height = size
    rng = np.random.default_rng(index)
    blocks = rng.integers(0, len(CLASS_NAMES), (-(-height // BLOCK), -(-width // BLOCK)))
    ids = blocks.repeat(BLOCK, 0).repeat(BLOCK, 1)[:height, :width].astype(np.uint8)
    colours = rng.integers(0, 256, (len(CLASS_NAMES), 3))
    noise = rng.integers(-12, 13, (height, width, 3))
    image = np.clip(colours[ids] + noise, 0, 255).astype(np.uint8)
    return image, ids


def write_export(root, num_pairs: int, broken_every: int = 100,
                 size: tuple[int, int] = (500, 375)) -> dict:
    """Write the export under ``root`` (created; must not hold one already).

    Args:
        root: The export folder.
        num_pairs: Pairs listed, broken ones included.
        broken_every: Every this-many-th pair (index ``broken_every - 1``, ...) is broken
            (0: none).
        size: (width, height) of each image.

    Returns:
        ``{"path", "num_pairs", "num_good", "broken": {stem: reason word}}``.
    """
    root = Path(root)
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    (root / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    broken = {}
    kinds = list(BROKEN_KINDS)
    for index in range(num_pairs):
        stem = f"tile_{index:06d}"
        image, ids = _pair(index, size)
        kind = None
        if broken_every and (index + 1) % broken_every == 0:
            kind = kinds[(index + 1) // broken_every % len(kinds) - 1]
            broken[stem] = BROKEN_KINDS[kind]
        if kind == "corrupt":
            (images / f"{stem}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        else:
            Image.fromarray(image).save(images / f"{stem}.jpg", quality=90)
        if kind == "no_mask":
            continue
        if kind == "wide":
            ids = np.pad(ids, ((0, 0), (0, 8)))
        elif kind == "bad_value":
            ids = ids.copy()
            ids[:2, :2] = len(CLASS_NAMES) + 2
        Image.fromarray(ids).save(masks / f"{stem}.png")
    return {"path": str(root), "num_pairs": num_pairs, "num_good": num_pairs - len(broken),
            "broken": broken}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("out", help="export folder to create")
    parser.add_argument("--num-pairs", type=int, default=20000, help="pairs, broken included")
    parser.add_argument("--broken-every", type=int, default=100,
                        help="every N-th pair is broken (0: none)")
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of each image")
    args = parser.parse_args(argv)
    width, height = (int(side) for side in args.size.lower().split("x"))
    summary = write_export(args.out, args.num_pairs, args.broken_every, (width, height))
    print(json.dumps({k: v for k, v in summary.items() if k != "broken"}
                     | {"num_broken": len(summary["broken"])}), file=sys.stdout)


if __name__ == "__main__":
    main()
