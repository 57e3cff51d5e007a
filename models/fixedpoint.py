"""Fixed-point formats and exact accumulator sizing.

A :class:`Fixed` is the format of one quantized tensor, in QKeras terms: ``bits`` in total,
``integer`` bits left of the point *not counting the sign bit*, and ``signed``. That makes
``quantized_bits(bits, integer)`` ``Fixed(bits, integer, True)`` and
``quantized_relu(bits, integer)`` ``Fixed(bits, integer, False)``; in Vitis HLS they are
``ap_fixed<bits, integer + 1>`` and ``ap_ufixed<bits, integer>``.

Sums of products are sized so that no bit is ever lost (:func:`sum_of_products`). The same
sizing serves two purposes: the HLS accumulators use it, so the hardware never rounds inside a
layer, and spec validation uses it to prove that the float32 QKeras reference is exact too
(a float32 holds every integer up to 2**24 exactly, so a sum whose exact width is at most 24
significant bits is computed without error in any order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOAT32_EXACT_BITS = 24


@dataclass(frozen=True)
class Fixed:
    bits: int
    integer: int
    signed: bool = True

    @property
    def frac(self) -> int:
        return self.bits - self.integer - (1 if self.signed else 0)

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def code_min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def code_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max_abs(self) -> float:
        """The largest magnitude a value of this format can have."""
        return max(abs(self.code_min), self.code_max) * self.lsb

    def hls(self, rounding: str | None = None, saturation: str | None = None) -> str:
        """The hls4ml precision string, e.g. ``fixed<8,1,RND_CONV,SAT>``."""
        base = f"{'fixed' if self.signed else 'ufixed'}<{self.bits},{self.integer + (1 if self.signed else 0)}"
        if rounding or saturation:
            base += f",{rounding or 'TRN'},{saturation or 'WRAP'}"
        return base + ">"

    def describe(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.bits}.{self.frac}"


def fixed_for_range(max_abs: float, frac: int, signed: bool = True) -> Fixed:
    """The narrowest format with ``frac`` fractional bits that holds every value up to ``max_abs``."""
    magnitude_codes = math.ceil(max_abs * 2.0 ** frac - 1e-9)
    magnitude_bits = max(1, magnitude_codes.bit_length())
    bits = magnitude_bits + (1 if signed else 0) + 0
    # A signed format holds -2**(bits-1) .. 2**(bits-1)-1; make sure +max fits as well.
    if signed and magnitude_codes > (1 << (bits - 1)) - 1:
        bits += 1
    integer = bits - frac - (1 if signed else 0)
    return Fixed(bits, integer, signed)


def sum_of_products(inputs: Fixed, weights: Fixed, n_terms: int, bias: Fixed | None = None) -> Fixed:
    """The exact format of ``sum_{i<n_terms} inputs_i * weights_i (+ bias)``: no rounding, no overflow."""
    frac = inputs.frac + weights.frac
    max_abs = n_terms * inputs.max_abs * weights.max_abs
    if bias is not None:
        frac = max(frac, bias.frac)
        max_abs += bias.max_abs
    return fixed_for_range(max_abs, frac, signed=True)


def significant_bits(fmt: Fixed) -> int:
    """Bits of magnitude a float needs to hold every value of ``fmt`` exactly."""
    return fmt.bits - (1 if fmt.signed else 0)
