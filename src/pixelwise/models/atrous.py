"""Atrous (dilated) 3x3 convolutions computed as one matmul over their in-bounds taps.

DeepLabV3+'s ASPP applies 3x3 convolutions dilated 6, 12 and 18 to the encoder's stride-16
map. TensorFlow's CPU kernels run a dilated convolution through ``space_to_batch``: at the
CamVid crop (192x256, a 12x16 map) the rate-18 branch becomes 2,592 zero-padded 1x1
images, and one training step of the three branches took 33 s at batch 8 where the same
convolutions undilated take 1.4 s (measured in this project, AVX2 CPU; the backward pass
has no direct dilated kernel on CPU: tensorflow/tensorflow#54279).

:class:`AtrousConv2D` is a ``keras.layers.Conv2D`` (same arguments, weights and names, so
checkpoints load either way) whose stride-1, "same"-padded dilated convolution is computed
as what it is: output(y, x) = sum over the 3x3 taps of kernel(i, j) . input(y + i*rate,
x + j*rate), zero outside the map. Each tap is a shifted view of the zero-padded input; the
views are concatenated along channels and multiplied by the stacked kernel in one matmul.
Taps that fall wholly outside the map (|i*rate| >= height or |j*rate| >= width, when the
size is known when the model is built) are zero and are left out: at a 12x16 map the rate-18
branch is one 1x1 matmul and the rate-12 branch three taps. Any other configuration (strides,
"valid" padding, dilation 1) is ``Conv2D``'s own. The results equal ``Conv2D``'s to float
rounding, forward and backward, on every backend (``tests/test_models_atrous.py``).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((1, 6, 8, 4), dtype=np.float32)
    >>> atrous = AtrousConv2D(5, 3, dilation_rate=6, padding="same")
    >>> plain = keras.layers.Conv2D(5, 3, dilation_rate=6, padding="same")
    >>> _ = atrous(x), plain(x)
    >>> plain.set_weights(atrous.get_weights())
    >>> bool(np.allclose(atrous(x), plain(x), atol=1e-5))
    True
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pixelwise")
class AtrousConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose dilated stride-1 "same" convolution is a matmul over in-bounds taps."""

    def _by_taps(self) -> bool:
        return (max(self.dilation_rate) > 1 and tuple(self.strides) == (1, 1)
                and self.padding == "same" and self.groups == 1
                and self.data_format == "channels_last")

    def convolution_op(self, inputs, kernel):
        if not self._by_taps():
            return super().convolution_op(inputs, kernel)
        kernel_h, kernel_w = kernel.shape[0], kernel.shape[1]
        rate_h, rate_w = self.dilation_rate
        height, width = inputs.shape[1], inputs.shape[2]  # None when not known at build time
        pad_h, pad_w = rate_h * (kernel_h // 2), rate_w * (kernel_w // 2)
        padded = ops.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        size = ops.shape(inputs)
        taps, weights = [], []
        for i in range(kernel_h):
            dy = (i - kernel_h // 2) * rate_h
            if height is not None and abs(dy) >= height:
                continue  # this row of taps reads only padding
            for j in range(kernel_w):
                dx = (j - kernel_w // 2) * rate_w
                if width is not None and abs(dx) >= width:
                    continue
                taps.append(ops.slice(padded, (0, pad_h + dy, pad_w + dx, 0),
                                      (size[0], size[1], size[2], size[3])))
                weights.append(kernel[i, j])
        stacked = taps[0] if len(taps) == 1 else ops.concatenate(taps, axis=-1)
        return ops.matmul(stacked, ops.concatenate(weights, axis=0))
