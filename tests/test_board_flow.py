"""synth and bitstream end to end: missing tools, step failures, outputs and where they go.

Vitis HLS and Vivado are not installed here. The missing-tool tests run the real command and
make targets with a PATH that has no AMD tools. The flow tests put stand-ins named vitis_hls and
vivado first on PATH (test_board_helpers.install_fake_tools): they run the generated Tcl in tclsh
under stub commands and write what the real tools would, so the Python side (staging, step
reporting, report table, collecting .bit/.hwh from either .hwh folder) runs for real.
"""

import json
import os
import subprocess

import pytest

from conftest import REPO, one_error_line, run_cli
from semifreddo.deploy.contract.interface import IP_VLNV
from test_board_helpers import SPEC, install_fake_tools, make_hls_project, read_calls, tool_env

SETUP_STAMP = ".venv/.semifreddo-setup"


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def build(tmp_path):
    make_hls_project(tmp_path / "build")
    return tmp_path / "build"


@pytest.mark.parametrize("command, tool", [("synth", "vitis_hls"), ("bitstream", "vivado")])
@pytest.mark.solve
def test_missing_tool_stops_at_once_and_writes_nothing(command, tool, build):
    before = tree(build)
    proc = run_cli(command, SPEC, "--board", "pynq-z2", "--build", build, env=tool_env(None))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert f"{tool} is not on PATH" in line and "settings64.sh" in line
    assert tree(build) == before


@pytest.mark.parametrize("target, tool, board", [("synth", "vitis_hls", "zcu104"), ("bitstream", "vivado", "zcu104"),
                                                ("synth", "vitis_hls", "kv260")])
@pytest.mark.solve
def test_make_target_without_the_tool_fails_with_one_line(target, tool, board, build):
    before = tree(build)
    env = dict(os.environ, **tool_env(None))
    proc = subprocess.run(["make", "--no-print-directory", "-o", SETUP_STAMP, target, f"SPEC={SPEC}",
                           f"BOARD={board}", f"BUILD={build}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    errors = [l for l in proc.stderr.splitlines() if l.startswith("semifreddo: error:")]
    assert len(errors) == 1 and f"{tool} is not on PATH" in errors[0] and "settings64.sh" in errors[0]
    assert tree(build) == before


@pytest.mark.solve
def test_synth_then_bitstream_with_stand_in_tools(build, tmp_path):
    env = tool_env(install_fake_tools(tmp_path))
    proc = run_cli("synth", SPEC, "--board", "pynq-z2", "--build", build, "--cosim", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hls = build / SPEC / "synth" / "pynq-z2" / "hls"
    assert (hls / "prj" / "solution1" / "impl" / "ip" / "component.xml").exists()
    assert not (hls.parent / "hls.partial").exists()
    record = json.loads((hls / "synth.json").read_text())
    assert (record["board"], record["part"], record["clock_mhz"], record["cosim"]) == \
        ("pynq-z2", "xc7z020clg400-1", 100.0, True)
    assert record["ip_vlnv"] == IP_VLNV
    assert record["report"]["used"]["lut"] == 5320
    assert "cosim_design" in [c[0] for c in read_calls(hls)]
    # the table from the report (numbers from the fixture)
    assert "LUT               5,320 (10.0%)" in proc.stdout and "II (cycles)       65" in proc.stdout
    # snapshots of what the IP was built from
    assert json.loads((hls / "hls_manifest.json").read_text())["core_id"] == record["core_id"]

    proc = run_cli("bitstream", SPEC, "--board", "pynq-z2", "--build", build, "--jobs", "2", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vivado = build / SPEC / "synth" / "pynq-z2" / "vivado"
    assert (vivado / "semifreddo_digits.bit").read_text() == "BITSTREAM-STAND-IN"
    assert "semifreddo_0" in (vivado / "semifreddo_digits.hwh").read_text()
    record = json.loads((vivado / "bitstream.json").read_text())
    assert record["hwh_found_in"] == "prj/prj.gen/sources_1/bd/semifreddo_bd/hw_handoff/semifreddo_bd.hwh"
    launches = [c for c in read_calls(vivado) if c[0] == "launch_runs"]
    assert all(c[c.index("-jobs") + 1] == "2" for c in launches)


@pytest.mark.solve
def test_a_relative_build_folder_works(tmp_path):
    make_hls_project(tmp_path / "build")
    env = tool_env(install_fake_tools(tmp_path))
    for step in ("synth", "bitstream"):
        proc = run_cli(step, SPEC, "--board", "pynq-z2", "--build", "build", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "build" / SPEC / "synth" / "pynq-z2" / "vivado" / "semifreddo_digits.bit").exists()


@pytest.mark.solve
def test_hwh_from_the_older_srcs_folder_is_found(build, tmp_path):
    env = tool_env(install_fake_tools(tmp_path), SF_HWH_DIR="srcs")
    assert run_cli("synth", SPEC, "--board", "zcu104", "--build", build, env=env).returncode == 0
    proc = run_cli("bitstream", SPEC, "--board", "zcu104", "--build", build, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((build / SPEC / "synth" / "zcu104" / "vivado" / "bitstream.json").read_text())
    assert record["hwh_found_in"].startswith("prj/prj.srcs/")


@pytest.mark.parametrize("command, failing, step, log", [
    ("synth", "csim_design", "csim", "hls.partial/vitis_hls.log"),
    ("synth", "export_design", "export", "hls.partial/vitis_hls.log"),
    ("bitstream", "validate_bd_design", "block_design", "vivado.partial/vivado.log"),
    ("bitstream", "launch_runs", "synthesis", "vivado.partial/vivado.log"),
])
@pytest.mark.solve
def test_a_failing_step_is_named_with_its_log(command, failing, step, log, build, tmp_path):
    bin_dir = install_fake_tools(tmp_path)
    if command == "bitstream":
        assert run_cli("synth", SPEC, "--board", "pynq-z2", "--build", build, env=tool_env(bin_dir)).returncode == 0
    proc = run_cli(command, SPEC, "--board", "pynq-z2", "--build", build, env=tool_env(bin_dir, SF_FAIL=failing))
    assert proc.returncode == 1
    line = one_error_line(proc)
    log_path = build / SPEC / "synth" / "pynq-z2" / log
    assert f"failed in step {step}: " in line and line.endswith(f"(log: {log_path})")
    assert log_path.exists() and f"SEMIFREDDO-FAILED {step}" in log_path.read_text()
    final = log_path.parent.with_name(log_path.parent.name.replace(".partial", ""))
    assert command == "bitstream" or not final.exists()      # nothing at the final path
    assert not (build / SPEC / "synth" / "pynq-z2" / "vivado").exists()


@pytest.mark.solve
def test_a_tool_that_dies_without_a_marker_names_the_last_step(build, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vitis_hls").write_text("#!/bin/sh\necho 'SEMIFREDDO-STEP csynth'\nexit 3\n")
    (bin_dir / "vitis_hls").chmod(0o755)
    proc = run_cli("synth", SPEC, "--board", "ultra96-v2", "--build", build, env=tool_env(bin_dir))
    assert proc.returncode == 1
    assert "vitis_hls stopped in step csynth with exit code 3" in one_error_line(proc)


def test_bitstream_before_synth_and_synth_without_project_are_refused(tmp_path):
    env = tool_env(install_fake_tools(tmp_path))
    proc = run_cli("bitstream", SPEC, "--board", "pynq-z2", "--build", tmp_path / "empty", env=env)
    assert proc.returncode == 2 and "run `semifreddo synth digits --board pynq-z2` first" in one_error_line(proc)
    proc = run_cli("synth", SPEC, "--board", "pynq-z2", "--build", tmp_path / "empty", env=env)
    assert proc.returncode == 2 and "no HLS project at" in one_error_line(proc)
    proc = run_cli("synth", SPEC, "--board", "emulated", "--build", tmp_path / "empty", env=env)
    assert proc.returncode == 2 and "has no FPGA" in one_error_line(proc)
    assert not (tmp_path / "empty").exists()


@pytest.mark.solve
def test_manifest_for_another_spec_or_a_broken_register_map_is_refused(build, tmp_path):
    env = tool_env(install_fake_tools(tmp_path))
    manifest_path = build / SPEC / "hls" / "hls_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(dict(manifest, regmap_id="ffffffffffffffff")))
    proc = run_cli("synth", SPEC, "--board", "pynq-z2", "--build", build, env=env)
    assert proc.returncode == 2 and "does not belong to this HLS project" in one_error_line(proc)
    manifest_path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "top"}))
    proc = run_cli("synth", SPEC, "--board", "pynq-z2", "--build", build, env=env)
    assert proc.returncode == 2 and "field 'top' is missing" in one_error_line(proc)
