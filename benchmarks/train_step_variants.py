"""Where a TensorFlow training step goes: one U-Net step under variants, one process each.

Usage (variant: base [Keras' Adam], fused [pixelwise's Adam: one ResourceApplyAdam per
variable], inter1 [inter-op threads 1], sgd, noignore [no ignore_class], xla, fwd [forward
only]; pair: mnv3 [MobileNetV3-Large] or r50 [ResNet50])::

    for v in base fused inter1 sgd noignore xla fwd; do python benchmarks/train_step_variants.py $v mnv3; done

pixelwise is imported before TensorFlow, so oneDNN is on (pixelwise.onednn); run with
``TF_ENABLE_ONEDNN_OPTS=0`` for TensorFlow's default on CPUs without AVX-512 VNNI/BF16.

192x256, batch 8, 2 warm-up steps, then the mean of 4. Variants run in separate processes one
after another, not interleaved: differences under about 10 % are noise.
"""
import os
import sys
import time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
variant, pair = sys.argv[1], sys.argv[2]
import pixelwise  # noqa: F401  (before TensorFlow: oneDNN on, as the pixelwise command has it)
import tensorflow as tf
if variant == "inter1":
    tf.config.threading.set_intra_op_parallelism_threads(2); tf.config.threading.set_inter_op_parallelism_threads(1)
else:
    tf.config.threading.set_intra_op_parallelism_threads(2); tf.config.threading.set_inter_op_parallelism_threads(2)
import numpy as np, keras
from pixelwise import models
enc = {"r50": "resnet50", "mnv3": "mobilenetv3large"}[pair]
m = models.build("encoder_unet", input_size=(192, 256, 3), num_classes=12, encoder=enc)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=None if variant == "noignore" else 255)
from pixelwise.training.optimizers import Adam
opt = (keras.optimizers.SGD(1e-3) if variant == "sgd" else Adam(1e-3) if variant == "fused"
       else keras.optimizers.Adam(1e-3))
m.compile(optimizer=opt, loss=loss, jit_compile=(variant == "xla"))
rng = np.random.default_rng(0)
x = rng.random((8, 192, 256, 3), dtype=np.float32); y = rng.integers(0, 12, (8, 192, 256, 1)).astype("int32")
if variant == "fwd":
    f = tf.function(lambda x: m(x, training=True))
    step = lambda: f(x)
else:
    step = lambda: m.train_on_batch(x, y)
step(); step()
t = time.perf_counter()
for _ in range(4): step()
print(f"{pair} {variant}: {(time.perf_counter()-t)/4:.3f} s/step", flush=True)
