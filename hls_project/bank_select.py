"""Weight banks in the generated C++: N copies of the active registers, and the selection in front of
the configurable multipliers.

With ``hardware.banks: N`` above 1 (the hardware plan's register map carries N), every active
register ``w5`` becomes ``w5_banks[N][...]``, fully partitioned (flip-flops, as one bank is). The
input adapter reads each frame's bank number from the side-band field of the frame's first beat
and hands it, one number per frame, to every process that computes with registers: a layer outside
the repeat group (through its ``banked_<layer>`` wrapper) and the repeat group itself. Such a
process, at the start of each frame, copies the named bank into local arrays with the registers'
own names (an N:1 multiplexer per register bit) and computes the frame with them, so hls4ml's layer
calls are unchanged and no frame can ever see two banks. The frozen core is untouched.

With one bank nothing here is generated: the code is the single-bank IP's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BankSelection:
    banks: int
    registers: dict            # register name -> the writer's register entry (name, ctype, size)

    @property
    def banked(self) -> bool:
        return self.banks > 1

    def one_bank(self) -> "BankSelection":
        """The same registers as one bank holds them (what a process computes with after selecting)."""
        return BankSelection(1, self.registers)

    @staticmethod
    def banked_name(name: str) -> str:
        return f"{name}_banks"

    @staticmethod
    def stream_name(process: str) -> str:
        """The stream that carries each frame's bank number to ``process``."""
        return f"bank_to_{process}"

    def declare(self, name: str) -> str:
        """One register as a parameter or static: its single-bank form, or all banks of it."""
        r = self.registers[name]
        size = f"[{r['size']}]" if r["size"] else ""
        if not self.banked:
            return f"{r['ctype']} {name}{size}"
        return f"{r['ctype']} {self.banked_name(name)}[{self.banks}]{size}"

    def arg(self, name: str) -> str:
        return self.banked_name(name) if self.banked else name

    def partition(self, name: str) -> str:
        """The pragma that keeps every bank of a register in flip-flops (nothing for a scalar of one bank)."""
        if not self.banked:
            return f"    #pragma HLS ARRAY_PARTITION variable={name} complete\n" if self.registers[name]["size"] else ""
        return f"    #pragma HLS ARRAY_PARTITION variable={self.banked_name(name)} complete dim=0\n"

    def unpack_target(self, name: str) -> str:
        """Where commit_bank writes a register: the bank ``target`` of it."""
        return f"{self.banked_name(name)}[target]" if self.banked else name

    def stream_param(self, process: str) -> str:
        return f"hls::stream<semifreddo_bank_t> &{self.stream_name(process)}"

    def select(self, names, process: str, indent: str) -> str:
        """At the start of a frame: read its bank number and copy that bank of each register into a
        local of the register's own name (the selection in front of the multipliers)."""
        code = f"{indent}const semifreddo_bank_t sel = {self.stream_name(process)}.read();\n"
        for name in names:
            r = self.registers[name]
            if not r["size"]:
                code += f"{indent}const {r['ctype']} {name} = {self.banked_name(name)}[sel];\n"
                continue
            code += (f"{indent}{r['ctype']} {name}[{r['size']}];\n"
                     f"{indent}#pragma HLS ARRAY_PARTITION variable={name} complete\n"
                     f"{indent}Select_{name}:\n"
                     f"{indent}for (unsigned i = 0; i < {r['size']}; i++) {{\n"
                     f"{indent}    #pragma HLS UNROLL\n"
                     f"{indent}    {name}[i] = {self.banked_name(name)}[sel][i];\n"
                     f"{indent}}}\n")
        return code

    def read_pixels(self, processes, shift: int, bits: int) -> dict:
        """The input adapter's part: its extra parameters, and the code that reads a frame's bank
        number from the side-band field of its first beat, counts frames that name a bank with no
        weight set (they still run, flagged in ``unready_frames``) and sends the number on."""
        if not self.banked:
            return {"read_params": "", "read_locals": "", "read_bank": "", "read_end": "", "read_args": ""}
        sends = "".join(f"            {self.stream_name(p)}.write(sel);\n" for p in processes)
        return {
            "read_params": ", ap_uint<SEMIFREDDO_BANKS> ready, ap_uint<32> &unready" + "".join(
                f", {self.stream_param(p)}" for p in processes),
            "read_locals": "    ap_uint<32> flagged = 0;\n",
            "read_bank": (f"        if (p % SEMIFREDDO_INPUT_BEATS == 0) {{   // a frame's first beat names its bank\n"
                          f"            const ap_uint<{bits}> named = word.data.range(31, {shift});\n"
                          f"            const bool usable = named < SEMIFREDDO_BANKS && ready[named];\n"
                          f"            if (!usable) flagged++;\n"
                          f"            const semifreddo_bank_t sel = named < SEMIFREDDO_BANKS ? named : ap_uint<{bits}>(0);\n"
                          f"{sends}        }}\n"),
            "read_end": "    unready = flagged;\n",
            "read_args": ", ready, flagged" + "".join(f", {self.stream_name(p)}" for p in processes),
        }

    def streams(self, processes, depth: int) -> str:
        """The bank-number streams of the dataflow region, deep enough for the frames in flight."""
        return "".join(f"    hls::stream<semifreddo_bank_t> {self.stream_name(p)}(\"{self.stream_name(p)}\");\n"
                       f"    #pragma HLS STREAM variable={self.stream_name(p)} depth={depth}\n" for p in processes)
