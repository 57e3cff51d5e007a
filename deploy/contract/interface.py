"""The contracts between the stages and the board, in one place.

Everything two stages must agree on and that is not derived from a spec lives here: the IP's
control registers (name, byte offset, direction), its identity (VLNV), the C ABI of the C
simulation library, the block-design instance names, and the name and version of every artifact
format, with the one helper that checks them. The HLS writer, the driver, the emulator, the board
flow and the tests import these; nothing else writes them out. Standard library only: the board
reads this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import SemifreddoError


# --------------------------------------------------------------------------------------------
# The IP's AXI-Lite control registers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ControlRegister:
    name: str
    offset: int          # byte offset in the IP's s_axilite bundle
    direction: str       # "block" (Vitis HLS's own), "in" (written by the host) or "out" (the IP reports)
    meaning: str
    banked: bool = False  # present only in an IP with more than one weight bank (hardware.banks > 1)


# 0x00-0x0C are the block-level control registers every Vitis HLS IP has. The rest are placed with
# `#pragma HLS INTERFACE ... offset=`, so the generated IP and this table agree by construction.
# Outputs are 0x10 apart because Vitis HLS puts an ap_vld control word after each output word.
CONTROL_REGISTERS = tuple(ControlRegister(*row) for row in (
    # name        offset  direction  meaning
    ("ap_ctrl",    0x00, "block", "ap_start/ap_done/ap_idle/ap_ready"),
    ("gie",        0x04, "block", "global interrupt enable"),
    ("ier",        0x08, "block", "IP interrupt enable"),
    ("isr",        0x0C, "block", "IP interrupt status"),
    ("commit",     0x10, "in",    "a new sequence number (not 0) copies shadow -> bank load_bank before any frame"),
    ("repeat",     0x18, "in",    "how many times the repeated blocks run"),
    ("n_frames",   0x20, "in",    "frames to stream in this start (0 = only apply a pending commit)"),
    ("load_bank",  0x28, "in",    "the weight bank a commit writes and active_seq reports", True),
    ("active_seq", 0x30, "out",   "sequence number of the weight set in bank load_bank (0: none)"),
    ("core_id",    0x40, "out",   "low 32 bits of the frozen core id built into the IP"),
    ("regmap_id",  0x50, "out",   "low 32 bits of the register map's id"),
    ("ready_banks", 0x60, "out",  "bit k set: bank k holds a committed weight set", True),
    ("unready_frames", 0x70, "out", "frames of this start that named a bank with no weight set (flagged)", True),
))
# The shadow bank is an s_axilite array. Vitis HLS aligns an array to a power of two at least as
# large as the array, and never below the scalar registers; 0x1000 leaves room for both.
MIN_BANK_OFFSET = 0x1000
# An IP whose reused repeat group keeps its frame in DDR (the hardware plan's ``frame_buffer: ddr``)
# has one more input: the buffer's 64-bit DDR address, an AXI master's ``offset=slave`` register that
# Vitis HLS splits into frame_buffer_1 (low word, here) and frame_buffer_2 (high word, 4 bytes on).
# The host allocates the buffer (io["frame_buffer"]["bytes"]) and writes its address before a start.
FRAME_BUFFER_OFFSET = 0x80
FRAME_BUFFER_WORDS = ("frame_buffer_1", "frame_buffer_2")     # the address's low and high word, 4 bytes apart

AP_START, AP_DONE, AP_IDLE, AP_READY = 0x1, 0x2, 0x4, 0x8


# Weight banks (``hardware.banks``): how many weight sets an IP can hold resident, and where a frame
# names its bank. The bank travels in the top bits of the input stream's TDATA (the IP reads it on a
# frame's first beat): PYNQ's simple-mode AXI DMA drives no TUSER, so the side-band field rides in
# the data bits the pixel leaves free.
MAX_BANKS = 8


def bank_bits(banks: int) -> int:
    """Side-band bits a frame's bank number takes on the input stream (0 for one bank)."""
    return max(0, int(banks) - 1).bit_length()


def bank_shift(banks: int) -> int:
    """Where the bank number starts in an input beat's 32 TDATA bits (it fills the top ``bank_bits``)."""
    return 32 - bank_bits(banks)


def control_offsets(banks: int = 1) -> dict[str, int]:
    return {r.name: r.offset for r in CONTROL_REGISTERS if banks > 1 or not r.banked}


def ports(direction: str, banks: int = 1) -> tuple[str, ...]:
    """The top function's scalar arguments of one direction ("in" or "out"), in argument order, for
    an IP of ``banks`` weight banks (the bank registers exist only when there is more than one)."""
    return tuple(r.name for r in CONTROL_REGISTERS if r.direction == direction and (banks > 1 or not r.banked))


# --------------------------------------------------------------------------------------------
# The IP's identity, the C simulation's ABI, the block design
# --------------------------------------------------------------------------------------------

IP_TOP = "semifreddo_top"          # the HLS top function, and the IP's name
IP_VENDOR, IP_LIBRARY, IP_VERSION = "semifreddo", "hls", "1.0"
IP_VLNV = f"{IP_VENDOR}:{IP_LIBRARY}:{IP_TOP}:{IP_VERSION}"
C_ABI_VERSION = 3                  # sf_abi_version() of the C simulation library
IP_INSTANCE = "semifreddo_0"       # the IP and the DMA in every block design (Tcl and emulated)
DMA_INSTANCE = "axi_dma_0"
DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"
# The PYNQ releases the board side (driver, notebook) runs on, as major.minor: 3.0 (PYNQ's v3.0 SD-card
# images and Kria-PYNQ, which installs pynq 3.0.1 on the KV260's Ubuntu 22.04) and 3.1 (PYNQ v3.1,
# which drops the Z1/Z2 images). The host tool chain pins pynq 3.0.1 (pyproject.toml).
PYNQ_RELEASES = ("3.0", "3.1")
BUNDLE_MANIFEST = "manifest.json"  # at the top of a deploy bundle


# --------------------------------------------------------------------------------------------
# Artifact formats
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Format:
    name: str            # the value of the "format" key
    version: int         # the value of the "format_version" key
    title: str           # what a user calls it
    remedy: str          # how to get a good one


FORMAT_KEY, VERSION_KEY = "format", "format_version"
# Every artifact's format name, declared here once; the modules that write and read them import these.
CORE_FORMAT = "semifreddo-core"
WEIGHTSET_FORMAT = "semifreddo-weightset"
REGMAP_FORMAT = "semifreddo-regmap"
PLAN_FORMAT = "semifreddo-plan"
HLS_FORMAT = "semifreddo-hls"
SYNTH_FORMAT = "semifreddo-synth"
BITSTREAM_FORMAT = "semifreddo-bitstream"
BUNDLE_FORMAT = "semifreddo-bundle"
UNIT_COSTS_FORMAT = "semifreddo-unit-costs"
EMULATED_HARDWARE_FORMAT = "semifreddo-emulated-hardware"
EMULATED_PL_FORMAT = "semifreddo-emulated-pl"
FORMATS = {f.name: f for f in (
    Format(CORE_FORMAT, 1, "frozen-core artifact", "re-run `semifreddo train-core`"),
    Format(WEIGHTSET_FORMAT, 2, "weight set", "train it again with `semifreddo train-task`"),
    Format(REGMAP_FORMAT, 2, "register map", "regenerate it with `semifreddo convert`"),
    Format(PLAN_FORMAT, 2, "hardware plan", "re-run `semifreddo convert`"),
    Format(HLS_FORMAT, 3, "HLS project manifest", "re-run `semifreddo convert`"),
    Format(SYNTH_FORMAT, 2, "synthesis record", "re-run `semifreddo synth`"),
    Format(BITSTREAM_FORMAT, 2, "bitstream record", "re-run `semifreddo bitstream`"),
    Format(BUNDLE_FORMAT, 2, "deploy bundle", "rebuild it with `semifreddo package`"),
    Format(UNIT_COSTS_FORMAT, 2, "unit-cost table", "run `make characterize`"),
    Format(EMULATED_HARDWARE_FORMAT, 2, "emulated hardware description",
           "rebuild the bundle with `semifreddo package SPEC --board emulated`"),
    Format(EMULATED_PL_FORMAT, 3, "emulated PL state", "delete it to power-cycle the emulated board"),
)}


class ArtifactIds:
    """The ids an artifact's manifest carries (mixed into the classes that hold a ``manifest``:
    weight sets and HLS projects): the frozen core and the register map it was made for."""

    manifest: dict

    @property
    def core_id(self) -> str:
        return self.manifest["core_id"]

    @property
    def regmap_id(self) -> str:
        return self.manifest["regmap_id"]


def stamp(name: str) -> dict:
    """The two keys that open every artifact of format ``name``."""
    return {FORMAT_KEY: name, VERSION_KEY: FORMATS[name].version}


def check_format(obj, name: str, source: str, error: type[SemifreddoError] = SemifreddoError) -> None:
    """Refuse, in one line, anything that is not a current-version artifact of format ``name``."""
    fmt = FORMATS[name]
    found = obj.get(FORMAT_KEY) if isinstance(obj, dict) else None
    if found != fmt.name:
        what = f"format {found!r}" if found else "no format name"
        raise error(f"{source}: not a semifreddo {fmt.title} ({what}, expected {fmt.name!r}); {fmt.remedy}")
    version = obj.get(VERSION_KEY)
    if version != fmt.version:
        raise error(f"{source}: unknown format version {version!r} of a {fmt.title} (this toolkit reads version "
                    f"{fmt.version}); {fmt.remedy}")


def read_artifact(path, name: str, if_missing: str, error: type[SemifreddoError] = SemifreddoError) -> dict:
    """A JSON artifact of format ``name`` from ``path``, checked; ``if_missing`` says what to do when
    the file is not there. Every JSON artifact is read through here."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{FORMATS[name].title} {path} not found: {if_missing}") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not a {FORMATS[name].title}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: damaged, not valid JSON ({exc})") from None
    check_format(obj, name, str(path), error)
    return obj


def check_pynq_release(version: str) -> None:
    """Refuse, in one line, a PYNQ release the board side was not made for."""
    release = ".".join(str(version).split(".")[:2])
    if release not in PYNQ_RELEASES:
        raise SemifreddoError(f"pynq {version} is installed, but the semifreddo driver supports PYNQ "
                              f"{' and '.join(PYNQ_RELEASES)} only; install one of those on the board "
                              "(a PYNQ v3.0/v3.1 image, or Kria-PYNQ on a KV260)")


def read_bundle_manifest(folder) -> dict:
    """The ``manifest.json`` of a deploy bundle (the one reader, on the host and on the board),
    with the fields the driver and `bundle add` use checked: their types, and every file it names
    a relative path inside the bundle."""
    path = Path(folder) / BUNDLE_MANIFEST
    manifest = read_artifact(path, BUNDLE_FORMAT, "not a deploy bundle; build one with `semifreddo package`")

    def fail(problem: str):
        raise SemifreddoError(f"{path}: damaged deploy bundle manifest ({problem}); "
                              f"{FORMATS[BUNDLE_FORMAT].remedy}")

    def inside(key: str, name) -> None:
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            fail(f"{key} {name!r} is not a relative path inside the bundle")

    for key in ("core_id", "regmap_id", "ip_instance", "dma_instance"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            fail(f"{key} is {manifest.get(key)!r}, expected a string")
    inside("regmap", manifest.get("regmap"))
    for key, required in (("tasks", True), ("files", True), ("samples", False)):
        table = manifest.get(key, {} if not required else None)
        if not isinstance(table, dict) or (table is None and required):
            fail(f"{key} is {type(table).__name__}, expected a mapping of names to files")
        for name, file in table.items():
            inside(f"{key}.{name}", file if key != "files" else name)
    emulator = manifest.get("emulator")
    if emulator is not None and not isinstance(emulator, dict):
        fail(f"emulator is {type(emulator).__name__}, expected a mapping")
    for key, name in (("bitstream", manifest.get("bitstream")), ("emulator.bitstream", (emulator or {}).get("bitstream"))):
        if name is not None:
            inside(key, name)
    if not isinstance(manifest.get("notebooks", []), list):
        fail("notebooks is not a list")
    return manifest
