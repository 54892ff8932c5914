"""The committed training recipes (configs/*.yaml) parse, validate and build what they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwise import models
from pixelwise.datasets import api as datasets_api
from pixelwise.class_sets import get_class_set
from pixelwise.training import TrainConfig, load_config_file

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
# Dataset name -> class-set name, for the datasets the recipes use.
CLASS_SETS = {"camvid": "camvid", "voc2007_semantic": "voc", "voc2012_semantic": "voc",
              "isbi2012_membranes": "isbi2012"}


def test_the_camvid_recipes_are_committed():
    names = {path.name for path in CONFIGS}
    assert {"camvid.yaml", "camvid-long.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_validates(path):
    values = load_config_file(path)
    unknown = set(values) - set(TrainConfig.fields())
    assert not unknown, f"{path.name} has keys TrainConfig does not know: {unknown}"
    config = TrainConfig.from_dict(values)
    assert config.dataset in datasets_api.available()
    assert config.model in models.available()
    assert config.train_split != config.validation_split


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_model_builds_at_its_image_size(path):
    config = TrainConfig.from_dict(load_config_file(path))
    class_set = get_class_set(CLASS_SETS[config.dataset])
    model = models.build(config.model, input_size=(*config.image_size, 3),
                         num_classes=class_set.num_classes, **config.model_args)
    # Training needs logits at the input size, one channel per class.
    assert tuple(model.output_shape) == (None, *config.image_size, class_set.num_classes)


def test_camvid_recipe_trains_from_scratch_and_selects_on_validation():
    values = load_config_file(CONFIG_DIR / "camvid.yaml")
    config = TrainConfig.from_dict(values)
    assert (config.dataset, config.train_split, config.validation_split) == (
        "camvid", "train", "validation")
    # No key anywhere in the recipe names pretrained weights.
    assert not any("weight" in key and key not in ("class_weights", "weight_decay")
                   for key in values)
    assert not any("pretrain" in str(v).lower() or "imagenet" in str(v).lower()
                   for v in values.values())
