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
            repeat_source  entry streams (first pass) or the frame buffer -> the group
            group_pass     the group's hls4ml layers, one frame
            repeat_sink    the group -> exit streams (last pass) or the frame buffer
          copy the frame buffer's output half to its input half (not after the last pass)

The group exists once in hardware. A frame takes ``runs`` passes through it (plus a copy of the
frame between passes); the layers before and after keep streaming. The frame buffer holds two
frames of every stream the group passes on (input and output halves), in block RAM or LUTRAM.
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
                 stream_pragma, repeat_range: tuple[int, int]) -> tuple[str, str]:
    """C++ of the repeat stage and its call in the top's dataflow region.

    ``entries`` and ``exits`` are the hls4ml stream variables entering and leaving the group, in
    matching order (frozen, A, B); ``selection`` (a :class:`.bank_select.BankSelection`) declares
    the registers, and with several weight banks makes the stage take every bank and select each
    frame's; ``stream_pragma`` maps a variable to its STREAM pragma (or "")."""
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
    boundary = {v.name for v in entries + exits}
    internal = [v for c in group for v in c.variables if v.name not in boundary]
    lo, hi = repeat_range

    def streams(variables, prefix=""):
        return ", ".join(f"hls::stream<{v.type.name}> &{prefix}{v.name}" for v in variables)

    pass_body = "".join(f"    {v.definition_cpp()};\n" + (f"    {stream_pragma(v)}\n" if stream_pragma(v) else "")
                        for v in dict((v.name, v) for v in internal).values())
    pass_body += "".join(f"    {c.call('1')}\n" for c in group)
    pairs = list(enumerate(zip(entries, exits)))
    buffers = "".join(f"    static {e.type.name} frame_in_{i}[{pixels}];\n"
                      f"    static {x.type.name} frame_out_{i}[{pixels}];\n" for i, (e, x) in pairs)
    buffer_params = ", ".join(f"const {e.type.name} frame_in_{i}[{pixels}], {x.type.name} frame_out_{i}[{pixels}]"
                              for i, (e, x) in pairs)
    buffer_args = ", ".join(f"frame_in_{i}, frame_out_{i}" for i, _ in pairs)
    pass_streams = "".join(f"    hls::stream<{e.type.name}> src_{i}(\"src_{i}\");\n"
                           f"    hls::stream<{x.type.name}> dst_{i}(\"dst_{i}\");\n"
                           f"    #pragma HLS STREAM variable=src_{i} depth={pixels}\n"
                           f"    #pragma HLS STREAM variable=dst_{i} depth={pixels}\n" for i, (e, x) in pairs)
    sources = "".join(f"    nnet::repeat_source<{e.type.name}, {pixels}>(entry_{e.name}, frame_in_{i}, src_{i}, first);\n"
                      for i, (e, _) in pairs)
    sinks = "".join(f"    nnet::repeat_sink<{x.type.name}, {pixels}>(dst_{i}, exit_{x.name}, frame_out_{i}, last);\n"
                    for i, (_, x) in pairs)
    copies = "".join(f"                nnet::repeat_copy<{x.type.name}, {e.type.name}, {pixels}>(frame_out_{i}, "
                     f"frame_in_{i});\n" for i, (e, x) in pairs)
    src_args = ", ".join(f"src_{i}" for i, _ in pairs)
    dst_args = ", ".join(f"dst_{i}" for i, _ in pairs)
    boundary_args = ", ".join(v.name for v in entries + exits)
    source = f"""
// ---- the repeated group, built once: a frame passes through it `repeat` times ------------------
static void group_pass({streams(entries)}, {streams(exits)}{reg_params}) {{
    #pragma HLS DATAFLOW
{pass_body}}}

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
