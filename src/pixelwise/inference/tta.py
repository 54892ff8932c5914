"""Test-time augmentation (TTA): which views of an image are predicted and averaged.

A :class:`TTA` names the views; :func:`pixelwise.inference.prediction.predict_probabilities`
predicts them. Each view is the image at one scale, mirrored horizontally or not; the
softmax probabilities of every view are brought back to the image's own size
(bilinear) and flipped back, then averaged, and only the average is turned into class
ids (argmax). Averaging probabilities rather than votes keeps a confident view from
being outvoted by two unsure ones, as in mmsegmentation's ``aug_test``.

Cost: one forward pass per view: ``flip`` doubles the time, ``flip,scales=0.75,1,1.25``
takes about ``2 * (0.75² + 1 + 1.25²) = 6.25`` times the pixels of a plain pass.

Example:
    >>> tta = TTA.parse("flip,scales=0.75,1,1.25")
    >>> tta.flip, tta.scales, len(tta.views), str(tta)
    (True, (0.75, 1.0, 1.25), 6, 'flip,scales=0.75,1,1.25')
    >>> str(TTA.parse(None)), TTA.parse("none").views
    ('none', [(1.0, False)])
"""

from __future__ import annotations

import dataclasses
import math

from pixelwise.defaults import DEFAULT_TTA

#: Largest scale accepted: beyond it one view would hold 64 times the image's pixels.
MAX_SCALE = 8.0


@dataclasses.dataclass(frozen=True)
class TTA:
    """Test-time augmentation: the views of an image whose probabilities are averaged.

    Every scale is predicted, and with ``flip`` also its horizontal mirror; each view's
    softmax probabilities are resized back to the image's own size (bilinear), flipped
    back, and the views averaged before the argmax. A scale multiplies the size the model
    sees: the whole-image size in mode ``whole``, the image's own size in mode ``slide``.
    A model with a fixed input sees a scaled whole image in tiles of that input (see
    ``pixelwise.inference.prediction``), so a scale means the same for every model.

    Written as one spec (``--tta``): ``none``, ``flip``, ``scales=0.75,1,1.25`` or
    ``flip,scales=0.75,1,1.25``; :meth:`parse` reads it and ``str()`` writes it back.

    Attributes:
        flip: Also predict the horizontal mirror of each scale.
        scales: Scales of the size the model sees (default ``(1.0,)``).
    """

    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        scales = tuple(float(scale) for scale in self.scales)
        if not scales or not all(math.isfinite(scale) and 0 < scale <= MAX_SCALE for scale in scales):
            raise ValueError(
                f"Expected TTA scales in (0, {MAX_SCALE:g}], e.g. scales=0.75,1,1.25, received "
                f"{self.scales!r}."
            )
        object.__setattr__(self, "scales", scales)

    @classmethod
    def parse(cls, spec) -> TTA:
        """A :class:`TTA` from a spec string (see the class), ``None`` (none) or a :class:`TTA`."""
        if isinstance(spec, TTA):
            return spec
        text = DEFAULT_TTA if spec is None else str(spec).strip().lower()
        if text == "none":
            return cls()
        flip, scales, reading_scales = False, [], False
        for token in (t.strip() for t in text.split(",")):
            if token == "flip" and not flip:
                flip, reading_scales = True, False
            elif token.startswith("scales=") and not scales:
                reading_scales = True
                scales.append(_scale(token[len("scales="):], spec))
            elif reading_scales:
                scales.append(_scale(token, spec))
            else:
                raise _spec_error(spec, token)
        return cls(flip=flip, scales=tuple(scales) or (1.0,))

    @property
    def views(self) -> list[tuple[float, bool]]:
        """``(scale, flipped)`` of every view, in order."""
        return [(scale, flipped) for scale in self.scales for flipped in (False, True)[:1 + self.flip]]

    def __str__(self) -> str:
        parts = ["flip"] if self.flip else []
        if self.scales != (1.0,):
            parts.append("scales=" + ",".join(f"{scale:g}" for scale in self.scales))
        return ",".join(parts) or "none"


def _spec_error(spec, token: str) -> ValueError:
    return ValueError(
        f"Expected a TTA spec none, flip, scales=S,S,... or flip,scales=S,S,... (e.g. tta="
        f"'flip,scales=0.75,1,1.25'), received {spec!r}, in which {token!r} is not understood."
    )


def _scale(token: str, spec) -> float:
    try:
        return float(token)
    except ValueError:
        raise _spec_error(spec, token) from None


__all__ = ["TTA"]
