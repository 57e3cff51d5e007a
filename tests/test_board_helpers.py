"""Helpers for the board-flow tests (no tests here).

* ``make_hls_project``: a small hand-made HLS project that follows the contract in
  hls_project/README.md (hls_manifest.json, regmap.json, firmware/, tb/, tb_data/), plus weight sets
  for it, so these tests never depend on the converter; and a frozen core of the spec with seeded
  random codes, which is what `synth` and `bitstream` estimate to check that the IP fits the board.
* ``TCL_STUBS``: stand-ins for the Vitis HLS and Vivado Tcl commands the generated scripts call.
  Running a generated script under them in ``tclsh`` executes all of its Tcl (so a typo, a missing
  variable or a wrong pin name fails), records every tool command to ``calls.log``, and writes the
  files the real tools would (csynth.xml, the exported IP's component.xml, the .bit and the .hwh).
  The pin names each stub IP answers to come from AMD's product guides, not from the code under
  test: AXI DMA (PG021), SmartConnect (PG247), Processor System Reset (PG164), Zynq-7000 PS
  (PG082), Zynq UltraScale+ PS (PG201); the semifreddo IP's ports from hls_project/README.md.
* ``install_fake_tools``: ``vitis_hls`` and ``vivado`` executables that run the script under the
  stubs. Test stand-ins only: nothing here synthesizes anything.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

SPEC = "digits"          # a shipped spec, so `load_spec` resolves it; the build folder is the test's
CORE_ID = "c0ffee00d15ea5e5"
OTHER_CORE_ID = "0123456789abcdef"

# A csynth.xml written by hand in the layout Vitis HLS uses for <solution>/syn/report/csynth.xml:
# <profile> with ReportVersion, UserAssignments, PerformanceEstimates (SummaryOfTimingAnalysis,
# SummaryOfOverallLatency) and AreaEstimates (Resources, AvailableResources); the fields are the ones
# UG1399 "Synthesis Summary" describes, element names as hls4ml 1.3's report reader
# (hls4ml/report/vivado_report.py) reads them. Available resources are the XC7Z020's
# (DS190: 53,200 LUTs, 106,400 flip-flops, 220 DSP slices, 140 36-Kb block RAMs = 280 x 18 Kb).
CSYNTH_XML = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion>
    <Version>2023.2</Version>
  </ReportVersion>
  <UserAssignments>
    <unit>ns</unit>
    <ProductFamily>zynq</ProductFamily>
    <Part>xc7z020-clg400-1</Part>
    <TopModelName>semifreddo_top</TopModelName>
    <TargetClockPeriod>10.00</TargetClockPeriod>
    <ClockUncertainty>2.70</ClockUncertainty>
    <FlowTarget>vivado</FlowTarget>
  </UserAssignments>
  <PerformanceEstimates>
    <PipelineType>dataflow</PipelineType>
    <SummaryOfTimingAnalysis>
      <unit>ns</unit>
      <EstimatedClockPeriod>7.268</EstimatedClockPeriod>
    </SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <unit>clock cycles</unit>
      <Best-caseLatency>70</Best-caseLatency>
      <Average-caseLatency>72</Average-caseLatency>
      <Worst-caseLatency>74</Worst-caseLatency>
      <Best-caseRealTimeLatency>0.700 us</Best-caseRealTimeLatency>
      <Average-caseRealTimeLatency>0.720 us</Average-caseRealTimeLatency>
      <Worst-caseRealTimeLatency>0.740 us</Worst-caseRealTimeLatency>
      <Interval-min>65</Interval-min>
      <Interval-max>65</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources>
      <BRAM_18K>4</BRAM_18K>
      <DSP>12</DSP>
      <FF>6384</FF>
      <LUT>5320</LUT>
      <URAM>0</URAM>
    </Resources>
    <AvailableResources>
      <BRAM_18K>280</BRAM_18K>
      <DSP>220</DSP>
      <FF>106400</FF>
      <LUT>53200</LUT>
      <URAM>0</URAM>
    </AvailableResources>
  </AreaEstimates>
</profile>
"""

TOP_CPP = """// Hand-made stand-in for the converter's output (board-flow tests only): the interface of
// hls_project/README.md, streaming input codes straight to the output.
#include "ap_axi_sdata.h"
#include "hls_stream.h"
typedef ap_axiu<32, 0, 0, 0> beat_t;
void semifreddo_top(hls::stream<beat_t> &in_stream, hls::stream<beat_t> &out_stream,
                    unsigned commit, unsigned repeat, unsigned n_frames, unsigned *active_seq) {
#pragma HLS INTERFACE axis port=in_stream
#pragma HLS INTERFACE axis port=out_stream
#pragma HLS INTERFACE s_axilite port=commit bundle=ctrl offset=0x10
#pragma HLS INTERFACE s_axilite port=repeat bundle=ctrl offset=0x18
#pragma HLS INTERFACE s_axilite port=n_frames bundle=ctrl offset=0x20
#pragma HLS INTERFACE s_axilite port=active_seq bundle=ctrl offset=0x30
#pragma HLS INTERFACE s_axilite port=return bundle=ctrl
    *active_seq = commit;
    for (unsigned i = 0; i < n_frames * 64; ++i) {
        beat_t beat = in_stream.read();
        beat.last = (i + 1 == n_frames * 64);
        out_stream.write(beat);
    }
}
"""


def register_map():
    from semifreddo.deploy.contract.regmap import Field, build_register_map

    return build_register_map([Field("head.kernel", (4, 2), 8, True, 6), Field("head.bias", (2,), 16, True, 8),
                               Field("b1.alpha", (1,), 8, True, 4)], (1, 3))


def write_weightsets(folder: Path, regmap, core_id: str = CORE_ID, tasks=("digits_5_9", "parity")) -> list[Path]:
    from semifreddo.deploy.contract.weightset import write_weight_set

    rng = np.random.default_rng(7)
    paths = []
    for task in tasks:
        codes = {f.name: rng.integers(f.lo, f.hi + 1, size=f.shape) for f in regmap.fields}
        paths.append(write_weight_set(folder / f"{task}.npz", regmap, codes, core_id=core_id, task=task,
                                      spec=SPEC, metrics={"accuracy": 0.9}))
    return paths


def make_hls_project(build: Path, core_id: str = CORE_ID, spec: str = SPEC) -> Path:
    """BUILD/<spec>/hls/ by hand, plus BUILD/<spec>/weightsets/ matching it and a random frozen core
    of the spec (``spec``: a shipped name or a YAML path). Returns the HLS folder."""
    import json

    from semifreddo.models.spec import load_spec

    name = load_spec(spec).name
    root = build / name / "hls"
    for sub in ("firmware/ap_types", "firmware/weights", "tb", "tb_data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "firmware" / "semifreddo_top.cpp").write_text(TOP_CPP)
    (root / "tb" / "semifreddo_tb.cpp").write_text("int main() { return 0; }\n")
    (root / "tb_data" / "inputs.txt").write_text("0 1 2 3\n")
    regmap = register_map()
    regmap.save(root / "regmap.json")
    from semifreddo.deploy.contract.interface import IP_VLNV, stamp

    manifest = {
        **stamp("semifreddo-hls"), "top": "semifreddo_top", "spec": name,
        "core_id": core_id, "regmap_id": regmap.id,
        "sources": ["firmware/semifreddo_top.cpp"], "testbench": ["tb/semifreddo_tb.cpp"], "tb_data": "tb_data",
        "cflags": "-std=c++14 -Ifirmware -Ifirmware/ap_types",
        "vendor": "semifreddo", "library": "hls", "ip_version": "1.0", "ip_vlnv": IP_VLNV,
        "io": {"input_shape": [8, 8, 1], "input_bits": 8, "output_shape": [5], "output_bits": 16, "output_frac": 8},
    }
    (root / "hls_manifest.json").write_text(json.dumps(manifest, indent=1))
    # The spec's real hardware plan, with this project's hand-made register map in it.
    import dataclasses

    from semifreddo.hls_project.plan import make_plan

    dataclasses.replace(make_plan(load_spec(spec), core_id), regmap=regmap).write(root)
    write_weightsets(build / name / "weightsets", regmap, core_id)
    write_random_core(build, spec)
    return root


def write_random_core(build: Path, spec_name: str) -> None:
    """A frozen core of the spec with seeded random codes over each tensor's whole range."""
    from semifreddo.models.artifacts import BuildPaths, save_core
    from semifreddo.models.layout import frozen_tensors
    from semifreddo.models.spec import load_spec

    spec = load_spec(spec_name)
    rng = np.random.default_rng(11)
    codes = {t.name: rng.integers(t.fmt.code_min, t.fmt.code_max + 1, t.shape) for t in frozen_tensors(spec)}
    save_core(BuildPaths.for_spec(spec, build).core, spec, codes, {"accuracy": 0.0})


TCL_STUBS = r"""
# Stand-ins for Vitis HLS / Vivado commands. argv: the generated script to run.
set sf_script [lindex $argv 0]
array set cell_type {}
array set cell_config {}
# Pins per IP (name part of the VLNV): clock/reset/other pins, then interface pins.
array set ip_pins {
    processing_system7  {FCLK_CLK0 FCLK_RESET0_N M_AXI_GP0_ACLK S_AXI_HP0_ACLK IRQ_F2P}
    zynq_ultra_ps_e     {pl_clk0 pl_resetn0 maxihpm0_fpd_aclk maxihpm1_fpd_aclk maxihpm0_lpd_aclk saxihp0_fpd_aclk pl_ps_irq0}
    axi_dma             {s_axi_lite_aclk m_axi_mm2s_aclk m_axi_s2mm_aclk axi_resetn mm2s_introut s2mm_introut}
    proc_sys_reset      {slowest_sync_clk ext_reset_in aux_reset_in mb_debug_sys_rst dcm_locked mb_reset bus_struct_reset peripheral_reset interconnect_aresetn peripheral_aresetn}
    smartconnect        {aclk aresetn}
    semifreddo_top      {ap_clk ap_rst_n interrupt}
}
array set ip_intf {
    processing_system7  {M_AXI_GP0 S_AXI_HP0 DDR FIXED_IO}
    zynq_ultra_ps_e     {M_AXI_HPM0_FPD S_AXI_HP0_FPD}
    axi_dma             {S_AXI_LITE M_AXI_MM2S M_AXI_S2MM M_AXIS_MM2S S_AXIS_S2MM}
    proc_sys_reset      {}
    smartconnect        {}
    semifreddo_top      {in_stream out_stream s_axi_ctrl}
}
# An IP exported with an AXI master (Vitis HLS names it m_axi_<bundle>) lists it in SF_IP_MASTERS.
if {[info exists ::env(SF_IP_MASTERS)]} { lappend ip_intf(semifreddo_top) {*}$::env(SF_IP_MASTERS) }

proc record {name arguments} {
    # One call per line, words separated by \x1f (newlines inside a word escaped).
    set f [open calls.log a]
    puts $f [join [lmap word [list $name {*}$arguments] {string map [list "\n" "\\n"] $word}] "\x1f"]
    close $f
    if {[info exists ::env(SF_FAIL)] && $::env(SF_FAIL) eq $name} {
        error "ERROR: \[$name\] failure injected by the test"
    }
}
proc plain {args} {
    foreach name $args { proc $name {args} "record $name \$args; return {}" }
}
plain open_project set_top open_solution set_part create_clock csim_design cosim_design \
      create_project update_ip_catalog create_bd_design apply_bd_automation connect_bd_net \
      connect_bd_intf_net assign_bd_address validate_bd_design save_bd_design generate_target \
      update_compile_order wait_on_run

proc add_files {args} {
    record add_files $args
    set rest $args
    while {[llength $rest]} {
        set rest [lassign $rest word]
        if {$word in {-cflags -fileset}} { set rest [lrange $rest 1 end]; continue }
        if {[string match -* $word]} continue
        if {![file exists $word]} { error "add_files: no such file $word" }
    }
}
proc csynth_design {args} {
    record csynth_design $args
    set dir [file join $::sf(hls_project) $::sf(solution) syn report]
    file mkdir $dir
    set f [open [file join $dir csynth.xml] w]; puts -nonewline $f $::env(SF_CSYNTH); close $f
}
proc export_design {args} {
    record export_design $args
    set dir [file join $::sf(hls_project) $::sf(solution) impl ip]
    file mkdir $dir
    set f [open [file join $dir component.xml] w]; puts $f "<spirit:component/>"; close $f
}
proc current_project {args} { return project }
proc current_fileset {args} { return sources_1 }
proc get_board_parts {args} {
    set pattern [lindex $args end]
    set installed [expr {[info exists ::env(SF_BOARD_PARTS)] ? $::env(SF_BOARD_PARTS) : $pattern}]
    return [lsearch -all -inline -glob $installed $pattern]
}
proc get_ipdefs {args} {
    set pattern [lindex $args end]
    if {$pattern eq $::sf(ip_vlnv)} { return $pattern }
    return [string map {:* :9.1} $pattern]
}
proc create_bd_cell {args} {
    record create_bd_cell $args
    set name [lindex $args end]
    set vlnv [lindex $args [expr {[lsearch $args -vlnv] + 1}]]
    set ::cell_type($name) [lindex [split $vlnv :] 2]
    set ::cell_vlnv($name) $vlnv
    set ::cell_config($name) {}
    return $name
}
proc set_property {args} {
    record set_property $args
    if {[lindex $args 0] eq "-dict"} {
        set cell [lindex $args 2]
        if {[info exists ::cell_config($cell)]} { lappend ::cell_config($cell) {*}[lindex $args 1] }
    }
}
proc cell_intf {cell} {
    set type $::cell_type($cell)
    if {$type ne "smartconnect"} { return $::ip_intf($type) }
    array set c $::cell_config($cell)
    set si [expr {[info exists c(CONFIG.NUM_SI)] ? $c(CONFIG.NUM_SI) : 1}]
    set mi [expr {[info exists c(CONFIG.NUM_MI)] ? $c(CONFIG.NUM_MI) : 1}]
    set names {}
    for {set i 0} {$i < $si} {incr i} { lappend names [format S%02d_AXI $i] }
    for {set i 0} {$i < $mi} {incr i} { lappend names [format M%02d_AXI $i] }
    return $names
}
proc pin_lookup {kind name} {
    lassign [split $name /] cell pin
    if {![info exists ::cell_type($cell)]} { return {} }
    set known [expr {$kind eq "pin" ? $::ip_pins($::cell_type($cell)) : [cell_intf $cell]}]
    return [expr {$pin in $known ? $name : {}}]
}
proc get_bd_pins {args} { return [pin_lookup pin [lindex $args end]] }
proc get_bd_intf_pins {args} { return [pin_lookup intf [lindex $args end]] }
proc get_files {args} { return [lindex $args end] }
proc make_wrapper {args} {
    record make_wrapper $args
    set path [file join [pwd] $::sf(bd)_wrapper.v]
    close [open $path w]
    return $path
}
proc get_runs {args} { return [lindex $args end] }
proc get_property {name object} {
    switch -- $name {
        PROGRESS { return 100% }
        STATUS { return [expr {$object eq "impl_1" ? "write_bitstream Complete!" : "synth_design Complete!"}] }
        STATS.WNS { return 0.412 }
        DIRECTORY { return [file join [pwd] $::sf(project_dir) $::sf(project).runs $object] }
    }
    return {}
}
proc launch_runs {args} {
    record launch_runs $args
    if {[lindex $args 0] ne "impl_1"} return
    set runs [file join $::sf(project_dir) $::sf(project).runs impl_1]
    file mkdir $runs
    set f [open [file join $runs $::sf(bd)_wrapper.bit] w]; puts -nonewline $f "BITSTREAM-STAND-IN"; close $f
    set where [expr {[info exists ::env(SF_HWH_DIR)] ? $::env(SF_HWH_DIR) : "gen"}]
    set dir [file join $::sf(project_dir) $::sf(project).$where sources_1 bd $::sf(bd) hw_handoff]
    file mkdir $dir
    # The .hwh lists the cells this script really created, with their VLNVs and settings.
    set f [open [file join $dir $::sf(bd).hwh] w]
    puts $f "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EDKSYSTEM>\n  <MODULES>"
    foreach cell [lsort [array names ::cell_type]] {
        puts $f "    <MODULE FULLNAME=\"/$cell\" INSTANCE=\"$cell\" MODTYPE=\"$::cell_type($cell)\" VLNV=\"$::cell_vlnv($cell)\">"
        puts $f "      <PARAMETERS>"
        foreach {key value} $::cell_config($cell) {
            puts $f "        <PARAMETER NAME=\"[string toupper [string map {CONFIG. {}} $key]]\" VALUE=\"$value\"/>"
        }
        puts $f "      </PARAMETERS>\n    </MODULE>"
    }
    puts $f "  </MODULES>\n</EDKSYSTEM>"
    close $f
}
source $sf_script
"""


def stub_file(folder: Path) -> Path:
    path = folder / "tool_stubs.tcl"
    path.write_text(TCL_STUBS)
    return path


def run_under_stubs(script: Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a generated script in tclsh with the stub tool commands, in ``cwd``."""
    stubs = stub_file(cwd)
    full_env = dict(os.environ, SF_CSYNTH=CSYNTH_XML, **(env or {}))
    return subprocess.run(["tclsh", str(stubs), str(script)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=120)


def read_calls(folder: Path) -> list[list[str]]:
    """The recorded tool commands, each as its list of words."""
    return [line.split("\x1f") for line in (folder / "calls.log").read_text().splitlines()]


FAKE_TOOL = """#!/bin/sh
# Test stand-in for {tool}: runs the generated Tcl in tclsh under stub commands. Not a synthesis tool.
script=""; log=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f|-source|--tcl) script="$2"; shift ;;
    -l|-log) log="$2"; shift ;;
  esac
  shift
done
[ -n "$log" ] || log=/dev/null
tclsh "{stubs}" "$script" > "$log" 2>&1
rc=$?
cat "$log"
exit $rc
"""


def install_fake_tools(folder: Path, tools=("vitis_hls", "vivado")) -> Path:
    """A bin folder holding the stand-in tools; put it first on PATH."""
    bin_dir = folder / "fake-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    stubs = stub_file(bin_dir)
    for tool in tools:
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.format(tool=tool, stubs=stubs))
        path.chmod(0o755)
    return bin_dir


def tool_env(bin_dir: Path | None, **extra) -> dict:
    """An environment whose PATH has only system folders (no AMD tools), plus ``bin_dir`` first."""
    path = "/usr/local/bin:/usr/bin:/bin"
    env = {"PATH": f"{bin_dir}:{path}" if bin_dir else path, "SF_CSYNTH": CSYNTH_XML}
    env.update(extra)
    return env
