"""The board table and the generated Tcl: right part and PS for each board, DMA and IP wired.

Each generated script is checked three ways: tclsh accepts it as complete Tcl; it runs to the end
in tclsh under stand-ins for the tool commands (test_board_helpers.TCL_STUBS), which also check
every pin name it uses against the IPs' documented ports; and the recorded commands build the
block design the issue asks for.
"""

import subprocess

import pytest

from semifreddo.deploy.contract.boards import BOARDS, PS7, PS8, fpga_board, get_board
from semifreddo.board_scripts.hlsproject import absolute_include_flags, load_hls_project
from semifreddo.board_scripts.scripts import TCL_DIR, bitstream_script, hls_script, tcl_word
from semifreddo.deploy.contract.interface import IP_VLNV
from semifreddo.deploy.contract.errors import SemifreddoError

from test_board_helpers import make_hls_project, read_calls, run_under_stubs

# Expected facts, from the board files (see board_scripts/boards.py for the file each comes from).
EXPECTED = {
    "pynq-z2": ("xc7z020clg400-1", "tul.com.tw:pynq-z2:part0:1.0", PS7, 64),
    "zcu104": ("xczu7ev-ffvc1156-2-e", "xilinx.com:zcu104:part0:1.1", PS8, 128),
    "ultra96-v2": ("xczu3eg-sbva484-1-i", "avnet.com:ultra96v2:part0:1.2", PS8, 128),
    "kv260": ("xck26-sfvc784-2LV-c", "xilinx.com:kv260_som:part0:1.4", PS8, 128),
}
# A SOM's carrier card (the KV260's, as AMD's Kria designs and Kria-PYNQ's base overlay attach it).
CARRIER = {"kv260": "som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.3"}
# PS pins by family (PG082 for processing_system7, PG201 for zynq_ultra_ps_e).
PS_PINS = {
    PS7: {"gp": "ps/M_AXI_GP0", "hp": "ps/S_AXI_HP0", "clk": "ps/FCLK_CLK0", "resetn": "ps/FCLK_RESET0_N",
          "clock_sinks": {"ps/M_AXI_GP0_ACLK", "ps/S_AXI_HP0_ACLK"},
          "settings": {"CONFIG.PCW_USE_M_AXI_GP0": "1", "CONFIG.PCW_USE_S_AXI_HP0": "1",
                       "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ": "100"}, "width": "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"},
    PS8: {"gp": "ps/M_AXI_HPM0_FPD", "hp": "ps/S_AXI_HP0_FPD", "clk": "ps/pl_clk0", "resetn": "ps/pl_resetn0",
          "clock_sinks": {"ps/maxihpm0_fpd_aclk", "ps/saxihp0_fpd_aclk"},
          "settings": {"CONFIG.PSU__USE__M_AXI_GP0": "1", "CONFIG.PSU__USE__S_AXI_GP2": "1",
                       "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": "100"}, "width": "CONFIG.PSU__SAXIGP2__DATA_WIDTH"},
}


def tcl_complete(text: str, tmp_path) -> bool:
    path = tmp_path / "check.tcl"
    path.write_text(text)
    out = subprocess.run(["tclsh", "/dev/stdin", str(path)], input="puts [info complete [read [open [lindex $argv 0]]]]",
                         capture_output=True, text=True, check=True)
    return out.stdout.strip() == "1"


def generated_bitstream(board, tmp_path):
    folder = tmp_path / board
    folder.mkdir()
    script = folder / "bitstream.tcl"
    script.write_text(bitstream_script(BOARDS[board], spec="digits", ip_repo=tmp_path / "ip repo", ip_vlnv=IP_VLNV,
                                       clock_mhz=BOARDS[board].clock_mhz, jobs=2))
    return folder, script


def settings_of(calls, cell):
    """All CONFIG.* values set on ``cell`` with set_property -dict."""
    values = {}
    for call in calls:
        if call[:2] == ["set_property", "-dict"] and call[3] == cell:
            words = call[2].split()
            values.update(zip(words[0::2], words[1::2]))
    return values


def test_board_table_covers_the_boards_and_the_emulator():
    assert set(BOARDS) == {*EXPECTED, "emulated"}
    for name, (part, board_part, ps_ip, width) in EXPECTED.items():
        b = get_board(name)
        assert (b.part, b.board_part, b.ps_ip, b.hp_data_width) == (part, board_part, ps_ip, width)
        assert b.clock_mhz > 0 and not b.emulated
        assert (TCL_DIR / f"ps_{b.ps_ip}.tcl").exists()      # every PS in the table has its fragment
    assert get_board("emulated").emulated and get_board("emulated").part is None


def test_unknown_and_emulated_boards_are_refused_with_one_line():
    with pytest.raises(SemifreddoError, match="unknown board 'zedboard' .*pynq-z2"):
        get_board("zedboard")
    with pytest.raises(SemifreddoError, match="emulated has no FPGA"):
        fpga_board("emulated", "synthesize")


def test_templates_are_complete_tcl(tmp_path):
    for path in TCL_DIR.glob("*.tcl"):
        assert tcl_complete(path.read_text(), tmp_path), path.name


@pytest.mark.parametrize("value", ["plain", "two words", 'quote " and $dollar', "[bracket] {brace} back\\slash",
                                   "line\nbreak", "", 12, 2.5])
def test_tcl_word_round_trips_through_tclsh(value):
    out = subprocess.run(["tclsh"], input=f"puts -nonewline [set x {tcl_word(value)}]", capture_output=True,
                         text=True, check=True).stdout
    assert out == str(value)


@pytest.mark.parametrize("board", sorted(EXPECTED))
def test_bitstream_script_builds_the_block_design(board, tmp_path):
    part, board_part, ps_ip, width = EXPECTED[board]
    other_ps = PS8 if ps_ip == PS7 else PS7
    folder, script = generated_bitstream(board, tmp_path)
    text = script.read_text()
    assert tcl_complete(text, tmp_path)
    assert ps_ip in text and other_ps not in text

    run = run_under_stubs(script, folder)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "SEMIFREDDO-DONE"
    calls = read_calls(folder)
    names = [c[0] for c in calls]

    create = next(c for c in calls if c[0] == "create_project")
    assert create[create.index("-part") + 1] == part
    assert ["set_property", "board_part", board_part, "project"] in calls
    connections = [c for c in calls if c[:2] == ["set_property", "board_connections"]]
    assert connections == ([["set_property", "board_connections", CARRIER[board], "project"]] if board in CARRIER
                           else [])
    cells = {c[-1]: c[c.index("-vlnv") + 1] for c in calls if c[0] == "create_bd_cell"}
    assert cells["ps"].split(":")[2] == ps_ip
    assert cells["semifreddo_0"] == IP_VLNV
    assert cells["axi_dma_0"] == "xilinx.com:ip:axi_dma:7.1"       # the version the contract pins, not the newest
    assert any(c[0] == "apply_bd_automation" and 'apply_board_preset "1"' in " ".join(c) for c in calls)

    pins = PS_PINS[ps_ip]
    ps_settings = settings_of(calls, "ps")
    assert {k: ps_settings[k] for k in pins["settings"]} == pins["settings"]
    assert ps_settings[pins["width"]] == str(width)

    dma = settings_of(calls, "axi_dma_0")
    assert dma["CONFIG.c_include_sg"] == "0"                       # simple mode
    assert dma["CONFIG.c_include_mm2s"] == dma["CONFIG.c_include_s2mm"] == "1"
    assert dma["CONFIG.c_m_axis_mm2s_tdata_width"] == dma["CONFIG.c_s_axis_s2mm_tdata_width"] == "32"
    assert dma["CONFIG.c_m_axi_mm2s_data_width"] == dma["CONFIG.c_m_axi_s2mm_data_width"] == str(width)

    intf = {frozenset(c[1:]) for c in calls if c[0] == "connect_bd_intf_net"}
    expected_intf = [
        (pins["gp"], "ctrl_interconnect/S00_AXI"),
        ("ctrl_interconnect/M00_AXI", "semifreddo_0/s_axi_ctrl"),
        ("ctrl_interconnect/M01_AXI", "axi_dma_0/S_AXI_LITE"),
        ("axi_dma_0/M_AXIS_MM2S", "semifreddo_0/in_stream"),
        ("semifreddo_0/out_stream", "axi_dma_0/S_AXIS_S2MM"),
        ("axi_dma_0/M_AXI_MM2S", "mem_interconnect/S00_AXI"),
        ("axi_dma_0/M_AXI_S2MM", "mem_interconnect/S01_AXI"),
        ("mem_interconnect/M00_AXI", pins["hp"]),
    ]
    assert intf == {frozenset(pair) for pair in expected_intf}

    nets = {c[c.index("-net") + 1]: set(c[c.index("-net") + 2:]) for c in calls if c[0] == "connect_bd_net"}
    assert nets["pl_clk"] == {pins["clk"], *pins["clock_sinks"], "semifreddo_0/ap_clk", "axi_dma_0/s_axi_lite_aclk",
                              "axi_dma_0/m_axi_mm2s_aclk", "axi_dma_0/m_axi_s2mm_aclk", "ctrl_interconnect/aclk",
                              "mem_interconnect/aclk", "rst_pl_0/slowest_sync_clk"}
    assert nets["ps_resetn"] == {pins["resetn"], "rst_pl_0/ext_reset_in"}
    assert nets["pl_resetn"] == {"rst_pl_0/peripheral_aresetn", "semifreddo_0/ap_rst_n", "axi_dma_0/axi_resetn",
                                 "ctrl_interconnect/aresetn", "mem_interconnect/aresetn"}

    # Order of the flow: addresses before validation, wrapper before synthesis, bitstream last.
    order = [names.index(n) for n in ("assign_bd_address", "validate_bd_design", "make_wrapper")]
    assert order == sorted(order)
    runs = [c for c in calls if c[0] == "launch_runs"]
    assert [r[1] for r in runs] == ["synth_1", "impl_1"]
    assert runs[1][runs[1].index("-to_step") + 1] == "write_bitstream"


@pytest.mark.parametrize("board", ["pynq-z2", "kv260"])
def test_a_frame_buffer_in_ddr_gets_the_ip_an_hp_port(board, tmp_path):
    """An IP whose reused group keeps its frame in DDR has an AXI master, m_axi_frame: the block design
    joins it to the memory interconnect beside the DMA's two, so it reaches DDR through the HP port.
    Without that master in the exported IP the step fails rather than leave it unconnected."""
    folder = tmp_path / board
    folder.mkdir()
    script = folder / "bitstream.tcl"
    script.write_text(bitstream_script(BOARDS[board], spec="framed", ip_repo=tmp_path / "ip", ip_vlnv=IP_VLNV,
                                       clock_mhz=100, jobs=2, frame_buffer=True))
    run = run_under_stubs(script, folder, env={"SF_IP_MASTERS": "m_axi_frame"})
    assert run.returncode == 0, run.stdout + run.stderr
    calls = read_calls(folder)
    assert settings_of(calls, "mem_interconnect")["CONFIG.NUM_SI"] == "3"
    intf = {frozenset(c[1:]) for c in calls if c[0] == "connect_bd_intf_net"}
    assert frozenset(("semifreddo_0/m_axi_frame", "mem_interconnect/S02_AXI")) in intf
    assert frozenset(("mem_interconnect/M00_AXI", PS_PINS[BOARDS[board].ps_ip]["hp"])) in intf

    again = tmp_path / "without"
    again.mkdir()
    (again / "bitstream.tcl").write_text(script.read_text())
    run = run_under_stubs(again / "bitstream.tcl", again)        # an IP exported without the master
    assert run.returncode != 0 and "no interface semifreddo_0/m_axi_frame" in run.stdout + run.stderr


def test_a_wrong_pin_name_fails_the_block_design_step(tmp_path):
    """The stand-ins really check pin names: rename the DMA's stream port and the step fails."""
    folder, script = generated_bitstream("pynq-z2", tmp_path)
    script.write_text(script.read_text().replace("(dma_instance)/M_AXIS_MM2S", "(dma_instance)/M_AXIS_MM2S_typo"))
    run = run_under_stubs(script, folder)
    assert run.returncode == 1
    assert "SEMIFREDDO-FAILED block_design: the block design has no interface axi_dma_0/M_AXIS_MM2S_typo" in run.stdout


def test_missing_board_files_fall_back_to_an_installed_version_or_fail(tmp_path):
    folder, script = generated_bitstream("ultra96-v2", tmp_path)
    run = run_under_stubs(script, folder, env={"SF_BOARD_PARTS": "em.avnet.com:ultra96v2:part0:1.0"})
    assert run.returncode == 0, run.stdout
    assert "SEMIFREDDO-WARNING board files avnet.com:ultra96v2:part0:1.2 are not installed, using " \
           "em.avnet.com:ultra96v2:part0:1.0" in run.stdout
    assert ["set_property", "board_part", "em.avnet.com:ultra96v2:part0:1.0", "project"] in read_calls(folder)

    (folder / "calls.log").unlink()
    run = run_under_stubs(script, folder, env={"SF_BOARD_PARTS": "xilinx.com:zcu104:part0:1.1"})
    assert run.returncode == 1
    assert "SEMIFREDDO-FAILED project: board files avnet.com:ultra96v2:part0:1.2 are not installed" in run.stdout


def test_kv260_falls_back_to_older_som_board_files(tmp_path):
    folder, script = generated_bitstream("kv260", tmp_path)
    run = run_under_stubs(script, folder, env={"SF_BOARD_PARTS": "xilinx.com:kv260_som:part0:1.3"})
    assert run.returncode == 0, run.stdout
    assert "using xilinx.com:kv260_som:part0:1.3" in run.stdout
    calls = read_calls(folder)
    assert ["set_property", "board_part", "xilinx.com:kv260_som:part0:1.3", "project"] in calls
    assert calls.index(["set_property", "board_part", "xilinx.com:kv260_som:part0:1.3", "project"]) < \
        calls.index(["set_property", "board_connections", CARRIER["kv260"], "project"])


@pytest.mark.parametrize("cosim", [False, True])
def test_hls_script_runs_csim_csynth_export_and_cosim_only_when_asked(cosim, tmp_path):
    make_hls_project(tmp_path / "build")
    project = load_hls_project(tmp_path / "build" / "digits" / "hls", "digits")
    folder = tmp_path / "run"
    folder.mkdir()
    script = folder / "synth.tcl"
    script.write_text(hls_script(BOARDS["zcu104"], project, clock_mhz=250.0, cosim=cosim))
    assert tcl_complete(script.read_text(), tmp_path)
    run = run_under_stubs(script, folder)
    assert run.returncode == 0, run.stdout + run.stderr
    calls = read_calls(folder)
    steps = [c[0] for c in calls if c[0].endswith("_design")]
    assert steps == ["csim_design", "csynth_design", *(["cosim_design"] if cosim else []), "export_design"]
    assert ["set_part", "xczu7ev-ffvc1156-2-e"] in calls
    assert ["create_clock", "-period", "4.0", "-name", "default"] in calls      # 250 MHz
    assert ["set_top", "semifreddo_top"] in calls
    export = next(c for c in calls if c[0] == "export_design")
    flags = dict(zip(export[1::2], export[2::2]))
    assert (flags["-format"], flags["-vendor"], flags["-library"], flags["-ipname"], flags["-version"]) == \
        ("ip_catalog", "semifreddo", "hls", "semifreddo_top", "1.0")
    sources = [c for c in calls if c[0] == "add_files"]
    hls_root = tmp_path / "build" / "digits" / "hls"
    assert sources[0][1] == str(hls_root / "firmware" / "semifreddo_top.cpp")
    assert sources[0][3] == f"-std=c++14 -I{hls_root / 'firmware'} -I{hls_root / 'firmware' / 'ap_types'}"
    assert ["add_files", "-tb", str(hls_root / "tb_data")] in calls


def test_include_flags_are_made_absolute(tmp_path):
    assert absolute_include_flags("-std=c++14 -Ifirmware -I /opt/x -I sub/dir -DX=1", tmp_path) == \
        f"-std=c++14 -I{tmp_path / 'firmware'} -I/opt/x -I{tmp_path / 'sub/dir'} -DX=1"
