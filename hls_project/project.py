"""The generated HLS project's fixed names (shared by the writer, the converter and the C simulation).

Kept free of hls4ml imports: hls4ml imports the Semifreddo backend plugin while hls4ml itself is
still loading, so the plugin's modules must not import hls4ml at module level.
"""

from __future__ import annotations

import os
from pathlib import Path

TOP = "semifreddo_top"
HLS_FORMAT = "semifreddo-hls"
HLS_VERSION = 1
CFLAGS = "-std=c++17 -Ifirmware -Ifirmware/ap_types"


def project_files(hls_dir: str | os.PathLike) -> list[Path]:
    """Every C/C++ source and header of a generated project (what the C simulation compiles)."""
    hls_dir = Path(hls_dir)
    return sorted(p for p in [hls_dir / "semifreddo_bridge.cpp", *(hls_dir / "firmware").rglob("*")]
                  if p.is_file() and p.suffix in (".h", ".hpp", ".cpp", ".cc"))
