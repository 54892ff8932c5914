"""Which layout an export has, and its splits as planned (image, mask) pairs; nothing is decoded.

Two layouts are read (docs/own-data.md shows each as a tree):

1. **CVAT / Datumaro "Segmentation mask 1.1"**: ``labelmap.txt``,
   ``ImageSets/Segmentation/<subset>.txt``, ``JPEGImages/``, ``SegmentationClass/*.png``.
   Each subset file is a split. Without ``labelmap.txt``: VOC's classes and colours.
2. **images/ + masks/**: ``images/`` and ``masks/`` with matching file stems, at the root
   or under ``train/``, ``val/``, ``test/``, and ``classes.txt`` (index masks) or
   ``class_dict.csv`` (colour masks) at the root.

Split names: ``train`` → ``train``; ``val``, ``valid``, ``validation`` → ``validation``;
``test`` → ``test``; any other subset keeps its name (CVAT's ``default``). Without split
folders or subset files, a seeded share of the examples (``validation_fraction``) becomes
``validation``, the rest ``train``; the same happens to ``train/`` when there is no
validation folder (:func:`pixelwise.data.splits.plan_split` chooses it). With a group rule
(``groups``, :mod:`pixelwise.data.groups`: frames of one video, slices of one volume), that
share is made of whole groups, so no group straddles ``train`` and ``validation``. Pairs
that cannot be complete (an image without a mask, a mask without an image, two files with
one stem) are planned with their problem, so the build reports them by id with the others
(:mod:`pixelwise.datasets.segmentation_builder`).

Example:
    >>> tree = SourceTree.open("exports/cells")  # doctest: +SKIP
    >>> layout = read_layout(tree, "cells", validation_fraction=0.1, seed=0)  # doctest: +SKIP
    >>> layout.kind, sorted(layout.plans)  # doctest: +SKIP
    ('images_masks', ['train', 'validation'])
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath

from pixelwise.datasets.folder.class_files import (
    ClassSpec, class_spec, parse_class_dict_csv, parse_classes_txt, parse_labelmap, voc_class_spec,
)
from pixelwise.datasets.folder.source_tree import SourceTree
from pixelwise.datasets.split_plan import ExamplePair, SplitPlan
from pixelwise.data.groups import GroupRule
from pixelwise.data.splits import plan_split

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = (".png",)
#: Subset and folder names with a TFDS split name of their own; any other keeps its name.
SPLIT_NAMES = {"train": "train", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test"}
EXPECTED_LAYOUTS = (
    "expected one of\n"
    "  1. a CVAT / Datumaro 'Segmentation mask 1.1' export: labelmap.txt, "
    "ImageSets/Segmentation/<subset>.txt, JPEGImages/, SegmentationClass/*.png\n"
    "  2. images/ and masks/ (at the root, or under train/, val/, test/) with classes.txt "
    "(index masks) or class_dict.csv (colour masks) at the root"
)


@dataclasses.dataclass(frozen=True)
class FolderPair(ExamplePair):
    """A planned pair of an export; ``problem`` says why it cannot be an example, when known early.

    ``image_path`` and ``label_path`` are relative to the export's root ("" when absent).
    """

    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class FolderLayout:
    """An export's layout, classes and planned splits.

    Attributes:
        kind: ``"cvat"`` or ``"images_masks"``.
        class_spec: Its classes and mask encoding.
        plans: ``{split: SplitPlan}`` of :class:`FolderPair`, non-empty splits only.
        split_rule: How the splits were made (stored in the dataset's metadata).
        used_files: Every file the layout reads (what the fingerprint covers).
        groups: The group rule, or None (kept whole by the seeded validation share).
    """

    kind: str
    class_spec: ClassSpec
    plans: dict[str, SplitPlan]
    split_rule: dict
    used_files: tuple[str, ...]
    groups: GroupRule | None = None


def split_name(subset: str) -> str:
    """The TFDS split of a subset or folder name: ``val`` → ``validation``, ``default`` stays."""
    return SPLIT_NAMES.get(subset.lower(), subset)


def _by_stem(files, folder: str, suffixes) -> dict[str, list[str]]:
    """``{path inside folder without suffix: [relative paths]}`` of the files with ``suffixes``."""
    found: dict[str, list[str]] = {}
    prefix = folder + "/"
    for rel in files:
        if rel.startswith(prefix):
            stem, suffix = posixpath.splitext(rel[len(prefix):])
            if suffix.lower() in suffixes:
                found.setdefault(stem, []).append(rel)
    return {stem: sorted(rels) for stem, rels in found.items()}


def _has_folder(files, folder: str) -> bool:
    return any(rel.startswith(folder + "/") for rel in files)


def _pair(stem: str, images: dict, masks: dict, image_dir: str, mask_dir: str,
          listed_in: str | None = None) -> FolderPair:
    image_files, mask_files = images.get(stem, []), masks.get(stem, [])
    problem = None
    if len(image_files) > 1 or len(mask_files) > 1:
        twins = image_files if len(image_files) > 1 else mask_files
        problem = f"duplicate stem {stem!r}: {' and '.join(twins)} share it; keep one file per stem"
    elif not image_files and not mask_files:
        problem = (f"listed in {listed_in}, but neither {image_dir}/{stem}.jpg (or .png, .bmp, "
                   f".tif) nor {mask_dir}/{stem}.png exists")
    elif not mask_files:
        problem = f"image without a mask: no {mask_dir}/{stem}.png for {image_files[0]}"
    elif not image_files:
        problem = (f"mask without an image: no {image_dir}/{stem}.jpg (or .png, .bmp, .tif) for "
                   f"{mask_files[0]}")
    image = image_files[0] if image_files else ""
    mask = mask_files[0] if mask_files else ""
    filename = (image or mask)[len((image_dir if image else mask_dir)) + 1:] or stem
    return FolderPair(stem, image, mask, filename, problem=problem)


def _split_off_validation(pairs: list[FolderPair], validation_fraction: float, seed: int,
                          groups: GroupRule | None = None):
    """``(train pairs, validation pairs)``: a seeded share of the complete pairs validates
    (:func:`pixelwise.data.splits.plan_split`: ranked by example key, or with ``groups`` whole
    groups of the stored file names).

    Pairs with a problem stay in train, where the build reports them.

    Raises:
        ValueError: ``groups`` matches none of the pairs' file names.
    """
    complete = [p for p in pairs if p.problem is None]
    chosen = set(plan_split([p.key for p in complete], rule=groups,
                            validation_fraction=validation_fraction, seed=seed,
                            names={p.key: p.filename for p in complete}).validation)
    if groups is not None and not chosen and validation_fraction > 0 and complete:
        logger.warning("The group rule %r puts all %d examples in one group; no validation "
                       "split is made. Check the rule, or pass groups none.", groups.spec,
                       len(complete))
    return [p for p in pairs if p.key not in chosen], [p for p in pairs if p.key in chosen]


def _groups_entry(groups: GroupRule | None) -> dict:
    """The split rule's record of a group rule: ``{"groups": spec}``, or nothing without one."""
    return {} if groups is None else {"groups": groups.spec}


# -- CVAT / Datumaro "Segmentation mask 1.1" -------------------------------------------------

def _cvat(tree: SourceTree, name: str, validation_fraction: float, seed: int,
          groups: GroupRule | None) -> FolderLayout:
    files = tree.files
    images = _by_stem(files, "JPEGImages", IMAGE_SUFFIXES)
    masks = _by_stem(files, "SegmentationClass", MASK_SUFFIXES)
    used = [r for rels in (*images.values(), *masks.values()) for r in rels]
    if "labelmap.txt" in files:
        entries = parse_labelmap(tree.read_text("labelmap.txt"))
        spec = class_spec(entries, "auto", name, "labelmap.txt")
        used.append("labelmap.txt")
    else:
        spec = voc_class_spec(name)
    lists = sorted(r for r in files if r.startswith("ImageSets/Segmentation/")
                   and r.endswith(".txt") and r.count("/") == 2)
    plans, subsets = {}, {}
    for rel in lists:
        subset = posixpath.splitext(posixpath.basename(rel))[0]
        split = split_name(subset)
        if split in plans:
            raise ValueError(f"{tree.root}: subsets {subsets[split]!r} and {subset!r} are both the "
                             f"split {split!r}; merge them or rename one.")
        stems = [line.strip() for line in tree.read_text(rel).splitlines() if line.strip()]
        # CVAT writes "name" per line; VOC-style lists may add a second column (a flag).
        stems = [line.split()[0] for line in stems]
        pairs = [_pair(s, images, masks, "JPEGImages", "SegmentationClass", rel) for s in stems]
        if pairs:
            plans[split], subsets[split] = SplitPlan(pairs, source=rel), subset
        used.append(rel)
    if lists:
        rule = {"rule": "subsets", "subsets": {subset: split for split, subset in subsets.items()}}
    else:
        pairs = [_pair(s, images, masks, "JPEGImages", "SegmentationClass")
                 for s in sorted(set(images) | set(masks))]
        train, validation = _split_off_validation(pairs, validation_fraction, seed, groups)
        source = "JPEGImages/ + SegmentationClass/"
        plans = {split: SplitPlan(p, source=source)
                 for split, p in (("train", train), ("validation", validation)) if p}
        rule = {"rule": "validation fraction", "validation_fraction": validation_fraction,
                "seed": seed, **_groups_entry(groups), "note": "no ImageSets/Segmentation/*.txt"}
    return FolderLayout("cvat", spec, plans, rule, tuple(used), groups)


# -- images/ + masks/ -------------------------------------------------------------------------

def _images_masks_class_spec(tree: SourceTree, name: str) -> tuple[ClassSpec, str]:
    present = [f for f in ("classes.txt", "class_dict.csv") if f in tree.files]
    if len(present) == 2:
        raise ValueError(f"{tree.root} has both classes.txt and class_dict.csv; keep classes.txt "
                         "for index masks or class_dict.csv for colour masks.")
    if not present:
        raise ValueError(
            f"{tree.root} has images/ and masks/ but no class file; expected classes.txt (one "
            "class name per line, line i = mask value i) or class_dict.csv (header name,r,g,b, "
            "for colour masks) at its root."
        )
    if present[0] == "classes.txt":
        entries = parse_classes_txt(tree.read_text("classes.txt"))
        return class_spec(entries, "index", name, "classes.txt"), "classes.txt"
    entries = parse_class_dict_csv(tree.read_text("class_dict.csv"))
    return class_spec(entries, "color", name, "class_dict.csv"), "class_dict.csv"


def _images_masks(tree: SourceTree, name: str, validation_fraction: float, seed: int,
                  groups: GroupRule | None) -> FolderLayout:
    files = tree.files
    tops = sorted({rel.split("/", 1)[0] for rel in files if "/" in rel})
    split_dirs = [t for t in tops if t.lower() in SPLIT_NAMES and _has_folder(files, f"{t}/images")]
    at_root = _has_folder(files, "images") and _has_folder(files, "masks")
    if at_root and split_dirs:
        raise ValueError(f"{tree.root} has images/ + masks/ at its root and also split folders "
                         f"{split_dirs}; keep one arrangement.")
    spec, class_file = _images_masks_class_spec(tree, name)
    used = [class_file]
    folders = {"": "train"} if at_root else {d: split_name(d) for d in split_dirs}
    left_out = [f"{d}/ (images/ without masks/)" for d in split_dirs
                if not _has_folder(files, f"{d}/masks")]
    for entry in left_out:
        logger.warning("%s: %s left out: its images have no masks/ folder beside them.",
                       name, entry)
    planned: dict[str, list[FolderPair]] = {}
    for folder, split in folders.items():
        if folder and not _has_folder(files, f"{folder}/masks"):
            continue
        base = f"{folder}/" if folder else ""
        if split in planned:
            raise ValueError(f"{tree.root}: two folders are the split {split!r}; keep one of "
                             f"{[d for d, s in folders.items() if s == split]}.")
        images = _by_stem(files, f"{base}images", IMAGE_SUFFIXES)
        masks = _by_stem(files, f"{base}masks", MASK_SUFFIXES)
        used += [r for rels in (*images.values(), *masks.values()) for r in rels]
        planned[split] = [_pair(s, images, masks, f"{base}images", f"{base}masks")
                          for s in sorted(set(images) | set(masks))]
    rule = {"rule": "split folders", "folders": {d or ".": s for d, s in folders.items()}}
    if at_root:
        rule = {"rule": "validation fraction", "validation_fraction": validation_fraction,
                "seed": seed, **_groups_entry(groups)}
    if "validation" not in planned and "train" in planned and validation_fraction > 0:
        planned["train"], planned["validation"] = _split_off_validation(
            planned["train"], validation_fraction, seed, groups)
        if not at_root:
            rule["validation_from_train"] = {"validation_fraction": validation_fraction,
                                             "seed": seed, **_groups_entry(groups)}
    if left_out:
        rule["left_out"] = left_out
    sources = {split: f"{folder + '/' if folder else ''}images/ + masks/"
               for folder, split in folders.items()}
    plans = {split: SplitPlan(pairs, source=sources.get(split, sources.get("train", "images/")))
             for split, pairs in planned.items() if pairs}
    return FolderLayout("images_masks", spec, plans, rule, tuple(used), groups)


# -- detection --------------------------------------------------------------------------------

def _found(tree: SourceTree) -> str:
    tops = sorted({rel.split("/", 1)[0] + ("/" if "/" in rel else "") for rel in tree.files})
    shown = ", ".join(tops[:12]) + (f", ... ({len(tops)} entries)" if len(tops) > 12 else "")
    return shown or "nothing (no files)"


def read_layout(tree: SourceTree, name: str, validation_fraction: float, seed: int,
                groups: str | GroupRule | None = None) -> FolderLayout:
    """Detect the export's layout and plan its splits.

    Args:
        tree: The export's files.
        name: The dataset's name (its class set is named after it).
        validation_fraction: Share of examples for ``validation`` when the export has no
            validation split of its own (0 <= f < 1).
        seed: Seed of that choice.
        groups: A group rule (:meth:`pixelwise.data.groups.GroupRule.parse`: a regular
            expression whose first group names an example's group, or a ``filename,group``
            CSV) that keeps groups whole in that choice (default None: no groups). It must
            match at least one example's file name, with or without a validation split.

    Raises:
        ValueError: an unrecognised layout, a bad class file, nothing usable (the message
            names the layouts expected and what was found), or a bad group rule or one
            that matches no file name.
        FileNotFoundError: a group rule's ``.csv`` does not exist.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"Expected a validation fraction in [0, 1), received "
                         f"{validation_fraction!r}; e.g. validation_fraction=0.1.")
    if isinstance(groups, str):
        groups = GroupRule.parse(groups)
    files = tree.files
    if _has_folder(files, "SegmentationClass") or _has_folder(files, "ImageSets/Segmentation"):
        layout = _cvat(tree, name, validation_fraction, seed, groups)
    elif _has_folder(files, "images") or any(
            _has_folder(files, f"{t}/images") for t in {r.split("/", 1)[0] for r in files}
            if t.lower() in SPLIT_NAMES):
        layout = _images_masks(tree, name, validation_fraction, seed, groups)
    else:
        raise ValueError(f"Unrecognised dataset layout in {tree.root}: {EXPECTED_LAYOUTS}\n"
                         f"Found: {_found(tree)}.")
    pairs = [p for plan in layout.plans.values() for p in plan.pairs()]
    if not any(p.problem is None for p in pairs):
        problems = "; ".join(p.problem for p in pairs[:3] if p.problem) or "no image or mask files"
        raise ValueError(
            f"No usable example in {tree.root} (read as {layout.kind.replace('_', ' + ')}): "
            f"{problems}. The layouts are: {EXPECTED_LAYOUTS}\nFound: {_found(tree)}."
        )
    if groups is not None:  # a rule that matches nothing is a typo, split or not
        groups.groups(p.filename for p in pairs if p.problem is None)
    return layout
