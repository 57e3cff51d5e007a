"""The estimator on a tiny spec, against counts derived by hand (issue 6).

The spec: 8x8x1 digits, 8-bit input pixels (u8, 8 fractional bits), two blocks of 1x1 convs,
a frozen core of width 2 with s4.3 weights and s8.6 biases, two trainable cores of width 1 with
s4.3 weights and s8.6 biases, alpha with 4 bits, activations u4.3, no repeats, a classify head
with 5 outputs. The frozen codes are chosen by hand (below), so every count can be worked out on
paper. The LUT total of one layer is then composed by hand from the committed table's
coefficients, which checks that the estimator prices what it counts and nothing else.
"""

import json

import numpy as np
import pytest

from semifreddo.hls_project.estimate import datapath
from semifreddo.hls_project.estimate.characterize import DEFAULT_TABLE
from semifreddo.hls_project.estimate.estimator import (constant_trees, configurable_trees, estimate, network_work,
                                                        twin_register_words)
from semifreddo.models.spec import parse_spec

TINY_SPEC = {
    "name": "tiny", "seed": 1, "dataset": {"name": "digits"},
    "input": {"shape": [8, 8, 1], "bits": 8},
    "blocks": 2, "kernel": 1,
    "frozen_core": {"width": 2, "weights": {"format": "fixed", "bits": 4, "integer": 0},
                    "bias": {"bits": 8, "integer": 1}, "implementation": "multipliers"},   # constant products, counted by hand
    "trainable_cores": {"width": 1, "weights": {"bits": 4, "integer": 0}, "bias": {"bits": 8, "integer": 1},
                        "alpha_bits": 4, "core_shuffle": False},
    "activations": {"bits": 4, "integer": 1},
    "head": {"type": "classify", "outputs": 5, "weights": {"bits": 4, "integer": 0},
             "bias": {"bits": 8, "integer": 2}, "output": {"bits": 12, "integer": 5}},
    "source": {"task": "digits_0_4"}, "targets": [{"task": "parity"}],
    "training": {"core": {"epochs": 1, "batch_size": 32, "learning_rate": 0.01},
                 "task": {"epochs": 1, "batch_size": 32, "learning_rate": 0.01}},
}

# Block 1: one input channel, output channel 0 has weight 3 (= 0.375), channel 1 weight -4 (= -0.5)
# and bias code 2. Block 2: channel 0 = 1 * in0 + 2 * in1, channel 1 = 2 * in0 + 0 * in1.
CODES = {
    "b1.frozen.kernel": np.array([3, -4]).reshape(1, 1, 1, 2),
    "b1.frozen.bias": np.array([0, 2]),
    "b2.frozen.kernel": np.array([[1, 2], [2, 0]]).reshape(1, 1, 2, 2),
    "b2.frozen.bias": np.array([0, 0]),
}


@pytest.fixture(scope="module")
def spec():
    return parse_spec(TINY_SPEC)


def test_block1_frozen_conv_by_hand(spec):
    """Accumulator: sum_of_products(u8 frac 8, s4.3, 1 term, s8.6 bias) has frac 11, so products are
    not shifted and the bias is shifted left by 11 - 6 = 5.

    Channel 0, weight 3 = 4 - 1 (two canonical digits): one subtractor (x << 2) - x, values in
    [-255, 1020], an 11-bit result. Live bits of a subtraction run from the subtrahend's lowest live
    bit (0) to the highest live bit of either operand (1020 needs 10 bits): 10 adder bits.
    Channel 1, weight -4 = -(1 << 2) (one digit) plus bias 2 << 5 = 64: the bias absorbs the sign,
    64 - (x << 2) in [-956, 64], 11 bits; live bits from the subtrahend's bit 2 up to bit 10: 8.
    One level of adders, so one pipeline stage: only the two output registers, 11 bits and
    11 - 2 = 9 bits (the two known-zero low bits of channel 1 are constants, not flip-flops).
    """
    in_fmt = spec.input_format
    cost = datapath.tree_cost(constant_trees(in_fmt, spec.frozen_weights.storage, spec.frozen_bias,
                                             CODES["b1.frozen.kernel"], CODES["b1.frozen.bias"]))
    assert sorted(cost.adder_bits) == [8, 10]
    assert cost.chained_bits == 0 and cost.multipliers == 0
    assert cost.out_bits == (11, 11)
    assert cost.pipeline_bits == 11 + 9
    assert cost.stages == 1


def test_block2_frozen_conv_by_hand(spec):
    """Inputs are u4.3 activations (0..15), weights s4.3, bias s8.6: accumulator frac 6, no shifts.

    Channel 0: x0 + (x1 << 1), in [0, 45], 7 bits. Both operands are non-negative: live bits where
    both are live, bits 1..3 (x0 has 4 bits, x1 << 1 starts at bit 1): 3 adder bits.
    Channel 1: 2 * x0 = x0 << 1, only wiring, and the zero weight costs nothing: no adder; its
    output register holds [0, 30] in 6 bits, less the known-zero low bit: 5 flip-flops.
    """
    cost = datapath.tree_cost(constant_trees(spec.activations, spec.frozen_weights.storage, spec.frozen_bias,
                                             CODES["b2.frozen.kernel"], CODES["b2.frozen.bias"]))
    assert cost.adder_bits == (3,)
    assert cost.out_bits == (7, 6)
    assert cost.pipeline_bits == 7 + 5


def test_trainable_conv_by_hand(spec):
    """Block 1's trainable conv: one configurable multiplier u8 x s4 with values
    255 * [-8, 7] = [-2040, 1785] (12 bits, registered: its own pipeline stage), plus the bias
    register [-128, 127] << 5 = [-4096, 4064]. The sum [-6136, 5849] needs 14 bits; both operands
    can be negative, so both are live up to bit 13, and the bias's 5 known-zero low bits pass
    through: 8 adder bits. Flip-flops: 12 (product) + 14 (output); active registers 4 + 8 = 12.
    """
    acc_frac = 11
    w_shift, b_shift = acc_frac - (8 + 3), acc_frac - 6
    tree = datapath.configurable_dot_product(8, 4, 1, 8, w_shift, b_shift)
    cost = datapath.tree_cost(tree)
    assert cost.multipliers == 1 and (cost.x_bits, cost.w_bits) == (8, 4)
    assert cost.adder_bits == (8,)
    assert cost.out_bits == (14,)
    assert cost.pipeline_bits == 12 + 14
    assert cost.register_bits == 4 + 8
    assert cost.stages == 2          # multiplier, then the adder into the output register
    # The estimator's own helper builds the same tree from the spec.
    same = datapath.tree_cost(configurable_trees(spec.input_format, spec.trainable_weights, spec.trainable_bias, 1, 1))
    assert same == cost


def test_design_level_counts_by_hand(spec):
    """MACs per pixel: block 1 has 1x1x1 -> 2 frozen and 2 x (1x1x1 -> 1) trainable = 4; block 2
    has 1x1x2 -> 2 frozen = 4, 2 x 1 trainable, 2 alpha blends = 8; the head's 4 x 5 dense runs
    once per 64-pixel frame = 0.3125. Total 12.3125, so the general accelerator has 13 MACs.
    Weights: frozen 2 + 2 biases + 4 + 2 biases = 10; configurable 2 x (1 + 1) + 2 x (1 + 1) + 2 alphas
    + 20 + 5 = 35; 45 weights of 4 bits = 180 bits: one RAMB18 holds them, and 180 / 64 cycles = 3
    bits per cycle is within one port.
    Register words (fields on fresh words, codes in 8-bit slots, 4 per word): b1 A kernel, bias, B kernel,
    bias = 4; b2 A alpha, kernel, bias and B = 6; head kernel 20 codes = 5 words, head bias 5 codes
    = 2 words: 17. The twin adds b1.frozen kernel (2 codes), bias (2), b2.frozen kernel (4), bias (2):
    one word each, 21.
    """
    work = network_work(spec)
    assert work.macs_per_pixel == pytest.approx(12.3125)
    assert work.weights == 45
    est = estimate(spec, CODES)
    general = est.designs["general"]
    assert "13 MACs of 9x4 bits" in general.layers[0].note
    assert next(layer for layer in general.layers if layer.name == "weight_buffer").resources.bram18 == 1
    assert twin_register_words(spec) == 21
    assert "shadow bank 17 x 32 bits" in est.designs["semifreddo"].layers[-1].note
    assert "shadow bank 21 x 32 bits" in est.designs["configurable"].layers[-1].note
    for design in est.designs.values():
        assert design.cycles_per_frame == 64


def test_layer_luts_composed_by_hand_from_the_table(spec):
    """The block-1 frozen layer of the IP, priced from the committed table's coefficients:
    adders (18 live bits, 2 adders, none chained), no line buffer (1x1 kernel), an 8-bit window
    register, two requantizers (11-bit accumulator, drop 11 - 3 = 8 bits, u4 output: the rounded
    value has 11 - 8 = 3 bits, so it never exceeds 4 bits and there is no saturation logic), and a
    stream FIFO of 2 x 4 bits."""
    table = json.loads(DEFAULT_TABLE.read_text())
    c = {name: model["coefficients"] for name, model in table["models"].items() if not model.get("lookup")}
    adder = c["adder"]["lut"]["adder_bits"] * 18 + c["adder"]["lut"]["adders"] * 2
    requantize = c["requantize"]["lut"]["one"]
    fifo = c["fifo"]["lut"]["bits"] * 8 + c["fifo"]["lut"]["one"]
    window = c["register"]["lut"]["bits"] * 8 + c["register"]["lut"]["one"]
    expected = adder + 2 * requantize + fifo + window
    layer = next(layer for layer in estimate(spec, CODES).designs["semifreddo"].layers if layer.name == "b1.frozen")
    assert layer.resources.lut == pytest.approx(expected, rel=1e-9)
    ff = (c["register"]["ff"]["bits"] * 8 + c["register"]["ff"]["one"] + 20
          + 2 * c["requantize"]["ff"]["one"] + c["fifo"]["ff"]["bits"] * 8 + c["fifo"]["ff"]["one"])
    assert layer.resources.ff == pytest.approx(ff, rel=1e-9)


def test_without_a_frozen_core_the_ip_is_its_own_twin():
    """Nothing frozen: the IP and its fully configurable twin are the same hardware.

    The general accelerator runs at the same frame rate. digits has 3x3 'same' convolutions on 8x8
    frames, which hls4ml streams padded to 10x10, so a frame takes 100 cycles in the IP; the MAC array
    only needs the network's MACs per frame spread over those 100 cycles: macs_per_pixel x 64 / 100.
    """
    import math

    from semifreddo.models.spec import load_spec

    # Unrolled repeats: every layer streams one padded frame per period at every repeat count.
    spec = load_spec("digits").with_frozen_fraction(0).replace(repeat_hardware="unrolled")
    est = estimate(spec, None)
    ip, twin = est.designs["semifreddo"].metrics(), est.designs["configurable"].metrics()
    assert ip == twin
    for design in est.designs.values():
        assert design.cycles_per_frame == 10 * 10
    macs = math.ceil(network_work(spec).macs_per_pixel * 64 / 100)
    assert f"{macs} MACs of" in est.designs["general"].layers[0].note


def test_weight_banks_priced_by_hand(spec):
    """hardware.banks: 3 on the tiny spec. Register bits: block 1, two cores of an s4 kernel code and
    an s8 bias = 24; block 2, two cores of a u5 alpha (4 fractional bits, 1.0 representable), s4 and
    s8 = 34; head 20 x s4 + 5 x s8 = 120: 178 bits. What three banks add to the one-bank IP: three
    banks and the frame's selected copy, less the bank the layers already count, 3 x 178 = 534
    flip-flops (the table: a register is one FF a bit, no LUT); a 3:1 multiplexer a bit, one LUT6:
    178 LUTs; a FIFO of 2-bit bank numbers to each of the 7 processes with registers (b1 A and B
    convs, b2 A and B blends and convs, the head): 7 x (2 + 8) LUTs and 7 x (2 x 2 + 2) FFs (the
    table's FIFO: a LUT a bit plus 8, two FFs a bit plus 2). 248 LUTs, 576 FFs. One bank adds nothing."""
    three = estimate(spec.replace(banks=3), CODES)
    row = next(layer for layer in three.designs["semifreddo"].layers if layer.name == "banks")
    assert row.resources.lut == pytest.approx(248) and row.resources.ff == pytest.approx(576)
    assert row.resources.dsp == 0 and row.resources.bram18 == 0
    one = estimate(spec, CODES)
    assert "banks" not in [layer.name for layer in one.designs["semifreddo"].layers]
    assert one.bank_prices[1].lut == 0 and one.bank_prices[1].ff == 0 and one.bank_prices[3] == row.resources
    # The rest of the IP, the frozen core included, does not grow with the bank count.
    rest = [(layer.name, layer.resources) for layer in three.designs["semifreddo"].layers if layer.name != "banks"]
    assert rest == [(layer.name, layer.resources) for layer in one.designs["semifreddo"].layers]
