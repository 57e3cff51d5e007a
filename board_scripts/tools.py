"""Finding and running the AMD tools (Vitis HLS, Vivado) in batch mode.

Every flow checks for its tool before it touches the build folder, so a missing tool costs one
line and leaves nothing behind. While a tool runs, its output goes to the terminal and the step
markers printed by ``tcl/steps.tcl`` are read from it, so a failure names the step that broke and
the log to read.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError, ToolMissingError

STEP = "SEMIFREDDO-STEP "
FAILED = "SEMIFREDDO-FAILED "
WARNING = "SEMIFREDDO-WARNING "
DONE = "SEMIFREDDO-DONE"

VITIS_HINT = ("source the settings64.sh of a Vitis or Vitis HLS install first "
              "(e.g. `source /tools/Xilinx/Vitis_HLS/2023.2/settings64.sh`)")
VIVADO_HINT = ("source the settings64.sh of a Vivado install first "
               "(e.g. `source /tools/Xilinx/Vivado/2023.2/settings64.sh`)")


class ToolStepError(SemifreddoError):
    """A tool ran and one of its steps failed. Not bad input, so exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class Tool:
    name: str        # what the user sees in messages: vitis_hls, vivado
    argv: tuple      # how to start it on a Tcl script; the script path and log path are appended
    writes_log: bool  # True when the tool writes the log file itself, else the runner does


def find_hls_tool() -> Tool:
    """Vitis HLS: ``vitis_hls -f`` (2020.2 and later), else ``vitis-run --mode hls --tcl`` (2023.2 and
    later, which AMD recommends once vitis_hls is deprecated)."""
    if shutil.which("vitis_hls"):
        return Tool("vitis_hls", ("vitis_hls", "-f", "{script}", "-l", "{log}"), writes_log=True)
    if shutil.which("vitis-run"):
        return Tool("vitis_hls", ("vitis-run", "--mode", "hls", "--tcl", "{script}"), writes_log=False)
    raise ToolMissingError(f"vitis_hls is not on PATH (nor vitis-run): {VITIS_HINT}")


def find_vivado() -> Tool:
    if shutil.which("vivado"):
        return Tool("vivado", ("vivado", "-mode", "batch", "-nojournal", "-notrace", "-source", "{script}",
                               "-log", "{log}"), writes_log=True)
    raise ToolMissingError(f"vivado is not on PATH: {VIVADO_HINT}")


def run_tool(tool: Tool, script: Path, *, cwd: Path, log: Path, echo=sys.stdout) -> list[str]:
    """Run ``tool`` on ``script`` in ``cwd``; return the warnings it printed.

    Raises :class:`ToolStepError` naming the failed step and ``log`` when the tool fails.
    """
    argv = [part.format(script=script.resolve(), log=log.resolve()) for part in tool.argv]   # the tool runs in cwd
    step, failure, done, warnings = None, None, False, []
    transcript = None if tool.writes_log else open(log, "w", encoding="utf-8")
    try:
        process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace")
        for line in process.stdout:
            echo.write(line)
            if transcript:
                transcript.write(line)
            text = line.strip()
            if text.startswith(STEP):
                step = text[len(STEP):]
            elif text.startswith(FAILED):
                failure = text[len(FAILED):]
            elif text.startswith(WARNING):
                warnings.append(text[len(WARNING):])
            elif text == DONE:
                done = True
        returncode = process.wait()
    finally:
        if transcript:
            transcript.close()
    if failure:
        raise ToolStepError(f"{tool.name} failed in step {failure} (log: {log})")
    if returncode != 0 or not done:
        where = f"in step {step}" if step else "before its first step"
        raise ToolStepError(f"{tool.name} stopped {where} with exit code {returncode} (log: {log})")
    return warnings
