"""QKeras quantizers for every tensor of a SemifreddoNet, built from spec formats.

All rounding is QKeras's: round half to even, then saturate. In Vitis HLS that is
``AP_RND_CONV, AP_SAT``, which the conversion sets on every quantized tensor.

``PowerOfTwoTerms`` adds the FLightNN-style frozen-weight format (each weight is a sum of at most
``terms`` signed powers of two) as a QKeras quantizer, so it trains with the straight-through
estimator like every other QKeras quantizer.
"""

from __future__ import annotations

import numpy as np
import qkeras
import tensorflow as tf
from qkeras import quantized_bits, quantized_relu
from qkeras.quantizers import BaseQuantizer

from .fixedpoint import Fixed
from .spec import FrozenWeights


def fixed_quantizer(fmt: Fixed):
    """The QKeras quantizer whose grid is exactly ``fmt``."""
    if fmt.signed:
        return quantized_bits(fmt.bits, fmt.integer, keep_negative=True, alpha=1)
    # Unsigned formats are used for activations (ReLU) and alpha. quantized_relu saturates at the top
    # of the range and clips negatives to zero, which is what hardware with an unsigned type does.
    return quantized_relu(fmt.bits, fmt.integer)


class PowerOfTwoTerms(BaseQuantizer):
    """Quantize to a sum of at most ``terms`` signed powers of two, 2**min_exponent .. 2**0.

    Inputs are clipped to [-1, 1]. Each term is the power of two (or zero) nearest to what the
    previous terms left over, so terms=1 is plain po2 quantization and terms=2 adds one correction.
    In hardware a weight with one term is a wire shift, and one with two terms is a shift and an add.
    """

    def __init__(self, terms: int = 1, min_exponent: int = -7):
        super().__init__()
        if terms not in (1, 2):
            raise ValueError("terms must be 1 or 2")
        self.terms = int(terms)
        self.min_exponent = int(min_exponent)
        self.bits = 2 - self.min_exponent   # width of the fixed-point format that holds the values

    def _nearest_term(self, r):
        a = tf.abs(r)
        smallest = 2.0 ** self.min_exponent
        e = tf.floor(tf.math.log(tf.maximum(a, smallest)) / np.log(2.0))
        lower = tf.pow(2.0, e)
        upper = 2.0 * lower
        pick = tf.where(a - lower <= upper - a, lower, upper)
        pick = tf.clip_by_value(pick, smallest, 1.0)
        pick = tf.where(a <= smallest / 2.0, tf.zeros_like(a), pick)
        return tf.sign(r) * pick

    def __call__(self, x):
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        clipped = tf.clip_by_value(x, -1.0, 1.0)
        q = tf.zeros_like(clipped)
        residual = clipped
        for _ in range(self.terms):
            term = self._nearest_term(residual)
            q = q + term
            residual = residual - term
        return x + tf.stop_gradient(q - x)

    def max(self):
        return 1.0

    def min(self):
        return -1.0

    def get_config(self):
        return {"terms": self.terms, "min_exponent": self.min_exponent}

    @classmethod
    def from_config(cls, config):
        # Keras deserializes a quantizer through this (QKeras's BaseQuantizer has none).
        return cls(**config)

    def __str__(self):
        return f"PowerOfTwoTerms({self.terms},{self.min_exponent})"


# QKeras resolves quantizers by name from its own module (qkeras.quantizers.get_quantizer); register
# ours there so saved configs, and hls4ml's QKeras reader, can find it.
setattr(qkeras.quantizers, "PowerOfTwoTerms", PowerOfTwoTerms)


def frozen_weight_quantizer(fmt: FrozenWeights):
    if fmt.format == "po2":
        return PowerOfTwoTerms(fmt.terms, fmt.min_exponent)
    return fixed_quantizer(fmt.storage)


def to_codes(values: np.ndarray, fmt: Fixed) -> np.ndarray:
    """Integer codes of values that already lie on ``fmt``'s grid (refuses values that do not)."""
    scaled = np.asarray(values, dtype=np.float64) * 2.0 ** fmt.frac
    codes = np.round(scaled)
    if not np.array_equal(codes, scaled):
        raise ValueError(f"values are not on the {fmt.describe()} grid")
    if codes.size and (codes.min() < fmt.code_min or codes.max() > fmt.code_max):
        raise ValueError(f"values fall outside the {fmt.describe()} range")
    return codes.astype(np.int64)


def from_codes(codes: np.ndarray, fmt: Fixed) -> np.ndarray:
    return (np.asarray(codes, dtype=np.float64) * 2.0 ** -fmt.frac).astype(np.float32)
