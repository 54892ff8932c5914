"""``pixelwise datasets browse``: image | colour label | overlay pictures with a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pixelwise.datasets  # noqa: F401  (registers the builders)
from pixelwise.cli import main
from pixelwise.datasets.browse import browse, legend_entries, render_example
from pixelwise.class_sets import CAMVID, ISBI2012

ROAD, CAR = 3, 8
ISBI_DUMMY = Path(pixelwise.datasets.__file__).parent / "isbi2012_membranes" / "dummy_data"


def write_tiny_camvid(root: Path, count: int = 3) -> list[np.ndarray]:
    """val split of 16x8 images: left half Road, right half Car, last column Unlabelled (11)."""
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    rng = np.random.default_rng(1)
    labels, lines = [], []
    for i in range(count):
        label = np.full((8, 16), ROAD, np.uint8)
        label[:, 8:] = CAR
        label[:, -1] = 11
        Image.fromarray(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)).save(root / "val" / f"v{i}.png")
        Image.fromarray(label, mode="L").save(root / "valannot" / f"v{i}.png")
        lines.append(f"/SegNet/CamVid/val/v{i}.png /SegNet/CamVid/valannot/v{i}.png")
        labels.append(label)
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return labels


def test_legend_lists_present_classes_with_pixel_share():
    label = np.array([[3, 3, 3, 8], [255, 3, 8, 8]])
    assert legend_entries(label, CAMVID) == [
        ("3 Road (50.0%)", (128, 64, 128)),
        ("8 Car (37.5%)", (64, 0, 128)),
        ("255 ignore (12.5%)", (0, 0, 0)),
    ]
    assert legend_entries(np.array([[0, 42]]), ISBI2012)[1] == ("unknown value 42 (50.0%)", (0, 0, 0))


def test_panels_show_image_palette_colours_and_blend():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    label = rng.choice([0, 3, 8, 255], size=(6, 10)).astype(np.uint8)
    fig = render_example(image, label[..., None], CAMVID, title="t", alpha=0.25)
    shown = [ax.images[0].get_array() for ax in fig.axes]
    palette = np.zeros((256, 3), np.uint8)
    palette[:11] = CAMVID.palette  # ignore (255) is drawn in CamVid's void colour, black
    colour = palette[label]
    np.testing.assert_array_equal(shown[0], image)
    np.testing.assert_array_equal(shown[1], colour)
    expected_overlay = np.round(0.75 * image + 0.25 * colour.astype(float))
    np.testing.assert_allclose(shown[2], expected_overlay, atol=1)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0].startswith("0 Sky") and texts[-1].startswith("255 ignore")


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"same size.*\(4, 4\) and \(4, 5\)"):
        render_example(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), CAMVID)


def test_browse_builds_from_manual_dir_and_writes_pictures(tmp_path):
    write_tiny_camvid(tmp_path / "CamVid")
    paths = browse("camvid", "validation", tmp_path / "out", num_examples=2,
                   data_dir=tmp_path / "tfds", manual_dir=tmp_path / "CamVid")
    assert len(paths) == 2 and all(p.parent == tmp_path / "out" for p in paths)
    assert paths[0].name.startswith("camvid_validation_000_v")
    picture = np.array(Image.open(paths[0]).convert("RGB"))
    colours = {tuple(c) for c in picture.reshape(-1, 3).tolist()}
    assert CAMVID.palette[ROAD] in colours and CAMVID.palette[CAR] in colours


def test_browse_grayscale_dataset(tmp_path):
    paths = browse("isbi2012_membranes", "validation", tmp_path / "out", num_examples=8,
                   data_dir=tmp_path / "tfds", manual_dir=ISBI_DUMMY)
    assert len(paths) == 5  # the split has only five slices
    assert Image.open(paths[0]).size[0] > 3 * 16


def test_cli_browse_and_its_errors(tmp_path, capsys):
    write_tiny_camvid(tmp_path / "CamVid")
    common = ["--data-dir", str(tmp_path / "tfds"), "--out", str(tmp_path / "out")]
    assert main(["datasets", "browse", "camvid", "--split", "train", *common]) == 2
    err = capsys.readouterr().err
    assert "is not built in" in err and "pixelwise datasets build camvid --manual-dir DIR" in err
    assert not (tmp_path / "out").exists()
    assert main(["datasets", "browse", "camvid", "--split", "validation", "-n", "1", *common,
                 "--manual-dir", str(tmp_path / "CamVid")]) == 0
    assert "Wrote 1 picture(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "out").glob("*.png"))) == 1
    assert main(["datasets", "browse", "camvid", "--split", "train", *common]) == 2
    err = capsys.readouterr().err
    assert "no split 'train'" in err and "['validation']" in err
