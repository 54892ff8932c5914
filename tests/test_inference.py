"""pixelwise.predict on real image files: formats, sizes, counts, boxes, drawing, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pixelwise.inference.options import PredictOptions
from run_fixture import TINY_CLASSES, tiny_conv_model, tiny_unet, write_run


def _numpy_regions(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected regions of a boolean mask, without scipy: every pixel takes the largest
    pixel number among itself and its 8 neighbours in the mask, until nothing changes."""
    height, width = mask.shape
    ids = np.where(mask, np.arange(1, mask.size + 1).reshape(mask.shape), 0)
    while True:
        padded = np.pad(ids, 1)
        largest = np.max([padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
        grown = np.where(mask, largest, 0)
        if np.array_equal(grown, ids):
            return [ids == value for value in np.unique(ids[ids > 0])]
        ids = grown


def _numpy_boxes(labels, confidence, class_ids, min_area):
    """(class_id, box, area, mean confidence) of every region of at least min_area pixels."""
    expected = []
    for class_id in class_ids:
        for region in _numpy_regions(labels == class_id):
            if region.sum() >= min_area:
                rows, cols = np.nonzero(region)
                box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
                expected.append((class_id, box, int(region.sum()), float(confidence[region].mean())))
    return sorted(expected, key=lambda b: (b[0], b[1][1], b[1][0]))


def _assert_boxes_equal_numpy(boxes, labels, confidence, class_ids, min_area):
    expected = _numpy_boxes(labels, confidence, class_ids, min_area)
    assert [(b.class_id, b.box, b.area) for b in boxes] == [e[:3] for e in expected]
    for box, (*_, mean_confidence) in zip(boxes, expected):
        assert box.mean_confidence == pytest.approx(mean_confidence, rel=1e-5)


# ----------------------------------------------------------------------------- reading


def test_read_image_formats_and_channel_conversion(tmp_path, random_image):
    from pixelwise.inference.images import read_image

    rgb = random_image(37, 53)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    Image.fromarray(rgb).save(tmp_path / "a.webp", lossless=True)
    smooth = np.dstack([*np.meshgrid(np.arange(53) * 4, np.arange(37) * 6), np.full((37, 53), 90)])
    smooth = smooth.astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    frames = [Image.fromarray(np.full((20, 30), v, np.uint8)).convert("P") for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])

    for name in ("a.png", "a.bmp", "a.webp"):  # lossless: exact pixels
        np.testing.assert_array_equal(read_image(tmp_path / name, 3), rgb)
    jpeg = read_image(tmp_path / "a.jpg", 3)
    assert jpeg.shape == smooth.shape and np.abs(jpeg.astype(int) - smooth).mean() < 3
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png", 3), np.dstack([gray] * 3))
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png", 3), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png", 1), gray[..., None])
    gif = read_image(tmp_path / "anim.gif", 3)
    assert gif.shape == (20, 30, 3) and np.all(gif == 10)  # first frame, not the second


def test_read_image_exif_orientation_and_16_bit(tmp_path, random_image):
    from pixelwise.inference.images import read_image

    rgb = random_image(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "phone.jpg").shape == (30, 20, 3)
    wide = (random_image(10, 12)[..., 0].astype(np.uint16) * 257)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(read_image(tmp_path / "wide.png", 1)[..., 0], wide // 257)


@pytest.mark.parametrize("kind", ["missing", "text", "truncated_png", "truncated_jpeg", "directory"])
def test_read_image_bad_input_one_clear_error(tmp_path, kind, random_image):
    from pixelwise.inference.images import read_image

    path = tmp_path / f"bad_{kind}"
    if kind == "text":
        path = tmp_path / "notes.png"
        path.write_text("not an image")
    elif kind.startswith("truncated"):
        fmt = "PNG" if kind.endswith("png") else "JPEG"
        path = tmp_path / f"cut.{fmt.lower()}"
        Image.fromarray(random_image(64, 64)).save(path, format=fmt)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "directory":
        path.mkdir()
    with pytest.raises((ValueError, FileNotFoundError, IsADirectoryError)) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


# ----------------------------------------------------------------------------- prediction


def _reference_whole_image(model, image, size):
    """Independent whole-image prediction: resize as training does, softmax, resize back, argmax."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    resized = np.clip(np.round(resized.numpy()), 0, 255) / 255.0
    logits = np.asarray(model(resized[None].astype(np.float32), training=False))[0]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    back = tf.image.resize(probs, image.shape[:2], method="bilinear").numpy()
    return back.argmax(-1), back.max(-1)


def test_predict_matches_reference_at_original_size(conv_model, random_image):
    import pixelwise

    image = random_image(45, 70)
    prediction = pixelwise.predict(conv_model, image, PredictOptions(model_size=32), class_set=TINY_CLASSES)
    labels, confidence = _reference_whole_image(conv_model, image, 32)
    assert prediction.labels.shape == (45, 70)
    np.testing.assert_array_equal(prediction.labels, labels)
    np.testing.assert_allclose(prediction.confidence, confidence, atol=1e-5)
    assert prediction.counts == {n: int((labels == i).sum()) for i, n in enumerate(TINY_CLASSES.class_names)}
    assert sum(prediction.counts.values()) == 45 * 70
    assert prediction.probabilities is None
    with_probs = pixelwise.predict(conv_model, image, PredictOptions(model_size=32),
                                   class_set=TINY_CLASSES, return_probabilities=True)
    np.testing.assert_allclose(with_probs.probabilities.sum(-1), 1.0, atol=1e-5)


def test_fixed_size_model_uses_its_own_size(random_image):
    from pixelwise.inference.files import predict

    model = tiny_unet(input_size=(64, 64))
    image = random_image(50, 90)
    prediction = predict(model, image, PredictOptions(model_size=512), class_set=TINY_CLASSES)  # 512 can't be used
    labels, _ = _reference_whole_image(model, image, 64)
    np.testing.assert_array_equal(prediction.labels, labels)


def test_predict_files_writes_outputs_at_input_size(tmp_path, run_dir, random_image):
    from pixelwise.inference.files import predict_files

    images = {"photo.jpg": random_image(41, 67, seed=1), "gray.png": random_image(30, 31, seed=2)[..., 0],
              "alpha.webp": np.dstack([random_image(25, 44, seed=3), np.full((25, 44), 128, np.uint8)])}
    paths = []
    for name, array in images.items():
        Image.fromarray(array).save(tmp_path / name)
        paths.append(tmp_path / name)
    out = tmp_path / "out"
    results = predict_files(run_dir, paths, out, options=PredictOptions(model_size=32), min_area=1)
    assert [r.error for r in results] == [None] * 3
    for path, result in zip(paths, results):
        height, width = np.asarray(images[path.name]).shape[:2]
        data = json.loads((out / f"{path.stem}.json").read_text())
        assert (data["height"], data["width"]) == (height, width)
        assert sum(data["counts"].values()) == height * width
        assert set(data["counts"]) == set(TINY_CLASSES.class_names)
        mask = np.asarray(Image.open(out / f"{path.stem}_mask.png"))
        np.testing.assert_array_equal(mask, np.asarray(TINY_CLASSES.palette, np.uint8)[result.prediction.labels])
        for kind in ("overlay", "boxes"):
            assert Image.open(out / f"{path.stem}_{kind}.png").size == (width, height)
        for box in data["boxes"]:
            x0, y0, x1, y1 = box["box"]
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            assert box["class_name"] != "background"
    assert not list(out.glob(".*tmp"))


# ----------------------------------------------------------------------------- boxes


def test_find_boxes_regions_areas_and_confidence():
    from pixelwise.inference.boxes import find_boxes

    labels = np.zeros((20, 30), np.uint8)
    labels[2:6, 3:9] = 1            # disc, 24 px
    labels[6:8, 9:12] = 1           # touches the first diagonally: same 8-connected region
    labels[10:18, 20:28] = 2        # square, 64 px
    labels[15, 2] = 2               # 1 px: below min_area
    labels[12:14, 4:7] = 1          # a second disc region, 6 px
    labels[0:4, 25:30] = 0          # background never gets a box
    confidence = np.random.default_rng(0).uniform(0.3, 1.0, labels.shape).astype(np.float32)
    boxes = find_boxes(labels, confidence, TINY_CLASSES, min_area=7)
    assert [(b.class_name, b.box, b.area) for b in boxes] == [
        ("disc", (3, 2, 12, 8), 30), ("square", (20, 10, 28, 18), 64)]
    disc = (labels == 1)
    disc[12:14] = False
    assert boxes[0].mean_confidence == pytest.approx(confidence[disc].mean(), rel=1e-6)
    # Every box, for every threshold, is the bounding box of one NumPy-computed region.
    for min_area in (1, 2, 6, 7, 30, 31, 64, 65):
        boxes = find_boxes(labels, confidence, TINY_CLASSES, min_area=min_area)
        _assert_boxes_equal_numpy(boxes, labels, confidence, (1, 2), min_area)
    assert len(find_boxes(labels, confidence, TINY_CLASSES, min_area=1)) == 4


def test_draw_boxes_draws_box_edges_in_class_colour():
    from pixelwise.inference.drawing import draw_boxes
    from pixelwise.inference.boxes import Box

    image = np.full((40, 60, 3), 128, np.uint8)
    box = Box(class_id=2, class_name="square", box=(10, 15, 30, 35), area=400, mean_confidence=0.9)
    drawn = draw_boxes(image, [box], TINY_CLASSES)
    blue = np.array([0, 0, 255])
    # Left and right edges at columns 10 and 29, bottom edge at row 34 (the label covers the top).
    assert np.all(drawn[20:34, 10] == blue) and np.all(drawn[20:34, 29] == blue)
    assert np.all(drawn[34, 10:30] == blue)
    assert np.all(drawn[20:30, 15:25] == 128)  # inside untouched
    # The class name is written above the box: some pixels there are no longer grey.
    assert np.any(drawn[0:15, 10:60] != 128)


def test_colorize_is_a_palette_lookup():
    import pixelwise

    labels = np.array([[0, 1], [2, 1]])
    np.testing.assert_array_equal(
        pixelwise.colorize(labels, [(1, 2, 3), (4, 5, 6), (7, 8, 9)]),
        [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [4, 5, 6]]])
    np.testing.assert_array_equal(pixelwise.colorize(labels, TINY_CLASSES)[1, 0], [0, 0, 255])
    with pytest.raises(ValueError, match="0..1"):
        pixelwise.colorize(labels, [(0, 0, 0), (1, 1, 1)])


# ----------------------------------------------------------------------------- bad input


def test_bad_images_are_reported_and_others_still_processed(tmp_path, run_dir, random_image):
    from pixelwise.inference.files import predict_files

    good = tmp_path / "good.png"
    Image.fromarray(random_image(37, 53)).save(good)
    text = tmp_path / "readme.png"
    text.write_text("hello")
    cut = tmp_path / "cut.jpg"
    Image.fromarray(random_image(64, 64)).save(cut)
    cut.write_bytes(cut.read_bytes()[:300])
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"
    results = predict_files(run_dir, [missing, text, good, cut], out,
                            options=PredictOptions(model_size=32))
    assert [r.error is None for r in results] == [False, False, True, False]
    assert "does not exist" in results[0].error
    assert "not an image" in results[1].error
    assert "truncated" in results[3].error
    written = sorted(p.name for p in out.iterdir())
    assert written == ["good.json", "good_boxes.png", "good_mask.png", "good_overlay.png"]


def test_model_class_set_mismatch_and_missing_checkpoint(tmp_path, conv_model, random_image):
    from pixelwise.class_sets import VOC
    from pixelwise.inference.files import predict

    with pytest.raises(ValueError, match="outputs 3 channels.*21 classes"):
        predict(conv_model, random_image(37, 53), class_set=VOC)
    run = write_run(tmp_path / "run", conv_model, class_set=VOC)
    with pytest.raises(ValueError, match="mismatch"):
        predict(run, random_image(37, 53))
    empty = write_run(tmp_path / "empty", conv_model, checkpoints=())
    with pytest.raises(FileNotFoundError, match="no best checkpoint"):
        predict(empty, random_image(37, 53))
    with pytest.raises(ValueError, match="class set"):
        predict(conv_model, random_image(37, 53))


def test_fixed_size_valid_unet_predicts_its_output_size_mirrored(random_image):
    """original_unet fixed at 204x204 (output 20x20): the image is resized to 20x20,
    mirrored out by the model's 92-px border, and the result resized back."""
    import tensorflow as tf

    from pixelwise import models
    from pixelwise.class_sets import ISBI2012
    from pixelwise.inference.files import predict

    model = models.build("original_unet", input_size=(204, 204, 1), num_classes=2, base_filters=2)
    image = random_image(33, 41)[..., :1]
    prediction = predict(model, image, class_set=ISBI2012)
    small = np.clip(np.round(tf.image.resize(image.astype(np.float32), (20, 20), antialias=True)
                             .numpy()), 0, 255)
    padded = np.pad(small, ((92, 92), (92, 92), (0, 0)), mode="reflect") / 255.0
    logits = np.asarray(model(padded[None].astype(np.float32), training=False))[0]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected = tf.image.resize(probs, (33, 41), method="bilinear").numpy().argmax(-1)
    np.testing.assert_array_equal(prediction.labels, expected)


@pytest.mark.slow  # ~3 s: real CamVid images
def test_real_camvid_images_tiled_agree_with_whole_image(tmp_path, camvid_dir):
    """Real CamVid RGB PNGs (480x360) through predict_files, once whole at native size and
    once in 128-px tiles, same model: the tiny conv model's receptive radius is 2 px, so the
    two may differ only in a 2-px ring where whole-image prediction zero-pads and tiles
    mirror; elsewhere the labels agree (float rounding may flip a rare near-tie)."""
    from pixelwise.class_sets import CAMVID
    from pixelwise.inference.files import predict_files

    model = tiny_conv_model(num_classes=11)
    street = sorted((camvid_dir / "val").glob("*.png"))[:2]
    whole = predict_files(model, street, tmp_path / "whole", class_set=CAMVID,
                          options=PredictOptions(model_size="native"))
    tiled = predict_files(model, street, tmp_path / "tiled", class_set=CAMVID,
                          options=PredictOptions(tile=128))
    for path, one, other in zip(street, whole, tiled):
        width, height = Image.open(path).size
        assert one.error is None and other.error is None
        labels = one.prediction.labels
        assert labels.shape == other.prediction.labels.shape == (height, width)
        agree = labels == other.prediction.labels
        assert agree[2:-2, 2:-2].mean() >= 0.999
        counts = np.bincount(labels.ravel(), minlength=11)
        assert one.prediction.counts == dict(zip(CAMVID.class_names, counts.tolist()))
        mask = np.asarray(Image.open(tmp_path / "whole" / f"{path.stem}_mask.png"))
        np.testing.assert_array_equal(mask, np.asarray(CAMVID.palette, np.uint8)[labels])
        assert len(np.unique(labels)) > 1  # a real prediction, not a constant map


@pytest.mark.slow  # ~3 s: a real ISBI slice
def test_real_isbi_slice_tiled_equals_one_mirrored_pass(tmp_path, isbi_dir):
    """A real ISBI EM slice (512x512 grayscale) and the valid-padding original U-Net: 300-px
    tiles (the default overlap keeps 112-px cores on one pooling grid) give the same labels as
    one pass over the whole mirrored slice, border included."""
    from pixelwise import models
    from pixelwise.class_sets import ISBI2012
    from pixelwise.inference.files import predict_files

    unet = models.build("original_unet", input_size=(None, None, 1), num_classes=2, base_filters=2)
    slice_ = isbi_dir / "image" / "0.png"
    [tiled] = predict_files(unet, [slice_], tmp_path / "tiled", class_set=ISBI2012,
                            options=PredictOptions(tile=300))
    [whole] = predict_files(unet, [slice_], tmp_path / "whole", class_set=ISBI2012,
                            options=PredictOptions(model_size="native"))
    assert tiled.error is None and whole.error is None
    labels = tiled.prediction.labels
    assert labels.shape == whole.prediction.labels.shape == (512, 512)
    agree = labels == whole.prediction.labels
    assert agree.mean() >= 0.999
    np.testing.assert_allclose(tiled.prediction.confidence, whole.prediction.confidence, atol=1e-4)
    assert Image.open(tmp_path / "tiled" / "0_boxes.png").size == (512, 512)


def _colour_model():
    """A 1x1 conv with fixed weights: red pixels -> 'disc', blue -> 'square', else background."""
    import keras

    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1)
    model = keras.Model(inputs, conv(inputs))
    weights = np.array([[0, 10, -10], [0, -10, -10], [0, -10, 10]], np.float32).reshape(1, 1, 3, 3)
    conv.set_weights([weights, np.array([0.5, 0, 0], np.float32)])
    return model


def test_boxes_end_to_end_enclose_the_drawn_shapes(tmp_path):
    """A JPEG with a red disc, a blue rectangle and a red speck below min_area."""
    from pixelwise.inference.files import predict_files

    image = np.full((240, 320, 3), 90, np.uint8)
    yy, xx = np.mgrid[:240, :320]
    disc = (yy - 80) ** 2 + (xx - 90) ** 2 < 40 ** 2
    image[disc] = (220, 30, 30)
    image[150:210, 200:290] = (30, 30, 220)
    image[20:24, 250:254] = (220, 30, 30)
    Image.fromarray(image).save(tmp_path / "shapes.jpg", quality=95)
    [result] = predict_files(_colour_model(), [tmp_path / "shapes.jpg"], tmp_path / "out",
                             class_set=TINY_CLASSES, options=PredictOptions(model_size="native"),
                             min_area=100)
    boxes = json.loads((tmp_path / "out" / "shapes.json").read_text())["boxes"]
    assert [b["class_name"] for b in boxes] == ["disc", "square"]
    rows, cols = np.nonzero(disc)
    x0, y0, x1, y1 = boxes[0]["box"]
    assert abs(x0 - cols.min()) <= 1 and abs(x1 - (cols.max() + 1)) <= 1
    assert abs(y0 - rows.min()) <= 1 and abs(y1 - (rows.max() + 1)) <= 1
    assert abs(boxes[0]["area"] - disc.sum()) < 0.02 * disc.sum()
    assert boxes[1]["box"] == [200, 150, 290, 210] and boxes[1]["area"] == 60 * 90
    assert all(b["mean_confidence"] > 0.9 for b in boxes)
    # Every box is the bounding box of one 8-connected region of the predicted labels.
    prediction = result.prediction
    _assert_boxes_equal_numpy(prediction.boxes, prediction.labels, prediction.confidence, (1, 2), 100)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_predict_outputs_get_the_umask_mode_like_any_new_file(tmp_path, run_dir, mask, expected, random_image):
    import os
    import stat

    from pixelwise.inference.files import predict_files

    Image.fromarray(random_image(37, 53)).save(tmp_path / "photo.png")
    previous = os.umask(mask)
    try:
        [result] = predict_files(run_dir, [tmp_path / "photo.png"], tmp_path / "out")
    finally:
        os.umask(previous)
    assert result.error is None and len(result.outputs) == 4
    assert {stat.S_IMODE(p.stat().st_mode) for p in result.outputs.values()} == {expected}
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~mask
