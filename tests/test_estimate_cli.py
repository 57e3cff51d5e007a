"""`semifreddo estimate` and `semifreddo explore` on the command line: output files, labels, bad input."""

import json

import pytest
import yaml

from semifreddo.models.artifacts import BuildPaths, save_core
from semifreddo.models.cli import main
from semifreddo.models.spec import load_spec

from test_estimate_handcount import CODES, TINY_SPEC


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPEC))
    spec = load_spec(path)
    save_core(BuildPaths.for_spec(spec, tmp_path / "build").core, spec, CODES, {"accuracy": 0.0})
    return path, tmp_path / "build"


def test_estimate_prints_labelled_tables_and_writes_files(tiny, capsys):
    path, build = tiny
    assert main(["estimate", str(path), "--build", str(build)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ESTIMATE (not a synthesis result)")
    assert "xc7_yosys.json (Yosys 0.23" in out
    for title in ("SemifreddoNet IP", "fully configurable twin", "general-purpose accelerator"):
        assert f"== {title}" in out
    folder = build / "tiny" / "estimate"
    report = json.loads((folder / "estimate.json").read_text())
    assert report["label"].startswith("ESTIMATE")
    assert set(report["designs"]) == {"semifreddo", "configurable", "general"}
    assert report["ratios"]["general"]["area"] > 1
    assert (folder / "estimate.png").read_bytes()[:4] == b"\x89PNG"


def test_dsp_policy_moves_configurable_multipliers_into_dsps(tiny, capsys):
    path, build = tiny
    assert main(["estimate", str(path), "--build", str(build), "--dsp", "--brief"]) == 0
    report = json.loads((build / "tiny" / "estimate" / "estimate.json").read_text())
    # u8 x s4 (12-bit product) and the alpha blends map to DSP48s; the u4 x s4 multipliers (8-bit
    # products) stay in LUTs, as Yosys does.
    assert report["designs"]["semifreddo"]["summary"]["dsp"] > 0


@pytest.mark.parametrize("argv, message", [
    (["estimate", "no-such-spec"], "no shipped spec of that name"),
    (["estimate", "digits", "--build", "/nonexistent/build"], "no frozen core yet"),
    (["estimate", "digits", "--clock", "0"], "--clock must be a positive frequency"),
    (["estimate", "digits", "--table", "/nonexistent/table.json"], "unit-cost table /nonexistent/table.json not found"),
    (["explore", "digits", "--epochs", "0"], "--epochs must be at least 1"),
    (["explore", "digits", "--task", "denoise"], "no task named 'denoise'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("semifreddo: error:") and message in err


@pytest.mark.parametrize("argv", [["explore", "digits", "--formats", "fixed,po3"],
                                  ["explore", "digits", "--fractions", "0.5,1.2"]])
def test_bad_sweep_ranges_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
