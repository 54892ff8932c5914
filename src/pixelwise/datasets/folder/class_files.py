"""The class files of an exported dataset: ``labelmap.txt``, ``classes.txt``, ``class_dict.csv``.

Each file gives the class names in id order and, for colour masks, each class's RGB
colour; :func:`class_spec` turns them into a :class:`ClassSpec`: the dataset's
:class:`~pixelwise.class_sets.ClassSet` plus how its masks encode classes. NumPy only.

* ``labelmap.txt`` (CVAT / Datumaro "Segmentation mask 1.1"): ``name:r,g,b:parts:actions``
  per line, ``#`` starts a comment. Line order is the class id.
* ``classes.txt``: one name per line; line ``i`` is mask value ``i`` (index masks).
* ``class_dict.csv`` (the Kaggle CamVid convention): header ``name,r,g,b``, one class
  per row, masks in those colours.

A class named ``void``, ``ignore``, ``unlabeled`` or ``unlabelled`` (any case) is not a
class: its pixels become the ignore label 255 (its colour becomes the void colour), and
the classes after it move up one id.

Example:
    >>> names = parse_classes_txt("background\\ncell\\n")
    >>> spec = class_spec(names, "index", "cells", "classes.txt")
    >>> spec.class_set.class_names, spec.encoding
    (('background', 'cell'), 'index')
"""

from __future__ import annotations

import csv
import dataclasses
import io

from pixelwise.class_sets import IGNORE_LABEL, VOC, VOID_COLOR, ClassSet, voc_palette

#: Class names (lower case) whose pixels are void, not a class.
VOID_CLASS_NAMES = frozenset({"void", "ignore", "unlabeled", "unlabelled"})
#: How masks encode classes: ``index`` (values), ``color`` (RGB colours), ``auto``
#: (VOC's rule: palette/grayscale PNGs are indices, RGB PNGs are colours).
ENCODINGS = ("index", "color", "auto")


@dataclasses.dataclass(frozen=True)
class ClassSpec:
    """A dataset's classes and how its masks encode them.

    Attributes:
        class_set: Names, palette (the file's colours, else VOC's colour map), ignore label 255.
        encoding: One of :data:`ENCODINGS`.
        value_map: ``{mask index: class id}`` for index masks whose ids move (a void
            class in the list), else None.
        source: The class file, named in messages (``"classes.txt"``).
    """

    class_set: ClassSet
    encoding: str
    value_map: dict[int, int] | None
    source: str


def _color(text: str, where: str) -> tuple[int, int, int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(
            f"{where}: expected a colour r,g,b of three integers 0..255, received {text!r}.")
    return rgb


Colour = tuple[int, int, int]


def parse_labelmap(text: str, source: str = "labelmap.txt") -> list[tuple[str, Colour]]:
    """``[(name, (r, g, b)), ...]`` from a CVAT ``labelmap.txt`` (``name:r,g,b:parts:actions``)."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0].strip():
            raise ValueError(f"{source} line {number}: expected name:r,g,b:parts:actions, "
                             f"received {line!r}.")
        entries.append((fields[0].strip(), _color(fields[1], f"{source} line {number}")))
    return entries


def parse_classes_txt(text: str, source: str = "classes.txt") -> list[str]:
    """Class names from ``classes.txt``: line ``i`` names index ``i`` (trailing blanks ignored)."""
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line:
            raise ValueError(f"{source} line {number} is blank; line i names mask value i, so "
                             "every line up to the last needs a name. Remove it or name the class.")
    return lines


def parse_class_dict_csv(text: str, source: str = "class_dict.csv") -> list[tuple[str, Colour]]:
    """``[(name, (r, g, b)), ...]`` from a ``class_dict.csv`` with the header ``name,r,g,b``."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if header != ["name", "r", "g", "b"]:
        raise ValueError(
            f"{source}: expected the header name,r,g,b, received {','.join(header)!r}.")
    entries = []
    for number, row in enumerate(rows[1:], 2):
        if len(row) != 4 or not row[0].strip():
            raise ValueError(
                f"{source} row {number}: expected name,r,g,b, received {','.join(row)!r}.")
        entries.append((row[0].strip(), _color(",".join(row[1:]), f"{source} row {number}")))
    return entries


def class_spec(entries, encoding: str, name: str, source: str) -> ClassSpec:
    """The :class:`ClassSpec` of a class file's entries.

    Args:
        entries: Names (index masks) or ``(name, (r, g, b))`` pairs, in id order.
        encoding: ``"index"``, ``"color"`` or ``"auto"``.
        name: The class set's name (the dataset's).
        source: The file, for messages.

    Raises:
        ValueError: no classes, repeated names or colours, more than one void class,
            more than 255 classes.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"Expected encoding one of {ENCODINGS}, received {encoding!r}.")
    entries = [(e, None) if isinstance(e, str) else (e[0], tuple(e[1])) for e in entries]
    names = [n for n, _ in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{source} names {repeated} more than once; each class needs one line.")
    colors = [c for _, c in entries if c is not None]
    if len(set(colors)) != len(colors):
        twice = sorted({c for c in colors if colors.count(c) > 1})
        raise ValueError(f"{source} gives the colour(s) {twice} to more than one class; a colour "
                         "must name one class.")
    void = [i for i, (n, _) in enumerate(entries) if n.lower() in VOID_CLASS_NAMES]
    if len(void) > 1:
        raise ValueError(f"{source} has {len(void)} void classes {[names[i] for i in void]}; "
                         "keep one (its pixels become the ignore label 255).")
    classes = [(n, c) for i, (n, c) in enumerate(entries) if i not in void]
    if not classes:
        raise ValueError(f"{source} defines no class; expected at least one name.")
    if len(classes) >= IGNORE_LABEL:
        raise ValueError(f"{source} defines {len(classes)} classes; at most {IGNORE_LABEL - 1} fit "
                         f"in a uint8 label beside the ignore label {IGNORE_LABEL}.")
    value_map = None
    if void:
        ids = iter(range(len(classes)))
        value_map = {i: (IGNORE_LABEL if i in void else next(ids)) for i in range(len(entries))}
    # Index masks carry no colours: draw them in VOC's colour map (class 0 black).
    palette = ([c for _, c in classes] if all(c is not None for _, c in classes)
               else voc_palette(len(classes)))
    void_color = entries[void[0]][1] if void and entries[void[0]][1] is not None else VOID_COLOR
    class_set = ClassSet(name=name, class_names=tuple(n for n, _ in classes), palette=tuple(
        tuple(int(v) for v in rgb) for rgb in palette), void_color=tuple(void_color))
    return ClassSpec(class_set=class_set, encoding=encoding, value_map=value_map, source=source)


def voc_class_spec(name: str) -> ClassSpec:
    """VOC's classes and palette: a CVAT export without ``labelmap.txt``."""
    class_set = dataclasses.replace(VOC, name=name)
    return ClassSpec(class_set=class_set, encoding="auto", value_map=None,
                     source="the VOC classes (no labelmap.txt)")
