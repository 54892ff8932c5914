"""Every kind of image file, sound or hostile, through both image readers pixelwise has.

``pixelwise.inference.images.read_image`` (predict, report on files) and
``pixelwise.datasets.decoding.decode_image`` (dataset builds) must give the right pixels
(checked against NumPy) or one clear error: ``ValueError`` / ``InvalidExampleError``.
Bombs (a header claiming billions of pixels) are refused from the header, before any
pixel is decoded: the process' peak memory does not grow.
"""

from __future__ import annotations

import io
import resource
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hostile_cases import FUZZ, listing, png_claiming, tried
from run_fixture import tiny_conv_model, write_run

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 16, 3), np.uint8)
GRAY = RNG.integers(0, 256, (12, 16), np.uint8)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _palette_png() -> bytes:
    image = Image.frombytes("P", (16, 12), (GRAY // 32).tobytes())
    image.putpalette([v for i in range(256) for v in (i * 30 % 256, i * 60 % 256, i * 90 % 256)])
    return _encode(image, "PNG", transparency=0)


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return _encode(Image.fromarray(RGB), "JPEG", quality=95, exif=exif)


def _animated(fmt: str) -> bytes:
    frames = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))


def _gif_claiming(side: int) -> bytes:
    """A GIF whose logical screen and frame say ``side`` x ``side``, with one byte of data."""
    return (b"GIF89a" + struct.pack("<HHBBB", side, side, 0, 0, 0)
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0) + b"\x08\x01\x00\x00\x3b")


# name -> (bytes, what read_image gives: an (H, W, 3) array to match, a shape, or an error)
def image_cases() -> dict[str, tuple[bytes, object]]:
    sixteen = (GRAY.astype(np.uint16) * 257)
    cmyk = Image.fromarray(RGB).convert("CMYK")
    return {
        "png rgb": (_encode(Image.fromarray(RGB), "PNG"), RGB),
        "png rgba": (_encode(Image.fromarray(np.dstack([RGB, GRAY])), "PNG"), RGB),
        "png gray": (_encode(Image.fromarray(GRAY), "PNG"), np.dstack([GRAY] * 3)),
        "png 16-bit": (_encode(Image.fromarray(sixteen), "PNG"), np.dstack([GRAY] * 3)),
        "png 1-bit": (_encode(Image.fromarray(GRAY > 127), "PNG"),
                      np.dstack([np.where(GRAY > 127, 255, 0).astype(np.uint8)] * 3)),
        "png palette": (_palette_png(), (12, 16, 3)),
        "bmp": (_encode(Image.fromarray(RGB), "BMP"), RGB),
        "gif animated": (_animated("GIF"), (12, 16, 3)),
        "webp animated": (_animated("WEBP"), RGB),
        "jpeg": (_encode(Image.fromarray(RGB), "JPEG", quality=95), (12, 16, 3)),
        "jpeg cmyk": (_encode(cmyk, "JPEG", quality=95), (12, 16, 3)),
        "jpeg exif-rotated": (_exif_rotated_jpeg(), (16, 12, 3)),
        "tiff": (_encode(Image.fromarray(RGB), "TIFF"), "convert it to PNG first"),
        "tiff 16-bit": (_encode(Image.fromarray(sixteen), "TIFF"), "convert it to PNG first"),
        "truncated png": (_encode(Image.fromarray(RGB), "PNG")[:-60], "truncated or corrupt"),
        "truncated jpeg": (_encode(Image.fromarray(RGB), "JPEG")[:200], "truncated or corrupt"),
        "empty file": (b"", "not an image Pillow can identify"),
        "text file": (b"<script>alert(1)</script>", "not an image Pillow can identify"),
        "png bomb 100000^2": (png_claiming(100_000, 100_000), "fits in memory"),
        "gif bomb 65535^2": (_gif_claiming(65535), "fits in memory"),
    }


@pytest.mark.parametrize("name", sorted(image_cases()))
def test_read_image_gives_the_pixels_or_one_value_error(name, tmp_path):
    from pixelwise.inference.images import read_image

    tried("images: formats, modes, truncated, bombs (hand-written)")
    data, expected = image_cases()[name]
    path = tmp_path / "image.bin"
    path.write_bytes(data)
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            read_image(path)
        return
    array = read_image(path)
    assert array.dtype == np.uint8
    if isinstance(expected, tuple):
        assert array.shape == expected
    else:
        np.testing.assert_array_equal(array, expected)


def test_exif_orientation_is_applied_and_animations_give_their_first_frame(tmp_path):
    from pixelwise.inference.images import read_image

    tried("images: formats, modes, truncated, bombs (hand-written)", 2)
    (tmp_path / "r.jpg").write_bytes(_exif_rotated_jpeg())
    stored = np.asarray(Image.open(tmp_path / "r.jpg").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "r.jpg"), np.rot90(stored, k=-1))
    (tmp_path / "a.gif").write_bytes(_animated("GIF"))
    first = read_image(tmp_path / "a.gif").astype(int)
    assert np.abs(first - RGB).mean() < np.abs(first - (255 - RGB)).mean()


DATASET_EXPECTED = {  # decode_image reads TIFF too (exports may hold .tif images)
    "tiff": RGB, "tiff 16-bit": (12, 16, 3),
    "png bomb 100000^2": "DecompressionBombError", "gif bomb 65535^2": "DecompressionBombError",
    "truncated png": "cannot decode image", "truncated jpeg": "cannot decode image",
    "empty file": "cannot decode image", "text file": "cannot decode image",
    "jpeg exif-rotated": (12, 16, 3),  # stored orientation: the mask is drawn on those pixels
}


@pytest.mark.parametrize("name", sorted(image_cases()))
def test_dataset_decoding_gives_the_pixels_or_an_invalid_example(name):
    from pixelwise.datasets.decoding import InvalidExampleError, decode_image

    tried("images: formats, modes, truncated, bombs (hand-written)")
    data, expected = image_cases()[name]
    expected = DATASET_EXPECTED.get(name, expected)
    if isinstance(expected, str):
        with pytest.raises(InvalidExampleError, match=expected):
            decode_image(data)
        return
    array, _ = decode_image(data)
    if isinstance(expected, tuple):
        assert array.shape == expected
    elif name != "png 16-bit":  # PIL reduces 16 bits its own way; the shape is what counts
        np.testing.assert_array_equal(array, expected)


def test_bombs_are_refused_before_any_pixel_is_decoded(tmp_path):
    """The peak memory of the process (ru_maxrss) grows by less than 64 MiB over 2 x 4 bombs
    that claim 2.7 to 30 GB of pixels each, and one of 100 megapixels."""
    from pixelwise.datasets.decoding import InvalidExampleError, decode_image
    from pixelwise.inference.images import read_image

    bombs = [png_claiming(100_000, 100_000), png_claiming(60_000, 60_000, mode=0),
             _gif_claiming(65535), _gif_claiming(30_000)]
    tried("images: formats, modes, truncated, bombs (hand-written)", 2 * len(bombs) + 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i, data in enumerate(bombs):
        (tmp_path / f"b{i}").write_bytes(data)
        with pytest.raises(ValueError):
            read_image(tmp_path / f"b{i}")
        with pytest.raises(InvalidExampleError):
            decode_image(data)
    # Between Pillow's warning (89 MP) and its error (179 MP): refused by pixelwise' own check.
    with pytest.raises(InvalidExampleError, match="10000x10000 pixels is over the limit of 89 mega"):
        decode_image(png_claiming(10_000, 10_000))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 * 1024  # KiB


_SOUND = [_encode(Image.fromarray(RGB), fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")]
_MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBPVP8 ",
          b"II*\0", b"MM\0*"]


@FUZZ
@given(data=st.data())
def test_damaged_or_generated_image_files_give_pixels_or_one_value_error(data, tmp_path):
    """A sound file of each format with bytes flipped and cut, or a format's magic number and
    random bytes: both readers give an array of the stated size or their clear error."""
    from pixelwise.datasets.decoding import InvalidExampleError, decode_image
    from pixelwise.inference.images import read_image

    tried("images: damaged and generated files")
    if data.draw(st.booleans()):
        damaged = bytearray(data.draw(st.sampled_from(_SOUND)))
        for _ in range(data.draw(st.integers(0, 6))):
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
        damaged = bytes(damaged[:data.draw(st.integers(1, len(damaged)))])
    else:
        damaged = data.draw(st.sampled_from(_MAGIC)) + data.draw(st.binary(max_size=120))
    path = tmp_path / "image"
    path.write_bytes(damaged)
    try:
        array = read_image(path)
        assert array.ndim == 3 and array.shape[-1] == 3 and array.dtype == np.uint8
    except ValueError:
        pass
    try:
        array, _ = decode_image(damaged)
        assert array.ndim == 3 and array.shape[-1] == 3
    except InvalidExampleError:
        pass


def test_predict_on_every_hostile_image_names_each_failure_and_writes_only_into_out(tmp_path, capsys):
    from pixelwise.cli import main

    tried("images: predict CLI over every hand-written case")
    run = write_run(tmp_path / "run", tiny_conv_model())
    folder = tmp_path / "images"
    folder.mkdir()
    cases = image_cases()
    paths = []
    for i, (name, (data, _)) in enumerate(sorted(cases.items())):
        paths.append(folder / f"{i:02d}_{name.replace(' ', '_').replace('^', '')}.img")
        paths[-1].write_bytes(data)
    before = listing(tmp_path.parent, leave_out=tmp_path)
    code = main(["predict", *map(str, paths), "--run", str(run), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    failing = [p for p, (_, (_, expected)) in zip(paths, sorted(cases.items()))
               if isinstance(expected, str)]
    assert code == 2
    summary = captured.err.strip().splitlines()[-1]
    assert summary.startswith(f"pixelwise predict: {len(failing)} of {len(paths)} images failed")
    for path in failing:
        assert str(path) in captured.err
    written = {p.name.split("_mask")[0] for p in (tmp_path / "out").glob("*_mask.png")}
    assert written == {p.stem for p in paths if p not in failing}
    assert listing(tmp_path.parent, leave_out=tmp_path) == before
