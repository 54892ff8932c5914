"""The data's way into a model: dataset paths, groups and splits, tf.data pipeline, transforms.

Modules: ``paths`` (dataset arguments that are folders or zips; no TensorFlow), ``groups``
(examples that belong together; no TensorFlow), ``splits`` (which examples train, validate
and evaluate), ``pipeline`` (a split as batches), ``transforms`` (resize, augmentation).
Everything below is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_split": "pipeline", "make_pipeline": "pipeline",
    "resize_image": "transforms", "resize_label": "transforms", "augment_pair": "transforms",
    "GroupRule": "groups", "hold_out": "groups", "validation_groups": "groups",
    "select_examples": "splits", "evaluation_examples": "splits",
    "dataset_path": "paths",
})
