"""The unit blocks the cost model is built from: their Verilog, their sample points, their cost models.

Each :class:`Family` is one kind of block (an adder, a configurable multiplier, a requantizer,
...). ``make characterize`` synthesizes every sample point of every family with Yosys and fits
each family's **model**, a linear function of a few features (bits, product bits, ...), to the
measured LUTs, flip-flops, DSPs and BRAMs. :mod:`.costs` evaluates the same features with the
fitted coefficients; so the feature functions here are the one definition of what each model means.

The Verilog is written the way Vitis HLS builds these blocks: exact-width signed arithmetic,
registered where the HLS schedule registers, constant multipliers as canonical signed digits
(through :mod:`.datapath`, the same code that builds whole layers), and memories as plain arrays
for the synthesis tool to map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from semifreddo.hls_project.plan import dsp_slices

from . import datapath

# Which multipliers go to DSP48E1s, and how many each takes, is the network description's rule
# (semifreddo.hls_project.plan.dsp_slices), so the hardware and its price agree.


@dataclass(frozen=True)
class Family:
    name: str
    model: str                                   # several families may feed one model
    description: str
    points: tuple[dict, ...]
    verilog: Callable[[dict], str]
    features: Callable[[dict], dict[str, float]]
    fitted: tuple[str, ...] = ("lut",)           # resources the model predicts
    dsp: bool = False                            # synthesize with DSP48s allowed
    lookup: bool = False                         # priced by the nearest larger point, not a fit


# --------------------------------------------------------------------------------------------
# Adders and constant multipliers (model "adder": LUTs per adder bit and per adder)
# --------------------------------------------------------------------------------------------

def adder_features(adder_bits, chained_bits: int = 0) -> dict[str, float]:
    """Model "adder": LUTs from the adders' live bits (datapath.adder_bits), the share of them in
    chains that synthesis merges into multi-operand adders, and the number of adders."""
    adder_bits = list(adder_bits)
    return {"adder_bits": float(sum(adder_bits)), "chained_bits": float(chained_bits), "adders": float(len(adder_bits))}


def tree_features(tree: datapath.Tree) -> dict[str, float]:
    cost = datapath.tree_cost(tree)
    return adder_features(cost.adder_bits, cost.chained_bits)


def _adder_tree(p: dict) -> datapath.Tree:
    """``x0 * 1 + x1 * 2**shift``: one adder whose narrower operand is shifted."""
    return datapath.constant_dot_product(p["bits"], [1, 1 << p["shift"]])


def _const_mult_tree(p: dict) -> datapath.Tree:
    return datapath.constant_dot_product(p["x_bits"], [p["constant"]])


def _const_dot_tree(p: dict) -> datapath.Tree:
    """A dot product with fixed pseudo-random constants of ``w_bits`` bits (seeded, reproducible)."""
    import numpy as np

    rng = np.random.default_rng(p["seed"])
    half = 1 << (p["w_bits"] - 1)
    return datapath.constant_dot_product(p["x_bits"], rng.integers(-half, half, size=p["n"]))


# Constants with 1 to 4 non-zero canonical signed digits, spread over magnitudes.
CONSTANTS = (1, -4, 3, -6, 10, 7, 11, -21, 43, 45, -85, 171)

ADDER_FAMILIES = (
    Family("adder", "adder", "two-input adder, second operand shifted left by `shift`",
           tuple({"bits": b, "shift": s} for b in (4, 8, 16, 24) for s in (0, 3)),
           lambda p: datapath.tree_verilog([_adder_tree(p)]), lambda p: tree_features(_adder_tree(p))),
    Family("const_mult", "adder", "x (unsigned x_bits) times a constant, as canonical signed digits",
           tuple({"x_bits": x, "constant": c} for x in (4, 8) for c in CONSTANTS),
           lambda p: datapath.tree_verilog([_const_mult_tree(p)]), lambda p: tree_features(_const_mult_tree(p))),
    Family("const_dot", "adder", "dot product of n inputs with random w_bits constants, pipelined",
           tuple({"x_bits": 8, "w_bits": w, "n": n, "seed": n * 10 + w} for w in (4, 8) for n in (4, 16)),
           lambda p: datapath.tree_verilog([_const_dot_tree(p)]), lambda p: tree_features(_const_dot_tree(p))),
)


# --------------------------------------------------------------------------------------------
# Configurable multipliers: unsigned x_bits activation times signed w_bits register
# --------------------------------------------------------------------------------------------

def multiplier_features(p: dict) -> dict[str, float]:
    """Operand widths as the hardware sees them: the unsigned input gains a sign bit."""
    a, b = p["x_bits"] + 1, p["w_bits"]
    return {"product_bits": float(a * b), "operand_bits": float(a + b), "one": 1.0}


def multiplier_dsp_features(p: dict) -> dict[str, float]:
    return {"dsp_slices": float(dsp_slices(p["x_bits"], p["w_bits"]))}


def _multiplier_verilog(p: dict) -> str:
    return datapath.tree_verilog([datapath.configurable_dot_product(p["x_bits"], p["w_bits"], 1)])


MULTIPLIER_GRID = tuple({"x_bits": x, "w_bits": w} for x in (4, 6, 8, 10) for w in (4, 6, 8, 10))

MULTIPLIER_FAMILIES = (
    Family("multiplier_lut", "multiplier_lut", "configurable multiplier in LUTs (-nodsp), registered",
           MULTIPLIER_GRID, _multiplier_verilog, multiplier_features),
    Family("multiplier_dsp", "multiplier_dsp", "configurable multiplier with DSP48E1s allowed, registered",
           tuple(p for p in MULTIPLIER_GRID if p["x_bits"] == p["w_bits"] and dsp_slices(p["x_bits"], p["w_bits"])),
           _multiplier_verilog, multiplier_dsp_features, fitted=("lut", "dsp"), dsp=True),
)


# --------------------------------------------------------------------------------------------
# Requantizer: ReLU or signed, round half to even, saturate (hls4ml's AP_RND_CONV, AP_SAT)
# --------------------------------------------------------------------------------------------

def requantize_verilog(acc_bits: int, drop: int, out_bits: int, signed_out: bool, module: str = "top") -> str:
    hi = (1 << (out_bits - 1)) - 1 if signed_out else (1 << out_bits) - 1
    lo = -(1 << (out_bits - 1)) if signed_out else 0
    q_bits = acc_bits - drop
    if drop == 0:
        round_up = "1'b0"
    elif drop == 1:
        round_up = "acc[0] & acc[1]"
    else:
        round_up = f"acc[{drop - 1}] & ((|acc[{drop - 2}:0]) | acc[{drop}])"
    out_type = "signed " if signed_out else ""
    ports = f"input clk, input signed [{acc_bits - 1}:0] acc, output reg {out_type}[{out_bits - 1}:0] y"
    return f"""module {module}({ports});
  wire signed [{q_bits - 1}:0] q = acc >>> {drop};
  wire up = {round_up};
  wire signed [{q_bits}:0] r = q + $signed({{1'b0, up}});
  always @(posedge clk)
    if (r > {hi}) y <= {hi};
    else if (r < {lo}) y <= {lo};
    else y <= r[{out_bits - 1}:0];
endmodule
"""


def requantize_features(p: dict) -> dict[str, float]:
    """Rounding is a short increment; the cost that varies is saturation, present only when the
    rounded value has more integer bits than the output (``sat_bits``), then a clamp per output bit."""
    sat_bits = max(0, p["acc_bits"] - p["drop"] - p["out_bits"] - (0 if p["signed_out"] else 1))
    return {"clamp_bits": float(p["out_bits"] if sat_bits else 0), "sat_bits": float(sat_bits), "one": 1.0}


REQUANTIZE_FAMILY = Family(
    "requantize", "requantize", "requantize an accumulator: drop bits with round half even, ReLU or sign, saturate",
    tuple({"acc_bits": a, "drop": d, "out_bits": 8, "signed_out": False} for a in (12, 16, 20, 24) for d in (4, 8))
    + tuple({"acc_bits": a, "drop": 6, "out_bits": o, "signed_out": True} for a, o in ((16, 12), (24, 16))),
    lambda p: requantize_verilog(p["acc_bits"], p["drop"], p["out_bits"], p["signed_out"]),
    requantize_features, fitted=("lut", "ff"))


# --------------------------------------------------------------------------------------------
# Plumbing: muxes, registers, shift registers (line buffers), stream FIFOs, accumulators
# --------------------------------------------------------------------------------------------

def _mux_verilog(p: dict) -> str:
    n = p["bits"]
    return f"""module top(input clk, input s, input [{n - 1}:0] a, input [{n - 1}:0] b, output reg [{n - 1}:0] y);
  always @(posedge clk) y <= s ? a : b;
endmodule
"""


def _register_verilog(p: dict) -> str:
    """Active registers: loaded through a clock enable, read in parallel."""
    n = p["bits"]
    return f"""module top(input clk, input load, input [31:0] d, output [{n - 1}:0] q);
  reg [{n - 1}:0] r;
  always @(posedge clk) if (load) r <= {{r, d}};
  assign q = r;
endmodule
"""


def _shift_register_verilog(p: dict) -> str:
    """One line-buffer row of one channel: ``depth`` pixels of ``bits`` bits, shifted on enable
    (hls4ml's ``ap_shift_reg``; only the oldest pixel is read)."""
    depth, bits = p["depth"], p["bits"]
    return f"""module top(input clk, input en, input [{bits - 1}:0] d, output [{bits - 1}:0] q);
  reg [{bits - 1}:0] sr [0:{depth - 1}];
  integer i;
  always @(posedge clk) if (en) begin
    sr[0] <= d;
    for (i = 1; i < {depth}; i = i + 1) sr[i] <= sr[i - 1];
  end
  assign q = sr[{depth - 1}];
endmodule
"""


def _fifo_verilog(p: dict) -> str:
    """A two-entry stream FIFO with valid/ready handshakes (the depth of an HLS dataflow channel)."""
    n = p["bits"]
    return f"""module top(input clk, input rst, input [{n - 1}:0] in_data, input in_valid, output in_ready,
           output [{n - 1}:0] out_data, output out_valid, input out_ready);
  reg [{n - 1}:0] slot0, slot1;
  reg [1:0] count;
  wire push = in_valid && in_ready;
  wire pop = out_valid && out_ready;
  assign in_ready = count != 2;
  assign out_valid = count != 0;
  assign out_data = slot0;
  always @(posedge clk) begin
    if (rst) count <= 0;
    else count <= count + push - pop;
    if (pop) slot0 <= (count == 2 || !push) ? slot1 : in_data;
    else if (push && count == 0) slot0 <= in_data;
    if (push && (count - pop) == 1) slot1 <= in_data;
  end
endmodule
"""


def accumulator_features(p: dict) -> dict[str, float]:
    return {"bits": float(p["bits"]), "x_bits": float(p["x_bits"]), "one": 1.0}


def _accumulator_verilog(p: dict) -> str:
    """Accumulator of ``x_bits`` unsigned addends that starts over on the first of a series."""
    n, x = p["bits"], p["x_bits"]
    return f"""module top(input clk, input first, input [{x - 1}:0] x, output reg [{n - 1}:0] acc);
  always @(posedge clk) acc <= first ? x : acc + x;
endmodule
"""


def bits_features(p: dict) -> dict[str, float]:
    return {"bits": float(p["bits"]), "one": 1.0}


def shift_register_features(p: dict) -> dict[str, float]:
    return {"srl_cells": float(p["bits"] * math.ceil(p["depth"] / 32)), "bits": float(p["bits"])}


PLUMBING_FAMILIES = (
    Family("mux2", "mux2", "n-bit 2:1 multiplexer (repeat gates, core shuffle)",
           tuple({"bits": b} for b in (8, 32, 128)), _mux_verilog, bits_features, fitted=("lut",)),
    Family("register", "register", "n configurable bits in flip-flops with a load enable",
           tuple({"bits": b} for b in (32, 256)), _register_verilog, bits_features, fitted=("lut", "ff")),
    Family("shift_register", "shift_register", "line-buffer row: depth x bits shift register with enable",
           tuple({"depth": d, "bits": 8} for d in (8, 16, 32, 64)), _shift_register_verilog,
           shift_register_features, fitted=("lut", "ff")),
    Family("fifo", "fifo", "two-entry stream FIFO of n bits",
           tuple({"bits": b} for b in (8, 64, 256)), _fifo_verilog, bits_features, fitted=("lut", "ff")),
    Family("accumulator", "accumulator", "pooling accumulator of n bits restarting each frame",
           tuple({"bits": b, "x_bits": x} for b, x in ((12, 8), (16, 8), (24, 8), (16, 4), (24, 16))),
           _accumulator_verilog, accumulator_features,
           fitted=("lut", "ff")),
)


# --------------------------------------------------------------------------------------------
# The register bank: shadow memory, commit into active registers, AXI-Lite slave
# --------------------------------------------------------------------------------------------

def _bank_verilog(p: dict) -> str:
    """The shadow bank: ``words`` x 32 bits, written over AXI-Lite, read back or by the commit copy."""
    n = p["words"]
    a = max(1, (n - 1).bit_length())
    return f"""module top(input clk, input we, input [{a - 1}:0] waddr, input [31:0] wdata,
           input [{a - 1}:0] raddr, output reg [31:0] rdata);
  reg [31:0] mem [0:{n - 1}];
  always @(posedge clk) begin
    if (we) mem[waddr] <= wdata;
    rdata <= mem[raddr];
  end
endmodule
"""


def _commit_verilog(p: dict) -> str:
    """The commit copy: a word counter walks the bank and loads each word into its active register."""
    n = p["words"]
    a = max(1, (n - 1).bit_length())
    loads = "\n".join(f"      if (index == {k}) active[{32 * k + 31}:{32 * k}] <= rdata;" for k in range(n))
    return f"""module top(input clk, input start, input [31:0] rdata, output [{a - 1}:0] raddr,
           output busy, output [{32 * n - 1}:0] q);
  reg [{a - 1}:0] index;
  reg running;
  reg [{32 * n - 1}:0] active;
  assign raddr = index;
  assign busy = running;
  assign q = active;
  always @(posedge clk) begin
    if (start) begin running <= 1; index <= 0; end
    else if (running) begin
{loads}
      if (index == {n - 1}) running <= 0;
      index <= index + 1;
    end
  end
endmodule
"""


def _axilite_verilog(p: dict) -> str:
    """An AXI4-Lite slave in the shape Vitis HLS generates: write and read state machines, the
    control registers of the register map, a bank write port and a bank read-back path."""
    return """module top(input clk, input rst_n,
  input [12:0] awaddr, input awvalid, output awready, input [31:0] wdata, input [3:0] wstrb,
  input wvalid, output wready, output [1:0] bresp, output bvalid, input bready,
  input [12:0] araddr, input arvalid, output arready, output [31:0] rdata, output [1:0] rresp,
  output rvalid, input rready,
  output ap_start, input ap_done, input ap_idle, input ap_ready,
  output reg [31:0] commit, output reg [31:0] repeat_count, output reg [31:0] n_frames,
  input [31:0] active_seq, input [31:0] core_id, input [31:0] regmap_id,
  output bank_we, output [9:0] bank_waddr, output [31:0] bank_wdata,
  output [9:0] bank_raddr, input [31:0] bank_rdata);
  localparam WIDLE = 2'd0, WDATA = 2'd1, WRESP = 2'd2, RIDLE = 2'd0, RDATA = 2'd1;
  reg [1:0] wstate, rstate;
  reg [12:0] waddr_q;
  reg [31:0] rdata_q;
  reg rbank;
  reg start_q, auto_restart, done_q, gie, ier0, isr0;
  wire [31:0] mask = {{8{wstrb[3]}}, {8{wstrb[2]}}, {8{wstrb[1]}}, {8{wstrb[0]}}};
  wire aw_hs = awvalid & awready;
  wire w_hs = wvalid & wready;
  wire ar_hs = arvalid & arready;
  assign awready = rst_n & (wstate == WIDLE);
  assign wready = wstate == WDATA;
  assign bresp = 2'b00;
  assign bvalid = wstate == WRESP;
  assign arready = rst_n & (rstate == RIDLE);
  assign rresp = 2'b00;
  assign rvalid = rstate == RDATA;
  assign rdata = rbank ? bank_rdata : rdata_q;
  assign ap_start = start_q;
  assign bank_we = w_hs & waddr_q[12];
  assign bank_waddr = waddr_q[11:2];
  assign bank_wdata = wdata;
  assign bank_raddr = araddr[11:2];
  always @(posedge clk) begin
    if (!rst_n) begin wstate <= WIDLE; rstate <= RIDLE; end
    else begin
      case (wstate)
        WIDLE: if (awvalid) wstate <= WDATA;
        WDATA: if (wvalid) wstate <= WRESP;
        WRESP: if (bready) wstate <= WIDLE;
        default: wstate <= WIDLE;
      endcase
      case (rstate)
        RIDLE: if (arvalid) rstate <= RDATA;
        RDATA: if (rready) rstate <= RIDLE;
        default: rstate <= RIDLE;
      endcase
    end
    if (aw_hs) waddr_q <= awaddr;
    if (w_hs && waddr_q == 13'h00) begin
      if (wstrb[0] && wdata[0]) start_q <= 1;
      if (wstrb[0]) auto_restart <= wdata[7];
    end else if (ap_ready) start_q <= auto_restart;
    if (ap_done) done_q <= 1; else if (ar_hs && araddr == 13'h00) done_q <= 0;
    if (w_hs && waddr_q == 13'h04) gie <= wdata[0];
    if (w_hs && waddr_q == 13'h08) ier0 <= wdata[0];
    if (ap_done && ier0) isr0 <= 1; else if (w_hs && waddr_q == 13'h0c) isr0 <= isr0 ^ wdata[0];
    if (w_hs && waddr_q == 13'h10) commit <= (wdata & mask) | (commit & ~mask);
    if (w_hs && waddr_q == 13'h18) repeat_count <= (wdata & mask) | (repeat_count & ~mask);
    if (w_hs && waddr_q == 13'h20) n_frames <= (wdata & mask) | (n_frames & ~mask);
    if (ar_hs) begin
      rbank <= araddr[12];
      case (araddr)
        13'h00: rdata_q <= {24'd0, auto_restart, 3'd0, ap_ready, ap_idle, done_q, start_q};
        13'h04: rdata_q <= {31'd0, gie};
        13'h08: rdata_q <= {31'd0, ier0};
        13'h0c: rdata_q <= {31'd0, isr0};
        13'h10: rdata_q <= commit;
        13'h18: rdata_q <= repeat_count;
        13'h20: rdata_q <= n_frames;
        13'h30: rdata_q <= active_seq;
        13'h40: rdata_q <= core_id;
        13'h50: rdata_q <= regmap_id;
        default: rdata_q <= 0;
      endcase
    end
  end
endmodule
"""


def words_features(p: dict) -> dict[str, float]:
    return {"words": float(p["words"]), "one": 1.0}


BANK_FAMILIES = (
    Family("bank", "bank", "shadow bank memory, words x 32 bits, one write and one read port",
           tuple({"words": n} for n in (64, 128, 256, 512, 1024, 2048)), _bank_verilog, words_features,
           fitted=("lut", "ff", "bram18"), lookup=True),
    Family("commit", "commit", "commit copy: word counter and per-word load of the active registers",
           tuple({"words": n} for n in (8, 32, 128)), _commit_verilog, words_features, fitted=("lut", "ff")),
    Family("axilite", "axilite", "AXI4-Lite slave with the control registers and a bank port",
           ({},), _axilite_verilog, lambda p: {"one": 1.0}, fitted=("lut", "ff")),
)

FAMILIES: tuple[Family, ...] = (ADDER_FAMILIES + MULTIPLIER_FAMILIES + (REQUANTIZE_FAMILY,) + PLUMBING_FAMILIES
                                + BANK_FAMILIES)
