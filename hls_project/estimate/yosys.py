"""Running Yosys ``synth_xilinx`` (7-series) on a Verilog text and reading back what it used.

One synthesis recipe is used everywhere (characterization, validation, the benchmark), so the
unit-cost tables and the checks against them see the same tool behaviour. Its text is recorded in
every table (:data:`SYNTH_SCRIPT`). DSP use is a policy: ``dsp=False`` adds ``-nodsp``, which also
keeps Yosys from putting constant multiplies into DSP48s.

Resources are counted as Vivado's utilization report would name them: ``lut`` is Slice LUTs
(logic LUTs plus LUTs used as shift registers or distributed RAM), ``ff`` flip-flops, ``dsp``
DSP48E1 slices, ``bram18`` 18 Kb block RAMs (a RAMB36 counts as two), ``carry4`` carry chains.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError, ToolMissingError

SYNTH_SCRIPT = "read_verilog -defer {file}; synth_xilinx -family xc7 -top {top} -flatten -noiopad -noclkbuf{nodsp}; stat -json"

# LUTs a distributed-memory primitive occupies (Xilinx UG474, "Distributed RAM" and "Shift Registers").
_MEMORY_LUTS = {
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4,
    "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4,
}
_FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE")


@dataclass(frozen=True)
class SynthResult:
    cells: dict[str, int]     # cell type -> count, as Yosys's `stat` lists them
    seconds: float            # wall time of the Yosys run

    @property
    def resources(self) -> dict[str, int]:
        return resources_of(self.cells)


def resources_of(cells: dict[str, int]) -> dict[str, int]:
    logic = sum(n for cell, n in cells.items() if re.fullmatch(r"LUT[1-6]", cell))
    memory = sum(_MEMORY_LUTS[cell] * n for cell, n in cells.items() if cell in _MEMORY_LUTS)
    return {
        "lut": logic + memory + cells.get("INV", 0),
        "lut_memory": memory,
        "ff": sum(cells.get(cell, 0) for cell in _FF_CELLS),
        "dsp": cells.get("DSP48E1", 0),
        "bram18": cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0),
        "carry4": cells.get("CARRY4", 0),
    }


def find_yosys() -> str:
    path = shutil.which("yosys")
    if path is None:
        raise ToolMissingError("yosys is not on PATH; install Debian's package (`apt-get install yosys`, "
                               "or `make setup` as root)")
    return path


@functools.lru_cache(maxsize=1)
def yosys_version() -> str:
    """The version line, e.g. ``Yosys 0.23 (git sha1 7ce5011c24b)``."""
    out = subprocess.run([find_yosys(), "-V"], capture_output=True, text=True, check=True).stdout.strip()
    return out.splitlines()[0]


def synthesize(verilog: str, top: str = "top", *, dsp: bool = False, timeout: float = 1800) -> SynthResult:
    """Synthesize ``verilog`` for 7-series and return the cells of the flattened top module."""
    yosys = find_yosys()
    with tempfile.TemporaryDirectory(prefix="semifreddo-yosys-") as tmp:
        source = Path(tmp) / "design.v"
        source.write_text(verilog)
        stat = Path(tmp) / "stat.json"
        script = SYNTH_SCRIPT.format(file=source, top=top, nodsp="" if dsp else " -nodsp")
        script = script.replace("stat -json", f"tee -q -o {stat} stat -json")
        start = time.perf_counter()
        try:
            run = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SemifreddoError(f"yosys did not finish within {timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise SemifreddoError(f"yosys failed on the generated Verilog: {last[0]}")
        report = json.loads(stat.read_text())
    module = report["design"] if "design" in report else next(iter(report["modules"].values()))
    return SynthResult(dict(module["num_cells_by_type"]), seconds)
