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
from semifreddo.models.spec import Spec

from . import datapath
from .costs import Resources, UnitCosts
from .estimator import configurable_trees, constant_trees
from .yosys import synthesize

LUT_TOLERANCE = 0.25       # the target: within 25 % on LUTs


@dataclass(frozen=True)
class Slice:
    name: str
    trees: tuple              # datapath.Tree per output channel


def constant_slice(name: str, in_fmt: Fixed, w_fmt: Fixed, b_fmt: Fixed, kernel: np.ndarray,
                   bias: np.ndarray) -> Slice:
    return Slice(name, tuple(constant_trees(in_fmt, w_fmt, b_fmt, kernel, bias)))


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
    in_fmt = spec.input_format if block == 1 else spec.activations
    w_fmt, b_fmt = spec.frozen_weights.storage, spec.frozen_bias
    weights = codes[f"b{block}.frozen.kernel"]
    bias = codes[f"b{block}.frozen.bias"]
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
    out = []
    copies = {b: 1 + (spec.repeat_max - 1 if b == spec.blocks else 0) for b in range(1, spec.blocks + 1)}
    trainable: dict[tuple, int] = {}
    for b in range(1, spec.blocks + 1):
        in_fmt = spec.input_format if b == 1 else spec.activations
        k = spec.kernels[b - 1]
        if spec.frozen_width:
            name = (f"b{b}.frozen {k}x{k}x{spec.block_in_channels(b, 'frozen')} -> {spec.frozen_width}, "
                    f"trained {_format_tag(spec)}")
            piece = constant_slice(name, in_fmt, spec.frozen_weights.storage, spec.frozen_bias,
                                   codes[f"b{b}.frozen.kernel"], codes[f"b{b}.frozen.bias"])
            out.append((piece, copies[b]))
        shape = (in_fmt, k, spec.block_in_channels(b, "core"))
        trainable[shape] = trainable.get(shape, 0) + 2 * copies[b]
    for (in_fmt, k, c_in), count in trainable.items():
        piece = configurable_slice(f"trainable conv {k}x{k}x{c_in} -> {spec.trainable_width}, configurable", in_fmt,
                                   spec.trainable_weights, spec.trainable_bias, k * k * c_in, spec.trainable_width)
        out.append((piece, count))
    return out


def estimate_slice(piece: Slice, costs: UnitCosts) -> Resources:
    return costs.tree(datapath.tree_cost(piece.trees), dsp=False)


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
        result = synthesize(datapath.tree_verilog(list(piece.trees)))
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
