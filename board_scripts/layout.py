"""Where the board flow reads and writes, for one spec and one board, and its JSON records.

::

    BUILD/<spec>/hls/                        HLS project written by `semifreddo convert` (input)
    BUILD/<spec>/weightsets/*.npz            task weight sets (input)
    BUILD/<spec>/synth/<board>/hls/          `semifreddo synth`: Vitis HLS project, exported IP,
                                             csynth.xml, synth.json, snapshots of hls_manifest.json
                                             and regmap.json the IP was built from
    BUILD/<spec>/synth/<board>/vivado/       `semifreddo bitstream`: Vivado project,
                                             semifreddo_<spec>.bit + .hwh, bitstream.json
    BUILD/<spec>/bundle-<board>/             `semifreddo package`: the deploy bundle

Each output folder is built under ``<name>.partial`` and renamed into place when its step has
finished, so a folder at its final path is always complete. A failed step leaves its
``.partial`` folder (with the tool's log) for inspection; the next run starts it afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.fileio import atomic_write_text

HLS_PROJECT = "prj"        # Vitis HLS project folder inside synth/<board>/hls/
HLS_SOLUTION = "solution1"
VIVADO_PROJECT = "prj"     # Vivado project name and folder inside synth/<board>/vivado/
BLOCK_DESIGN = "semifreddo_bd"


def overlay_name(spec: str) -> str:
    """The basename of the .bit/.hwh pair and of the overlay folder on the board."""
    return f"semifreddo_{spec}"


@dataclass(frozen=True)
class BoardBuild:
    spec_root: Path        # BUILD/<spec>
    spec: str
    board: str

    @classmethod
    def of(cls, build: str | Path, spec: str, board: str) -> "BoardBuild":
        return cls(Path(build) / spec, spec, board)

    # inputs
    @property
    def hls_source(self) -> Path:
        return self.spec_root / "hls"

    @property
    def weightsets(self) -> Path:
        return self.spec_root / "weightsets"

    # outputs
    @property
    def synth_root(self) -> Path:
        return self.spec_root / "synth" / self.board

    @property
    def hls(self) -> Path:
        return self.synth_root / "hls"

    @property
    def ip_repo(self) -> Path:
        return self.hls / HLS_PROJECT / HLS_SOLUTION / "impl" / "ip"

    @property
    def vivado(self) -> Path:
        return self.synth_root / "vivado"

    @property
    def overlay(self) -> str:
        return overlay_name(self.spec)

    @property
    def bitstream(self) -> Path:
        return self.vivado / f"{self.overlay}.bit"

    @property
    def hwh(self) -> Path:
        return self.vivado / f"{self.overlay}.hwh"

    @property
    def bundle(self) -> Path:
        return self.spec_root / f"bundle-{self.board}"


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
