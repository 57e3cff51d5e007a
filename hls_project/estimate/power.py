"""The power model: dynamic energy per clock cycle from operation counts, times the clock.

Energies per operation are M. Horowitz's 45 nm figures ("Computing's energy problem (and what we
can do about it)", ISSCC 2014), the table FINN-R, QUIDAM and most accelerator cost models start
from:

===============================  ===========
8-bit integer add                0.03 pJ
32-bit integer add               0.1 pJ
8-bit integer multiply           0.2 pJ
32-bit integer multiply          3.1 pJ
64-bit SRAM read, 8 KB           10 pJ
64-bit SRAM read, 32 KB          20 pJ
64-bit SRAM read, 1 MB           100 pJ
===============================  ===========

Scaled per bit: an adder costs 0.03 pJ per 8 bits of width, a multiplier 0.2 pJ per 64 bits of
product (a x b); that reproduces the 32-bit multiply within 3 % and overstates the 32-bit add by
20 %. A memory access costs the SRAM figure per bit, interpolated in log(size) and never below
the 8 KB figure (so the small line buffers of the dataflow design are charged generously). Not
modelled: clock tree and flip-flop power, static power, and I/O. Absolute numbers are a 45 nm
ASIC proxy, not an FPGA measurement; the model is meant for ratios between designs built from the
same operations.
"""

from __future__ import annotations

import math

ENERGY_SOURCE = "Horowitz, ISSCC 2014 (45 nm): add 0.03 pJ/8 bit, multiply 0.2 pJ/8x8 bit, SRAM 10-100 pJ/64 bit"
ADD_PJ_PER_BIT = 0.03 / 8
MULT_PJ_PER_PRODUCT_BIT = 0.2 / 64
SRAM_PJ_PER_BIT = ((8 * 1024 * 8, 10 / 64), (32 * 1024 * 8, 20 / 64), (1024 * 1024 * 8, 100 / 64))


# Off-chip DRAM, from the same table: a 64-bit DRAM access costs 1.3 to 2.6 nJ. The low end is taken
# (the benefit of the doubt goes to the design that uses DRAM): 1.3 nJ / 64 bits.
DRAM_SOURCE = "Horowitz, ISSCC 2014: DRAM 1.3-2.6 nJ per 64-bit access (the low end, 20.3 pJ/bit, is used)"
DRAM_PJ_PER_BIT = 1300 / 64


def dram_pj(bits: float) -> float:
    """Energy of moving ``bits`` to or from external DRAM."""
    return DRAM_PJ_PER_BIT * bits


def add_pj(bits: float) -> float:
    return ADD_PJ_PER_BIT * bits


def multiply_pj(a_bits: int, b_bits: int) -> float:
    return MULT_PJ_PER_PRODUCT_BIT * a_bits * b_bits


def sram_pj_per_bit(size_bits: float) -> float:
    """Energy of reading or writing one bit of a memory of ``size_bits`` bits."""
    (s0, e0), (s1, e1), (s2, e2) = SRAM_PJ_PER_BIT
    if size_bits <= s0:
        return e0
    lo, hi = ((s0, e0), (s1, e1)) if size_bits <= s1 else ((s1, e1), (s2, e2))
    t = (math.log(size_bits) - math.log(lo[0])) / (math.log(hi[0]) - math.log(lo[0]))
    return lo[1] + t * (hi[1] - lo[1])


def power_mw(pj_per_cycle: float, clock_mhz: float) -> float:
    return pj_per_cycle * clock_mhz * 1e-3     # pJ x MHz = uW
