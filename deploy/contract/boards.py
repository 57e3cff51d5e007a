"""The board table: every fact about a target board, in one place (standard library only).

The board flow (Tcl, bundles), the estimator (does the IP fit?) and the runtime benchmark (how
long is a bitstream?) all read it. Adding a board means adding one entry to ``BOARDS``. The
block-design Tcl for the board's PS comes from ``board_scripts/tcl/ps_<ps_ip>.tcl``, so a board
with a Zynq-7000 or a Zynq UltraScale+ PS needs nothing else. ``emulated`` has no FPGA: the
emulated board of this package serves it, so it only packages.

Where the facts come from (checked against these files, not from memory):

* PYNQ-Z2: the TUL board file in Xilinx's board store, ``XilinxBoardStore/boards/TUL/pynq-z2/A.0/
  board.xml`` (vendor ``tul.com.tw``, name ``pynq-z2``, file_version 1.0, part_name
  ``xc7z020clg400-1``, a ``ps7_fixedio`` interface, i.e. the ``processing_system7`` IP); PYNQ's own
  ``boards/Pynq-Z2/base/base.tcl`` creates its project with the same part.
* ZCU104: ``XilinxBoardStore/boards/Xilinx/zcu104/1.1/board.xml`` (vendor ``xilinx.com``, name
  ``zcu104``, file_version 1.1, part_name ``xczu7ev-ffvc1156-2-e``, preferred IP
  ``zynq_ultra_ps_e``).
* Ultra96-V2: Avnet's board files, ``Avnet/bdf/ultra96v2/1.2/board.xml`` (vendor ``avnet.com``,
  name ``ultra96v2``, file_version 1.2, part_name ``xczu3eg-sbva484-1-i``, preferred IP
  ``zynq_ultra_ps_e``). Older Avnet files (``em.avnet.com:ultra96v2:part0:1.0``) name the -e part;
  when the listed version is not installed, ``tcl/bitstream.tcl`` uses the newest installed
  version of the same board's files.
* HP port widths: the Zynq-7000 AXI_HP slave ports are 32 or 64 bits wide (UG585, Zynq-7000 TRM,
  "PL AXI high-performance ports"); the Zynq UltraScale+ PL-to-PS ports, S_AXI_HP0_FPD among them,
  are 32, 64 or 128 bits (PG201, "AXI4 I/O compliant interfaces"). The DMA's memory side is built
  at the port's full width so no width converter sits between them.
* Clock: 100 MHz, the PL clock PYNQ's base overlays use on all three boards (FCLK_CLK0 / pl_clk0).
* Capacity (LUTs, flip-flops, DSP slices, 18 Kb block RAMs): XC7Z020 from AMD DS190 (Zynq-7000 SoC
  overview: 53,200 LUTs, 106,400 flip-flops, 220 DSP48E1, 140 RAMB36 = 280 RAMB18); XCZU7EV and
  XCZU3EG from AMD DS891 (Zynq UltraScale+ MPSoC overview: 230,400 / 70,560 LUTs, 460,800 /
  141,120 flip-flops, 1,728 / 360 DSP48E2, 312 / 216 RAMB36; the ZU7EV's 96 UltraRAMs are not
  counted). The Z-7020 figures were checked against a stored copy here, the UltraScale+ ones not.
  ``semifreddo estimate`` uses them to say whether an IP fits.
* Full configuration bitstream lengths: XC7Z020 32,364,512 bits (UG470, "Bitstream Length" table;
  the same figure as U-Boot's ``XILINX_XC7Z020_SIZE``); XCZU3EG 44,549,344 bits and XCZU7EV
  154,901,216 bits (UG570, "Device Resources and Configuration Bitstream Lengths"; a ZU3EG full
  bitstream as .bin is 5,568,668 bytes, the same length; the ZU7EV figure was not re-verified here).
* Kria KV260 (K26 SOM on the KV260 carrier card): the K26 production SOM's part is
  ``xck26-sfvc784-2LV-c`` and its board files are ``xilinx.com:kv260_som:part0:1.4`` (AMD's board
  store, ``boards/Xilinx/kv260_som/1.4``; an older installed version, e.g. 1.3, is used in its
  place by ``tcl/bitstream.tcl``), preferred IP ``zynq_ultra_ps_e``. The SOM's board files
  carry the PS preset of the module itself (DDR4, QSPI, eMMC, clocks); the carrier card's MIO
  peripherals (UART1, SD1, USB, Ethernet) come with the board connection
  ``som240_1_connector`` -> ``xilinx.com:kv260_carrier:som240_1_connector:1.3``, as AMD's own Kria
  designs and Kria-PYNQ's base overlay set it. Capacity from AMD DS987 (Kria K26 SOM data sheet,
  programmable-logic table: 117,120 CLB LUTs, 234,240 CLB flip-flops, 1,248 DSP slices, 144 block
  RAMs of 36 Kb = 288 RAMB18; its 64 UltraRAMs are not counted); the same figures as the XCZU5EV in
  DS891. Not checked against a stored copy of DS987 here. The full bitstream length of the XCK26 is
  not listed here (not verified), so `make bench-runtime` leaves the KV260 out of its reload row.
* Where PYNQ lives on the board (for `deploy`): PYNQ's SD-card images log in as ``xilinx`` and serve
  ``/home/xilinx/jupyter_notebooks``. Kria-PYNQ is installed on AMD's Ubuntu 22.04 image, whose
  log-in user is ``ubuntu``; its ``install.sh`` (run with sudo) puts the notebooks in
  ``/home/root/jupyter_notebooks`` (``PYNQ_JUPYTER_NOTEBOOKS=/home/$LOGNAME/jupyter_notebooks`` with
  LOGNAME root) and makes that folder writable for every user; Jupyter runs as root, so it reads
  an overlay in the ubuntu user's home.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SemifreddoError

PS7 = "processing_system7"       # Zynq-7000
PS8 = "zynq_ultra_ps_e"          # Zynq UltraScale+ MPSoC


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    part: str | None             # FPGA part; None for the emulated board
    board_part: str | None       # board-file VLNV (vendor:board:component:file_version)
    ps_ip: str | None            # PS IP name in the Vivado IP catalog
    hp_data_width: int | None    # data width of the HP port the DMA writes through (bits)
    clock_mhz: float             # default PL clock for HLS and the block design
    capacity: dict | None = None # programmable-logic resources: lut, ff, dsp, bram18 (18 Kb block RAMs)
    bitstream_bits: int | None = None   # length of a full configuration bitstream of the part
    bitstream_source: str = ""
    board_connections: tuple = ()       # (connector, board-file VLNV) pairs: a SOM's carrier card
    login_user: str = "xilinx"          # the board's PYNQ install, where `deploy` puts things
    overlay_root: str = "/home/xilinx/pynq/overlays"
    notebook_root: str = "/home/xilinx/jupyter_notebooks"

    @property
    def emulated(self) -> bool:
        return self.part is None


BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("pynq-z2", "TUL PYNQ-Z2 (Zynq-7020)", part="xc7z020clg400-1",
          board_part="tul.com.tw:pynq-z2:part0:1.0", ps_ip=PS7, hp_data_width=64, clock_mhz=100.0,
          capacity={"lut": 53_200, "ff": 106_400, "dsp": 220, "bram18": 280},
          bitstream_bits=32_364_512, bitstream_source="UG470 Bitstream Length table (XC7Z020)"),
    Board("zcu104", "AMD ZCU104 (Zynq UltraScale+ ZU7EV)", part="xczu7ev-ffvc1156-2-e",
          board_part="xilinx.com:zcu104:part0:1.1", ps_ip=PS8, hp_data_width=128, clock_mhz=100.0,
          capacity={"lut": 230_400, "ff": 460_800, "dsp": 1_728, "bram18": 624},
          bitstream_bits=154_901_216,
          bitstream_source="UG570 Configuration Bitstream Lengths (XCZU7EV; not re-verified)"),
    Board("ultra96-v2", "Avnet Ultra96-V2 (Zynq UltraScale+ ZU3EG)", part="xczu3eg-sbva484-1-i",
          board_part="avnet.com:ultra96v2:part0:1.2", ps_ip=PS8, hp_data_width=128, clock_mhz=100.0,
          capacity={"lut": 70_560, "ff": 141_120, "dsp": 360, "bram18": 432},
          bitstream_bits=44_549_344, bitstream_source="UG570 Configuration Bitstream Lengths (XCZU3EG)"),
    Board("kv260", "AMD Kria KV260 (K26 SOM, Zynq UltraScale+ XCK26), Kria-PYNQ", part="xck26-sfvc784-2LV-c",
          board_part="xilinx.com:kv260_som:part0:1.4", ps_ip=PS8, hp_data_width=128, clock_mhz=100.0,
          capacity={"lut": 117_120, "ff": 234_240, "dsp": 1_248, "bram18": 288},
          board_connections=(("som240_1_connector", "xilinx.com:kv260_carrier:som240_1_connector:1.3"),),
          login_user="ubuntu", overlay_root="/home/ubuntu/pynq/overlays", notebook_root="/home/root/jupyter_notebooks"),
    Board("emulated", "emulated board: no FPGA, served by the C simulation (semifreddo.deploy)",
          part=None, board_part=None, ps_ip=None, hp_data_width=None, clock_mhz=100.0),
)}


DEFAULT_BOARD = "pynq-z2"      # the most common PYNQ board; what the Makefile and `convert` assume

# The share of each resource an *estimated* design may use and still be said to fit: the estimator
# is within about 15 % of Yosys on LUTs (hls_project/estimate/README.md), and placement needs room.
FIT_LIMITS = {"lut": 0.85, "ff": 0.85, "dsp": 0.90, "bram18": 0.90}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise SemifreddoError(f"unknown board {name!r} (known boards: {', '.join(BOARDS)})") from None


def fpga_board(name: str, action: str) -> Board:
    """The board ``name``, which must have an FPGA because ``action`` needs one."""
    board = get_board(name)
    if board.emulated:
        real = ", ".join(b.name for b in BOARDS.values() if not b.emulated)
        raise SemifreddoError(f"board {name} has no FPGA, so there is nothing to {action}; "
                              f"use one of {real} (`package` works for {name})")
    return board
