"""pixelwise: semantic segmentation on TensorFlow 2 / Keras 3 / TensorFlow Datasets."""

__version__ = "0.1.0"
