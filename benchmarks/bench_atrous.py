"""DeepLabV3+ training step with ASPP as AtrousConv2D (pixelwise) against Keras' dilated Conv2D.

Both models are built in one process (the Conv2D one by building with ``Conv2D`` in place of
``AtrousConv2D``), warmed up, then timed in interleaved rounds of two ``train_on_batch``
calls each (fp32, Adam, sparse cross-entropy). Run once per backend::

    python benchmarks/bench_atrous.py                       # TensorFlow, ResNet50, 192x256, batch 8
    KERAS_BACKEND=jax python benchmarks/bench_atrous.py
    python benchmarks/bench_atrous.py --encoder mobilenetv3large --rounds 3

Prints seconds per step for each round and the median ratio Conv2D / AtrousConv2D.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="resnet50")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, nargs=2, default=(192, 256))
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from pixelwise import models
    from pixelwise.models import encoder_decoder

    rng = np.random.default_rng(0)
    height, width = args.image_size
    x = rng.random((args.batch_size, height, width, 3), dtype=np.float32)
    y = rng.integers(0, 12, (args.batch_size, height, width, 1)).astype("int32")
    built = {}
    atrous = encoder_decoder.AtrousConv2D
    try:
        for label, conv in (("AtrousConv2D", atrous), ("Conv2D", keras.layers.Conv2D)):
            encoder_decoder.AtrousConv2D = conv
            model = models.build("deeplabv3plus", input_size=(height, width, 3), num_classes=12,
                                 encoder=args.encoder, output_stride=16)
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=keras.backend.backend() == "jax")
            model.train_on_batch(x, y)
            built[label] = model
    finally:
        encoder_decoder.AtrousConv2D = atrous
    times = {label: [] for label in built}
    for _ in range(args.rounds):
        for label, model in built.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            model.train_on_batch(x, y)
            times[label].append((time.perf_counter() - start) / 2)
    print(f"backend {keras.backend.backend()}, deeplabv3plus on {args.encoder}, "
          f"{height}x{width}, batch {args.batch_size}")
    for label, values in times.items():
        print(f"  {label}: " + ", ".join(f"{t:.2f}" for t in values) + " s/step")
    ratio = statistics.median(times["Conv2D"]) / statistics.median(times["AtrousConv2D"])
    print(f"  Conv2D / AtrousConv2D: {ratio:.2f}x")


if __name__ == "__main__":
    main()
