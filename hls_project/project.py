"""The generated HLS project: its fixed names, the one reader of its ``hls_manifest.json``, and how the
backend reads the conversion's hardware plan from hls4ml's config.

Shared by the writer, the converter, the C simulation and the board flow. Kept free of hls4ml
imports: hls4ml imports the Semifreddo backend plugin while hls4ml itself is still loading, so the
plugin's modules must not import hls4ml at module level.
"""

from __future__ import annotations

import os
from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.interface import HLS_FORMAT, IP_TOP, read_artifact

from .plan import HardwarePlan

TOP = IP_TOP
BACKEND_NAME = "Semifreddo"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MANIFEST = "hls_manifest.json"
REGMAP = "regmap.json"
CFLAGS = "-std=c++17 -Ifirmware -Ifirmware/ap_types"
# What the board flow needs from a manifest, and its type.
REQUIRED = {"top": str, "spec": str, "core_id": str, "regmap_id": str, "sources": list, "testbench": list,
            "tb_data": str, "cflags": str, "vendor": str, "library": str, "ip_version": str, "ip_vlnv": str}


def read_manifest(hls_dir: str | os.PathLike, spec: str = "SPEC") -> dict:
    """The ``hls_manifest.json`` of a converted project: format, version and every field checked."""
    path = Path(hls_dir) / MANIFEST
    manifest = read_artifact(path, HLS_FORMAT, f"no HLS project at {Path(hls_dir)}; run `semifreddo convert {spec}` "
                                               f"(make hls SPEC={spec}) first")
    for key, kind in REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            raise SemifreddoError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if not manifest["sources"]:
        raise SemifreddoError(f"{path}: field 'sources' is empty")
    return manifest


def conversion_info(model) -> dict:
    """What the converter hands the Semifreddo backend through the hls4ml config: the hardware plan
    (as JSON), where adder graphs are cached, whether to show progress."""
    return model.config.config["HLSConfig"]["Model"]["Semifreddo"]


def model_plan(model) -> HardwarePlan:
    """The hardware plan of the model being converted (every pass and the writer read this)."""
    return HardwarePlan.from_json(conversion_info(model)["plan"], "the hardware plan handed to hls4ml")


def project_files(hls_dir: str | os.PathLike) -> list[Path]:
    """Every C/C++ source and header of a generated project (what the C simulation compiles)."""
    hls_dir = Path(hls_dir)
    return sorted(p for p in [hls_dir / "semifreddo_bridge.cpp", *(hls_dir / "firmware").rglob("*")]
                  if p.is_file() and p.suffix in (".h", ".hpp", ".cpp", ".cc"))
