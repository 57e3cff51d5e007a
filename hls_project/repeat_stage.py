"""The reused repeat group: the repeated blocks built once, with frames looping through them.

With ``repeat.hardware: reuse`` the converted model holds one copy of the repeated blocks (the
network description's hardware layout, ``runs = 1``). The writer hands this module the hls4ml
layer calls; it finds the ones that belong to the group (every call between the streams entering
the group and the streams leaving it, hls4ml's stream clones and zero padding included) and wraps
them in a repeat stage::

    repeat_group (one dataflow process of the top)
      for each frame:
        (with several weight banks: read the frame's bank number, select that bank's registers)
        for pass in 0 .. runs-1:               runs = the repeat register, clamped to its range
          repeat_pass (a dataflow region)
            source     entry streams (first pass) or the frame buffer -> the group
            group_pass the group's hls4ml layers, one frame
            sink       the group -> exit streams (last pass) or the frame buffer

The group exists once in hardware. A frame takes ``runs`` passes through it; the layers before and
after keep streaming. Between passes the frame waits in a frame buffer, placed by the hardware plan
(``frame_buffer``):

* ``chip``: block RAM (or LUTRAM), an input and an output half per stream; the output half is
  copied to the input half between passes. Small frames only.
* ``ddr``: the board's DDR behind an AXI master (``m_axi``), whose address the host writes into a
  register. One word a pixel holds every group stream; pass p writes half p % 2 and pass p + 1 reads
  it back, so no copy is needed. A pass reads one half while it writes the other, so the source
  (the one reader) and the sink (the one writer) of the AXI master run side by side.

Between the source, the group and the sink the streams are FIFOs of ``fifo_depth`` pixels, enough
for the skew between the group's streams (the plan sizes them), never a whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


STAGE = "repeat_group"      # the repeat stage's process in the top's dataflow region


@dataclass
class LayerCall:
    """One hls4ml layer call as the writer wraps it (a function that runs it for each frame)."""

    name: str
    wrapper: str                       # the wrapper function's C++
    args: list[str]                    # its arguments, n_frames excluded
    inputs: list[str]                  # stream variables it reads
    outputs: list[str]                 # stream variables it writes
    registers: list[str] = field(default_factory=list)   # active registers it computes with
    variables: list = field(default_factory=list)        # hls4ml's stream variables it touches

    def call(self, n_frames: str) -> str:
        return f"layer_{self.name}({', '.join(self.args + [n_frames])});"


def group_members(calls: list[LayerCall], entries: list[str], exits: list[str]) -> set[str]:
    """Names of the calls between the entry streams and the exit streams (both included)."""
    reached, forward = set(entries), set()
    for c in calls:                                     # calls are in dataflow order
        if reached & set(c.inputs):
            forward.add(c.name)
            reached |= set(c.outputs)
    needed, backward = set(exits), set()
    for c in reversed(calls):
        if needed & set(c.outputs):
            backward.add(c.name)
            needed |= set(c.inputs)
    return forward & backward


def repeat_stage(calls: list[LayerCall], members: set[str], entries: list, exits: list, selection,
                 stream_pragma, repeat_range: tuple[int, int], frame_buffer: str = "chip",
                 fifo_depth: int | None = None) -> tuple[str, str]:
    """C++ of the repeat stage and its call in the top's dataflow region.

    ``entries`` and ``exits`` are the hls4ml stream variables entering and leaving the group, in
    matching order (frozen, A, B); ``selection`` (a :class:`.bank_select.BankSelection`) declares
    the registers, and with several weight banks makes the stage take every bank and select each
    frame's; ``stream_pragma`` maps a variable to its STREAM pragma (or ""); ``frame_buffer`` is
    where the frame waits between passes ("chip" or "ddr", the plan's choice); ``fifo_depth`` the
    depth of the streams around the group (default: a frame)."""
    group = [c for c in calls if c.name in members]
    registers = list(dict.fromkeys(r for c in group for r in c.registers))
    single = selection.one_bank()
    reg_params = "".join(f", {single.declare(r)}" for r in registers)
    reg_args = "".join(f", {r}" for r in registers)
    # The stage itself takes the registers as the top holds them (every bank, with several) and,
    # with several banks, the stream of frame bank numbers; it selects each frame's bank.
    stage = STAGE
    stage_params = "".join(f", {selection.declare(r)}" for r in registers)
    stage_args = "".join(f", {selection.arg(r)}" for r in registers)
    select = ""
    if selection.banked and registers:
        stage_params += f", {selection.stream_param(stage)}"
        stage_args += f", {selection.stream_name(stage)}"
        select = selection.select(registers, stage, "        ")
    pixels = int(np.prod(entries[0].shape[:-1]))
    depth = fifo_depth or pixels
    boundary = {v.name for v in entries + exits}
    internal = [v for c in group for v in c.variables if v.name not in boundary]
    lo, hi = repeat_range

    def streams(variables, prefix=""):
        return ", ".join(f"hls::stream<{v.type.name}> &{prefix}{v.name}" for v in variables)

    pass_body = "".join(f"    {v.definition_cpp()};\n" + (f"    {stream_pragma(v)}\n" if stream_pragma(v) else "")
                        for v in dict((v.name, v) for v in internal).values())
    pass_body += "".join(f"    {c.call('1')}\n" for c in group)
    pairs = list(enumerate(zip(entries, exits)))
    pass_streams = "".join(f"    hls::stream<{e.type.name}> src_{i}(\"src_{i}\");\n"
                           f"    hls::stream<{x.type.name}> dst_{i}(\"dst_{i}\");\n"
                           f"    #pragma HLS STREAM variable=src_{i} depth={depth}\n"
                           f"    #pragma HLS STREAM variable=dst_{i} depth={depth}\n" for i, (e, x) in pairs)
    src_args = ", ".join(f"src_{i}" for i, _ in pairs)
    dst_args = ", ".join(f"dst_{i}" for i, _ in pairs)
    boundary_args = ", ".join(v.name for v in entries + exits)
    group_pass = f"""
// ---- the repeated group, built once: a frame passes through it `repeat` times ------------------
static void group_pass({streams(entries)}, {streams(exits)}{reg_params}) {{
    #pragma HLS DATAFLOW
{pass_body}}}
"""
    if frame_buffer == "ddr":
        return group_pass + _ddr_passes(pairs, pixels, pass_streams, src_args, dst_args, boundary_args, streams,
                                        entries, exits, reg_params, reg_args, stage_params, select, lo, hi), \
            f"    repeat_group({boundary_args}, frame_buffer, repeat{stage_args}, n_frames);\n"
    buffers = "".join(f"    static {e.type.name} frame_in_{i}[{pixels}];\n"
                      f"    static {x.type.name} frame_out_{i}[{pixels}];\n" for i, (e, x) in pairs)
    buffer_params = ", ".join(f"const {e.type.name} frame_in_{i}[{pixels}], {x.type.name} frame_out_{i}[{pixels}]"
                              for i, (e, x) in pairs)
    buffer_args = ", ".join(f"frame_in_{i}, frame_out_{i}" for i, _ in pairs)
    sources = "".join(f"    nnet::repeat_source<{e.type.name}, {pixels}>(entry_{e.name}, frame_in_{i}, src_{i}, first);\n"
                      for i, (e, _) in pairs)
    sinks = "".join(f"    nnet::repeat_sink<{x.type.name}, {pixels}>(dst_{i}, exit_{x.name}, frame_out_{i}, last);\n"
                    for i, (_, x) in pairs)
    copies = "".join(f"                nnet::repeat_copy<{x.type.name}, {e.type.name}, {pixels}>(frame_out_{i}, "
                     f"frame_in_{i});\n" for i, (e, x) in pairs)
    source = group_pass + f"""
static void repeat_pass({streams(entries, 'entry_')}, {streams(exits, 'exit_')}, {buffer_params}, bool first,
                        bool last{reg_params}) {{
    #pragma HLS DATAFLOW
{pass_streams}{sources}    group_pass({src_args}, {dst_args}{reg_args});
{sinks}}}

static void repeat_group({streams(entries)}, {streams(exits)}, ap_uint<32> runs{stage_params}, unsigned n_frames) {{
{buffers}RepeatFrames:
    for (unsigned f = 0; f < n_frames; f++) {{
{select}    RepeatPasses:
        for (unsigned pass = 0; pass < runs; pass++) {{
            #pragma HLS LOOP_TRIPCOUNT min={lo} max={hi}
            repeat_pass({boundary_args}, {buffer_args}, pass == 0, pass + 1 == runs{reg_args});
            if (pass + 1 < runs) {{
{copies}            }}
        }}
    }}
}}
"""
    call = f"    repeat_group({boundary_args}, repeat{stage_args}, n_frames);\n"
    return source, call


def _ddr_passes(pairs, pixels, pass_streams, src_args, dst_args, boundary_args, streams, entries, exits,
                reg_params, reg_args, stage_params, select, lo, hi) -> str:
    """The passes of a group whose frame buffer is in DDR: one source reads the entry streams or the
    buffer's half ``half``, one sink writes the exit streams or the other half."""
    # Where each group stream sits in a buffer word: after the streams before it (bits, C++ constants).
    lsb = ["0"]
    for _, (e, _) in pairs[:-1]:
        lsb.append(f"{lsb[-1]} + nnet::frame_bits<{e.type.name}>::value" if lsb[-1] != "0"
                   else f"nnet::frame_bits<{e.type.name}>::value")
    total = " + ".join(f"nnet::frame_bits<{e.type.name}>::value" for _, (e, _) in pairs)
    entry_in = "".join(f"            src_{i}.write(entry_{e.name}.read());\n" for i, (e, _) in pairs)
    unpack = "".join(f"            src_{i}.write(nnet::frame_unpack<{e.type.name}, {lsb[i]}>(word));\n"
                     for i, (e, _) in pairs)
    exit_out = "".join(f"            exit_{x.name}.write(dst_{i}.read());\n" for i, (_, x) in pairs)
    pack = "".join(f"            nnet::frame_pack<{e.type.name}, {lsb[i]}>(nnet::repeat_element<{x.type.name}, "
                   f"{e.type.name}>(dst_{i}.read()), word);\n" for i, (e, x) in pairs)
    src_params = ", ".join(f"hls::stream<{e.type.name}> &src_{i}" for i, (e, _) in pairs)
    dst_params = ", ".join(f"hls::stream<{x.type.name}> &dst_{i}" for i, (_, x) in pairs)
    return f"""
static_assert({total} <= SEMIFREDDO_FRAME_WORD_BITS,
              "the group's streams do not fit the frame buffer word the hardware plan sized");

// The first pass takes the entry streams; a later one reads back, from DDR, the half the pass
// before it wrote.
static void frame_source({streams(entries, 'entry_')}, const semifreddo_frame_word_t *frame_buffer,
                         {src_params}, bool first, unsigned half) {{
    if (first) {{
    SourceEntry:
        for (unsigned p = 0; p < {pixels}; p++) {{
            #pragma HLS PIPELINE
{entry_in}        }}
    }} else {{
    SourceBuffer:
        for (unsigned p = 0; p < {pixels}; p++) {{
            #pragma HLS PIPELINE
            const semifreddo_frame_word_t word = frame_buffer[half * {pixels} + p];
{unpack}        }}
    }}
}}

// The last pass feeds the exit streams; an earlier one writes the frame to DDR, in the entry
// streams' types (what the next pass reads).
static void frame_sink({dst_params}, {streams(exits, 'exit_')}, semifreddo_frame_word_t *frame_buffer,
                       bool last, unsigned half) {{
    if (last) {{
    SinkExit:
        for (unsigned p = 0; p < {pixels}; p++) {{
            #pragma HLS PIPELINE
{exit_out}        }}
    }} else {{
    SinkBuffer:
        for (unsigned p = 0; p < {pixels}; p++) {{
            #pragma HLS PIPELINE
            semifreddo_frame_word_t word = 0;
{pack}            frame_buffer[half * {pixels} + p] = word;
        }}
    }}
}}

static void repeat_pass({streams(entries, 'entry_')}, {streams(exits, 'exit_')}, semifreddo_frame_word_t *frame_buffer,
                        unsigned pass, bool last{reg_params}) {{
    #pragma HLS DATAFLOW
{pass_streams}    frame_source({', '.join('entry_' + e.name for e in entries)}, frame_buffer, {src_args}, pass == 0, (pass + 1) % 2);
    group_pass({src_args}, {dst_args}{reg_args});
    frame_sink({dst_args}, {', '.join('exit_' + x.name for x in exits)}, frame_buffer, last, pass % 2);
}}

static void repeat_group({streams(entries)}, {streams(exits)}, semifreddo_frame_word_t *frame_buffer,
                         ap_uint<32> runs{stage_params}, unsigned n_frames) {{
RepeatFrames:
    for (unsigned f = 0; f < n_frames; f++) {{
{select}    RepeatPasses:
        for (unsigned pass = 0; pass < runs; pass++) {{
            #pragma HLS LOOP_TRIPCOUNT min={lo} max={hi}
            repeat_pass({boundary_args}, frame_buffer, pass, pass + 1 == runs{reg_args});
        }}
    }}
}}
"""
