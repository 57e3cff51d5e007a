"""The PYNQ driver on the emulated board: bit-exact against QKeras across task switches, the PL
state across processes (the real command line), the register-map check, the bundle's emulator
files, and the board-side import rule."""

import ast
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, one_error_line, run_cli
from semifreddo.deploy.runtime.driver import Semifreddo
from semifreddo.deploy.runtime.emulator import EmulatedDevice
from semifreddo.deploy.contract.errors import SemifreddoError

from test_deploy_helpers import TASK_A, TASK_B, images, package_emulated, qkeras_outputs


@pytest.fixture(scope="module")
def board(converted_build, tmp_path_factory):
    """(bundle, build with the core, held-out images, QKeras outputs per task and repeat)."""
    build = converted_build("digits")
    bundle = package_emulated(build, tmp_path_factory.mktemp("emulated"))
    x = images()
    expected = {(task, repeat): qkeras_outputs(build, task, x, repeat) for task in (TASK_A, TASK_B) for repeat in (1, 2)}
    return bundle, x, expected


def test_emulated_board_is_bit_exact_with_qkeras_across_switches(board, tmp_path):
    bundle, x, expected = board
    device = EmulatedDevice(tmp_path / "pl")
    sf = Semifreddo(bundle, device=device)
    assert sf.downloaded and sf.repeat == 1 and sf.active_task is None
    sf.switch(TASK_A)
    np.testing.assert_array_equal(sf.run(x, batch=5), expected[(TASK_A, 1)])   # 3 DMA batches
    report = sf.switch(TASK_B)
    assert (report.task, sf.active_task, sf.last_switch) == (TASK_B, TASK_B, report)
    np.testing.assert_array_equal(sf.run(x), expected[(TASK_B, 1)])
    sf.repeat = 2
    np.testing.assert_array_equal(sf.run(x), expected[(TASK_B, 2)])
    assert not np.array_equal(expected[(TASK_A, 1)], expected[(TASK_B, 1)])
    assert not np.array_equal(expected[(TASK_B, 1)], expected[(TASK_B, 2)])
    assert sf.last_run.images == len(x) and sf.last_run.task == TASK_B
    assert sf.run(x[0]).shape == (1,) + expected[(TASK_B, 2)].shape[1:]       # one image
    # A second process-like opening of the same board finds the bitstream loaded and the task active.
    again = Semifreddo(bundle, device=EmulatedDevice(tmp_path / "pl"))
    assert not again.downloaded and again.active_task == TASK_B and again.repeat == 2
    np.testing.assert_array_equal(again.run(x), expected[(TASK_B, 2)])


def test_reload_in_one_process_changes_what_a_run_in_another_computes(board, tmp_path):
    bundle, x, expected = board
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    np.save(tmp_path / "x.npy", x)
    for task in (TASK_A, TASK_B, TASK_A):
        proc = run_cli("reload", bundle, "--task", task, env=env)
        assert proc.returncode == 0 and f"task {task} active" in proc.stdout, proc.stderr
        proc = run_cli("run", bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", env=env)
        assert proc.returncode == 0, proc.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected[(task, 1)])
    proc = run_cli("reload", bundle, "--weights", bundle / "weightsets" / f"{TASK_B}.npz", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("status", bundle, env=env)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert f"active task  {TASK_B} (sequence 4)" in proc.stdout
    assert f"core id      {manifest['core_id']}" in proc.stdout and "repeat       1" in proc.stdout


def test_register_map_that_disagrees_with_the_hardware_is_refused(board, tmp_path):
    import shutil

    bundle, _, _ = board
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    hardware = copy / "emulator" / "semifreddo_digits.json"
    described = json.loads(hardware.read_text())
    described["ip"]["semifreddo_0"]["registers"]["commit"]["address_offset"] = 0x14
    hardware.write_text(json.dumps(described))
    with pytest.raises(SemifreddoError, match="register commit is at 0x14 in the hardware but at 0x10"):
        Semifreddo(copy, device=EmulatedDevice(tmp_path / "pl"))
    del described["ip"]["semifreddo_0"]["registers"]["commit"]
    hardware.write_text(json.dumps(described))
    proc = run_cli("status", copy, "--state", tmp_path / "pl2", "--emulated")
    assert proc.returncode == 2 and "no register 'commit'" in one_error_line(proc)


def test_emulated_bundle_carries_the_c_simulation_and_registers_from_the_cpp(board):
    from semifreddo.board_scripts.bundle import verify_bundle
    from semifreddo.deploy.contract.regmap import load_register_map

    bundle, _, _ = board
    manifest = verify_bundle(bundle)
    assert manifest["emulator"] == {"bitstream": "emulator/semifreddo_digits.so",
                                    "hardware": "emulator/semifreddo_digits.json"}
    assert manifest["bitstream"] is None and set(manifest["samples"]) == set(manifest["tasks"])
    hardware = json.loads((bundle / manifest["emulator"]["hardware"]).read_text())
    registers = hardware["ip"]["semifreddo_0"]["registers"]
    regmap = load_register_map(bundle / "regmap.json")
    # Read from the C++ pragmas, independently of regmap.json, and equal to it.
    for name in ("commit", "repeat", "n_frames", "active_seq", "core_id", "regmap_id"):
        assert registers[name]["address_offset"] == regmap.control[name]
    assert hardware["bank"] == {"offset": regmap.bank_offset, "words": regmap.n_words}


BOARD_SIDE_IMPORTS = {"numpy", "pynq"}


def test_board_side_imports_only_numpy_pynq_and_the_standard_library():
    for path in sorted((REPO / "deploy").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in BOARD_SIDE_IMPORTS or top in sys.stdlib_module_names, f"{path.name} imports {name}"
    code = ("import sys, semifreddo.deploy.runtime.driver, semifreddo.deploy.runtime.emulator, semifreddo.deploy.runtime.cli, "
            "semifreddo.deploy.runtime.bench_runtime; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'qkeras', 'hls4ml')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.mark.parametrize("version, ok", [("3.0.1", True), ("3.1.2", True), ("3.1", True), ("2.7.0", False),
                                         ("3.2.0", False), ("unknown", False)])
def test_the_driver_runs_on_pynq_3_0_and_3_1_only(version, ok):
    from semifreddo.deploy.contract.interface import PYNQ_RELEASES, check_pynq_release

    assert {"3.0", "3.1"} <= set(PYNQ_RELEASES)
    if ok:
        check_pynq_release(version)
    else:
        with pytest.raises(SemifreddoError, match=f"pynq {version} is installed, but the semifreddo driver supports "
                                                  "PYNQ 3.0 and 3.1 only"):
            check_pynq_release(version)


def test_loading_the_driver_under_another_pynq_is_refused_in_one_line():
    """At import, before any of pynq's modules is used; the error is one line."""
    code = ("import pynq; pynq.__version__ = '2.7.0'\n"
            "from semifreddo.deploy.contract.errors import SemifreddoError\n"
            "try:\n    import semifreddo.deploy.runtime.driver\n"
            "except SemifreddoError as exc:\n    print('REFUSED', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("REFUSED pynq 2.7.0 is installed"), out.stdout + out.stderr
