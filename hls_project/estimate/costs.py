"""Unit costs from the pre-characterized table: what each block of the hardware costs.

:class:`UnitCosts` reads the table written by ``make characterize`` and prices blocks with each
model's fitted coefficients on the features :mod:`.units` defines. Two things are priced by rule
rather than by a fitted model, and say so: an N:1 multiplexer (a LUT6 is a 4:1 multiplexer, so a
tree of them takes ``ceil((N-1)/3)`` LUTs per bit; Xilinx UG474), and the split of the commit
copy's flip-flops (the active registers are counted at the layers that use them, only the copy's
own control here).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from pathlib import Path

from semifreddo.deploy.contract.interface import check_format, read_artifact
from semifreddo.hls_project.plan import dsp_slices

from . import units
from .characterize import DEFAULT_TABLE, TABLE_FORMAT
from .datapath import TreeCost


@dataclass(frozen=True)
class Resources:
    lut: float = 0.0
    ff: float = 0.0
    dsp: float = 0.0
    bram18: float = 0.0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, k: float) -> "Resources":
        return Resources(*(getattr(self, f.name) * k for f in fields(self)))

    __rmul__ = __mul__

    def rounded(self) -> dict[str, int]:
        return {f.name: int(math.ceil(getattr(self, f.name) - 1e-6)) for f in fields(self)}

    @property
    def area(self) -> float:
        """Area in 7-series slice equivalents (see :data:`AREA_NOTE`)."""
        return max(self.lut / 4.0, self.ff / 8.0) + SLICES_PER_BRAM18 * self.bram18 + SLICES_PER_DSP * self.dsp


# A 7-series slice holds 4 LUT6 and 8 flip-flops; a CLB is two slices (UG474). A RAMB36 tile and a
# tile of two DSP48E1s are each as tall as 5 CLBs in their columns (UG473, UG479); taking those
# columns as wide as a CLB column, a RAMB18 or a DSP48E1 takes the place of 5 slices.
SLICES_PER_BRAM18 = 5.0
SLICES_PER_DSP = 5.0
AREA_NOTE = ("area in slice equivalents = max(LUT/4, FF/8) + 5 x RAMB18 + 5 x DSP48E1 "
             "(a slice has 4 LUTs and 8 FFs; RAMB36 and DSP48E1-pair tiles are 5 CLBs tall)")


class UnitCosts:
    def __init__(self, table: dict, path: Path | None = None):
        check_format(table, TABLE_FORMAT, str(path))
        self.table = table
        self.path = path
        self.models = table["models"]

    @classmethod
    @functools.lru_cache(maxsize=4)
    def load(cls, path: str | Path | None = None) -> "UnitCosts":
        path = Path(path) if path else DEFAULT_TABLE
        return cls(read_artifact(path, TABLE_FORMAT, "run `make characterize`"), path)

    @property
    def source(self) -> str:
        """One line naming the table and the tool it was characterized with."""
        return f"{self.path.name if self.path else 'table'} ({self.table['tool']}, {self.table['generated'][:10]})"

    def predict(self, model: str, resource: str, features: dict[str, float]) -> float:
        coefficients = self.models[model]["coefficients"][resource]
        return max(0.0, sum(c * features.get(name, 0.0) for name, c in coefficients.items()))

    # ---- arithmetic ------------------------------------------------------------------------

    def adders(self, adder_bits, chained_bits: int = 0) -> float:
        """LUTs of two-input adders with the given live bits (see datapath.adder_bits), of which
        ``chained_bits`` are in adders fed by other adders within one clock period."""
        adder_bits = list(adder_bits)
        if not adder_bits:
            return 0.0
        return self.predict("adder", "lut", units.adder_features(adder_bits, chained_bits))

    def multiplier(self, x_bits: int, w_bits: int, dsp: bool) -> Resources:
        """One configurable multiplier, unsigned ``x_bits`` by signed ``w_bits`` (its output register
        is counted with the pipeline)."""
        p = {"x_bits": x_bits, "w_bits": w_bits}
        if dsp and dsp_slices(x_bits, w_bits):
            f = units.multiplier_dsp_features(p)
            return Resources(lut=self.predict("multiplier_dsp", "lut", f), dsp=self.predict("multiplier_dsp", "dsp", f))
        return Resources(lut=self.predict("multiplier_lut", "lut", units.multiplier_features(p)))

    def tree(self, cost: TreeCost, dsp: bool, registers: bool = True) -> Resources:
        """A dot product: its adders, multipliers, pipeline registers, and (``registers``) the
        active registers of its configurable weights and bias."""
        total = Resources(lut=self.adders(cost.adder_bits, cost.chained_bits), ff=cost.pipeline_bits)
        if cost.multipliers:
            total = total + cost.multipliers * self.multiplier(cost.x_bits, cost.w_bits, dsp)
        if registers and cost.register_bits:
            total = total + self.register(cost.register_bits)
        return total

    def requantize(self, acc_bits: int, drop: int, out_bits: int, signed_out: bool = False) -> Resources:
        """Requantize an ``acc_bits`` accumulator, dropping ``drop`` fractional bits, to ``out_bits``."""
        f = units.requantize_features({"acc_bits": acc_bits, "drop": drop, "out_bits": out_bits,
                                       "signed_out": signed_out})
        return Resources(lut=self.predict("requantize", "lut", f), ff=self.predict("requantize", "ff", f))

    # ---- plumbing --------------------------------------------------------------------------

    def _bits_block(self, model: str, bits: float) -> Resources:
        if bits <= 0:
            return Resources()
        f = units.bits_features({"bits": bits})
        fitted = self.models[model]["fitted"]
        return Resources(lut=self.predict(model, "lut", f), ff=self.predict(model, "ff", f) if "ff" in fitted else 0.0)

    def mux2(self, bits: float) -> Resources:
        return self._bits_block("mux2", bits)

    def register(self, bits: float) -> Resources:
        return self._bits_block("register", bits)

    def fifo(self, bits: float) -> Resources:
        return self._bits_block("fifo", bits)

    def accumulator(self, bits: int, x_bits: int) -> Resources:
        """A ``bits``-wide accumulator of ``x_bits`` unsigned addends."""
        f = units.accumulator_features({"bits": bits, "x_bits": x_bits})
        return Resources(lut=self.predict("accumulator", "lut", f), ff=self.predict("accumulator", "ff", f))

    def shift_register(self, depth: int, bits: int) -> Resources:
        f = units.shift_register_features({"depth": depth, "bits": bits})
        return Resources(lut=self.predict("shift_register", "lut", f), ff=self.predict("shift_register", "ff", f))

    @staticmethod
    def mux(inputs: int, bits: int) -> Resources:
        """An N:1 multiplexer by rule: a tree of LUT6 4:1 multiplexers."""
        return Resources(lut=bits * math.ceil(max(0, inputs - 1) / 3))

    # ---- register bank ---------------------------------------------------------------------

    def bank(self, words: int) -> Resources:
        """The shadow bank: the smallest characterized memory that holds ``words`` (several of the
        largest beyond its size)."""
        points = sorted(self.table["families"]["bank"]["points"], key=lambda p: p["params"]["words"])
        fits = [p for p in points if p["params"]["words"] >= words]
        point, copies = (fits[0], 1) if fits else (points[-1], math.ceil(words / points[-1]["params"]["words"]))
        r = point["resources"]
        return copies * Resources(lut=r["lut"], ff=r["ff"], bram18=r["bram18"])

    def commit(self, words: int) -> Resources:
        """The commit copy's decode logic and control (not the active registers themselves)."""
        f = units.words_features({"words": words})
        return Resources(lut=self.predict("commit", "lut", f),
                         ff=self.models["commit"]["coefficients"]["ff"].get("one", 0.0))

    def axilite(self) -> Resources:
        one = {"one": 1.0}
        return Resources(lut=self.predict("axilite", "lut", one), ff=self.predict("axilite", "ff", one))
