"""The cross-entropy alone, forward and gradient on (8, 192, 256, 12) logits: Keras with
ignore_class=255, Keras without, and one fused sparse_categorical_crossentropy with a mask.

Usage::

    python benchmarks/loss_variants.py
"""
import os
import time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf, keras
from keras import ops
rng = np.random.default_rng(0)
logits = tf.constant(rng.standard_normal((8, 192, 256, 12)).astype("float32"))
y = rng.integers(0, 12, (8, 192, 256, 1)).astype("int32"); y[:, ::17] = 255; y = tf.constant(y)
def fused(y_true, y_pred):
    labels = ops.squeeze(ops.cast(y_true, "int32"), -1)
    valid = ops.not_equal(labels, 255)
    ce = ops.sparse_categorical_crossentropy(ops.where(valid, labels, 0), y_pred, from_logits=True)
    validf = ops.cast(valid, "float32")
    return ops.sum(ce * validf) / ops.maximum(ops.sum(validf), 1.0)
variants = {"keras_ignore": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
            "keras_plain": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "fused": fused}
for name, loss in variants.items():
    yy = tf.where(y == 255, 0, y) if name == "keras_plain" else y
    @tf.function
    def step(l):
        with tf.GradientTape() as t:
            t.watch(l); v = loss(yy, l)
        return v, t.gradient(v, l)
    v, g = step(logits); step(logits)
    t0 = time.perf_counter()
    for _ in range(10): step(logits)
    print(name, f"{(time.perf_counter()-t0)/10*1000:.1f} ms", float(v))
