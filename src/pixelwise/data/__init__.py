"""The data's way into a model: dataset paths, groups and splits, tf.data pipeline, transforms.

Modules: ``paths`` (dataset arguments that are folders or zips; no TensorFlow), ``groups``
(examples that belong together; no TensorFlow), ``splits`` (which examples train and which
validate: ``plan_split``, the one place that decides; no TensorFlow), ``selection`` (a run's
training, validation and evaluation examples as tf.data, as ``splits`` plans them),
``pipeline`` (a split as batches), ``transforms`` (resize, augmentation).
Everything below is imported on first use.
"""

from pixelwise._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_split": "pipeline", "make_pipeline": "pipeline",
    "resize_image": "transforms", "resize_label": "transforms", "augment_pair": "transforms",
    "GroupRule": "groups", "plan_split": "splits", "SplitOptions": "splits",
    "select_examples": "selection", "evaluation_examples": "selection",
    "dataset_path": "paths",
})
