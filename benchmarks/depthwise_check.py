"""Depthwise convolutions alone: TensorFlow's forward, input and filter gradients vs torch's.

The shapes are MobileNetV3-Large's depthwise layers in a U-Net at 192x256, batch 8. Each
framework runs in this process in turn (TensorFlow first; torch if installed, the ``peers``
extra), 2 threads, mean of 10 calls after 2 warm-up calls::

    python benchmarks/depthwise_check.py
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/depthwise_check.py   # TensorFlow's Eigen kernels

Prints milliseconds per shape: TensorFlow forward, input gradient, filter gradient; torch
forward and forward + backward.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import pixelwise  # noqa: E402,F401  (before TensorFlow: oneDNN on unless the variable says 0)
import tensorflow as tf  # noqa: E402

#: (height, width, channels, kernel, stride)
SHAPES = [(96, 128, 64, 3, 1), (96, 128, 72, 3, 2), (48, 64, 72, 5, 2), (24, 32, 120, 5, 1),
          (12, 16, 480, 3, 1), (6, 8, 960, 5, 1)]


def timed(fn, repeats=10):
    fn()
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def tensorflow_figures():
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    for height, width, channels, k, s in SHAPES:
        x = tf.random.normal((8, height, width, channels))
        w = tf.random.normal((k, k, channels, 1))
        strides = [1, s, s, 1]
        g = tf.random.normal(tf.nn.depthwise_conv2d(x, w, strides, "SAME").shape)
        forward = tf.function(lambda: tf.nn.depthwise_conv2d(x, w, strides, "SAME"))
        grad_input = tf.function(lambda: tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=x.shape, filter=w, out_backprop=g, strides=strides, padding="SAME"))
        grad_filter = tf.function(lambda: tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=w.shape, out_backprop=g, strides=strides, padding="SAME"))
        print(f"tensorflow {height}x{width}x{channels} k{k} s{s}: forward {timed(forward):.2f} "
              f"input-grad {timed(grad_input):.2f} filter-grad {timed(grad_filter):.2f} ms",
              flush=True)


def torch_figures():
    try:
        import torch
    except ImportError:
        print("torch: not installed (pip install -e \".[peers]\")")
        return
    torch.set_num_threads(2)
    for height, width, channels, k, s in SHAPES:
        x = torch.randn(8, channels, height, width, requires_grad=True)
        conv = torch.nn.Conv2d(channels, channels, k, s, k // 2, groups=channels, bias=False)
        g = torch.randn_like(conv(x))

        def forward():
            with torch.no_grad():
                conv(x)

        def both():
            x.grad = None
            conv.weight.grad = None
            conv(x).backward(g)
        print(f"torch {height}x{width}x{channels} k{k} s{s}: forward {timed(forward):.2f} "
              f"forward+backward {timed(both):.2f} ms", flush=True)


if __name__ == "__main__":
    tensorflow_figures()
    torch_figures()
