"""tflite-fp16, tflite-int8 and onnx exports of a run on the VOC fixture: each artefact runs in
its own runtime (the TFLite interpreter, onnxruntime), and its parity report says what the test
measures itself, with NumPy, on the same validation images; a broken export is refused."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from run_fixture import TINY_CLASSES, tiny_unet, write_run

SIZE = 64

# The test's own tf.lite.Interpreter says it moves to ai-edge-litert (TF 2.21); pixelwise's is silenced.
#: A fitted VOC run and an export in each runtime: slow (~20 s on 2 shared cores).
pytestmark = [pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def voc_run(voc2007_built, tmp_path_factory):
    """A tiny U-Net on VOC's 21 classes, fitted a few steps so that its classes are not near ties."""
    import keras

    from pixelwise.class_sets import VOC
    from pixelwise.data.pipeline import load_split, make_pipeline
    from pixelwise.class_sets import class_set_from_info

    model = tiny_unet(num_classes=21)
    examples, info = load_split("voc2007_semantic", "train", **voc2007_built)
    batches = make_pipeline(examples, class_set_from_info(info), image_size=(SIZE, SIZE),
                            batch_size=4, training=False)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255))
    model.fit(batches.repeat(), steps_per_epoch=20, epochs=1, verbose=0, shuffle=False)
    return write_run(tmp_path_factory.mktemp("export-parity") / "run", model, class_set=VOC,
                     config={"dataset": "voc2007_semantic", "image_size": [SIZE, SIZE],
                             **voc2007_built})


@pytest.fixture(scope="module")
def validation(voc2007_built):
    """The VOC fixture's validation images and labels, as the parity check reads them."""
    from pixelwise.data.pipeline import load_split

    examples, _ = load_split("voc2007_semantic", "validation", **voc2007_built)
    pairs = [(e["image"], e["label"][..., 0]) for e in examples.as_numpy_iterator()]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _keras_labels(model, image):
    """The Keras model's label map, preprocessing as the TFLite/ONNX graph (no antialiasing)."""
    import tensorflow as tf

    x = tf.image.resize(image[None].astype(np.float32), (SIZE, SIZE), antialias=False).numpy()
    logits = np.asarray(model(np.clip(np.round(x), 0, 255) / 255.0, training=False))[0]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return tf.image.resize(probs, image.shape[:2], method="bilinear").numpy().argmax(-1)


def _numpy_mean_iou(labels, predictions, num_classes=21):
    cm = np.zeros((num_classes, num_classes), np.int64)
    for label, predicted in zip(labels, predictions):
        keep = label != 255
        np.add.at(cm, (label[keep].astype(int), predicted[keep].astype(int)), 1)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0]))


def _tflite_runner(path):
    import tensorflow as tf

    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return lambda image: runner(images=image[None])["labels"][0]


def _onnx_runner(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda image: session.run(None, {"images": image[None]})[0][0]


@pytest.mark.parametrize(("format", "runner", "name"), [
    ("tflite-fp16", _tflite_runner, "model.tflite"),
    ("tflite-int8", _tflite_runner, "model.tflite"),
    ("onnx", _onnx_runner, "model.onnx"),
])
def test_export_runs_in_its_runtime_and_its_parity_report_says_so(
        tmp_path, voc_run, validation, format, runner, name, capfd):
    import keras

    from pixelwise.cli import main
    from pixelwise.export.serving import load_class_names
    from pixelwise.export.parity import parity_line

    path = tmp_path / format / name
    assert main(["export", "--run", str(voc_run), "--format", format, "--out", str(path.parent)]) == 0
    report = json.loads((path.parent / "parity.json").read_text())
    # Two lines, and nothing from the converters' or runtimes' native code (file descriptors).
    out, err = capfd.readouterr()
    assert out.splitlines() == [f"wrote {format} to {path}",
                                f"{parity_line(report)} (report: {path.parent / 'parity.json'})"]
    assert err == ""
    images, labels = validation
    run = runner(path)
    exported = [run(image) for image in images]
    model = keras.models.load_model(voc_run / "checkpoints" / "best.keras", compile=False)
    keras_labels = [_keras_labels(model, image) for image in images]
    assert all(e.shape == i.shape[:2] and e.dtype == np.uint8 for e, i in zip(exported, images))
    agreement = (sum(int(np.sum(e == k)) for e, k in zip(exported, keras_labels))
                 / sum(k.size for k in keras_labels))
    # The report's reference is the same graph in TensorFlow; the test's is written out in
    # NumPy: a rare near-tie may fall either way.
    assert report["pixel_agreement"] == pytest.approx(agreement, abs=2e-3)
    assert report["passed"] and report["pixel_agreement"] >= report["threshold"]
    assert report["threshold"] == (0.95 if format == "tflite-int8" else 0.98)
    assert report["format"] == format and report["num_images"] == len(images) == 3
    assert report["mean_iou"]["export"] == pytest.approx(_numpy_mean_iou(labels, exported), abs=1e-6)
    assert report["mean_iou"]["keras"] == pytest.approx(_numpy_mean_iou(labels, keras_labels), abs=0.01)
    # No latency: one timing per export varied 9x; speed is benchmarks/bench_export.py's.
    assert not any("latency" in key or key.endswith("_ms") for key in report)
    assert " ms " not in parity_line(report)
    assert report["artefact_bytes"] == path.stat().st_size
    assert load_class_names(path)[:2] == ["background", "aeroplane"]
    if format == "tflite-int8":
        assert report["calibration"] == {"images": 4, "source": "voc2007_semantic train, first 4"}
    if format == "onnx":
        import onnx

        proto = onnx.load(str(path))
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
        assert report["onnx_opset"] == 17
        metadata = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(metadata["class_names"]) == load_class_names(path)


def _shifted_module(voc_run, shift=1):
    """A deliberately broken serving graph: the right model, every class id moved by ``shift``."""
    import tensorflow as tf

    from pixelwise.export.serving import serving_module
    from pixelwise.runs.loading import load_run

    loaded = load_run(voc_run)
    inner = serving_module(loaded.model, loaded.class_set, (SIZE, SIZE), antialias=False)

    class Shifted(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner  # tracked, or the converter writes no signature

        @tf.function(input_signature=inner.serve.input_signature)
        def serve(self, images):
            labels = tf.cast(self.inner.serve(images)["labels"], tf.int32)
            return {"labels": tf.cast((labels + shift) % 21, tf.uint8)}

    return Shifted()


def test_a_broken_export_exits_2_leaves_out_alone_and_is_kept_as_failed(
        tmp_path, voc_run, monkeypatch, capsys):
    from pixelwise.export import serving as export
    from pixelwise.cli import main

    broken = _shifted_module(voc_run)
    convert = export.convert_onnx  # ONNX: the quickest conversion; the check is the same for all
    monkeypatch.setattr(export, "convert_onnx", lambda module, *args: convert(broken, *args))
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "model.onnx").write_text("the export that was there before")
    argv = ["export", "--run", str(voc_run), "--format", "onnx", "--out", str(out), "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(
        f"pixelwise export: error: Export not written to {str(out)!r}: parity FAILED: 0.00 % of "
        "pixels agree")
    assert "at least 98.00 % needed" in err and "onnx.FAILED" in err and "pass min_agreement=0.00 or lower" in err
    assert err.endswith("(command line: --min-agreement for min_agreement=)")
    assert (out / "model.onnx").read_text() == "the export that was there before"
    failed = tmp_path / "onnx.FAILED"
    report = json.loads((failed / "parity.json").read_text())
    assert report["passed"] is False and report["pixel_agreement"] == 0.0 and report["threshold"] == 0.98
    assert sorted(p.name for p in failed.iterdir()) == [
        "class_names.txt", "class_set.json", "model.onnx", "parity.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx", "onnx.FAILED"]  # no staging left
    exported = _onnx_runner(failed / "model.onnx")(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert exported.shape == (SIZE, SIZE)  # kept runnable, for a look at what went wrong

    # Accepted on purpose: written to --out, the report still says what it found.
    assert main([*argv, "--min-agreement", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote onnx to {out / 'model.onnx'}" in printed and "parity passed: 0.00 %" in printed
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] is True and report["threshold"] == 0.0 and report["pixel_agreement"] == 0.0
    assert not failed.exists()  # superseded: its report would contradict the shipped one


@pytest.mark.parametrize("missing", ["tf2onnx", "onnxruntime"])
def test_onnx_without_the_export_extra_is_one_error_naming_it(tmp_path, voc_run, monkeypatch, capsys,
                                                              missing):
    from pixelwise.cli import main
    from pixelwise.extras import MissingExtraError
    from pixelwise.export.serving import export_model

    monkeypatch.setitem(sys.modules, missing, None)  # what `import` meets when it is not installed
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[export\]"') as raised:
        export_model(voc_run, tmp_path / "onnx", "onnx")
    assert isinstance(raised.value, ImportError) and raised.value.name == missing
    assert main(["export", "--run", str(voc_run), "--format", "onnx", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"'{missing}'" in err and "'export' extra" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_options_and_int8_without_a_dataset_are_one_line_errors(tmp_path, voc_run, capsys):
    from pixelwise.cli import main

    bare = tmp_path / "bare.keras"
    tiny_unet().save(bare)
    classes = tmp_path / "classes.json"
    classes.write_text(TINY_CLASSES.to_json())
    cases = [
        (["--run", voc_run, "--min-agreement", "1.5"], "min_agreement= between 0 and 1"),
        (["--run", voc_run, "--parity-images", "0"],
         "parity_images= a whole number of at least 1, received 0. "
         "(command line: --parity-images for parity_images=)"),
        (["--run", voc_run, "--format", "tflite-int8", "--calibration-images", "-1"],
         "(command line: --calibration-images for calibration_images=)"),
        (["--checkpoint", bare, "--class-set", classes, "--format", "tflite-int8"],
         "pass dataset= NAME|PATH, or export a run folder. (command line: --dataset for dataset=)"),
    ]
    for args, message in cases:
        code = main(["export", *map(str, args), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.keras", "classes.json"]


def _rescaling_model():
    """A model whose first layers rescale its [0, 1] input, as EfficientNet-Lite's do (* 255,
    then (x - 127) / 128): the shape that int8 conversion of the uint8 graph broke. Its class
    is the image's strongest colour channel, so every pixel has a clear answer."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(255.0)(inputs)
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128)(x)
    # Padded as EfficientNet-Lite's stem is (TF "same" padding made explicit): the rescaling
    # cannot be folded into the convolution.
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = keras.layers.Conv2D(3, 1, use_bias=False, kernel_initializer=keras.initializers.Constant(
        4 * np.eye(3)[None, None]))(x)
    outputs = keras.layers.Cropping2D(((0, 1), (0, 1)))(x)
    return keras.Model(inputs, outputs)


def test_int8_keeps_parity_for_a_model_that_rescales_its_input(tmp_path):
    import tensorflow as tf

    from pixelwise.class_sets import ClassSet
    from pixelwise.export.serving import TFLITE_BATCH_SIZE, serving_module
    from pixelwise.export.tflite import convert_tflite

    model = _rescaling_model()
    class_set = ClassSet("rgb", ("red", "green", "blue"), ((0, 0, 0), (255, 0, 0), (0, 255, 0)))
    rng = np.random.default_rng(0)
    # Smooth images (what photographs are like), uint8, some of another size than the model's.
    images = [np.clip(rng.normal(128, 60, (h, w, 3)), 0, 255).astype(np.uint8)
              for h, w in [(32, 32)] * 6 + [(40, 48)] * 2]
    reference = serving_module(model, class_set, (32, 32), antialias=False)
    twin = serving_module(model, class_set, (32, 32), antialias=False,
                          batch_size=TFLITE_BATCH_SIZE, float_input=True)
    with pytest.raises(ValueError, match="float-input serving graph"):
        convert_tflite(reference, "int8", calibration_images=images)
    path = tmp_path / "model.tflite"
    path.write_bytes(convert_tflite(twin, "int8", calibration_images=images))
    interpreter = tf.lite.Interpreter(model_path=str(path))
    details = interpreter.get_input_details()[0]
    assert details["dtype"] == np.uint8  # the uint8 interface, read exactly: pixel / 255
    assert details["quantization"] == pytest.approx((1 / 255, 0))
    run = _tflite_runner(path)
    agreement = np.mean([np.mean(run(image) == reference.serve(image[None])["labels"].numpy()[0])
                         for image in images])
    assert agreement >= 0.95  # converting the uint8 graph (before the fix): 67 % here

