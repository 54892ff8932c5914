"""The training configuration: every option of ``pixelwise train``, its default and its checks.

Importable without TensorFlow, Keras or TFDS (``pixelwise --help`` reads its defaults
here), and all of it runs before training touches a device:

* :class:`TrainConfig` — every option of ``pixelwise train``, with the chapter's defaults
  (they live nowhere else); :class:`DropoutRates` — the parsed ``dropout_schedule``.
* config files and their precedence are :mod:`pixelwise.training.config_files`.

The training flow itself is :func:`pixelwise.training.loop.train`. This module is a little
long because the 27 options, their documentation and their checks are one concern.

Example:
    >>> config = TrainConfig(dataset="camvid", image_size="192x256", dropout_schedule="0.5,0.1,0.9")
    >>> config = config.validated()
    >>> config.image_size, config.dropout_schedule, config.out, config.dropout_rates.rate(epoch=3)
    ([192, 256], [0.5, 0.1, 0.9], 'runs/camvid-unet', 0.8)
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from pixelwise.data.paths import dataset_label, dataset_path
from pixelwise.data.splits import NO_VALIDATION
from pixelwise.defaults import LOSS_KINDS
from pixelwise.runs.folder import RunFolder
from pixelwise.sizes import normalize_image_size

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "poly")
CLASS_WEIGHTS = ("none", "median-frequency")
#: ``--mixed-precision`` and ``--strategy`` choices (:mod:`pixelwise.training.distribute`).
MIXED_PRECISION = ("none", "bf16", "auto")
STRATEGIES = ("default", "mirrored", "multi-worker")

#: Config keys that may change when a run is resumed; all others must match config.json.
RESUMABLE_CHANGES = frozenset({
    "epochs", "early_stopping_patience", "strategy", "batch_size", "data_dir", "manual_dir",
    "verbose", "image_summaries", "jit_compile",
})


def to_number(name: str, value, integer: bool = False):
    """A numeric option as a float (an int if ``integer``), however a person wrote it.

    YAML and JSON numbers arrive as int or float; a string that spells a finite number
    (``"1e-3"``, ``"1_000"``, ``"+1e3"``) is read as that number, and an integral float
    (``1e3``) counts as an integer. Anything else is a ValueError naming the option.

    Example:
        >>> to_number("learning_rate", "1e-3"), to_number("epochs", 1e2, integer=True)
        (0.001, 100)
    """
    number = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if integer and re.fullmatch(r"[-+]?[0-9][0-9_]*", text) else float(text)
        except ValueError:
            number = None
    whole = isinstance(number, int) or (isinstance(number, float) and number.is_integer())
    if (isinstance(number, bool) or not isinstance(number, (int, float))
            or not math.isfinite(number) or (integer and not whole)):
        kind = "an integer, e.g. 32 or 1e3" if integer else "a number, e.g. 1e-3 or 0.001"
        raise ValueError(f"Expected {name} {kind}; received {value!r}.")
    return int(number) if integer else float(number)


@dataclasses.dataclass(frozen=True)
class DropoutRates:
    """Exercise 19's encoder dropout schedule: rate ``min(start + step * epoch, cap)``.

    Args:
        start: float, default 0.5. Rate of the first epoch, in ``[0, cap]``.
        step: float, default 0.1. Added after every epoch.
        cap: float, default 0.9. Upper bound; must be below 1.

    Example:
        >>> schedule = DropoutRates.parse("0.5,0.1,0.9")
        >>> [round(schedule.rate(epoch), 2) for epoch in range(6)]
        [0.5, 0.6, 0.7, 0.8, 0.9, 0.9]
    """

    start: float = 0.5
    step: float = 0.1
    cap: float = 0.9

    def __post_init__(self):
        start, step, cap = float(self.start), float(self.step), float(self.cap)
        if not 0.0 <= start < 1.0 or not 0.0 <= cap < 1.0 or start > cap:
            raise ValueError(
                "Expected a dropout schedule with 0 <= start <= cap < 1, received "
                f"start={start}, step={step}, cap={cap}; e.g. dropout_schedule=[0.5, 0.1, 0.9]."
            )
        for name, value in (("start", start), ("step", step), ("cap", cap)):
            object.__setattr__(self, name, value)  # frozen: store the floats once

    @classmethod
    def parse(cls, value) -> "DropoutRates":
        """From ``"start,step,cap"`` or a sequence of three numbers."""
        values = value.split(",") if isinstance(value, str) else value
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            values = []
        if len(values) != 3:
            raise ValueError(
                "Expected dropout_schedule as start,step,cap (e.g. 0.5,0.1,0.9), "
                f"received {value!r}."
            )
        return cls(*values)

    def rate(self, epoch: int) -> float:
        """The dropout rate of (zero-based) ``epoch``."""
        return float(min(max(self.start + self.step * epoch, 0.0), self.cap))

    def to_list(self) -> list[float]:
        return [self.start, self.step, self.cap]


@dataclasses.dataclass
class TrainConfig:
    """Everything ``pixelwise train`` needs; the defaults are the chapter's.

    Args:
        dataset: TFDS name of a pixelwise dataset (default ``"voc2007_semantic"``), an adapted
            TFDS one (``oxford_iiit_pet``), or the path of a folder or ``.zip`` export (stored
            absolute, so ``evaluate --run`` finds it from any folder).
        data_dir: TFDS data directory (default None: TFDS's).
        manual_dir: Manually downloaded data, used to build the dataset if it is not built.
        train_split: Training split or TFDS slice (default ``"train"``).
        validation_split: Split that selects the best epoch (default ``"validation"``);
            ``"none"``: no validation, the last epoch is the model (a final training on
            all the data once the design is fixed).
        groups: How examples group, so that frames of one video stay on one side of a
            split (:mod:`pixelwise.data.groups`): ``"auto"`` (default: the dataset's rule, e.g.
            CamVid's sequences, or the rule an export was built with), ``"none"``, a regular
            expression over ``image/filename`` or a ``filename,group`` CSV. Training warns
            when validation shares groups with training.
        validation_groups: Groups of ``train_split`` held out, whole, as the validation
            split (e.g. ``["0006R0"]`` for CamVid); None (default): ``validation_split``.
        image_size: Training size, int or ``[height, width]`` (default 256).
        batch_size: Global batch size, split across replicas (default 32).
        augment: Flip, scale + crop and photometric jitter while training (default True).
        model: Registry name of the model (default ``"unet"``).
        model_args: Extra keyword arguments of the model builder, e.g.
            ``{"base_filters": 16, "batch_norm": True}``.
        epochs: Number of epochs (default 50).
        freeze_encoder_epochs: Epochs a pretrained encoder (``model_args`` ``encoder``)
            stays frozen, BatchNorm statistics included, before it trains (default 0).
        encoder_lr_multiplier: The encoder's learning rate relative to the decoder's once it
            trains (default 1.0; e.g. 0.1 for ImageNet weights).
        optimizer: ``"adam"`` (default, the chapter's), ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        learning_rate: Initial learning rate (default 1e-3, Adam's default).
        lr_schedule: ``"constant"`` (default), ``"cosine"`` (to 0) or ``"poly"``
            (power 0.9 to 0, DeepLab's), stepped per batch.
        weight_decay: Decoupled weight decay of ``adamw`` (default 1e-4); ignored otherwise.
        loss: ``"ce"`` (default), ``"ce+dice"`` or ``"ce+l2"`` (exercise 16).
        reconstruction_weight: Weight of the Dice / L2 term (default 1.0).
        class_weights: ``"none"`` (default), ``"median-frequency"`` (computed from the
            training split) or an explicit list of per-class weights.
        dropout_schedule: None (default) or ``[start, step, cap]``, e.g. ``[0.5, 0.1, 0.9]``
            (exercise 19, :class:`DropoutRates`). Adds encoder dropout to the model if it has none.
        early_stopping_patience: Epochs without a better ``val_mean_iou`` before stopping
            (default 10); 0 disables early stopping.
        mixed_precision: ``"none"`` (default), ``"bf16"`` (``mixed_bfloat16`` policy) or
            ``"auto"``: bf16 where the CPU or GPU has bf16 units, else none
            (:mod:`pixelwise.training.precision`; metrics.json records the choice and why).
        strategy: ``"default"``, ``"mirrored"`` (under JAX: ``keras.distribution.DataParallel``)
            or ``"multi-worker"`` (cluster from TF_CONFIG; TensorFlow only).
        jit_compile: ``"auto"`` (Keras: XLA on GPU without tf.distribute), True or False.
        seed: Seed of weights, shuffling and augmentation (default 0); None: unseeded.
        image_summaries: Validation images drawn to TensorBoard each epoch (default 4).
        out: Run folder (default None: ``runs/<dataset>-<model>``; an export's dataset name).
        verbose: Keras ``fit`` verbosity (default ``"auto"``: a progress bar).
    """

    dataset: str = "voc2007_semantic"
    data_dir: str | None = None
    manual_dir: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    groups: str = "auto"
    validation_groups: Any = None
    image_size: Any = 256
    batch_size: int = 32
    augment: bool = True
    model: str = "unet"
    model_args: dict = dataclasses.field(default_factory=dict)
    epochs: int = 50
    freeze_encoder_epochs: int = 0
    encoder_lr_multiplier: float = 1.0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 1e-4
    loss: str = "ce"
    reconstruction_weight: float = 1.0
    class_weights: Any = "none"
    dropout_schedule: Any = None
    early_stopping_patience: int = 10
    mixed_precision: str = "none"
    strategy: str = "default"
    jit_compile: Any = "auto"
    seed: int | None = 0
    image_summaries: int = 4
    out: str | None = None
    verbose: Any = "auto"

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config from a dict, rejecting unknown keys (a typo must not pass silently)."""
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            raise ValueError(
                f"Unknown training option(s) {unknown}; expected keys among {cls.fields()}."
            )
        return cls(**values).validated()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def run_folder(self) -> RunFolder:
        return RunFolder(self.out or f"runs/{dataset_label(self.dataset)}-{self.model}")

    @property
    def dropout_rates(self) -> DropoutRates | None:
        """``dropout_schedule`` as a :class:`DropoutRates`, or None without a schedule."""
        return None if self.dropout_schedule is None else DropoutRates.parse(self.dropout_schedule)

    @property
    def validates(self) -> bool:
        """Whether the run has a validation split (held-out groups or ``validation_split``)."""
        return bool(self.validation_groups) or self.validation_split != NO_VALIDATION

    def _validate_splits(self) -> None:
        if isinstance(self.validation_groups, str):
            self.validation_groups = [g.strip() for g in self.validation_groups.split(",")]
        if self.validation_groups is not None:
            if (not isinstance(self.validation_groups, (list, tuple)) or not self.validation_groups
                    or not all(isinstance(g, str) and g for g in self.validation_groups)):
                raise ValueError(
                    f"Expected validation_groups a list of group names (e.g. [0006R0]), received "
                    f"{self.validation_groups!r}."
                )
            self.validation_groups = list(self.validation_groups)
            if self.groups == NO_VALIDATION:
                raise ValueError("validation_groups needs a group rule, but groups is 'none'; pass "
                                 "groups: auto (the dataset's) or a rule.")
            if self.validation_split != "validation":
                raise ValueError(
                    f"validation_groups takes validation from train_split {self.train_split!r}, "
                    f"so validation_split must stay unset; received {self.validation_split!r}. "
                    "Remove one of the two."
                )
        if not self.validates and self.early_stopping_patience:
            raise ValueError(
                f"Early stopping (early_stopping_patience {self.early_stopping_patience}) needs a "
                "validation split, but validation_split is 'none'; pass early_stopping_patience: 0."
            )

    def validated(self) -> "TrainConfig":
        """Check every value and normalise types; raise ValueError naming the option."""

        def choice(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"Expected {name} one of {list(allowed)}, received {value!r}.")

        def positive_int(name, minimum=1):
            value = to_number(name, getattr(self, name), integer=True)
            if value < minimum:
                raise ValueError(f"Expected {name} an integer >= {minimum}, received {value!r}.")
            setattr(self, name, value)

        size = normalize_image_size(self.image_size)
        if size is None:
            raise ValueError("Expected an image_size for training, received None; e.g. 256.")
        self.image_size = list(size)
        positive_int("batch_size")
        positive_int("epochs")
        positive_int("early_stopping_patience", 0)
        positive_int("freeze_encoder_epochs", 0)
        positive_int("image_summaries", 0)
        choice("optimizer", OPTIMIZERS)
        choice("lr_schedule", LR_SCHEDULES)
        choice("mixed_precision", MIXED_PRECISION)
        choice("strategy", STRATEGIES)
        choice("loss", LOSS_KINDS)
        for name in ("learning_rate", "reconstruction_weight", "weight_decay",
                     "encoder_lr_multiplier"):
            value = to_number(name, getattr(self, name))
            if value < 0 or (name in ("learning_rate", "encoder_lr_multiplier") and value <= 0):
                raise ValueError(f"Expected {name} a finite number >= 0 (> 0 for the learning "
                                 f"rate and its multiplier), received {getattr(self, name)!r}.")
            setattr(self, name, value)
        if not isinstance(self.class_weights, (list, tuple)):
            choice("class_weights", CLASS_WEIGHTS)
        else:
            self.class_weights = [to_number("class_weights", w) for w in self.class_weights]
        if not isinstance(self.model_args, dict):
            raise ValueError(f"Expected model_args a mapping, received {self.model_args!r}.")
        if self.jit_compile not in ("auto", True, False):
            raise ValueError(f"Expected jit_compile 'auto', true or false, received {self.jit_compile!r}.")
        if self.dropout_schedule is not None:
            self.dropout_schedule = DropoutRates.parse(self.dropout_schedule).to_list()
        if self.seed is not None:
            self.seed = to_number("seed", self.seed, integer=True)
        self._validate_splits()
        for name in ("dataset", "model", "train_split", "validation_split", "groups"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Expected {name} a non-empty string, received {getattr(self, name)!r}.")
        path = dataset_path(self.dataset)
        if path is not None:
            self.dataset = str(path)
        self.out = str(self.out or f"runs/{dataset_label(self.dataset)}-{self.model}")
        return self


# --------------------------------------------------------------------------- files and precedence


__all__ = [
    "TrainConfig", "DropoutRates", "to_number", "RESUMABLE_CHANGES", "OPTIMIZERS",
    "LR_SCHEDULES", "CLASS_WEIGHTS", "MIXED_PRECISION", "STRATEGIES",
]
