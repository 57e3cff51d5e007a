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

from semifreddo.deploy.contract.boards import BOARDS, FIT_LIMITS
from semifreddo.deploy.contract.interface import MAX_BANKS, bank_bits
from semifreddo.deploy.contract.regmap import slot_bits_for
from semifreddo.models import network as net
from semifreddo.models.fixedpoint import Fixed, sum_of_products
from semifreddo.models.spec import Spec

from ..plan import HardwarePlan, dsp_slices, group_fifo_depth, hardware_layout, twin_layout

from . import datapath, power
from .costs import AREA_NOTE, Resources, UnitCosts

DEFAULT_CLOCK_MHZ = 100.0      # PYNQ's default fabric clock (FCLK_CLK0)
BRAM18_BITS = 18 * 1024
BRAM18_PORT_BITS = 36          # a RAMB18 in simple dual-port mode reads 36 bits per cycle (UG473)
# The general-purpose accelerator keeps its two feature maps (ping-pong) on chip when both fit in
# this much SRAM, and in external DRAM otherwise (power.DRAM_PJ_PER_BIT). Our choice, generous to
# the accelerator: 512 KiB, almost five times Eyeriss's 108 KB global buffer (Chen et al., JSSC 2017).
GENERAL_FEATURE_BUFFER_BITS = 512 * 1024 * 8
DRAM_BURST_WORDS = 256          # a burst buffer on each DRAM stream: 256 beats (AXI4's longest burst)
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
    role: str = ""                  # "frozen" or "trainable" for the convs of the blocks
    busy: int | None = None         # cycles it works per frame (per pass); None: every cycle
    in_group: bool = False          # part of the reused repeat group: works once per pass
    between_passes: bool = False    # works once per pass after the first (a DDR frame buffer's traffic)
    line_buffer: Resources = field(default_factory=Resources)   # the part of ``resources`` that holds image lines


@dataclass
class Design:
    name: str
    layers: list[Layer]
    cycles_per_frame: int             # at the repeat count it is compared at (repeat.default)
    latency_cycles: int
    clock_mhz: float
    notes: list[str] = field(default_factory=list)
    cycles_by_repeat: dict[int, int] = field(default_factory=dict)   # clock cycles per frame at each repeat count
    repeat: int = 1

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
        return self.power_at(self.repeat)

    def power_at(self, repeat: int) -> float:
        """Dynamic power at ``repeat``: each stage's energy for a frame (a reused group's stages once a
        pass), times frames per second."""
        cycles = self.cycles_by_repeat.get(repeat, self.cycles_per_frame)
        per_frame = sum(layer.pj_per_cycle * (layer.busy or cycles)
                        * (repeat - 1 if layer.between_passes else repeat if layer.in_group else 1)
                        for layer in self.layers)
        return power.power_mw(per_frame / cycles, self.clock_mhz)

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
    general_by_repeat: dict[int, Design] = field(default_factory=dict)   # the baseline at each repeat's throughput
    bank_prices: dict[int, Resources] = field(default_factory=dict)      # what N weight banks add, per count allowed
    configurable: Resources = field(default_factory=Resources)           # the configurable cores, for comparison

    def ratios(self) -> dict[str, dict[str, float]]:
        """Each baseline's metrics divided by the SemifreddoNet IP's (so 10 means 10x more)."""
        ip = self.designs["semifreddo"].metrics()
        return {name: {key: (value / ip[key] if ip[key] else math.nan) for key, value in d.metrics().items()}
                for name, d in self.designs.items() if name != "semifreddo"}

    @property
    def label(self) -> str:
        policy = {"auto": f"in DSP48E1s while {self.spec.hardware.board}'s last, then in LUTs (layer by layer)",
                  "dsp": "in DSP48E1s", "lut": "in LUTs"}[self.spec.hardware.multipliers]
        return (f"ESTIMATE from unit-cost table {self.table}; configurable multipliers {policy}; "
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
    graph: object = None           # an adder graph's cost (adder_graph.GraphCost) instead of ``cost``


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
    lines = rows * costs.shift_register(width, bits)       # hls4ml's line buffer: ap_shift_reg rows, in SRLs
    r = lines + costs.register(conv.k * conv.k * conv.c_in * bits)
    energy = 2 * rows * bits * power.sram_pj_per_bit(rows * width * bits)     # line buffer write + read
    drop = conv.acc_frac - conv.out_fmt.frac
    if conv.graph is not None:
        # da4ml's adder graph: its cost is the adders' live bits (a LUT each on 7-series), its
        # registers the pipeline's (less the input register: the window above holds the inputs).
        graph = conv.graph
        r = r + Resources(lut=graph.lut, ff=graph.ff - graph.input_ff)
        energy += power.add_pj(graph.lut)
        out_bits, stages = conv.cost.out_bits, graph.stages
        kind = f"adder graph of {graph.adders} adders (da4ml)"
    else:
        cost = conv.cost
        r = r + costs.tree(cost, dsp, registers=conv.registers)
        energy += _tree_energy(cost)
        out_bits, stages = cost.out_bits, cost.stages
        kind = "configurable weights" if cost.multipliers else "constant weights"
    for acc_bits in out_bits:
        r = r + costs.requantize(acc_bits, drop, conv.out_fmt.bits, conv.out_fmt.signed)
        energy += power.add_pj(acc_bits)
    channels = len(out_bits)
    r = r + costs.fifo(channels * conv.out_fmt.bits)
    latency = (conv.k // 2) * (width + 1) + stages + 2       # look-ahead, adder pipeline, requantize, FIFO
    note = f"{conv.k}x{conv.k}x{conv.c_in} -> {channels}, {kind}"
    if rows:
        note += f"; line buffer {rows} x {width} x {bits} bits in SRLs, {lines.lut:,.0f} LUT"
    return Layer(conv.name, r, energy, latency, note, conv.k * conv.k * conv.c_in * channels, line_buffer=lines)


def blend_layer(spec: Spec, layer: net.Layer, name: str, costs: UnitCosts) -> Layer:
    """Per channel: d = f - t, p = alpha * d, out = requantize(t + p); plus the core-shuffle mux."""
    a = layer.result.bits
    alpha = layer.alpha_fmt
    t = layer.c_out
    product_bits = alpha.bits + 1 + a + 1
    sum_bits = product_bits + 1
    per_channel = (Resources(lut=costs.adders([a + 1, a + 2]), ff=(a + 1) + product_bits + sum_bits)
                   + costs.multiplier(*layer.multiplier_operands, layer.multiplier == "dsp")
                   + costs.requantize(sum_bits, alpha.frac, a))
    r = t * per_channel
    if layer.copy_of is None:
        r = r + costs.register(t * alpha.bits)
    if layer.shuffle:
        r = r + costs.mux2(t * a)
    r = r + costs.fifo(t * a)
    energy = t * (power.add_pj(2 * a + 3) + power.multiply_pj(alpha.bits + 1, a + 1) + power.add_pj(sum_bits))
    return Layer(name, r, energy, 4, f"{t} channels, alpha {alpha.describe()}" + (", core shuffle" if layer.shuffle
                                                                                   else "") + _in(layer))


def _in(layer: net.Layer) -> str:
    """Where a layer's configurable multipliers are, for its row's note."""
    return f", multipliers in {layer.multiplier.upper()}" if layer.multiplier else ""


def twin_register_words(spec: Spec) -> int:
    """Shadow-bank words of the fully configurable twin: the spec's register map plus every frozen
    tensor as one more field (each field on fresh words, codes in 8/16/32-bit slots: deploy.regmap)."""
    from semifreddo.models.layout import frozen_tensors, register_map

    extra = sum(math.ceil(int(np.prod(t.shape)) / (32 // slot_bits_for(t.fmt.bits))) for t in frozen_tensors(spec))
    return register_map(spec).n_words + extra


# --------------------------------------------------------------------------------------------
# The two dataflow designs
# --------------------------------------------------------------------------------------------

def dataflow_design(network: net.Network, codes: dict | None, costs: UnitCosts, *, frozen_constant: bool,
                    clock_mhz: float, n_words: int, graph_cache=None, cache_graphs: bool = True) -> Design:
    """One row per hardware stage of the network description; latency along its longest path."""
    spec = network.spec
    _, w, _ = spec.input_shape
    rows: list[Layer] = []
    ready: dict[str, int] = {}                        # cycle at which each layer's first output is ready
    tree_costs: dict[tuple, datapath.TreeCost] = {}   # repetitions and both cores share structures
    graphs: dict[str, object] = {}

    def graph_cost(layer: net.Layer):
        """The frozen layer's adder graph (solved by da4ml, or read from the converter's cache)."""
        from semifreddo.hls_project.adder_graph import GraphCache, adder_graph_cost

        if layer.original not in graphs:
            kernel, bias = (codes[p.name] for p in network.params_of(layer.original))
            graphs[layer.original] = adder_graph_cost(kernel, bias, layer.in_fmt, layer.weight_fmt, layer.bias_fmt,
                                                      cache=GraphCache(graph_cache, write=cache_graphs))
        return graphs[layer.original]

    def conv_cost(layer: net.Layer) -> datapath.TreeCost:
        constant = layer.frozen and frozen_constant
        key = ("constant", layer.original) if constant else (
            "configurable", layer.in_fmt, layer.weight_fmt, layer.bias_fmt, layer.n_terms, layer.c_out)
        if key not in tree_costs:
            if constant:
                kernel, bias = (codes[p.name] for p in network.params_of(layer.original))
                trees = constant_trees(layer.in_fmt, layer.weight_fmt, layer.bias_fmt, kernel, bias)
            else:
                trees = configurable_trees(layer.in_fmt, layer.weight_fmt, layer.bias_fmt, layer.n_terms, layer.c_out)
            tree_costs[key] = datapath.tree_cost(trees)
        return tree_costs[key]

    for layer in network.layers:
        row = None
        if layer.kind == "input":
            row = Layer("input", costs.fifo(layer.c_out * layer.result.bits), 0.0, 1, "input stream FIFO")
        elif layer.kind == "conv" and layer.core != "head":
            # A block's conv feeds a ReLU into the activation format; its requantizers are priced here.
            graph = graph_cost(layer) if frozen_constant and layer.implementation == "adder_graph" else None
            row = conv_layer(_Conv(f"{layer.tag}.{layer.core}", layer.in_fmt, layer.c_in, layer.kernel,
                                   conv_cost(layer), layer.accum.frac, spec.activations, layer.copy_of is None,
                                   graph), w, costs, layer.multiplier == "dsp")
            row.note += _in(layer)
            row.role = "frozen" if layer.frozen else "trainable"
        elif layer.kind == "blend":
            row = blend_layer(spec, layer, f"{layer.tag}.{layer.core}.blend", costs)
        elif layer.kind == "gate":
            bits = layer.c_out * layer.result.bits
            row = Layer(f"{layer.tag}.gate.{layer.core}", costs.mux2(bits), 0.0, 1,
                        f"repeat gate, {layer.c_out} channels")
        elif layer.kind in ("dense", "conv"):
            row = head_layer(network, layer, costs)
        if row is not None:
            row.in_group = network.reuse and network.in_group(layer)
            rows.append(row)
        ready[layer.name] = max((ready[name] for name in layer.inputs), default=0) + (row.latency if row else 0)
    rows.append(bank_layer(n_words, costs))
    name = "semifreddo" if frozen_constant else "configurable"
    period = frame_period(spec)
    by_repeat = {r: period for r in range(spec.repeat_min, spec.repeat_max + 1)}
    latency = ready[network.output.name]
    if network.reuse:
        # One pass of a frame through the group: its padded frame, plus filling its pipeline (passes
        # do not overlap). On chip, the frame buffer's halves are copied between passes (one pixel a
        # cycle); in DDR, a pass that reads or writes the buffer goes no faster than the HP port
        # carries its words (read and write channels apart), and no copy is needed.
        fill = max(ready[name] for name in network.group_outputs) - max(ready[name] for name in network.group_inputs)
        group_period = frame_period(spec, spec.repeated_blocks)
        h, w, _ = spec.input_shape
        one_pass = group_period + fill
        if network.frame_buffer == "ddr":
            buffered_pass = max(one_pass, ddr_pass_cycles(network))
            by_repeat = {r: max(period, one_pass if r == 1 else r * buffered_pass) for r in by_repeat}
            between = 0
        else:
            buffered_pass, between = one_pass, h * w
            by_repeat = {r: max(period, r * one_pass + (r - 1) * between) for r in by_repeat}
        stage = repeat_stage_layer(network, costs, buffered_pass)
        rows.append(stage)
        latency += (spec.repeat_default - 1) * (buffered_pass + between)
        for row in rows:
            row.busy = group_period if row.in_group else period
        stage.busy = buffered_pass if stage.between_passes else period
    cycles = by_repeat[spec.repeat_default]
    return Design(name, rows, cycles, cycles + latency, clock_mhz, cycles_by_repeat=by_repeat,
                  repeat=spec.repeat_default)


# LUTRAM by rule (UG474): a RAM64X1D, one 64 x 1-bit simple dual-port memory, takes 2 LUTs. Memories
# of up to LUTRAM_MAX_BITS go to LUTRAM, larger ones to RAMB18s (512 x 36 bits in simple dual port).
LUTRAM_MAX_BITS = 4096


def memory(depth: int, width: int) -> Resources:
    """A simple dual-port memory of ``depth`` words of ``width`` bits."""
    if depth * width <= LUTRAM_MAX_BITS:
        return Resources(lut=2 * math.ceil(depth / 64) * width)
    return Resources(bram18=math.ceil(width / 36) * math.ceil(depth / 512))


def ddr_pass_cycles(network: net.Network) -> int:
    """Cycles a pass needs to move one frame of DDR frame-buffer words through the board's HP port
    (its data width a cycle, each direction; 0 where the board has none, the emulated board)."""
    h, w, _ = network.spec.input_shape
    port = BOARDS[network.spec.hardware.board].hp_data_width
    return math.ceil(h * w * network.frame_word_bits / port) if port else 0


def repeat_stage_layer(network: net.Network, costs: UnitCosts, pass_cycles: int) -> Layer:
    """The reused group's frame buffer and its plumbing: the streams around the group
    (plan.group_fifo_depth pixels each), the source and sink multiplexers that pick the entry/exit
    streams or the buffer, the loop control, and the buffer itself: on chip an input and an output
    half per stream (one frame each); in DDR, the AXI master's burst buffers, with every pass
    after the first reading and writing a frame in DRAM."""
    h, w, _ = network.spec.input_shape
    widths = [network.layer(name).c_out * network.layer(name).result.bits for name in network.group_outputs]
    depth = group_fifo_depth(network)
    r = Resources()
    for bits in widths:
        r = r + 2 * memory(depth, bits) + 2 * costs.mux2(bits)
    r = r + 2 * costs.accumulator(16, 1)          # pixel and pass counters
    if network.frame_buffer == "ddr":
        word = network.frame_word_bits
        r = r + 2 * memory(DRAM_BURST_WORDS, word) + 2 * costs.accumulator(32, 1)   # burst buffers, addresses
        per_pass = 2 * h * w * word * power.DRAM_PJ_PER_BIT                           # a frame written and read
        port = BOARDS[network.spec.hardware.board].hp_data_width
        rate = f", {h * w * word / 8 / 1e6:,.2f} MB a pass each way" + (
            f" over a {port}-bit HP port" if port else "")
        return Layer("repeat_stage", r, per_pass / pass_cycles, 0,
                     f"frame buffer in DDR: 2 x {h * w:,} words of {word} bits ({network.frame_buffer_bits // 8:,} "
                     f"bytes used of {2 * h * w * word // 8:,}){rate}; {pass_cycles:,} cycles a pass; streams "
                     f"around the group {depth} pixels deep", between_passes=True)
    for bits in widths:
        r = r + 2 * memory(h * w, bits)
    energy = sum(2 * bits * power.sram_pj_per_bit(h * w * bits) for bits in widths)   # write + read a pixel
    return Layer("repeat_stage", r, energy, 0,
                 f"frame buffer on chip {network.frame_buffer_bits:,} bits for {len(widths)} streams, "
                 f"{pass_cycles} cycles a pass; streams around the group {depth} pixels deep")


def frame_period(spec: Spec, blocks=None) -> int:
    """Clock cycles per frame. hls4ml's io_stream convolutions with 'same' padding read a frame that a
    separate stage has padded to (h + k - 1) x (w + k - 1) pixels, one per clock, so the widest
    kernel (of ``blocks``, default all) sets the period; the general-purpose baseline is sized for
    the same frame rate."""
    h, w, _ = spec.input_shape
    pad = max(spec.kernels[b - 1] for b in (blocks or range(1, spec.blocks + 1))) - 1
    return (h + pad) * (w + pad)


def head_layer(network: net.Network, layer: net.Layer, costs: UnitCosts) -> Layer:
    """The head: average pool and a dense layer folded over the frame (classify), or a 1x1 conv."""
    spec = network.spec
    h, w, _ = spec.input_shape
    act = spec.activations
    channels, outputs = layer.c_in, layer.c_out
    weights, bias, out = layer.weight_fmt, layer.bias_fmt, network.output.result
    acc = layer.accum
    dsp = layer.multiplier == "dsp"
    registers = costs.register(channels * outputs * weights.bits + outputs * bias.bits)
    if layer.kind == "dense":
        pool = network.of_kind("pool")[0].accum
        # The dense layer runs once per frame, folded over the frame's pixels (network: reuse factor).
        lanes = math.ceil(channels * outputs / layer.reuse_factor)
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
        return Layer("head", r, energy, cycles, note + _in(layer))
    cost = datapath.tree_cost(configurable_trees(act, weights, bias, channels, outputs))
    r = costs.tree(cost, dsp) + costs.fifo(32)
    energy = _tree_energy(cost)
    drop = acc.frac - out.frac
    for acc_bits in cost.out_bits:
        r = r + costs.requantize(acc_bits, drop, out.bits, True)
        energy += power.add_pj(acc_bits)
    return Layer("head", r, energy, cost.stages + 2, f"1x1 conv {channels} -> {outputs}, configurable" + _in(layer))


def weight_banks(network: net.Network, rmap, banks: int, costs: UnitCosts) -> Resources:
    """What ``banks`` weight banks add to the one-bank IP (hardware.banks; see
    hls_project/bank_select.py): every bank of the active registers plus each frame's selected copy,
    all in flip-flops (the generated HLS partitions them completely), minus the one bank the layers'
    rows already count; an N:1 multiplexer per register bit in front of the configurable multipliers;
    a FIFO of bank numbers to each process that selects (each layer with registers, the repeat group
    once). Nothing for one bank: that is the IP as it was."""
    if banks <= 1:
        return Resources()
    bits = sum(f.bits * f.size for f in rmap.fields)
    selecting = [layer for layer in network.layers if layer.kind != "input" and layer.copy_of is None
                 and any(not p.frozen for p in network.params_of(layer.original))]
    processes = len([layer for layer in selecting if not (network.reuse and network.in_group(layer))])
    processes += int(network.reuse and any(network.in_group(layer) for layer in selecting))
    return (costs.register(banks * bits) + costs.mux(banks, bits)
            + processes * costs.fifo(max(1, (banks - 1).bit_length())))


def configurable_cores(design: Design) -> Resources:
    """The IP's configurable parts: the trainable cores' convs, the alpha blends and the head (the
    layers with configurable multipliers), without the register bank."""
    total = Resources()
    for layer in design.layers:
        if layer.role == "trainable" or layer.name.endswith(".blend") or layer.name == "head":
            total = total + layer.resources
    return total


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


def network_work(spec: Spec, repeat: int | None = None) -> _Work:
    """What the network computes per input pixel at ``repeat`` runs of the repeated group (default:
    the spec's repeat.default, the operating point the designs are compared at)."""
    network = net.describe(spec, repeat or spec.repeat_default)
    h, w, _ = spec.input_shape
    macs = reads = writes = 0.0
    for layer in network.layers:
        per_pixel = 1.0 / (h * w) if layer.kind == "dense" else 1.0     # the dense head runs once per frame
        if layer.kind in ("conv", "dense"):
            macs += layer.n_terms * layer.c_out * per_pixel
            reads += layer.c_in * layer.in_fmt.bits * per_pixel
            out_bits = network.output.result.bits if layer.core == "head" else spec.activations.bits
            writes += layer.c_out * out_bits * per_pixel
        elif layer.kind == "blend":
            macs += layer.c_out
            reads += 2 * layer.c_out * layer.in_fmt.bits
            writes += layer.c_out * layer.result.bits
    head = network.of_kind("dense", "conv")[-1]
    acc_bits = max(layer.accum.bits for layer in network.of_kind("conv", "dense"))
    return _Work(macs, reads, writes, network.parameter_counts()["total"], acc_bits, head.c_in, max(spec.kernels))


def general_design(spec: Spec, costs: UnitCosts, *, clock_mhz: float, repeat: int | None = None,
                   period: int | None = None) -> Design:
    """A weight-stationary MAC array (QUIDAM's and the TPU's organization): each MAC holds its
    weight in a double-buffered register, multiplies the activation passing through, and adds the
    partial sum passing down; the weight buffer reloads the array layer by layer, so each weight is
    read once per frame."""
    h, w, _ = spec.input_shape
    act = spec.activations
    work = network_work(spec, repeat)
    x_bits = max(spec.input_bits, act.bits)
    w_bits = max(spec.frozen_weights.storage.bits if spec.frozen_width else 0, spec.trainable_weights.bits,
                 spec.head_weights.bits)
    period = period or frame_period(spec)
    macs = math.ceil(work.macs_per_pixel * h * w / period)   # MAC units for one frame per IP frame period
    layers = []

    # The same multiplier policy as the IP: with `auto`, MACs in DSPs while the board's last.
    slices = dsp_slices(x_bits, w_bits)
    budget = int(FIT_LIMITS["dsp"] * BOARDS[spec.hardware.board].capacity["dsp"])
    in_dsp = {"dsp": macs, "lut": 0, "auto": min(macs, budget // slices) if slices else 0}[spec.hardware.multipliers]
    in_dsp = in_dsp if slices else 0
    # flip-flops: partial sum, double-buffered weight, activation passed on, product register
    rest = Resources(lut=costs.adders([work.acc_bits]), ff=work.acc_bits + 2 * w_bits + x_bits + (x_bits + 1 + w_bits))
    array = (in_dsp * costs.multiplier(x_bits, w_bits, True) + (macs - in_dsp) * costs.multiplier(x_bits, w_bits, False)
             + macs * rest)
    mac_energy = macs * (power.multiply_pj(x_bits + 1, w_bits) + power.add_pj(work.acc_bits))
    layers.append(Layer("mac_array", array, mac_energy, 2,
                        f"{macs} MACs of {x_bits + 1}x{w_bits} bits ({in_dsp} in DSPs), {work.acc_bits}-bit partial "
                        "sums", macs))

    weight_bits = work.weights * w_bits
    per_cycle = math.ceil(weight_bits / period)
    weight_brams = max(math.ceil(weight_bits / BRAM18_BITS), math.ceil(per_cycle / BRAM18_PORT_BITS))
    layers.append(Layer("weight_buffer", Resources(bram18=weight_brams),
                        per_cycle * power.sram_pj_per_bit(weight_bits), 1,
                        f"{work.weights} weights x {w_bits} bits, each read once per frame"))

    feature_bits = h * w * work.widest_features * act.bits
    reads, writes = math.ceil(work.inputs_per_pixel), math.ceil(work.outputs_per_pixel)
    if 2 * feature_bits <= GENERAL_FEATURE_BUFFER_BITS:
        act_brams = 2 * max(math.ceil(feature_bits / BRAM18_BITS),
                            math.ceil(reads / BRAM18_PORT_BITS) + math.ceil(writes / BRAM18_PORT_BITS))
        layers.append(Layer("activation_buffers", Resources(bram18=act_brams),
                            (reads + writes) * power.sram_pj_per_bit(feature_bits), 1,
                            f"ping-pong feature maps of {work.widest_features} channels on chip"))
    else:
        # The feature maps live in external DRAM: every layer reads its input map and writes its
        # output map there, through read and write burst buffers on chip (no FPGA area for the DRAM
        # or its controller, which is the PS's hard block on a Zynq).
        bursts = memory(DRAM_BURST_WORDS, reads) + memory(DRAM_BURST_WORDS, writes)
        layers.append(Layer("dram_feature_maps", bursts,
                            (reads + writes) * (power.dram_pj(1) + power.sram_pj_per_bit(DRAM_BURST_WORDS * reads)), 1,
                            f"feature maps of {work.widest_features} channels ({2 * feature_bits / 8e6:.1f} MB "
                            f"ping-pong) exceed the {GENERAL_FEATURE_BUFFER_BITS // 8 // 1024} KiB on-chip buffer: "
                            f"in DRAM, {(reads + writes) / 8:.0f} bytes a pixel = "
                            f"{(reads + writes) / 8 * h * w * clock_mhz / period / 1e3:.1f} GB/s at this frame rate, "
                            f"{DRAM_BURST_WORDS}-word burst buffers"))

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
    n_layers = spec.blocks + ((repeat or spec.repeat_default) - 1) * spec.repeat_blocks
    latency = sum(layer.latency for layer in layers) * n_layers
    design = Design("general", layers, period, period + latency, clock_mhz, repeat=repeat or spec.repeat_default)
    design.notes.append("perfect MAC utilization, one multiplier format for all layers, no zero skipping")
    if any(layer.name == "dram_feature_maps" for layer in layers):
        design.notes.append(f"feature maps in DRAM; {power.DRAM_SOURCE}")
    return design


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def estimate_spec(spec: Spec, build, costs: UnitCosts | None = None, plan: HardwarePlan | None = None,
                  **options) -> Estimate:
    """Estimate ``spec``'s IP from its trained frozen core under ``build`` (see :func:`estimate`);
    ``cache_graphs=False`` reads the build's solved adder graphs but writes nothing there. With a
    converted project's ``plan``, the IP is priced as that plan built it (its board, multipliers,
    implementations), not as the YAML would build it today."""
    from semifreddo.models.artifacts import BuildPaths, load_core

    if plan is not None:
        spec = spec.replace(hardware=plan.target)

    codes = core_id = None
    if spec.frozen_width:
        core = load_core(BuildPaths.for_spec(spec, build).core, spec)
        codes, core_id = core.codes, core.core_id
    return estimate(spec, codes, costs, core_id=core_id, graph_cache=BuildPaths.for_spec(spec, build).adder_graphs,
                    plan=plan, **options)


def estimate(spec: Spec, codes: dict | None, costs: UnitCosts | None = None, *,
             clock_mhz: float = DEFAULT_CLOCK_MHZ, core_id: str | None = None, graph_cache=None,
             cache_graphs: bool = True, plan: HardwarePlan | None = None) -> Estimate:
    """Estimate all three designs. ``codes`` are the frozen core's integer codes
    (``FrozenCore.codes``); they are required when the spec has a frozen core. Adder-graph layers
    are solved by da4ml, or read from ``graph_cache`` (the converter's folder of solved graphs).
    ``plan``: price the IP as a converted project's hardware plan built it (the spec must carry the
    plan's hardware target, see :func:`estimate_spec`); otherwise as the spec's target would."""
    from semifreddo.models.layout import register_map

    costs = costs or UnitCosts.load()
    if spec.frozen_width and codes is None:
        raise ValueError("the frozen codes are needed to estimate a spec with a frozen core")
    rmap = plan.regmap if plan else register_map(spec)
    n_words = rmap.n_words
    network = plan.layout(spec) if plan else hardware_layout(spec)
    ip = dataflow_design(network, codes, costs, frozen_constant=True, clock_mhz=clock_mhz, n_words=n_words,
                         graph_cache=graph_cache, cache_graphs=cache_graphs)
    # The weight banks at every count the spec may choose (its input stream must have room for the number).
    free = 32 - spec.input_shape[-1] * spec.input_bits
    allowed = [n for n in range(1, MAX_BANKS + 1) if bank_bits(n) <= free]
    bank_prices = {n: weight_banks(network, rmap, n, costs) for n in allowed}
    if rmap.banks > 1:
        ip.layers.append(Layer("banks", bank_prices[rmap.banks], 0.0, 1,
                               f"{rmap.banks} weight banks: registers in FFs, {rmap.banks}:1 selection per register "
                               "bit, bank numbers to each selecting process"))
    twin = dataflow_design(twin_layout(spec), codes, costs, frozen_constant=False, clock_mhz=clock_mhz,
                           n_words=twin_register_words(spec))
    # The general accelerator at the IP's throughput, running as many repeats: at the spec's default
    # repeat count (the operating point) for the comparison, at every count for the table.
    at_repeat = {r: general_design(spec, costs, clock_mhz=clock_mhz, repeat=r, period=cycles)
                 for r, cycles in ip.cycles_by_repeat.items()}
    general = at_repeat[spec.repeat_default]
    designs = {"semifreddo": ip, "configurable": twin, "general": general}
    return Estimate(spec, core_id, designs, costs.source, general_by_repeat=at_repeat, bank_prices=bank_prices,
                    configurable=configurable_cores(ip))
