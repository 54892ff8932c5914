"""Planned splits and the skip report: which listed examples a build left out, and why.

A builder lists each split's examples as :class:`ExamplePair` objects before anything
is decoded (a :class:`SplitPlan`). Generation yields the pairs that load and leaves
out the others, with no side effect; after the build, :func:`plan_skip_report`
compares the plan with what was written and asks each missing pair why it cannot
be loaded. The report is kept in ``DatasetInfo.metadata["skipped"]``
(:data:`SKIPPED_KEY`) as ``{split: [{"id": key, "reason": text}, ...]}``, in the
order of the source's listing.

Example:
    >>> pairs = [ExamplePair(key, f"JPEGImages/{key}.jpg", f"SegmentationClass/{key}.png",
    ...                      f"{key}.jpg") for key in ("a", "b", "a", "c")]
    >>> plan = SplitPlan(pairs, source="train.txt")
    >>> [pair.key for pair in plan.pairs()]
    ['a', 'b', 'c']
    >>> plan_skip_report(plan, num_written=1, written_filenames=lambda: {"a.jpg"},
    ...                  skip_reason=lambda pair: f"cannot decode {pair.filename}")
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'id': 'b', 'reason': 'cannot decode b.jpg'},
     {'id': 'a', 'reason': 'listed more than once in train.txt; only the first is used'},
     {'id': 'c', 'reason': 'cannot decode c.jpg'}]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping

#: Key of the skip report inside ``DatasetInfo.metadata``.
SKIPPED_KEY = "skipped"


@dataclasses.dataclass(frozen=True)
class ExamplePair:
    """One listed example: its key, where its image and label are, and its stored file name.

    Attributes:
        key: Example key, derived from file names (never a full path); unique in a split.
        image_path: The image file, or a multi-page TIFF stack when ``page`` is set.
        label_path: The label file, or a multi-page TIFF stack.
        filename: Stored as the example's ``image/filename``; unique in a split, so the
            skip report can tell which pairs were written.
        page: The page of the stacks, or None for one file per image.
    """

    key: str
    image_path: os.PathLike | str
    label_path: os.PathLike | str
    filename: str
    page: int | None = None


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """The examples of one split as its source lists them, before anything is decoded.

    Attributes:
        listed: Every listed pair in source order, keys listed twice included (a
            sequence; stored as a tuple).
        source: What lists them (e.g. ``"train.txt"``), named in skip reasons.
    """

    listed: tuple[ExamplePair, ...]
    source: str

    def __post_init__(self):
        object.__setattr__(self, "listed", tuple(self.listed))

    def pairs(self) -> list[ExamplePair]:
        """The pairs to generate: the first of each key, in source order.

        TFDS aborts a build on a repeated key; a repeated line in an edited list should not.
        """
        seen, pairs = set(), []
        for pair in self.listed:
            if pair.key not in seen:
                seen.add(pair.key)
                pairs.append(pair)
        return pairs

    def repeat_reason(self) -> str:
        """The skip reason of a key's second and later listings."""
        return f"listed more than once in {self.source}; only the first is used"


#: The skip reason of a planned pair the build did not write though it loads when asked
#: again: in a plain build, a file changed while it ran; in a Beam build, the runner lost it
#: (which fails the build, :class:`~pixelwise.datasets.beam.LostExamplesError`).
LOADS_NOW = "not written, yet it loads now (did it change during the build?)"


def plan_skip_report(
    plan: SplitPlan,
    num_written: int,
    written_filenames: Callable[[], Iterable[str]],
    skip_reason: Callable[[ExamplePair], str | None],
    max_examples: int | None = None,
) -> list[dict[str, str]]:
    """The examples of one built split that were left out, with reasons, in source order.

    Args:
        plan: The split's plan.
        num_written: Examples the built split holds.
        written_filenames: Returns the ``image/filename`` of every written example;
            called only when fewer examples were written than planned.
        skip_reason: Why a pair cannot be loaded (the loader's error message), or None
            when it loads.
        max_examples: TFDS' ``max_examples_per_split`` of the build, if any: pairs after
            the last written one were never read then, and are not reported.

    Returns:
        ``[{"id": key, "reason": text}, ...]``: repeated keys, then each planned pair
        missing from the written split, in the order of ``plan.listed``.
    """
    pairs = plan.pairs()
    missing: set[str] = set()
    if num_written < len(pairs):
        written = set(written_filenames())
        reached = len(pairs)
        if max_examples is not None and num_written >= max_examples:
            reached = max((i + 1 for i, p in enumerate(pairs) if p.filename in written), default=0)
        missing = {pair.key for pair in pairs[:reached] if pair.filename not in written}
    report, seen = [], set()
    for pair in plan.listed:
        if pair.key in seen:
            report.append({"id": pair.key, "reason": plan.repeat_reason()})
            continue
        seen.add(pair.key)
        if pair.key in missing:
            reason = skip_reason(pair) or LOADS_NOW
            report.append({"id": pair.key, "reason": reason})
    return report


def skipped_examples(info) -> dict[str, list[dict[str, str]]]:
    """The skip report of a built pixelwise dataset: ``{split: [{"id", "reason"}, ...]}``.

    Args:
        info: The dataset's ``tfds.core.DatasetInfo``; splits without skips are absent.

    Example:
        >>> builder = tfds.builder("voc2007_semantic")  # doctest: +SKIP
        >>> skipped_examples(builder.info)["train"][0]  # doctest: +SKIP
        {'id': '000123', 'reason': 'label file not found: ...'}
    """
    metadata = info.metadata or {}
    report = metadata.get(SKIPPED_KEY) or {}
    return {split: [dict(entry) for entry in entries] for split, entries in report.items()}


def format_skip_summary(skipped: Mapping[str, list[Mapping[str, str]]]) -> str:
    """A human-readable multi-line summary of a skip report.

    Example:
        >>> print(format_skip_summary({"train": [{"id": "7", "reason": "label file not found"}]}))
        1 example(s) skipped:
          train/7: label file not found
    """
    total = sum(len(v) for v in skipped.values())
    if not total:
        return "No examples were skipped."
    lines = [f"{total} example(s) skipped:"]
    for split, entries in skipped.items():
        for entry in entries:
            lines.append(f"  {split}/{entry['id']}: {entry['reason']}")
    return "\n".join(lines)
