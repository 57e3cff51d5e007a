"""The two Keras layers that SemifreddoNets add to QKeras.

``AlphaBlend``
    The input of a trainable block: ``alpha * frozen + (1 - alpha) * own`` per channel, with
    ``alpha = quantize(sigmoid(a))`` and ``a`` trainable. ``own`` is the core's own feature map
    from the previous block, or, when the block's core-shuffle switch is on, the other core's.
    The result is quantized to the activation format. Every product and sum here is exact in
    float32 (the operands have few bits), so the only rounding is the final quantizer, which the
    hardware reproduces with ``AP_RND_CONV``.

``RepeatGate``
    Implements the runtime repeat count. The last block is laid out once per possible repetition;
    the gate after repetition ``index`` passes the new features if ``repeat >= index`` and the
    previous ones otherwise. ``enabled`` is set from the repeat count, never trained.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow import keras

from .fixedpoint import Fixed
from .quantizers import fixed_quantizer


@keras.utils.register_keras_serializable(package="semifreddo")
class AlphaBlend(keras.layers.Layer):
    def __init__(self, frozen_channels, alpha_bits: int, act_bits: int, act_integer: int, shuffle: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.frozen_channels = [int(c) for c in frozen_channels]
        self.alpha_bits = int(alpha_bits)
        self.act_bits = int(act_bits)
        self.act_integer = int(act_integer)
        self.shuffle = bool(shuffle)
        self.alpha_format = Fixed(self.alpha_bits + 1, 1, False)
        self.act_format = Fixed(self.act_bits, self.act_integer, False)
        self.alpha_quantizer = fixed_quantizer(self.alpha_format)
        self.output_quantizer = fixed_quantizer(self.act_format)

    def build(self, input_shape):
        width = len(self.frozen_channels)
        # a = 0 starts every channel at alpha = 0.5: an even blend of frozen and own features.
        self.a = self.add_weight(name="a", shape=(width,), initializer="zeros", trainable=True)
        # The core-shuffle switch (0 or 1). It is configurable but chosen per task, not trained.
        self.swap = self.add_weight(name="swap", shape=(), initializer="zeros", trainable=False)
        super().build(input_shape)

    def alpha(self):
        return self.alpha_quantizer(tf.sigmoid(self.a))

    def call(self, inputs):
        frozen, own = inputs[0], inputs[1]
        if self.shuffle:
            other = inputs[2]
            own = (1.0 - self.swap) * own + self.swap * other
        selected = tf.gather(frozen, self.frozen_channels, axis=-1)
        alpha = self.alpha()
        return self.output_quantizer(alpha * selected + (1.0 - alpha) * own)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self):
        return super().get_config() | {
            "frozen_channels": self.frozen_channels, "alpha_bits": self.alpha_bits, "act_bits": self.act_bits,
            "act_integer": self.act_integer, "shuffle": self.shuffle,
        }


@keras.utils.register_keras_serializable(package="semifreddo")
class RepeatGate(keras.layers.Layer):
    def __init__(self, index: int, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def build(self, input_shape):
        self.enabled = self.add_weight(name="enabled", shape=(), initializer="zeros", trainable=False)
        super().build(input_shape)

    def call(self, inputs):
        previous, new = inputs
        # For enabled in {0, 1} this selects exactly, with no rounding.
        return self.enabled * new + (1.0 - self.enabled) * previous

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return super().get_config() | {"index": self.index}
