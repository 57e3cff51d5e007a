"""The two tool steps: Vitis HLS (synth) and Vivado (bitstream), for one spec on one board.

Each step checks its tool first, then its inputs, then works in a ``.partial`` staging folder and
renames it into place only when the tool finished every step (see :mod:`.layout`).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.interface import BITSTREAM_FORMAT, SYNTH_FORMAT, read_artifact, stamp
from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_text, replace_dir, start_staging_dir

from semifreddo.hls_project.plan import PLAN_FILE, read_plan

from . import hlsproject
from semifreddo.deploy.contract.boards import Board
from .layout import BLOCK_DESIGN, HLS_PROJECT, HLS_SOLUTION, VIVADO_PROJECT, BoardBuild, write_json
from .report import CsynthReport, parse_csynth
from .scripts import bitstream_script, hls_script
from .tools import find_hls_tool, find_vivado, run_tool

SYNTH_RECORD = "synth.json"
BITSTREAM_RECORD = "bitstream.json"
RECORD_FORMATS = {SYNTH_RECORD: SYNTH_FORMAT, BITSTREAM_RECORD: BITSTREAM_FORMAT}


@dataclass(frozen=True)
class SynthResult:
    folder: Path
    report: CsynthReport | None
    warnings: list[str]


@dataclass(frozen=True)
class BitstreamResult:
    bitstream: Path
    hwh: Path
    warnings: list[str]


def read_record(path: Path, step: str) -> dict:
    """A step's record (synth.json, bitstream.json); ``step`` is the command that writes it."""
    return read_artifact(path, RECORD_FORMATS[path.name], f"run `{step}` first")


def csynth_xml(solution: Path, top: str) -> Path | None:
    """The C-synthesis summary report of a Vitis HLS solution, if synthesis got that far."""
    for name in ("csynth.xml", f"{top}_csynth.xml"):
        path = solution / "syn" / "report" / name
        if path.exists():
            return path
    return None


def run_synth(layout: BoardBuild, board: Board, *, clock_mhz: float | None = None, cosim: bool = False,
              echo=sys.stdout) -> SynthResult:
    """C simulation, C synthesis, (co-simulation,) IP export -> ``layout.hls``."""
    tool = find_hls_tool()
    project = hlsproject.load_hls_project(layout.hls_source, layout.spec)
    clock_mhz = float(clock_mhz or board.clock_mhz)
    if not 1.0 <= clock_mhz <= 800.0:
        raise SemifreddoError(f"clock {clock_mhz:g} MHz is out of range (1-800 MHz)")

    stage = start_staging_dir(layout.hls)
    script = stage / "synth.tcl"
    atomic_write_text(script, hls_script(board, project, clock_mhz=clock_mhz, cosim=cosim))
    warnings = run_tool(tool, script, cwd=stage, log=stage / "vitis_hls.log", echo=echo)

    solution = stage / HLS_PROJECT / HLS_SOLUTION
    if not (solution / "impl" / "ip" / "component.xml").exists():
        raise SemifreddoError(f"vitis_hls finished but exported no IP ({solution / 'impl' / 'ip'} has no "
                              f"component.xml); see {stage / 'vitis_hls.log'}")
    report_xml = csynth_xml(solution, project.top)
    report = parse_csynth(report_xml) if report_xml else None
    if report_xml:
        shutil.copyfile(report_xml, stage / "csynth.xml")
    # Snapshot what the IP was built from: package ships this register map, not a later one.
    shutil.copyfile(project.root / hlsproject.MANIFEST, stage / hlsproject.MANIFEST)   # read back by package
    shutil.copyfile(project.root / hlsproject.REGMAP, stage / hlsproject.REGMAP)
    shutil.copyfile(project.root / PLAN_FILE, stage / PLAN_FILE)      # the decisions the IP was built with
    write_json(stage / SYNTH_RECORD, {
        **stamp(RECORD_FORMATS[SYNTH_RECORD]), "spec": layout.spec, "board": board.name,
        "part": board.part, "clock_mhz": clock_mhz, "cosim": cosim, "ip_vlnv": project.ip_vlnv,
        "ip_repo": str(layout.ip_repo.relative_to(layout.hls)), "core_id": project.core_id,
        "regmap_id": project.regmap_id, "hls_project": str(project.root),
        "report": report.to_json() if report else None, "warnings": warnings,
    })
    replace_dir(stage, layout.hls)
    return SynthResult(layout.hls, report, warnings)


def find_hwh(project_dir: Path, project: str, bd: str) -> Path:
    """The block design's hardware handoff: ``<proj>.gen/...`` since Vivado 2020.2,
    ``<proj>.srcs/...`` before."""
    candidates = [project_dir / f"{project}.{kind}" / "sources_1" / "bd" / bd / "hw_handoff" / f"{bd}.hwh"
                  for kind in ("gen", "srcs")]
    for path in candidates:
        if path.exists():
            return path
    raise SemifreddoError(f"vivado finished but wrote no .hwh (looked in {candidates[0]} and {candidates[1]})")


def run_bitstream(layout: BoardBuild, board: Board, *, jobs: int | None = None, echo=sys.stdout) -> BitstreamResult:
    """Block design, synthesis, implementation, bitstream -> ``layout.vivado``."""
    tool = find_vivado()
    synth = read_record(layout.hls / SYNTH_RECORD, f"semifreddo synth {layout.spec} --board {board.name}")
    if synth.get("board") != board.name or not (layout.ip_repo / "component.xml").exists():
        raise SemifreddoError(f"{layout.hls} holds no exported IP for {board.name}: "
                              f"run `semifreddo synth {layout.spec} --board {board.name}` first")
    jobs = jobs or os.cpu_count() or 1

    stage = start_staging_dir(layout.vivado)
    script = stage / "bitstream.tcl"
    plan = read_plan(layout.hls, layout.spec)            # the decisions the exported IP was built with
    atomic_write_text(script, bitstream_script(board, spec=layout.spec, ip_repo=layout.ip_repo.resolve(),
                                               ip_vlnv=synth["ip_vlnv"], clock_mhz=synth["clock_mhz"], jobs=jobs,
                                               frame_buffer=plan.frame_buffer == "ddr"))
    warnings = run_tool(tool, script, cwd=stage, log=stage / "vivado.log", echo=echo)

    project_dir = stage / VIVADO_PROJECT
    bit = project_dir / f"{VIVADO_PROJECT}.runs" / "impl_1" / f"{BLOCK_DESIGN}_wrapper.bit"
    if not bit.exists():
        raise SemifreddoError(f"vivado finished but wrote no bitstream at {bit}")
    hwh = find_hwh(project_dir, VIVADO_PROJECT, BLOCK_DESIGN)
    # PYNQ wants the .bit and .hwh side by side under one basename.
    shutil.copyfile(bit, stage / layout.bitstream.name)
    shutil.copyfile(hwh, stage / layout.hwh.name)
    write_json(stage / BITSTREAM_RECORD, {
        **stamp(RECORD_FORMATS[BITSTREAM_RECORD]), "spec": layout.spec, "board": board.name,
        "part": board.part, "clock_mhz": synth["clock_mhz"], "ip_vlnv": synth["ip_vlnv"],
        "core_id": synth["core_id"], "regmap_id": synth["regmap_id"], "bitstream": layout.bitstream.name,
        "hwh": layout.hwh.name, "hwh_found_in": str(hwh.relative_to(stage)), "warnings": warnings,
    })
    replace_dir(stage, layout.vivado)
    return BitstreamResult(layout.bitstream, layout.hwh, warnings)
