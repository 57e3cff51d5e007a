"""The Semifreddo backend's writer: an hls4ml Vitis project with a register bank.

What it writes differently from hls4ml's Vitis writer:

* ``firmware/semifreddo_top.cpp``: the IP's top function (AXI-Stream in/out, AXI-Lite control and
  shadow bank; see hls_project/README.md), the *active registers* that hold the configurable
  parameters, ``commit_bank`` (unpacks the shadow bank's words into them, generated from the
  register map), and ``run_frames`` (hls4ml's layer calls as one dataflow region, each layer looping
  over the frames of a start, so consecutive frames overlap).
  A configurable weight keeps the variable name hls4ml gave it (``w5``, ``b5``, ``alpha9``), so
  hls4ml's own layer calls compute with the active registers unchanged.
* ``firmware/weights/``: headers for frozen-core weights only. A configurable weight never gets a
  header, an initializer or a text file: its values exist only in the register bank.
* ``semifreddo_bridge.cpp``: a C ABI for the C simulation library (one call = one start of the IP).
* ``tb/semifreddo_tb.cpp`` and ``tb_data/``: the C test bench Vitis HLS runs for csim and cosim.
* ``hls_manifest.json`` and ``regmap.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract import (C_ABI_VERSION, IP_LIBRARY, IP_VENDOR, IP_VERSION, IP_VLNV, ports,
                                        stamp)
from semifreddo.deploy.fileio import atomic_write_text
from semifreddo.deploy.regmap import register_map_from_json

from .project import CFLAGS, HLS_FORMAT, TOP, shuffle_register
from .repeat_stage import LayerCall, group_members, repeat_stage

# The top function's scalar AXI-Lite arguments, as the contract lists them: inputs by value,
# outputs by reference (Vitis HLS makes each an s_axilite register at the offset its pragma gives).
SCALARS = ", ".join([f"ap_uint<32> {name}" for name in ports("in")] + [f"ap_uint<32> &{name}" for name in ports("out")])
TOP_SIGNATURE = (f"void {TOP}(hls::stream<axis_word_t> &in_stream, hls::stream<axis_word_t> &out_stream,\n"
                 f"           const ap_uint<32> bank[SEMIFREDDO_BANK_WORDS], {SCALARS})")
OUTPUTS = ", ".join(ports("out"))


def writer_class():
    """hls4ml's Vitis writer with the register-bank changes mixed in (composed at plugin load)."""
    from hls4ml.writer.vitis_writer import VitisWriter

    return type("SemifreddoWriter", (RegisterBankWriter, VitisWriter), {})


class RegisterBankWriter:
    """Mixed into hls4ml's VitisWriter; every method not defined here is hls4ml's."""

    # ---- what goes where -------------------------------------------------------------------

    def write_hls(self, model):
        self.write_project_dir(model)
        self.write_weights(model)
        self.write_defines(model)
        self.write_parameters(model)
        self.write_nnet_utils(model)
        self.write_nnet_utils_overrides(model)
        self.write_generated_code(model)
        self.write_top(model)
        self.write_bridge(model)
        self.write_test_bench(model)
        self.write_manifest(model)

    @staticmethod
    def _info(model) -> dict:
        from .backend import semifreddo_info

        return semifreddo_info(model)

    @staticmethod
    def _frozen_weights(model):
        """Unique frozen weight variables (repeat copies share their original's)."""
        seen = {}
        for layer in model.get_layers():
            for var in layer.get_weights():
                if getattr(var, "register_field", None) is None:
                    seen.setdefault(var.name, var)
        return list(seen.values())

    def write_weights(self, model):
        namespace = model.config.get_writer_config().get("Namespace", None)
        for var in self._frozen_weights(model):
            self.print_array_to_cpp(var, model.config.get_output_dir(), namespace=namespace, write_txt_file=False)

    def write_parameters(self, model):
        # hls4ml's parameters.h includes a header for every weight; keep only the frozen ones.
        super().write_parameters(model)
        path = Path(model.config.get_output_dir()) / "firmware" / "parameters.h"
        frozen = {var.name for var in self._frozen_weights(model)}
        lines = [line for line in path.read_text().splitlines(keepends=True)
                 if not (line.startswith('#include "weights/') and line[len('#include "weights/'):-4] not in frozen)]
        # Repeat copies would include their original's header twice; once is enough.
        unique, seen = [], set()
        for line in lines:
            if line.startswith('#include "weights/'):
                if line in seen:
                    continue
                seen.add(line)
            unique.append(line)
        path.write_text("".join(unique))

    # ---- the active registers --------------------------------------------------------------

    def _registers(self, model) -> list[dict]:
        """One entry per register field: the active array (or scalar) it is unpacked into."""
        rmap = register_map_from_json(self._info(model)["regmap"])
        by_field, layer_of = {}, {}
        for layer in model.get_layers():
            for var in layer.get_weights():
                field = getattr(var, "register_field", None)
                if field is not None:
                    by_field.setdefault(field, var)
                    layer_of.setdefault(field, layer)
        registers = []
        for f in rmap.fields:
            if f.meta.get("weight") == "swap":
                registers.append({"field": f, "name": shuffle_register(f.meta["block"]), "ctype": "ap_uint<1>",
                                  "size": None})
                continue
            var = by_field.get(f.name)
            if var is None:
                raise RuntimeError(f"register field {f.name} has no weight variable in the hls4ml model")
            if int(np.prod(var.shape)) != f.size:
                raise RuntimeError(f"register field {f.name} has {f.size} codes, its variable {var.name} "
                                   f"{int(np.prod(var.shape))}")
            registers.append({"field": f, "name": var.name, "ctype": var.type.name, "size": f.size,
                              "order": self._register_order(layer_of[f.name], f)})
        return registers

    @staticmethod
    def _register_order(layer, f) -> list[int] | None:
        """Where each code of a field (in register order, the Keras array's C order) sits in hls4ml's
        array, when they differ: hls4ml's Resource strategy transposes a dense kernel (n_in, n_out)
        to (n_out, n_in). None when the order is the same."""
        if not layer.get_attr("_weights_transposed", False) or f.meta.get("weight") != "kernel":
            return None
        if layer.class_name != "Dense":
            raise RuntimeError(f"{layer.name}: configurable weights in a transposed {layer.class_name} are not supported")
        n_in, n_out = f.shape
        keras_index = np.arange(n_in * n_out).reshape(n_in, n_out)
        order = np.empty(n_in * n_out, dtype=int)
        order[keras_index.T.ravel()] = np.arange(n_in * n_out)      # hls4ml index of each register code
        return order.tolist()

    @staticmethod
    def _unpack_code(reg: dict) -> str:
        f = reg["field"]
        if reg["size"] is None:
            return f"    {reg['name']} = bank[{f.word_offset}].range(0, 0);  // {f.name}\n"
        per_word = 32 // f.slot_bits
        order, index = reg.get("order"), "i"
        table = ""
        if order is not None:      # hls4ml holds this array in another order (see _register_order)
            table = (f"    static const unsigned short order_{reg['name']}[{f.size}] = {{"
                     f"{', '.join(map(str, order))}}};\n")
            index = f"order_{reg['name']}[i]"
        return (
            f"    // {f.name}: {f.size} codes {'s' if f.signed else 'u'}{f.bits}.{f.frac} in {f.slot_bits}-bit slots, "
            f"words {f.word_offset}..{f.word_offset + f.n_words - 1}\n{table}"
            f"    Commit_{reg['name']}:\n"
            f"    for (unsigned i = 0; i < {f.size}; i++) {{\n"
            f"        #pragma HLS UNROLL\n"
            f"        const unsigned lo = {f.slot_bits} * (i % {per_word});\n"
            f"        {reg['name']}[{index}].range({f.bits - 1}, 0) = bank[{f.word_offset} + i / {per_word}].range(lo + {f.bits - 1}, lo);\n"
            f"    }}\n")

    # ---- the top function ------------------------------------------------------------------

    def _layer_calls(self, model, registers, declare) -> list[LayerCall]:
        """One small function per hls4ml layer call that runs it for each frame of a start.

        Inside the dataflow region every layer is then a process with its own frame loop, so all
        layers work concurrently and consecutive frames overlap (one pixel per clock per layer),
        while the active registers stay fixed for the whole start.
        """
        calls = []
        for layer in model.get_layers():
            func = layer.get_attr("function_cpp", None)
            if not func:
                continue
            lines = list(func) if isinstance(func, (list, tuple)) else [func]
            text = " ".join(lines)
            inputs = [layer.get_input_variable(name) for name in layer.inputs]
            outputs = [layer.variables[name] for name in layer.outputs]
            variables = list({var.name: var for var in inputs + outputs}.values())
            params = [f"hls::stream<{var.type.name}> &{var.name}" for var in variables]
            args = [var.name for var in variables]
            used = [r for r in registers if re.search(rf"\b{r['name']}\b", text)]
            params += [declare(r) for r in used]
            args += [r["name"] for r in used]
            if re.search(r"\brepeat\b", text):
                params.append("ap_uint<32> repeat")
                args.append("repeat")
            body = "".join(f"        {line}  // {layer.name}\n" for line in lines)
            if model.config.trace_output and layer.get_attr("trace", False):
                body += "#ifndef __SYNTHESIS__\n" + "".join(
                    f'        nnet::save_layer_output<{var.type.name}>({var.name}, "{layer.name}", {var.size_cpp()});\n'
                    for var in layer.get_variables()) + "#endif\n"
            wrapper = (f"static void layer_{layer.name}({', '.join(params)}, unsigned n_frames) {{\n"
                       f"Frames_{layer.name}:\n"
                       f"    for (unsigned f = 0; f < n_frames; f++) {{\n{body}    }}\n}}\n\n")
            calls.append(LayerCall(layer.name, wrapper, args, [v.name for v in inputs], [v.name for v in outputs],
                                   [r["name"] for r in used], variables))
        return calls

    def write_top(self, model):
        info = self._info(model)
        rmap = register_map_from_json(info["regmap"])
        registers = self._registers(model)
        out_dir = Path(model.config.get_output_dir())
        model_in = model.get_input_variables()[0]
        model_out = model.get_output_variables()[0]
        io = info["io"]
        scalar_pragmas = "".join(f"    #pragma HLS INTERFACE s_axilite port={name} bundle=ctrl "
                                 f"offset=0x{rmap.control[name]:x}\n" for name in ports("in") + ports("out"))

        def declare(r):
            return f"{r['ctype']} {r['name']}" + (f"[{r['size']}]" if r["size"] else "")

        params = ", ".join(declare(r) for r in registers)
        args = ", ".join(r["name"] for r in registers)

        layer_calls = self._layer_calls(model, registers, declare)
        group_code, inner = "", set()
        group = info.get("repeat_group")
        if group:
            # The reused repeat group: its layers run inside the repeat stage, not in the top region.
            entries = [model.graph[name].get_output_variable() for name in group["inputs"]]
            exits = [model.graph[name].get_output_variable() for name in group["outputs"]]
            members = group_members(layer_calls, [v.name for v in entries], [v.name for v in exits])
            by_name = {r["name"]: r for r in registers}
            group_code, group_call = repeat_stage(
                layer_calls, members, entries, exits, lambda name: declare(by_name[name]),
                lambda var: self._make_array_pragma(var) if var.pragma else "", tuple(rmap.repeat_range))
            inner = {v.name for c in layer_calls if c.name in members for v in c.variables} - {
                v.name for v in entries + exits}
        streams = []
        for layer in model.get_layers():
            for var in layer.get_variables():
                if var.name in (model_in.name, model_out.name) or var.name in inner:   # declared elsewhere
                    continue
                definition = var.definition_cpp()
                if definition is not None:
                    streams.append(f"    {definition};\n")
                    if var.pragma:
                        streams.append(f"    {self._make_array_pragma(var)}\n")
        wrappers = [c.wrapper for c in layer_calls]
        calls = []
        for c in layer_calls:
            if not (group and c.name in members):
                calls.append(f"    {c.call('n_frames')}\n")
            elif c.name == [m.name for m in layer_calls if m.name in members][-1]:
                calls.append(group_call)   # where its last layer was: everything feeding it comes before
        partitions = "".join(f"    #pragma HLS ARRAY_PARTITION variable={r['name']} complete\n"
                             for r in registers if r["size"])
        statics = "".join(f"static {r['ctype']} {r['name']}" + (f"[{r['size']}]" if r["size"] else "") + ";\n"
                          for r in registers)
        unpack = "".join(self._unpack_code(r) for r in registers)

        header = f"""// Generated by `semifreddo convert` for spec {info['spec']}: do not edit.
// frozen core {info['core_id']}, register map {rmap.id}
#ifndef SEMIFREDDO_TOP_H_
#define SEMIFREDDO_TOP_H_

#include "ap_int.h"
#include "hls_stream.h"
#include "defines.h"
#include "nnet_utils/semifreddo_axis.h"

#define SEMIFREDDO_BANK_WORDS {rmap.n_words}
#define SEMIFREDDO_INPUT_BEATS {io['input_beats']}     // AXI-Stream beats per input frame (one per pixel)
#define SEMIFREDDO_OUTPUT_BEATS {io['output_beats']}    // AXI-Stream beats per output frame (one per value)
#define SEMIFREDDO_CORE_ID32 0x{info['core_id'][-8:]}u
#define SEMIFREDDO_REGMAP_ID32 0x{rmap.id[-8:]}u

{TOP_SIGNATURE};

#endif
"""
        n_channels = model_in.shape[-1]
        in_bits = io["input_bits"]
        out_bits = io["output_bits"]
        source = f"""// Generated by `semifreddo convert` for spec {info['spec']}: do not edit.
// The SemifreddoNet IP: frozen-core weights are the constants in weights/; every configurable
// parameter lives in the active registers below, loaded from the AXI-Lite shadow bank by a commit.
#include "{TOP}.h"
#include "parameters.h"

// ---- active registers: the configurable parameters the network computes with ----------------
// Written only by commit_bank(), which runs between frames, so a weight-set switch can never
// tear a frame in flight.
{statics}static ap_uint<32> active_seq_reg = 0;

static void commit_bank(const ap_uint<32> bank[SEMIFREDDO_BANK_WORDS]) {{
{unpack}}}

// ---- AXI-Stream adapters ----------------------------------------------------------------------
static void read_pixels(hls::stream<axis_word_t> &in_stream, hls::stream<{model_in.type.name}> &pixels,
                        unsigned n_frames) {{
ReadPixels:
    for (unsigned p = 0; p < n_frames * SEMIFREDDO_INPUT_BEATS; p++) {{
        #pragma HLS PIPELINE
        axis_word_t word = in_stream.read();
        {model_in.type.name} pixel;
        PRAGMA_DATA_PACK(pixel)
    ReadChannels:
        for (unsigned c = 0; c < {n_channels}; c++) {{
            #pragma HLS UNROLL
            pixel[c].range({in_bits - 1}, 0) = word.data.range({in_bits} * c + {in_bits - 1}, {in_bits} * c);
        }}
        pixels.write(pixel);
    }}
}}

static void write_values(hls::stream<{model_out.type.name}> &values, hls::stream<axis_word_t> &out_stream,
                         unsigned n_frames) {{
    const unsigned elements = n_frames * (SEMIFREDDO_OUTPUT_BEATS / {model_out.type.name}::size);
WriteElements:
    for (unsigned e = 0; e < elements; e++) {{
        {model_out.type.name} element = values.read();
    WriteValues:
        for (unsigned j = 0; j < {model_out.type.name}::size; j++) {{
            #pragma HLS PIPELINE
            ap_int<{out_bits}> code;
            code.range({out_bits - 1}, 0) = element[j].range({out_bits - 1}, 0);
            axis_word_t word;
            word.data = ap_uint<32>(ap_int<32>(code));   // sign-extended two's-complement code
            word.keep = -1;
            word.strb = -1;
            word.last = e + 1 == elements && j + 1 == {model_out.type.name}::size;   // TLAST ends the start
            out_stream.write(word);
        }}
    }}
}}

// ---- hls4ml's layers, each running every frame of a start --------------------------------
{''.join(wrappers)}{group_code}// ---- the network as one dataflow region: frames overlap, registers stay fixed ---------------
static void run_frames(hls::stream<axis_word_t> &in_stream, hls::stream<axis_word_t> &out_stream, unsigned n_frames,
                       ap_uint<32> repeat, {params}) {{
    #pragma HLS DATAFLOW
    {model_in.definition_cpp()};
    {self._make_array_pragma(model_in) if model_in.pragma else ""}
    {model_out.definition_cpp()};
    {self._make_array_pragma(model_out) if model_out.pragma else ""}
{''.join(streams)}
    read_pixels(in_stream, {model_in.name}, n_frames);
{''.join(calls)}    write_values({model_out.name}, out_stream, n_frames);
}}

{TOP_SIGNATURE} {{
    #pragma HLS INTERFACE axis port=in_stream
    #pragma HLS INTERFACE axis port=out_stream
    #pragma HLS INTERFACE s_axilite port=bank bundle=ctrl offset=0x{rmap.bank_offset:x}
{scalar_pragmas}    #pragma HLS INTERFACE s_axilite port=return bundle=ctrl
{partitions}
    // A new sequence number in `commit` moves the shadow bank into the active registers, here,
    // before any frame of this start is processed.
    if (commit != active_seq_reg) {{
        commit_bank(bank);
        active_seq_reg = commit;
    }}
    active_seq = active_seq_reg;
    core_id = SEMIFREDDO_CORE_ID32;
    regmap_id = SEMIFREDDO_REGMAP_ID32;
    // The repeated blocks run between min and max times whatever the register holds.
    const ap_uint<32> runs = repeat < {rmap.repeat_range[0]} ? ap_uint<32>({rmap.repeat_range[0]})
                             : repeat > {rmap.repeat_range[1]} ? ap_uint<32>({rmap.repeat_range[1]}) : repeat;
    if (n_frames > 0) {{
        run_frames(in_stream, out_stream, n_frames, runs, {args});
    }}
}}
"""
        (out_dir / "firmware").mkdir(parents=True, exist_ok=True)
        (out_dir / "firmware" / f"{TOP}.h").write_text(header)
        (out_dir / "firmware" / f"{TOP}.cpp").write_text(source)

    # ---- C simulation bridge and test bench ------------------------------------------------

    def write_bridge(self, model):
        status = "".join(f"    status[{i}] = {name}.to_uint();\n" for i, name in enumerate(ports("out")))
        source = f"""// Generated by `semifreddo convert`: the C ABI of the C simulation library.
// One call of sf_start() is one start of the IP (ap_start .. ap_done): it streams the given input
// beats in, runs the real top function, and collects the output beats. The active registers are
// static, so, as on a powered board, they keep their values from one start to the next.
#include <cstdint>
#include <map>
#include <string>
#include "firmware/{TOP}.h"

// hls4ml's layer tracing (nnet_helpers.h) stores each traced layer's output of the latest frame
// into a buffer registered here; only a project converted with tracing calls it.
namespace nnet {{
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
}}

extern "C" {{

void sf_trace_buffer(const char *layer, double *buffer) {{
    if (!nnet::trace_outputs) nnet::trace_outputs = new std::map<std::string, void *>;
    (*nnet::trace_outputs)[layer] = buffer;
    nnet::trace_enabled = true;
}}

int sf_abi_version() {{ return {C_ABI_VERSION}; }}
unsigned sf_bank_words() {{ return SEMIFREDDO_BANK_WORDS; }}
unsigned sf_input_beats() {{ return SEMIFREDDO_INPUT_BEATS; }}
unsigned sf_output_beats() {{ return SEMIFREDDO_OUTPUT_BEATS; }}

// Returns 0, or -1 if input beats were left unread, -2 if the number of output beats is not
// n_frames * SEMIFREDDO_OUTPUT_BEATS, -3 if TLAST is not on (only) the last output beat.
int sf_start(const uint32_t *bank_words, uint32_t commit, uint32_t repeat, uint32_t n_frames,
             const uint32_t *in_words, uint32_t n_in, int32_t *out_codes, uint32_t n_out, uint32_t *status) {{
    static ap_uint<32> bank[SEMIFREDDO_BANK_WORDS];
    for (unsigned i = 0; i < SEMIFREDDO_BANK_WORDS; i++) bank[i] = bank_words[i];
    hls::stream<axis_word_t> in_stream("in_stream"), out_stream("out_stream");
    for (uint32_t i = 0; i < n_in; i++) {{
        axis_word_t word;
        word.data = in_words[i];
        word.keep = -1;
        word.strb = -1;
        word.last = (i + 1 == n_in);
        in_stream.write(word);
    }}
    ap_uint<32> {OUTPUTS};
    {TOP}(in_stream, out_stream, bank, {", ".join(ports("in") + ports("out"))});
{status}
    int result = in_stream.empty() ? 0 : -1;
    uint32_t n = 0;
    while (!out_stream.empty()) {{
        axis_word_t word = out_stream.read();
        if (n < n_out) out_codes[n] = (int32_t)word.data.to_uint();
        bool should_be_last = (n + 1 == n_out);
        if (result == 0 && word.last != should_be_last) result = -3;
        n++;
    }}
    if (result == 0 && n != n_out) result = -2;
    return result;
}}

}}
"""
        Path(model.config.get_output_dir(), "semifreddo_bridge.cpp").write_text(source)

    def write_test_bench(self, model):
        source = f"""// Generated by `semifreddo convert`: the C test bench for Vitis HLS csim and cosim.
// It loads a weight set into the shadow bank, commits it, streams the inputs in tb_data/, and
// compares every output code with the QKeras model's (also in tb_data/). Exit code 0 = all equal.
#include <cstdio>
#include <cstdint>
#include <fstream>
#include <vector>
#include "../firmware/{TOP}.h"

static std::vector<long long> read_numbers(const char *path) {{
    std::vector<long long> values;
    std::ifstream file(path);
    long long v;
    while (file >> v) values.push_back(v);
    return values;
}}

int main() {{
    std::vector<long long> bank_words = read_numbers("tb_data/bank.txt");
    std::vector<long long> settings = read_numbers("tb_data/settings.txt");   // repeat, n_frames
    std::vector<long long> inputs = read_numbers("tb_data/inputs.txt");
    std::vector<long long> expected = read_numbers("tb_data/expected.txt");
    if (bank_words.size() != SEMIFREDDO_BANK_WORDS || settings.size() != 2) {{
        std::printf("tb_data is missing or made for another register map\\n");
        return 2;
    }}
    static ap_uint<32> bank[SEMIFREDDO_BANK_WORDS];
    for (unsigned i = 0; i < SEMIFREDDO_BANK_WORDS; i++) bank[i] = (uint32_t)bank_words[i];
    hls::stream<axis_word_t> in_stream("tb_in"), out_stream("tb_out");
    for (size_t i = 0; i < inputs.size(); i++) {{
        axis_word_t word;
        word.data = (uint32_t)inputs[i];
        word.keep = -1;
        word.strb = -1;
        word.last = (i + 1 == inputs.size());
        in_stream.write(word);
    }}
    ap_uint<32> {OUTPUTS};
    {TOP}(in_stream, out_stream, bank, 1, (uint32_t)settings[0], (uint32_t)settings[1], {OUTPUTS});
    size_t mismatches = 0, n = 0;
    while (!out_stream.empty()) {{
        axis_word_t word = out_stream.read();
        int32_t code = (int32_t)word.data.to_uint();
        if (n >= expected.size() || code != expected[n]) mismatches++;
        n++;
    }}
    if (n != expected.size()) mismatches += (n > expected.size() ? n - expected.size() : expected.size() - n);
    std::printf("semifreddo test bench: %zu outputs, %zu mismatches against QKeras\\n", n, mismatches);
    return mismatches == 0 ? 0 : 1;
}}
"""
        tb = Path(model.config.get_output_dir(), "tb")
        tb.mkdir(exist_ok=True)
        (tb / "semifreddo_tb.cpp").write_text(source)

    def write_manifest(self, model):
        info = self._info(model)
        out_dir = Path(model.config.get_output_dir())
        regmap_text = json.dumps(info["regmap"], indent=1) + "\n"
        atomic_write_text(out_dir / "regmap.json", regmap_text)
        manifest = {
            **stamp(HLS_FORMAT), "top": TOP, "spec": info["spec"],
            "core_id": info["core_id"], "regmap_id": info["regmap"]["id"], "board": info["board"],
            "multipliers": info["multipliers"],
            "sources": [f"firmware/{TOP}.cpp"], "testbench": ["tb/semifreddo_tb.cpp"], "tb_data": "tb_data",
            "cflags": CFLAGS, "vendor": IP_VENDOR, "library": IP_LIBRARY, "ip_version": IP_VERSION,
            "ip_vlnv": IP_VLNV,
            "clock_period_ns": model.config.get_config_value("ClockPeriod"),
            "io": {k: info["io"][k] for k in ("input_shape", "input_bits", "output_shape", "output_bits",
                                               "output_frac")},
            "hls4ml": {"version": _hls4ml_version(), "backend": "Semifreddo", "io_type": "io_stream",
                       "strategy": "Latency", "frozen_core": info["frozen_implementation"]},
        }
        if model.config.trace_output:
            manifest["trace"] = {layer.name: int(np.prod(layer.get_output_variable().shape))
                                 for layer in model.get_layers() if layer.get_attr("trace", False)
                                 and layer.get_attr("function_cpp", None)}
        atomic_write_text(out_dir / "hls_manifest.json", json.dumps(manifest, indent=1) + "\n")


def _hls4ml_version() -> str:
    import hls4ml

    return hls4ml.__version__

