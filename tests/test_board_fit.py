"""The fit check: `estimate --board` says in one line whether the IP fits and exits 0 or 1, and
`synth` / `bitstream` refuse an IP that does not fit before they look for the AMD tools (unless
forced). The specs here build their frozen convs as constant multipliers, so no adder graph is
solved; the frozen cores are seeded random codes."""

import os
import subprocess

import pytest
import yaml

from conftest import REPO, SPECS, one_error_line, run_cli
from test_board_helpers import install_fake_tools, make_hls_project, tool_env

SETUP_STAMP = ".venv/.semifreddo-setup"


def spec_file(tmp_path, name: str, frozen: int, trainable: int, bits: int) -> str:
    """The digits network at another size (frozen convs as constant multipliers)."""
    data = yaml.safe_load((SPECS / "digits.yaml").read_text())
    data["name"] = name
    data["frozen_core"].update(width=frozen, implementation="multipliers")
    data["trainable_cores"].update(width=trainable, weights={"bits": bits, "integer": 0})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture
def big(tmp_path):
    """A network far larger than a PYNQ-Z2 (16 frozen and 2 x 8 trainable channels, 8-bit
    weights), with a hand-made HLS project and a random core."""
    spec = spec_file(tmp_path, "big", 16, 8, 8)
    make_hls_project(tmp_path / "build", spec=spec)
    return spec, tmp_path / "build"


@pytest.mark.solve
def test_estimate_ends_with_the_fit_line_and_exits_1_when_it_does_not_fit(big):
    spec, build = big
    proc = run_cli("estimate", spec, "--build", build, "--board", "pynq-z2", "--brief")
    assert proc.returncode == 1, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("the big IP does NOT fit pynq-z2 (xc7z020clg400-1) by estimate: LUT ")
    assert "over the 85% limit" in last


@pytest.mark.solve
def test_estimate_exits_0_when_it_fits(tmp_path):
    spec = spec_file(tmp_path, "small", 4, 2, 4)
    make_hls_project(tmp_path / "build", spec=spec)
    proc = run_cli("estimate", spec, "--build", tmp_path / "build", "--board", "pynq-z2", "--brief")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("the small IP fits pynq-z2 (xc7z020clg400-1) by estimate:")


@pytest.mark.parametrize("tools", ["none", "stand-ins"])
@pytest.mark.parametrize("target", ["synth", "bitstream"])
@pytest.mark.solve
def test_a_design_that_does_not_fit_is_refused_before_any_tool_runs(big, tmp_path, tools, target):
    spec, build = big
    bin_dir = install_fake_tools(tmp_path) if tools == "stand-ins" else None
    env = dict(os.environ, **tool_env(bin_dir))
    proc = subprocess.run(["make", "--no-print-directory", "-o", SETUP_STAMP, target, f"SPEC={spec}",
                           "BOARD=pynq-z2", f"BUILD={build}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("semifreddo: error:")]
    assert len(errors) == 1 and "does NOT fit pynq-z2" in errors[0] and "FORCE=1" in errors[0], proc.stderr
    assert not (build / "big" / "synth").exists()      # no tool was started: not even its staging folder


@pytest.mark.solve
def test_force_runs_the_tool_anyway(big, tmp_path):
    spec, build = big
    env = tool_env(install_fake_tools(tmp_path))
    proc = run_cli("synth", spec, "--board", "pynq-z2", "--build", build, "--force", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--force: not checking whether the IP fits pynq-z2" in proc.stdout
    proc = run_cli("synth", spec, "--board", "pynq-z2", "--build", build, env=env)
    assert proc.returncode == 1 and "does NOT fit pynq-z2" in one_error_line(proc)
