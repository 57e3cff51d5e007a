"""Validation: the estimator against Yosys synthesis of real layer slices.

A *slice* is part of a real layer: some output channels of a conv, over all or part of its
kernel, with the trained frozen codes (constant weights) or as its fully configurable twin
(registers and real multipliers). :func:`layer_slices` cuts slices out of a spec's frozen core;
:func:`compare` writes each slice's Verilog (:func:`.datapath.tree_verilog`, the structure the
estimator prices), synthesizes it with Yosys and sets the measured LUTs and flip-flops beside the
estimator's. The estimator never sees the slice's synthesis: its numbers come from the unit-cost
table alone, characterized on small blocks with random constants.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from semifreddo.models.fixedpoint import Fixed
from semifreddo.hls_project.plan import hardware_layout
from semifreddo.models.network import describe
from semifreddo.models.spec import Spec

from . import datapath
from .costs import Resources, UnitCosts
from .estimator import configurable_trees, constant_trees
from .yosys import synthesize

LUT_TOLERANCE = 0.25       # the target: within 25 % on LUTs


@dataclass(frozen=True)
class Slice:
    name: str
    trees: tuple = ()         # datapath.Tree per output channel (constant or configurable dot products)
    graph: tuple = ()         # or a frozen layer as a da4ml adder graph: (kernel, bias, in_fmt, w_fmt, b_fmt)


def constant_slice(name: str, in_fmt: Fixed, w_fmt: Fixed, b_fmt: Fixed, kernel: np.ndarray,
                   bias: np.ndarray) -> Slice:
    return Slice(name, tuple(constant_trees(in_fmt, w_fmt, b_fmt, kernel, bias)))


def graph_slice(name: str, in_fmt: Fixed, w_fmt: Fixed, b_fmt: Fixed, kernel: np.ndarray, bias: np.ndarray) -> Slice:
    return Slice(name, graph=(kernel, bias, in_fmt, w_fmt, b_fmt))


def configurable_slice(name: str, in_fmt: Fixed, w_fmt: Fixed, b_fmt: Fixed, n: int, channels: int) -> Slice:
    return Slice(name, tuple(configurable_trees(in_fmt, w_fmt, b_fmt, n, channels)))


def _format_tag(spec: Spec) -> str:
    fmt = spec.frozen_weights
    return f"{fmt.storage.describe()} constants" if fmt.format == "fixed" else f"po2 k={fmt.terms} constants"


def layer_slices(spec: Spec, codes: dict, *, block: int = 2, channels: int = 2, twin_channels: int = 1,
                 kernel: str = "1x1") -> list[Slice]:
    """A constant slice of block ``block``'s frozen conv and its configurable twin.

    ``kernel="1x1"`` takes the centre tap of every input channel (a 1x1 conv slice), ``"3x3"`` the
    whole kernel. The constant slice has ``channels`` output channels, the twin ``twin_channels``
    (configurable multipliers synthesize far more slowly than constants).
    """
    network = describe(spec)
    conv = next(layer for layer in network.of_kind("conv") if layer.frozen and layer.block == block)
    in_fmt, w_fmt, b_fmt = conv.in_fmt, conv.weight_fmt, conv.bias_fmt
    weights, bias = (codes[p.name] for p in network.params_of(conv.name))
    if kernel == "1x1":
        centre = weights.shape[0] // 2
        weights = weights[centre:centre + 1, centre:centre + 1]
    weights = weights[..., :channels]
    k, _, c_in, _ = weights.shape
    shape = f"{k}x{k}x{c_in}"
    return [constant_slice(f"b{block}.frozen {shape} -> {channels}, trained {_format_tag(spec)}", in_fmt, w_fmt,
                           b_fmt, weights, bias),
            configurable_slice(f"b{block}.frozen {shape} -> {twin_channels}, configurable twin", in_fmt, w_fmt,
                               b_fmt, k * k * c_in, twin_channels)]


def network_layers(spec: Spec, codes: dict) -> list[tuple[Slice, int]]:
    """Every distinct conv datapath of the IP, whole (all channels, whole kernel), with how many
    times the IP instantiates it (both trainable cores and the repeat copies share a structure)."""
    network = hardware_layout(spec)
    out = []
    trainable: dict[tuple, int] = {}
    for conv in network.of_kind("conv"):
        if conv.core == "head" or conv.copy_of:
            continue
        copies = 1 + len(network.copies(conv.name))
        shape = f"{conv.kernel}x{conv.kernel}x{conv.c_in} -> {conv.c_out}"
        if conv.frozen:
            # Both ways to build a frozen conv: constant products (our datapath) and da4ml's adder graph.
            kernel, bias = (codes[p.name] for p in network.params_of(conv.name))
            formats = (conv.in_fmt, conv.weight_fmt, conv.bias_fmt, kernel, bias)
            out.append((constant_slice(f"{conv.tag}.frozen {shape}, {_format_tag(spec)}, multipliers", *formats),
                        copies))
            out.append((graph_slice(f"{conv.tag}.frozen {shape}, {_format_tag(spec)}, adder graph", *formats),
                        copies))
        else:
            key = (conv.in_fmt, conv.kernel, conv.c_in, conv.c_out, conv.weight_fmt, conv.bias_fmt)
            trainable[key] = trainable.get(key, 0) + copies
    for (in_fmt, k, c_in, c_out, w_fmt, b_fmt), count in trainable.items():
        piece = configurable_slice(f"trainable conv {k}x{k}x{c_in} -> {c_out}, configurable", in_fmt, w_fmt, b_fmt,
                                   k * k * c_in, c_out)
        out.append((piece, count))
    return out


def estimate_slice(piece: Slice, costs: UnitCosts) -> Resources:
    if piece.graph:
        from semifreddo.hls_project.adder_graph import adder_graph_cost

        kernel, bias, in_fmt, w_fmt, b_fmt = piece.graph
        cost = adder_graph_cost(kernel, bias, in_fmt, w_fmt, b_fmt)
        return Resources(lut=cost.lut, ff=cost.ff)
    return costs.tree(datapath.tree_cost(piece.trees), dsp=False)


def slice_verilog(piece: Slice) -> str:
    """The Verilog whose synthesis the slice's estimate is compared with."""
    if piece.graph:
        from semifreddo.hls_project.adder_graph import GraphCache, build_graphs, graph_verilog, layer_job

        job = layer_job(piece.name, *piece.graph[:2], *piece.graph[2:])
        return graph_verilog(build_graphs([job], GraphCache(None), progress=False)[piece.name])
    return datapath.tree_verilog(list(piece.trees))


@dataclass(frozen=True)
class Comparison:
    name: str
    estimated: Resources
    measured: dict
    estimate_seconds: float
    yosys_seconds: float

    @property
    def lut_error(self) -> float:
        """Relative error of the estimated LUTs against Yosys's (positive: the estimate is high)."""
        return self.estimated.lut / self.measured["lut"] - 1.0

    @property
    def ff_error(self) -> float:
        return self.estimated.ff / self.measured["ff"] - 1.0 if self.measured["ff"] else 0.0


def compare(slices: list[Slice], costs: UnitCosts | None = None, jobs: int = 2) -> list[Comparison]:
    costs = costs or UnitCosts.load()

    def run(piece: Slice) -> Comparison:
        start = time.perf_counter()
        estimated = estimate_slice(piece, costs)
        seconds = time.perf_counter() - start
        result = synthesize(slice_verilog(piece))
        return Comparison(piece.name, estimated, result.resources, seconds, result.seconds)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run, slices))


def error_table(rows: list[Comparison]) -> str:
    lines = [f"{'slice':<52} {'LUT est':>8} {'LUT yosys':>9} {'error':>7} {'FF est':>7} {'FF yosys':>8} "
             f"{'yosys s':>8}"]
    for row in rows:
        lines.append(f"{row.name:<52} {row.estimated.lut:>8.0f} {row.measured['lut']:>9} {row.lut_error:>+7.1%} "
                     f"{row.estimated.ff:>7.0f} {row.measured['ff']:>8} {row.yosys_seconds:>8.1f}")
    return "\n".join(lines)
