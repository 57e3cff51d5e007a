"""The Semifreddo backend's writer: an hls4ml Vitis project with a register bank.

What it writes differently from hls4ml's Vitis writer (every C++ file of our own is a template in
hls_project/templates/ that this writer fills in; nothing hls4ml generated is edited afterwards):

* ``firmware/semifreddo_top.h/.cpp`` (templates ``semifreddo_top.h/.cpp``): the IP's top function
  (AXI-Stream in/out, AXI-Lite control and shadow bank; see hls_project/README.md), the *active
  registers* that hold the configurable parameters, ``commit_bank`` (unpacks the shadow bank's
  words into them, generated from the register map), and ``run_frames`` (hls4ml's layer calls as
  one dataflow region, each layer looping over the frames of a start, so consecutive frames overlap).
  A configurable weight keeps the variable name hls4ml gave it (``w5``, ``b5``, ``alpha9``), so
  hls4ml's own layer calls compute with the active registers unchanged.
* ``firmware/weights/`` and ``parameters.h``: headers for frozen-core weights only. A configurable
  weight never gets a header, an include, an initializer or a text file: its values exist only in
  the register bank.
* ``semifreddo_bridge.cpp`` (template ``semifreddo_bridge.cpp``): a C ABI for the C simulation
  library (one call = one start of the IP).
* ``firmware/ap_types/ap_shift_reg.h`` (template ``ap_shift_reg.h``): Xilinx's C simulation model of
  a shift register as a ring buffer (hls4ml's line buffers shift a whole frame line per pixel).
* ``tb/semifreddo_tb.cpp`` (template ``semifreddo_tb.cpp``) and ``tb_data/``: the C test bench
  Vitis HLS runs for csim and cosim.
* ``plan.json`` (the hardware plan, :mod:`.plan`), ``regmap.json`` (its register map, the board-side
  contract) and ``hls_manifest.json`` (the files and the IP's identity).

Which registers a layer reads and where its multipliers go are attributes the backend's passes put
on hls4ml's IR from the plan (``semifreddo_registers``, ``semifreddo_reads_repeat``,
``semifreddo_multiplier``).
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

import numpy as np

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_text
from semifreddo.deploy.contract.interface import (C_ABI_VERSION, HLS_FORMAT, IP_LIBRARY, IP_VENDOR, IP_VERSION, IP_VLNV,
                                                  bank_shift, ports, stamp)

from .bank_select import BankSelection
from .plan import shuffle_register
from .project import CFLAGS, MANIFEST, REGMAP, TEMPLATES, TOP, model_plan
from .repeat_stage import STAGE, LayerCall, group_members, repeat_stage

# The top function's scalar AXI-Lite arguments, as the contract lists them: inputs by value,
# outputs by reference (Vitis HLS makes each an s_axilite register at the offset its pragma gives).


def top_signature(banks: int, ddr_frame_buffer: bool = False) -> str:
    """The IP's top function: its streams, the shadow bank, the DDR frame buffer of a reused group
    that keeps its frame there, and the contract's scalar AXI-Lite arguments for ``banks`` weight
    banks (inputs by value, outputs by reference; Vitis HLS makes each an s_axilite register at the
    offset its pragma gives)."""
    scalars = ", ".join([f"ap_uint<32> {name}" for name in ports("in", banks)]
                        + [f"ap_uint<32> &{name}" for name in ports("out", banks)])
    frame = "semifreddo_frame_word_t *frame_buffer, " if ddr_frame_buffer else ""
    return (f"void {TOP}(hls::stream<axis_word_t> &in_stream, hls::stream<axis_word_t> &out_stream,\n"
            f"           const ap_uint<32> bank[SEMIFREDDO_BANK_WORDS], {frame}{scalars})")


# Vitis HLS's AXI master: bursts of up to 64 beats, 16 outstanding each way (UG1399 m_axi options).
FRAME_BUFFER_BURST = 64


def frame_buffer_pragmas(plan) -> str:
    """The top's pragmas for a DDR frame buffer: an AXI master whose address register sits in the
    control bundle at the contract's offset."""
    if plan.frame_buffer != "ddr":
        return ""
    words = plan.regmap.io["frame_buffer"]["words"]
    return (f"    #pragma HLS INTERFACE m_axi port=frame_buffer bundle=frame offset=slave depth={words} "
            f"max_read_burst_length={FRAME_BUFFER_BURST} max_write_burst_length={FRAME_BUFFER_BURST}\n"
            f"    #pragma HLS INTERFACE s_axilite port=frame_buffer bundle=ctrl offset=0x{plan.regmap.control['frame_buffer']:x}\n")


def frame_buffer_defines(plan) -> str:
    """top.h's description of the DDR frame buffer (0 words: the IP has none)."""
    if plan.frame_buffer != "ddr":
        return "#define SEMIFREDDO_FRAME_WORDS 0      // no frame buffer in DDR\n"
    buffer = plan.regmap.io["frame_buffer"]
    return (f"#define SEMIFREDDO_FRAME_WORDS {buffer['words']}    // the reused group's frame buffer in DDR: two "
            f"halves of a frame, a word a pixel\n"
            f"#define SEMIFREDDO_FRAME_WORD_BITS {buffer['word_bits']}\n"
            f"typedef ap_uint<SEMIFREDDO_FRAME_WORD_BITS> semifreddo_frame_word_t;\n")

PARAMETERS_TEMPLATE = "../templates/vivado/firmware/parameters.h"     # hls4ml's, relative to its writer


def fill(template: str, **values) -> str:
    """One of our C++ templates (hls_project/templates/) with its ``${name}`` fields filled in."""
    return Template((TEMPLATES / template).read_text()).substitute(**{k: str(v) for k, v in values.items()})


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
        self.write_csim_headers(model)
        self.write_generated_code(model)
        self.write_top(model)
        self.write_bridge(model)
        self.write_test_bench(model)
        self.write_manifest(model)

    def write_csim_headers(self, model):
        """Our C simulation models over hls4ml's copies of vendor headers (templates/ap_shift_reg.h: a
        ring buffer in C simulation; the code Vitis HLS synthesizes is the original)."""
        target = Path(model.config.get_output_dir(), "firmware", "ap_types", "ap_shift_reg.h")
        target.write_text((TEMPLATES / "ap_shift_reg.h").read_text())

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
        """hls4ml's parameters.h template, filled in as hls4ml's writer does, except that only frozen
        weights get an include (configurable ones have no header; repeat copies share one)."""
        import hls4ml.writer.vivado_writer as vivado_writer

        template = Path(vivado_writer.__file__).parent / PARAMETERS_TEMPLATE
        namespace = model.config.get_writer_config().get("Namespace", None)
        includes = sorted(set(sum((layer.get_attr("include_header", []) for layer in model.get_layers()), [])))
        configs = [f"// {layer.name}\n{layer.get_attr('config_cpp')}\n" for layer in model.get_layers()
                   if layer.get_attr("config_cpp", None)]
        insert = {
            "// hls-fpga-machine-learning insert includes": "".join(f'#include "{i}"\n' for i in includes),
            "// hls-fpga-machine-learning insert weights": "".join(
                f'#include "weights/{var.name}.h"\n' for var in self._frozen_weights(model)),
            "// hls-fpga-machine-learning insert layer-config": "".join(configs),
            "// hls-fpga-machine-learning insert namespace-start": f"namespace {namespace} {{\n" if namespace else None,
            "// hls-fpga-machine-learning insert namespace-end": "}\n" if namespace else None,
        }
        lines = []
        for line in template.read_text().splitlines(keepends=True):
            point = next((key for key in insert if key in line), None)
            if point is None:
                lines.append(line)
            elif point.endswith("namespace-start") or point.endswith("namespace-end"):
                lines.append(insert[point] or "")
            else:
                lines.append(line + insert[point])
        Path(model.config.get_output_dir(), "firmware", "parameters.h").write_text("".join(lines))

    # ---- the active registers --------------------------------------------------------------

    def _registers(self, model) -> list[dict]:
        """One entry per register field: the active array (or scalar) it is unpacked into."""
        rmap = model_plan(model).regmap
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
                raise SemifreddoError(f"register field {f.name} has no weight variable in the hls4ml model; the "
                                      "hardware plan and the converted model disagree: re-run `semifreddo convert`")
            if int(np.prod(var.shape)) != f.size:
                raise SemifreddoError(f"register field {f.name} has {f.size} codes, its variable {var.name} "
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
            raise SemifreddoError(f"{layer.name}: configurable weights in a transposed {layer.class_name} are not supported")
        n_in, n_out = f.shape
        keras_index = np.arange(n_in * n_out).reshape(n_in, n_out)
        order = np.empty(n_in * n_out, dtype=int)
        order[keras_index.T.ravel()] = np.arange(n_in * n_out)      # hls4ml index of each register code
        return order.tolist()

    @staticmethod
    def _unpack_code(reg: dict, selection) -> str:
        f = reg["field"]
        target = selection.unpack_target(reg["name"])
        if reg["size"] is None:
            return f"    {target} = bank[{f.word_offset}].range(0, 0);  // {f.name}\n"
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
            f"        {target}[{index}].range({f.bits - 1}, 0) = bank[{f.word_offset} + i / {per_word}].range(lo + {f.bits - 1}, lo);\n"
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
            inputs = [layer.get_input_variable(name) for name in layer.inputs]
            outputs = [layer.variables[name] for name in layer.outputs]
            variables = list({var.name: var for var in inputs + outputs}.values())
            params = [f"hls::stream<{var.type.name}> &{var.name}" for var in variables]
            args = [var.name for var in variables]
            reads = set(layer.get_attr("semifreddo_registers", []))      # put there from the plan
            used = [r for r in registers if r["name"] in reads]
            params += [declare(r) for r in used]
            args += [r["name"] for r in used]
            if layer.get_attr("semifreddo_reads_repeat", False):
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
        plan = model_plan(model)
        rmap = plan.regmap
        registers = self._registers(model)
        selection = BankSelection(rmap.banks, {r["name"]: r for r in registers})
        single = selection.one_bank()
        out_dir = Path(model.config.get_output_dir())
        model_in = model.get_input_variables()[0]
        model_out = model.get_output_variables()[0]
        inputs, outputs = ports("in", rmap.banks), ports("out", rmap.banks)
        # Every AXI-Lite offset from the plan's register map (the contract's control registers, its bank).
        interface = {"bank": rmap.bank_offset, **{name: rmap.control[name] for name in inputs + outputs}}
        interface_pragmas = "".join(f"    #pragma HLS INTERFACE s_axilite port={name} bundle=ctrl offset=0x{offset:x}\n"
                                    for name, offset in interface.items())

        layer_calls = self._layer_calls(model, registers, lambda r: single.declare(r["name"]))
        group_code, inner, members = "", set(), set()
        group = plan.reuse
        if group:
            # The reused repeat group: its layers run inside the repeat stage, not in the top region.
            entries = [model.graph[name].get_output_variable() for name in plan.group_inputs]
            exits = [model.graph[name].get_output_variable() for name in plan.group_outputs]
            members = group_members(layer_calls, [v.name for v in entries], [v.name for v in exits])
            group_code, group_call = repeat_stage(
                layer_calls, members, entries, exits, selection,
                lambda var: self._make_array_pragma(var) if var.pragma else "", tuple(rmap.repeat_range),
                plan.frame_buffer, plan.group_fifo_depth)
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
        # With several banks, a layer outside the group that computes with registers runs through
        # banked_<layer>, which selects each frame's bank; the group selects for itself.
        selecting = []
        calls = []
        for c in layer_calls:
            if group and c.name in members:
                if c.name == [m.name for m in layer_calls if m.name in members][-1]:
                    calls.append(group_call)   # where its last layer was: everything feeding it comes before
                    if selection.banked and any(m.registers for m in layer_calls if m.name in members):
                        selecting.append(STAGE)
            elif selection.banked and c.registers:
                wrapper, call = self._banked_call(c, selection)
                wrappers.append(wrapper)
                calls.append(call)
                selecting.append(c.name)
            else:
                calls.append(f"    {c.call('n_frames')}\n")
        partitions = "".join(selection.partition(r["name"]) for r in registers)
        statics = "".join(f"static {selection.declare(r['name'])};\n" for r in registers)
        ddr = plan.frame_buffer == "ddr"
        register_params = (", semifreddo_frame_word_t *frame_buffer" if ddr else "") + "".join(
            f", {selection.declare(r['name'])}" for r in registers)
        register_args = (", frame_buffer" if ddr else "") + "".join(f", {selection.arg(r['name'])}" for r in registers)
        banked = {"load_ok": "true", "load_bank": "0", "report_ready": "", "report_flagged": ""}
        if selection.banked:
            register_params += ", ap_uint<SEMIFREDDO_BANKS> ready, ap_uint<32> &flagged"
            register_args += ", ready, flagged"
            banked = {"load_ok": "load_bank < SEMIFREDDO_BANKS", "load_bank": "load_bank",
                      "report_ready": "    ready_banks = ready;\n", "report_flagged": "    unready_frames = flagged;\n"}
        io = rmap.io
        top_streams = "".join(f"    {var.definition_cpp()};\n" + (f"    {self._make_array_pragma(var)}\n" if var.pragma else "")
                              for var in (model_in, model_out)) + "".join(streams)
        top_streams += selection.streams(selecting, depth=len(layer_calls) + 2)
        out_dir.joinpath("firmware").mkdir(parents=True, exist_ok=True)
        signature = top_signature(rmap.banks, ddr)
        ids = dict(spec=plan.spec, core_id=plan.core_id, regmap_id=rmap.id, signature=signature, top=TOP)
        (out_dir / "firmware" / f"{TOP}.h").write_text(fill(
            "semifreddo_top.h", **ids, bank_words=rmap.n_words, input_beats=io["input_beats"],
            output_beats=io["output_beats"], core_id32=plan.core_id[-8:], regmap_id32=rmap.id[-8:],
            banks=rmap.banks, bank_index_bits=max(1, rmap.bank_bits), frame_buffer=frame_buffer_defines(plan)))
        (out_dir / "firmware" / f"{TOP}.cpp").write_text(fill(
            "semifreddo_top.cpp", **ids, active_registers=statics,
            unpack="".join(self._unpack_code(r, selection) for r in registers),
            input_t=model_in.type.name, output_t=model_out.type.name, input_channels=model_in.shape[-1],
            input_bits=io["input_bits"], output_bits=io["output_bits"], layer_wrappers="".join(wrappers),
            repeat_stage=group_code, register_params=register_params,
            register_args=register_args, streams=top_streams,
            input=model_in.name, output=model_out.name, layer_calls="".join(calls),
            interface_pragmas=interface_pragmas + frame_buffer_pragmas(plan), partitions=partitions,
            repeat_min=rmap.repeat_range[0], repeat_max=rmap.repeat_range[1], **banked,
            **selection.read_pixels(selecting, bank_shift(rmap.banks), max(1, rmap.bank_bits))))

    @staticmethod
    def _banked_call(c: LayerCall, selection: BankSelection) -> tuple[str, str]:
        """``banked_<layer>``: for each frame, select the bank it names, then run the layer on it."""
        streams = [f"hls::stream<{var.type.name}> &{var.name}" for var in c.variables]
        repeat = ["ap_uint<32> repeat"] if "repeat" in c.args else []
        params = streams + [selection.declare(r) for r in c.registers] + repeat + [selection.stream_param(c.name)]
        args = ([var.name for var in c.variables] + [selection.arg(r) for r in c.registers] + (["repeat"] if repeat else [])
                + [selection.stream_name(c.name)])
        wrapper = (f"static void banked_{c.name}({', '.join(params)}, unsigned n_frames) {{\n"
                   f"Frames_banked_{c.name}:\n"
                   f"    for (unsigned f = 0; f < n_frames; f++) {{\n"
                   f"{selection.select(c.registers, c.name, '        ')}"
                   f"        {c.call('1')}\n"
                   f"    }}\n}}\n\n")
        return wrapper, f"    banked_{c.name}({', '.join(args)}, n_frames);\n"

    # ---- C simulation bridge and test bench ------------------------------------------------

    def write_bridge(self, model):
        plan = model_plan(model)
        banks = plan.regmap.banks
        outputs = ports("out", banks)
        status = "".join(f"    status[{i}] = {name}.to_uint();\n" for i, name in enumerate(outputs))
        frame = "frame_words.data(), " if plan.frame_buffer == "ddr" else ""
        Path(model.config.get_output_dir(), "semifreddo_bridge.cpp").write_text(fill(
            "semifreddo_bridge.cpp", top=TOP, abi_version=C_ABI_VERSION, status_registers=", ".join(outputs),
            top_args=frame + ", ".join(ports("in", banks) + outputs), copy_status=status))

    def write_test_bench(self, model):
        plan = model_plan(model)
        banks = plan.regmap.banks
        tb = Path(model.config.get_output_dir(), "tb")
        tb.mkdir(exist_ok=True)
        ddr = plan.frame_buffer == "ddr"
        (tb / "semifreddo_tb.cpp").write_text(fill("semifreddo_tb.cpp", top=TOP, status_registers=", ".join(
            ports("out", banks)), load_bank_zero=", 0" if banks > 1 else "",
            frame_buffer_decl="    static semifreddo_frame_word_t frame_buffer[SEMIFREDDO_FRAME_WORDS];   // the DDR\n"
            if ddr else "", frame_buffer_arg="frame_buffer, " if ddr else ""))

    def write_manifest(self, model):
        """The hardware plan, its register map (the board-side contract) and the project manifest."""
        plan = model_plan(model)
        out_dir = Path(model.config.get_output_dir())
        plan.write(out_dir)
        plan.regmap.save(out_dir / REGMAP)
        manifest = {
            **stamp(HLS_FORMAT), "top": TOP, "spec": plan.spec, "core_id": plan.core_id, "regmap_id": plan.regmap.id,
            "plan": "plan.json", "sources": [f"firmware/{TOP}.cpp"], "testbench": ["tb/semifreddo_tb.cpp"],
            "tb_data": "tb_data", "cflags": CFLAGS, "vendor": IP_VENDOR, "library": IP_LIBRARY,
            "ip_version": IP_VERSION, "ip_vlnv": IP_VLNV,
            "clock_period_ns": model.config.get_config_value("ClockPeriod"),
            "hls4ml": {"version": _hls4ml_version(), "backend": "Semifreddo", "io_type": "io_stream",
                       "strategy": "Latency"},
        }
        if model.config.trace_output:
            manifest["trace"] = {layer.name: int(np.prod(layer.get_output_variable().shape))
                                 for layer in model.get_layers() if layer.get_attr("trace", False)
                                 and layer.get_attr("function_cpp", None)}
        atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def _hls4ml_version() -> str:
    import hls4ml

    return hls4ml.__version__

