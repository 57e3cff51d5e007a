"""The estimator: resources, latency and power of three designs for one spec.

``semifreddo``
    The SemifreddoNet IP as the converter builds it (hls_project/README.md): a streaming dataflow
    at one pixel per clock; frozen convs as constant shift-add trees from the **actual frozen
    codes**, trainable cores with real multipliers fed by active registers, alpha blends, the
    repeat copies of the last block with their gate muxes, the head, the register bank.
``configurable``
    Its fully configurable twin: the same dataflow with every frozen weight a register feeding a
    real multiplier (what the IP would cost without freezing).
``general``
    A general-purpose accelerator at the same throughput, in the style of QUIDAM's PE arrays and
    FINN-R's cost model: one weight-stationary array of multiply-accumulate units shared by all
    layers in turn (layer-serial), sized so a frame takes as many cycles as in the IP, with every
    weight in a weight buffer, double-buffered feature maps, a sliding-window unit, requantizers
    and control. It is given the benefit of the doubt: perfect MAC utilization and one multiplier
    format for all layers (the widest weight and activation formats); it does not skip zeros.

Every layer row is priced by the unit-cost table (:class:`.costs.UnitCosts`); the power model is
:mod:`.power`. All figures are estimates and are labelled with the table they came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from semifreddo.deploy.regmap import slot_bits_for
from semifreddo.models.fixedpoint import Fixed, sum_of_products
from semifreddo.models.spec import Spec

from . import datapath, power
from .costs import AREA_NOTE, Resources, UnitCosts

DEFAULT_CLOCK_MHZ = 100.0      # PYNQ's default fabric clock (FCLK_CLK0)
BRAM18_BITS = 18 * 1024
BRAM18_PORT_BITS = 36          # a RAMB18 in simple dual-port mode reads 36 bits per cycle (UG473)
DESIGNS = ("semifreddo", "configurable", "general")
TITLES = {"semifreddo": "SemifreddoNet IP", "configurable": "fully configurable twin",
          "general": "general-purpose accelerator"}


@dataclass
class Layer:
    name: str
    resources: Resources
    pj_per_cycle: float = 0.0       # dynamic energy per clock cycle (one input pixel)
    latency: int = 0                # cycles this stage adds on the critical path
    note: str = ""
    macs: float = 0.0               # multiply-accumulates per clock cycle


@dataclass
class Design:
    name: str
    layers: list[Layer]
    cycles_per_frame: int
    latency_cycles: int
    clock_mhz: float
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return TITLES[self.name]

    @property
    def total(self) -> Resources:
        total = Resources()
        for layer in self.layers:
            total = total + layer.resources
        return total

    @property
    def power_mw(self) -> float:
        return power.power_mw(sum(layer.pj_per_cycle for layer in self.layers), self.clock_mhz)

    @property
    def frames_per_second(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_frame

    def metrics(self) -> dict[str, float]:
        total = self.total
        return {"lut": total.lut, "ff": total.ff, "dsp": total.dsp, "bram18": total.bram18,
                "area": total.area, "power_mw": self.power_mw}


@dataclass
class Estimate:
    spec: Spec
    core_id: str | None
    designs: dict[str, Design]
    table: str
    dsp: bool

    def ratios(self) -> dict[str, dict[str, float]]:
        """Each baseline's metrics divided by the SemifreddoNet IP's (so 10 means 10x more)."""
        ip = self.designs["semifreddo"].metrics()
        return {name: {key: (value / ip[key] if ip[key] else math.nan) for key, value in d.metrics().items()}
                for name, d in self.designs.items() if name != "semifreddo"}

    @property
    def label(self) -> str:
        policy = "DSP48E1" if self.dsp else "LUTs"
        return (f"ESTIMATE from unit-cost table {self.table}; configurable multipliers in {policy}; "
                f"{AREA_NOTE}; power: {power.ENERGY_SOURCE}")


# --------------------------------------------------------------------------------------------
# Building blocks shared by the dataflow designs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Conv:
    """One conv of the dataflow: its input stream and its output channels' dot products."""

    name: str
    in_fmt: Fixed
    c_in: int
    k: int
    cost: datapath.TreeCost        # all output channels
    acc_frac: int                  # fractional bits of the exact accumulator
    out_fmt: Fixed
    registers: bool                # count the active registers (False for repeat copies)


def _acc_frac(in_fmt: Fixed, w_fmt: Fixed, n: int, b_fmt: Fixed) -> int:
    return sum_of_products(in_fmt, w_fmt, n, b_fmt).frac


def _shifts(in_fmt: Fixed, w_fmt: Fixed, n: int, b_fmt: Fixed) -> tuple[int, int]:
    """How far products and bias are shifted left to line up in the exact accumulator."""
    acc = sum_of_products(in_fmt, w_fmt, n, b_fmt)
    return acc.frac - (in_fmt.frac + w_fmt.frac), acc.frac - b_fmt.frac


def constant_trees(in_fmt: Fixed, w_fmt: Fixed, b_fmt: Fixed, kernel: np.ndarray, bias: np.ndarray) -> list:
    """One constant dot product per output channel of a frozen conv, from its integer codes."""
    n = int(np.prod(kernel.shape[:-1]))
    w_shift, b_shift = _shifts(in_fmt, w_fmt, n, b_fmt)
    flat = kernel.reshape(n, kernel.shape[-1])
    return [datapath.constant_dot_product(in_fmt.bits, flat[:, c], int(bias[c]), w_shift, b_shift)
            for c in range(flat.shape[1])]


def configurable_trees(in_fmt: Fixed, w_fmt: Fixed, b_fmt: Fixed, n: int, c_out: int) -> list:
    """One configurable dot product per output channel (weights and bias in registers)."""
    w_shift, b_shift = _shifts(in_fmt, w_fmt, n, b_fmt)
    return [datapath.configurable_dot_product(in_fmt.bits, w_fmt.bits, n, b_fmt.bits, w_shift, b_shift)] * c_out


def _tree_energy(cost: datapath.TreeCost) -> float:
    energy = power.add_pj(sum(cost.adder_bits))
    if cost.multipliers:
        energy += cost.multipliers * power.multiply_pj(cost.x_bits + 1, cost.w_bits)
    return energy


def conv_layer(conv: _Conv, width: int, costs: UnitCosts, dsp: bool) -> Layer:
    """Line buffer, window, one dot product per output channel, requantizers, output FIFO."""
    bits = conv.in_fmt.bits
    rows = (conv.k - 1) * conv.c_in
    r = rows * costs.shift_register(width, bits) + costs.register(conv.k * conv.k * conv.c_in * bits)
    energy = 2 * rows * bits * power.sram_pj_per_bit(rows * width * bits)     # line buffer write + read
    drop = conv.acc_frac - conv.out_fmt.frac
    cost = conv.cost
    r = r + costs.tree(cost, dsp, registers=conv.registers)
    energy += _tree_energy(cost)
    for acc_bits in cost.out_bits:
        r = r + costs.requantize(acc_bits, drop, conv.out_fmt.bits, conv.out_fmt.signed)
        energy += power.add_pj(acc_bits)
    channels = len(cost.out_bits)
    r = r + costs.fifo(channels * conv.out_fmt.bits)
    latency = (conv.k // 2) * (width + 1) + cost.stages + 2       # look-ahead, adder pipeline, requantize, FIFO
    kind = "configurable" if cost.multipliers else "constant"
    return Layer(conv.name, r, energy, latency, f"{conv.k}x{conv.k}x{conv.c_in} -> {channels}, {kind} weights",
                 conv.k * conv.k * conv.c_in * channels)


def blend_layer(spec: Spec, name: str, costs: UnitCosts, dsp: bool, registers: bool, shuffle: bool) -> Layer:
    """Per channel: d = f - t, p = alpha * d, out = requantize(t + p); plus the core-shuffle mux."""
    a = spec.activations.bits
    alpha = spec.alpha_format
    t = spec.trainable_width
    product_bits = alpha.bits + 1 + a + 1
    sum_bits = product_bits + 1
    per_channel = (Resources(lut=costs.adders([a + 1, a + 2]), ff=(a + 1) + product_bits + sum_bits)
                   + costs.multiplier(alpha.bits, a + 1, dsp) + costs.requantize(sum_bits, alpha.frac, a))
    r = t * per_channel
    if registers:
        r = r + costs.register(t * alpha.bits)
    if shuffle:
        r = r + costs.mux2(t * a)
    r = r + costs.fifo(t * a)
    energy = t * (power.add_pj(2 * a + 3) + power.multiply_pj(alpha.bits + 1, a + 1) + power.add_pj(sum_bits))
    return Layer(name, r, energy, 4, f"{t} channels, alpha {alpha.describe()}" + (", core shuffle" if shuffle else ""))


def twin_register_words(spec: Spec) -> int:
    """Shadow-bank words of the fully configurable twin: the spec's register map plus every frozen
    tensor as one more field (each field on fresh words, codes in 8/16/32-bit slots: deploy.regmap)."""
    from semifreddo.models.layout import frozen_tensors, register_map

    extra = sum(math.ceil(int(np.prod(t.shape)) / (32 // slot_bits_for(t.fmt.bits))) for t in frozen_tensors(spec))
    return register_map(spec).n_words + extra


# --------------------------------------------------------------------------------------------
# The two dataflow designs
# --------------------------------------------------------------------------------------------

def dataflow_design(spec: Spec, codes: dict | None, costs: UnitCosts, *, frozen_constant: bool, dsp: bool,
                    clock_mhz: float, n_words: int) -> Design:
    h, w, c0 = spec.input_shape
    act = spec.activations
    layers: list[Layer] = []
    frozen_fmt, bias_fmt = spec.frozen_weights.storage, spec.frozen_bias

    tree_costs: dict[tuple, datapath.TreeCost] = {}       # the repeat copies and both cores share structures

    def frozen_conv(b: int, name: str, registers: bool) -> Layer:
        in_fmt = spec.input_format if b == 1 else act
        k, c_in = spec.kernels[b - 1], spec.block_in_channels(b, "frozen")
        if ("frozen", b) not in tree_costs:
            if frozen_constant:
                trees = constant_trees(in_fmt, frozen_fmt, bias_fmt, codes[f"b{b}.frozen.kernel"],
                                       codes[f"b{b}.frozen.bias"])
            else:
                trees = configurable_trees(in_fmt, frozen_fmt, bias_fmt, k * k * c_in, spec.frozen_width)
            tree_costs["frozen", b] = datapath.tree_cost(trees)
        acc_frac = _acc_frac(in_fmt, frozen_fmt, k * k * c_in, bias_fmt)
        return conv_layer(_Conv(name, in_fmt, c_in, k, tree_costs["frozen", b], acc_frac, act, registers),
                          w, costs, dsp)

    def trainable_conv(b: int, name: str, registers: bool) -> Layer:
        in_fmt = spec.input_format if b == 1 else act
        k, c_in = spec.kernels[b - 1], spec.block_in_channels(b, "core")
        if ("trainable", b) not in tree_costs:
            tree_costs["trainable", b] = datapath.tree_cost(configurable_trees(
                in_fmt, spec.trainable_weights, spec.trainable_bias, k * k * c_in, spec.trainable_width))
        acc_frac = _acc_frac(in_fmt, spec.trainable_weights, k * k * c_in, spec.trainable_bias)
        return conv_layer(_Conv(name, in_fmt, c_in, k, tree_costs["trainable", b], acc_frac, act, registers),
                          w, costs, dsp)

    def block(b: int, prefix: str, registers: bool) -> list[Layer]:
        out, path = [], 0
        if spec.frozen_width:
            out.append(frozen_conv(b, f"{prefix}.frozen", registers))
        for core in ("A", "B"):
            core_latency = 0
            if b > 1 and spec.frozen_width:
                out.append(blend_layer(spec, f"{prefix}.{core}.blend", costs, dsp, registers, b in spec.shuffle_blocks))
                core_latency += out[-1].latency
            out.append(trainable_conv(b, f"{prefix}.{core}", registers))
            path = max(path, core_latency + out[-1].latency)
        if spec.frozen_width:
            path = max(path, out[0].latency)
        return out, path

    latency = 1                                   # input FIFO
    layers.append(Layer("input", costs.fifo(c0 * spec.input_bits), 0.0, 1, "input stream FIFO"))
    for b in range(1, spec.blocks + 1):
        block_layers, path = block(b, f"b{b}", True)
        layers += block_layers
        latency += path
    n = spec.blocks
    channels = spec.head_in_channels
    for j in range(2, spec.repeat_max + 1):
        block_layers, path = block(n, f"b{n}r{j}", False)
        gate_bits = channels * act.bits
        gate = Layer(f"b{n}r{j}.gate", costs.mux2(gate_bits), 0.0, 1, f"repeat gate, {channels} channels")
        layers += block_layers + [gate]
        latency += path + 1

    head, head_latency = head_layer(spec, costs, dsp)
    layers.append(head)
    latency += head_latency
    layers.append(bank_layer(n_words, costs))
    name = "semifreddo" if frozen_constant else "configurable"
    period = frame_period(spec)
    return Design(name, layers, period, period + latency, clock_mhz)


def frame_period(spec: Spec) -> int:
    """Clock cycles per frame. hls4ml's io_stream convolutions with 'same' padding read a frame that a
    separate stage has padded to (h + k - 1) x (w + k - 1) pixels, one per clock, so the widest
    kernel sets the period; the general-purpose baseline is sized for the same frame rate."""
    h, w, _ = spec.input_shape
    pad = max(spec.kernels) - 1
    return (h + pad) * (w + pad)


def head_layer(spec: Spec, costs: UnitCosts, dsp: bool) -> tuple[Layer, int]:
    h, w, _ = spec.input_shape
    act = spec.activations
    channels, outputs = spec.head_in_channels, spec.head_outputs
    weights, bias, out = spec.head_weights, spec.head_bias, spec.head_output
    registers = costs.register(channels * outputs * weights.bits + outputs * bias.bits)
    if spec.head_type == "classify":
        pool = sum_of_products(act, Fixed(1, 0, False), h * w)
        acc = sum_of_products(act, weights, channels, bias)
        # The dense layer runs once per frame, folded over the frame's pixels.
        lanes = math.ceil(channels * outputs / (h * w))
        per_lane = (costs.multiplier(act.bits, weights.bits, dsp) + costs.accumulator(acc.bits, act.bits + weights.bits)
                    + costs.mux(math.ceil(channels * outputs / lanes), weights.bits) + costs.mux(channels, act.bits))
        divide = (h * w).bit_length() - 1          # the average is a shift: h * w is a power of two
        r = (channels * (costs.accumulator(pool.bits, act.bits) + costs.requantize(pool.bits, divide, act.bits))
             + lanes * per_lane + registers + costs.requantize(acc.bits, acc.frac - out.frac, out.bits, True)
             + costs.fifo(32))
        energy = (channels * power.add_pj(pool.bits)
                  + channels * outputs / (h * w)
                  * (power.multiply_pj(act.bits + 1, weights.bits) + power.add_pj(acc.bits)))
        cycles = math.ceil(channels * outputs / lanes) + outputs + 3
        note = f"pool {channels} channels, dense {channels}x{outputs} on {lanes} multiplier(s) folded over the frame"
        return Layer("head", r, energy, cycles, note), cycles
    cost = datapath.tree_cost(configurable_trees(act, weights, bias, channels, outputs))
    r = costs.tree(cost, dsp) + costs.fifo(32)
    energy = _tree_energy(cost)
    drop = _acc_frac(act, weights, channels, bias) - out.frac
    for acc_bits in cost.out_bits:
        r = r + costs.requantize(acc_bits, drop, out.bits, True)
        energy += power.add_pj(acc_bits)
    latency = cost.stages + 2
    return Layer("head", r, energy, latency, f"1x1 conv {channels} -> {outputs}, configurable"), latency


def bank_layer(n_words: int, costs: UnitCosts) -> Layer:
    r = costs.bank(n_words) + costs.commit(n_words) + costs.axilite()
    return Layer("registers", r, 0.0, 0, f"shadow bank {n_words} x 32 bits, commit copy, AXI-Lite slave")


# --------------------------------------------------------------------------------------------
# The general-purpose accelerator
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Work:
    macs_per_pixel: float
    inputs_per_pixel: float           # activation bits the layers read per input pixel
    outputs_per_pixel: float          # activation bits the layers write per input pixel
    weights: int                      # every weight and bias the accelerator must hold
    acc_bits: int                     # widest accumulator
    widest_features: int              # most channels alive at once (all cores of a block)
    k_max: int


def network_work(spec: Spec) -> _Work:
    """What the network computes per input pixel, at the most repeats the IP supports."""
    h, w, _ = spec.input_shape
    act, t, f = spec.activations, spec.trainable_width, spec.frozen_width
    macs = reads = writes = 0.0
    acc_bits = 0
    for b in list(range(1, spec.blocks + 1)) + [spec.blocks] * (spec.repeat_max - 1):
        k = spec.kernels[b - 1]
        in_fmt = spec.input_format if b == 1 else act
        for width, c_in, w_fmt, b_fmt in ((f, spec.block_in_channels(b, "frozen"), spec.frozen_weights.storage,
                                           spec.frozen_bias),
                                          (2 * t, spec.block_in_channels(b, "core"), spec.trainable_weights,
                                           spec.trainable_bias)):
            if width:
                macs += k * k * c_in * width
                reads += c_in * in_fmt.bits * (2 if width == 2 * t else 1)
                writes += width * act.bits
                acc_bits = max(acc_bits, sum_of_products(in_fmt, w_fmt, k * k * c_in, b_fmt).bits)
        if b > 1 and f:
            macs += 2 * t                                   # alpha blends
            reads += 2 * t * 2 * act.bits
            writes += 2 * t * act.bits
    channels = spec.head_in_channels
    head = channels * spec.head_outputs
    per_pixel = 1.0 / (h * w) if spec.head_type == "classify" else 1.0
    macs += head * per_pixel
    reads += channels * act.bits * per_pixel
    writes += spec.head_outputs * spec.head_output.bits * per_pixel
    acc_bits = max(acc_bits, sum_of_products(act, spec.head_weights, channels, spec.head_bias).bits)
    return _Work(macs, reads, writes, spec.parameter_counts()["total"], acc_bits, channels, max(spec.kernels))


def general_design(spec: Spec, costs: UnitCosts, *, dsp: bool, clock_mhz: float) -> Design:
    """A weight-stationary MAC array (QUIDAM's and the TPU's organization): each MAC holds its
    weight in a double-buffered register, multiplies the activation passing through, and adds the
    partial sum passing down; the weight buffer reloads the array layer by layer, so each weight is
    read once per frame."""
    h, w, _ = spec.input_shape
    act = spec.activations
    work = network_work(spec)
    x_bits = max(spec.input_bits, act.bits)
    w_bits = max(spec.frozen_weights.storage.bits if spec.frozen_width else 0, spec.trainable_weights.bits,
                 spec.head_weights.bits)
    period = frame_period(spec)
    macs = math.ceil(work.macs_per_pixel * h * w / period)   # MAC units for one frame per IP frame period
    layers = []

    per_mac = (costs.multiplier(x_bits, w_bits, dsp)
               # flip-flops: partial sum, double-buffered weight, activation passed on, product register
               + Resources(lut=costs.adders([work.acc_bits]),
                           ff=work.acc_bits + 2 * w_bits + x_bits + (x_bits + 1 + w_bits)))
    mac_energy = macs * (power.multiply_pj(x_bits + 1, w_bits) + power.add_pj(work.acc_bits))
    layers.append(Layer("mac_array", macs * per_mac, mac_energy, 2,
                        f"{macs} MACs of {x_bits + 1}x{w_bits} bits, {work.acc_bits}-bit partial sums", macs))

    weight_bits = work.weights * w_bits
    per_cycle = math.ceil(weight_bits / period)
    weight_brams = max(math.ceil(weight_bits / BRAM18_BITS), math.ceil(per_cycle / BRAM18_PORT_BITS))
    layers.append(Layer("weight_buffer", Resources(bram18=weight_brams),
                        per_cycle * power.sram_pj_per_bit(weight_bits), 1,
                        f"{work.weights} weights x {w_bits} bits, each read once per frame"))

    feature_bits = h * w * work.widest_features * act.bits
    reads, writes = math.ceil(work.inputs_per_pixel), math.ceil(work.outputs_per_pixel)
    act_brams = 2 * max(math.ceil(feature_bits / BRAM18_BITS),
                        math.ceil(reads / BRAM18_PORT_BITS) + math.ceil(writes / BRAM18_PORT_BITS))
    layers.append(Layer("activation_buffers", Resources(bram18=act_brams),
                        (reads + writes) * power.sram_pj_per_bit(feature_bits), 1,
                        f"ping-pong feature maps of {work.widest_features} channels"))

    requantizers = work.widest_features
    rows = (work.k_max - 1) * work.widest_features
    window = (rows * costs.shift_register(w, act.bits)
              + costs.register(work.k_max ** 2 * work.widest_features * act.bits)
              + requantizers * costs.requantize(work.acc_bits, spec.trainable_weights.frac, act.bits))
    layers.append(Layer("window_requantize", window,
                        2 * rows * act.bits * power.sram_pj_per_bit(rows * w * act.bits)
                        + requantizers * power.add_pj(work.acc_bits),
                        (work.k_max // 2) * (w + 1), f"line buffers for {work.k_max}x{work.k_max} windows, "
                                                     f"{requantizers} requantizers"))

    control = 6 * costs.accumulator(16, 1) + costs.fifo(x_bits) + costs.fifo(32)
    layers.append(Layer("control", control, 0.0, 0, "six 16-bit loop counters, input and output FIFOs"))
    layers.append(Layer("registers", costs.axilite(), 0.0, 0, "AXI-Lite slave"))
    n_layers = spec.blocks + spec.repeat_max
    latency = sum(layer.latency for layer in layers) * n_layers
    design = Design("general", layers, period, period + latency, clock_mhz)
    design.notes.append("perfect MAC utilization, one multiplier format for all layers, no zero skipping")
    return design


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def estimate(spec: Spec, codes: dict | None, costs: UnitCosts | None = None, *, dsp: bool = False,
             clock_mhz: float = DEFAULT_CLOCK_MHZ, core_id: str | None = None) -> Estimate:
    """Estimate all three designs. ``codes`` are the frozen core's integer codes
    (``FrozenCore.codes``); they are required when the spec has a frozen core."""
    from semifreddo.models.layout import register_map

    costs = costs or UnitCosts.load()
    if spec.frozen_width and codes is None:
        raise ValueError("the frozen codes are needed to estimate a spec with a frozen core")
    n_words = register_map(spec).n_words
    designs = {
        "semifreddo": dataflow_design(spec, codes, costs, frozen_constant=True, dsp=dsp, clock_mhz=clock_mhz,
                                      n_words=n_words),
        "configurable": dataflow_design(spec, codes, costs, frozen_constant=False, dsp=dsp, clock_mhz=clock_mhz,
                                        n_words=twin_register_words(spec)),
        "general": general_design(spec, costs, dsp=dsp, clock_mhz=clock_mhz),
    }
    return Estimate(spec, core_id, designs, costs.source, dsp)
