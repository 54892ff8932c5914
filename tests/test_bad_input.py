"""Bad input from the command line: one line on stderr, exit status 2, the rest still done, and
nothing half-written. A decompression bomb among the images to predict, a truncated checkpoint,
and an output folder that cannot be written (under a regular file, or under /proc: tests may run
as root, for whom chmod makes nothing read-only)."""

from __future__ import annotations

import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pixelwise.inference.options import PredictOptions

BOMB_SIDE = 50000


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` RGB, followed by a few bytes of pixels.

    Readers that trust the header before decoding allocate ``width * height * 3`` bytes
    (7.5 GB for 50000 x 50000) for a file of 70 bytes.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(1 + 3 * 16))) + chunk(b"IEND", b""))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------- large images


def test_image_headers_are_read_past_pillows_fixed_cap(tmp_path):
    from pixelwise.inference.images import open_image

    (tmp_path / "bomb.png").write_bytes(png_claiming(BOMB_SIDE, BOMB_SIDE))
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "bomb.png")  # Pillow alone refuses anything over 179 megapixels
    with open_image(tmp_path / "bomb.png") as image:  # header only: nothing decoded
        assert image.size == (BOMB_SIDE, BOMB_SIDE) and image.format == "PNG"


def test_the_limit_is_the_memory_a_prediction_needs_not_179_megapixels():
    from pixelwise.inference.memory import available_memory, check_fits_in_memory
    from pixelwise.inference.prediction import memory_per_pixel

    need = memory_per_pixel(2, PredictOptions(mode="slide"))  # bytes per pixel, tiled, 2 classes
    assert 20000 * 20000 > 2 * Image.MAX_IMAGE_PIXELS
    check_fits_in_memory(20000, 20000, need, available=20000 * 20000 * need)  # 400 MP: allowed
    with pytest.raises(ValueError) as raised:
        check_fits_in_memory(20000, 20000, need, "big.png", available=20000 * 20000 * need - 1)
    message = str(raised.value)
    assert "'big.png' of 20000x20000 pixels (400 megapixels)" in message
    assert "enough for about 400 megapixels" in message and "\n" not in message
    # Per-pixel need: more classes cost more in whole-image mode (the softmax is resized back).
    assert memory_per_pixel(21) - memory_per_pixel(3) == 18 * 2 * 4
    tiled = PredictOptions(tile=256)
    assert memory_per_pixel(21, tiled) == memory_per_pixel(3, tiled)
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines())
    assert 0 < available_memory() <= int(meminfo["MemTotal"].split()[0]) * 1024


def test_predict_reports_a_decompression_bomb_and_processes_the_images_after_it(
        tmp_path, run_dir, capsys):
    from pixelwise.cli import main
    from pixelwise.inference.memory import available_memory
    from pixelwise.inference.prediction import memory_per_pixel

    if available_memory() >= BOMB_SIDE ** 2 * memory_per_pixel(3):
        pytest.skip("this machine has the memory to predict a 50000x50000 image")
    (tmp_path / "bomb.png").write_bytes(png_claiming(BOMB_SIDE, BOMB_SIDE))
    rng = np.random.default_rng(0)
    for name in ("good1", "good2"):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), np.uint8)).save(tmp_path / f"{name}.png")
    images = [str(tmp_path / f"{name}.png") for name in ("bomb", "good1", "good2")]
    assert main(["predict", *images, "--run", str(run_dir), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    bomb_line, summary = captured.err.strip().splitlines()
    assert bomb_line.startswith("pixelwise predict: error: Expected an image that fits in memory")
    assert f"{images[0]!r} of 50000x50000 pixels (2500 megapixels)" in bomb_line
    assert "GiB are available, enough for about" in bomb_line
    assert summary == f"pixelwise predict: 1 of 3 images failed: {images[0]}"
    assert [line.split(" (")[0] for line in captured.out.splitlines()] == images[1:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{name}{suffix}" for name in ("good1", "good2")
        for suffix in (".json", "_mask.png", "_overlay.png", "_boxes.png"))


# ----------------------------------------------------------------------------- corrupt checkpoint


def test_a_truncated_checkpoint_is_one_line_naming_the_file_and_checkpoint_last(
        tmp_path, run_dir, capsys):
    from pixelwise.cli import main

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    best = run / "checkpoints" / "best.keras"
    best.write_bytes(best.read_bytes()[:best.stat().st_size // 2])
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--run", str(run),
                 "--out", str(tmp_path / "out")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"pixelwise predict: error: Checkpoint {str(best)!r} is corrupt")
    assert "pass checkpoint='last' to use" in line and "File not found" not in line
    assert line.endswith("(command line: --checkpoint for checkpoint=)")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- unwritable output


@pytest.fixture
def unwritable(tmp_path):
    """Output paths no one can create: under a regular file, and under /proc."""
    (tmp_path / "afile").write_text("not a folder")
    return [tmp_path / "afile" / "out", "/proc/pixelwise-test-out"]


def test_predict_into_an_unwritable_folder_is_one_line_for_all_images(
        tmp_path, run_dir, unwritable, capsys):
    from pixelwise.cli import main

    images = []
    for name in ("a", "b"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / f"{name}.png")
        images.append(str(tmp_path / f"{name}.png"))
    for out in unwritable:
        assert main(["predict", *images, "--run", str(run_dir), "--out", str(out)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"pixelwise predict: error: Cannot write {str(out)!r}: ") and "--out" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "afile", "b.png"]


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz 'dot' not installed (apt-get install graphviz)")
def test_models_plot_into_an_unwritable_folder_is_one_line_and_leaves_nothing(
        tmp_path, unwritable, capsys):
    from pixelwise.cli import main

    for folder in unwritable:
        out = f"{folder}/unet.png"
        assert main(["models", "plot", "unet", "--out", out, "--num-classes", "2",
                     "--model-arg", "base_filters=4"]) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"Cannot write {out!r}: " in line and "--out" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
