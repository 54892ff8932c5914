"""How an image is predicted: one :class:`PredictOptions`, validated once, written to JSON as is.

Prediction, evaluation and the report take these five options as one object
(mmsegmentation's ``test_cfg``), not one by one: ``model_size`` (the size the model sees),
``mode``, ``tile``, ``overlap`` and ``tta``. Evaluation writes :meth:`PredictOptions.to_dict`
into ``eval-<split>.json`` and the report reads it back with :meth:`PredictOptions.from_dict`,
with the same keys (as keras-hub's ``get_config``/``from_config``): no string is parsed again.

``model_size`` is the one Python and JSON name of "the (height, width) the model sees, its
output resized back to the image's own size" (``--input-size`` on the command line).
``input_size`` stays a model's whole ``(H, W, C)`` and ``image_size`` the size images *and
labels* are resized to (docs/architecture.md, "One meaning per name").

Imports no TensorFlow: the CLI builds the options before a model is loaded.

Example:
    >>> options = PredictOptions(tile=(192, 256), tta="flip")
    >>> options.mode, options.tile, str(options.tta)
    ('slide', (192, 256), 'flip')
    >>> PredictOptions.from_dict(options.to_dict()) == options
    True
"""

from __future__ import annotations

import dataclasses

from pixelwise.defaults import PREDICTION_MODES
from pixelwise.inference.tta import TTA
from pixelwise.sizes import as_pair, normalize_image_size, square_or_pair

#: ``model_size`` that keeps each image's own size (the smallest size the model takes that
#: covers it, with mirrored borders).
NATIVE = "native"


def resolve_mode(mode: str | None, tile) -> str:
    """``whole`` or ``slide``; ``None`` means ``slide`` when a tile size is given, else ``whole``."""
    if mode is None:
        return "slide" if tile is not None else "whole"
    if mode not in PREDICTION_MODES:
        raise ValueError(f"Expected a mode in {PREDICTION_MODES}, received {mode!r}.")
    if mode == "whole" and tile is not None:
        raise ValueError(
            f"Expected no tile size with mode 'whole', received tile {tile}; pass mode='slide' "
            "to predict in tiles, or tile=None."
        )
    return mode


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """How :func:`pixelwise.predict` and :func:`pixelwise.evaluate` predict an image.

    Every field is checked when the object is made, so a bad option fails before a model or
    a dataset is loaded. Sizes are stored as :mod:`pixelwise.sizes` writes them: ``model_size``
    as ``(height, width)``, a tile or overlap as ``N`` when square, else ``(height, width)``.

    Attributes:
        model_size: Mode ``whole``: the ``(height, width)`` (or ``N``) the image is resized to
            before the model sees it; the probabilities are resized back. :data:`NATIVE`
            (``"native"``): each image's own size. ``None``: the default of the function the
            options go to (predict: 512; evaluate: the model's fixed input, else the run's
            training ``image_size``, else native). A model with a fixed input always sees
            that. Mode ``slide``: only the default tile.
        mode: ``whole`` or ``slide``; default ``slide`` when ``tile`` is given, else ``whole``.
        tile: Mode ``slide``: tiles at the image's resolution, ``N`` or ``(height, width)``;
            default: the model's fixed input, else ``model_size``.
        overlap: Mode ``slide``: tile overlap in pixels, ``N`` or ``(rows, columns)``;
            default: :func:`pixelwise.inference.tiling.default_overlap`.
        tta: Test-time augmentation, a :class:`~pixelwise.inference.tta.TTA` or its spec
            (``"flip,scales=0.75,1,1.25"``); default none.

    Example:
        >>> PredictOptions(model_size=256).model_size, PredictOptions(model_size="native").model_size
        ((256, 256), 'native')
        >>> PredictOptions(mode="whole", tile=64)
        Traceback (most recent call last):
        ...
        ValueError: Expected no tile size with mode 'whole', received tile 64; pass mode='slide' to predict in tiles, or tile=None.
    """

    model_size: tuple[int, int] | str | None = None
    mode: str | None = None
    tile: int | tuple[int, int] | None = None
    overlap: int | tuple[int, int] | None = None
    tta: TTA = TTA()

    def __post_init__(self):
        model_size = self.model_size
        if isinstance(model_size, str) and model_size.strip().lower() == NATIVE:
            model_size = NATIVE
        else:
            try:
                model_size = normalize_image_size(model_size)
            except ValueError:
                raise ValueError(
                    f"Expected model_size as N, (height, width), 'native' or None, received "
                    f"{self.model_size!r}; e.g. model_size=512 or (192, 256)."
                ) from None
        tile = None if self.tile is None else square_or_pair(as_pair(self.tile, "tile"))
        overlap = (None if self.overlap is None
                   else square_or_pair(as_pair(self.overlap, "overlap", minimum=0)))
        mode = resolve_mode(self.mode, tile)
        if mode == "whole" and overlap is not None:
            raise ValueError(
                f"Expected no overlap with mode 'whole', received overlap {self.overlap!r}; "
                "pass mode='slide' (or a tile=) to predict in overlapping tiles, or overlap=None."
            )
        for name, value in (("model_size", model_size), ("mode", mode), ("tile", tile),
                            ("overlap", overlap), ("tta", TTA.parse(self.tta))):
            object.__setattr__(self, name, value)

    def with_default_size(self, model_size) -> PredictOptions:
        """These options, with ``model_size`` filled in when it is ``None`` (a function's default)."""
        if self.model_size is not None:
            return self
        return dataclasses.replace(self, model_size=NATIVE if model_size is None else model_size)

    def to_dict(self) -> dict:
        """The options as JSON values (lists for pairs): what ``eval-<split>.json`` records.

        Example:
            >>> PredictOptions(model_size=(24, 32), tta="flip").to_dict()
            {'model_size': [24, 32], 'mode': 'whole', 'tile': None, 'overlap': None, 'tta': {'flip': True, 'scales': [1.0]}}
        """
        def plain(value):
            return list(value) if isinstance(value, tuple) else value

        return {"model_size": plain(self.model_size), "mode": self.mode, "tile": plain(self.tile),
                "overlap": plain(self.overlap),
                "tta": {"flip": self.tta.flip, "scales": list(self.tta.scales)}}

    @classmethod
    def from_dict(cls, values: dict) -> PredictOptions:
        """The options :meth:`to_dict` wrote (keys left out take their defaults)."""
        if not isinstance(values, dict):
            raise ValueError(
                f"Expected the prediction options as a JSON object (what PredictOptions.to_dict "
                f"writes), received {type(values).__name__} {values!r}."
            )
        fields = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(
                f"Expected prediction options with keys among {fields}, received unknown keys "
                f"{unknown}; the file was written by another version of pixelwise, evaluate again."
            )
        tta = values.get("tta")
        if isinstance(tta, dict):
            tta = TTA(flip=bool(tta.get("flip", False)), scales=tuple(tta.get("scales", (1.0,))))
        elif tta is not None:
            raise ValueError(
                f"Expected 'tta' as {{'flip': bool, 'scales': [...]}} (what to_dict writes), "
                f"received {tta!r}."
            )
        return cls(**{key: _pair(value) for key, value in values.items() if key != "tta"},
                   tta=tta if tta is not None else TTA())


def as_options(options) -> PredictOptions:
    """``options`` itself, or the default :class:`PredictOptions` for ``None``.

    Example:
        >>> as_options(None) == PredictOptions()
        True
    """
    if options is None:
        return PredictOptions()
    if not isinstance(options, PredictOptions):
        raise ValueError(
            f"Expected the prediction options as a PredictOptions or None, received "
            f"{type(options).__name__} {options!r}; e.g. PredictOptions(model_size=256) or "
            "PredictOptions(tile=512, tta='flip')."
        )
    return options


def _pair(value):
    """JSON writes a pair as a list; the options hold tuples."""
    return tuple(value) if isinstance(value, list) else value


__all__ = ["NATIVE", "PredictOptions", "as_options", "resolve_mode"]
