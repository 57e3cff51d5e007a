"""Bad input, nothing lost: every refusal is one clear error, and afterwards the previous task is
still active and still computes exactly what the QKeras model computes (on the emulated board)."""

import shutil
import threading

import numpy as np
import pytest

from conftest import one_error_line, run_cli
from semifreddo.deploy.runtime.driver import BoardBusy, ReadBackError, Semifreddo
from semifreddo.deploy.runtime.emulator import EmulatedDevice
from semifreddo.deploy.contract.errors import SemifreddoError, WeightSetError
from semifreddo.deploy.contract.regmap import build_register_map
from semifreddo.deploy.contract.weightset import encode_weight_set, read_weight_set

from test_deploy_helpers import TASK_A, TASK_B, images, package_emulated, qkeras_outputs


@pytest.fixture(scope="module")
def board(converted_build, tmp_path_factory):
    build = converted_build("digits")
    bundle = package_emulated(build, tmp_path_factory.mktemp("emulated"))
    x = images()
    return bundle, x, {task: qkeras_outputs(build, task, x) for task in (TASK_A, TASK_B)}


@pytest.fixture
def running(board, tmp_path):
    """A board with task A active; ``still_a()`` proves task A is still active and correct."""
    bundle, x, expected = board
    sf = Semifreddo(bundle, device=EmulatedDevice(tmp_path / "pl"))
    sf.switch(TASK_A)
    seq = sf.active_seq

    def still_a(driver=sf):
        assert driver.active_task == TASK_A and driver.active_seq == seq
        np.testing.assert_array_equal(driver.run(x), expected[TASK_A])
    still_a()
    return sf, still_a


def test_weight_set_for_another_core_is_refused(running, converted_build):
    sf, still_a = running
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.spec import load_spec

    other = BuildPaths.for_spec(load_spec("pixels"), converted_build("pixels")).weightset("edges")
    with pytest.raises(WeightSetError, match="made for frozen core"):
        sf.switch(other)
    still_a()


def test_weight_set_for_another_register_map_is_refused(running, tmp_path):
    sf, still_a = running
    ws = read_weight_set(sf.tasks[TASK_B])
    lo, hi = ws.regmap.repeat_range
    other_map = build_register_map(list(ws.regmap.fields), (lo, hi + 1), ws.regmap.io)
    path = tmp_path / "other_map.npz"
    path.write_bytes(encode_weight_set(other_map, ws.codes(), core_id=ws.core_id, task=TASK_B, spec="digits"))
    with pytest.raises(WeightSetError, match="made for register map"):
        sf.switch(path)
    still_a()


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "not a weight set"])
def test_corrupt_weight_set_file_is_refused(running, tmp_path, damage):
    sf, still_a = running
    raw = bytearray(sf.tasks[TASK_B].read_bytes())
    path = tmp_path / "damaged.npz"
    if damage == "flipped byte":
        raw[len(raw) // 2] ^= 0x40
    elif damage == "truncated":
        raw = raw[: len(raw) // 3]
    else:
        raw = b"just some text\n"
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightSetError):
        sf.switch(path)
    still_a()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 8, 8, 3)), r"images have shape \(3, 8, 8, 3\)"),
    (np.zeros((3, 7, 8, 1)), r"images have shape \(3, 7, 8, 1\)"),
    (np.full((2, 8, 8, 1), "x"), "images have dtype <U1"),
    (np.zeros((2, 8, 8, 1), dtype=complex), "images have dtype complex128"),
    (np.full((2, 8, 8, 1), 256), r"must lie in 0..255"),
    (np.full((2, 8, 8, 1), np.nan), "NaN"),
])
def test_images_of_the_wrong_shape_or_dtype_are_refused(running, bad, message):
    sf, still_a = running
    with pytest.raises(SemifreddoError, match=message):
        sf.run(bad)
    still_a()


def test_read_back_mismatch_commits_nothing(running):
    sf, still_a = running
    sf.device.corrupt_bank_write(word=7, xor_mask=1 << 4)
    with pytest.raises(ReadBackError, match=r"read-back mismatch at word 7 .* nothing was committed"):
        sf.switch(TASK_B)
    still_a()
    sf.switch(TASK_B)                       # the fault was one write: the next switch goes through
    assert sf.active_task == TASK_B


def test_switch_while_a_run_is_in_flight_is_refused_and_the_run_is_whole(running, board, tmp_path):
    """A run holds the board; a switch from another driver (another process would do the same)
    fails at once, the run's every output comes from task A, and a switch that waits lands after."""
    sf, still_a = running
    _, x, expected = board
    in_flight, proceed = threading.Event(), threading.Event()

    def hold():                              # the emulated IP, mid-run, waits for the test
        in_flight.set()
        assert proceed.wait(60)
    sf.device.on_start = hold
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("y", sf.run(x, batch=4)))
    runner.start()
    assert in_flight.wait(60)
    other = Semifreddo(sf.bundle, device=EmulatedDevice(tmp_path / "pl"))
    with pytest.raises(BoardBusy, match=f"a run is in flight .* the switch to {TASK_B} was not made"):
        other.switch(TASK_B)
    waiting = threading.Thread(target=lambda: result.setdefault("switch", other.switch(TASK_B, wait=60)))
    waiting.start()
    proceed.set()
    runner.join(60)
    waiting.join(60)
    sf.device.on_start = None
    np.testing.assert_array_equal(result["y"], expected[TASK_A])     # never a torn run
    assert sf.last_run.task == TASK_A and result["switch"].task == TASK_B
    np.testing.assert_array_equal(sf.run(x), expected[TASK_B])


def test_a_script_switches_tasks_while_images_keep_flowing(running, board):
    """The documented pattern: a streaming loop and a switch between two runs. Every batch comes
    wholly from one task, and the report of each run says which."""
    sf, _ = running
    _, x, expected = board
    seen = []
    for i in range(4):
        if i == 2:
            sf.switch(TASK_B)
        y = sf.run(x[i * 3:(i + 1) * 3])
        seen.append(sf.last_run.task)
        np.testing.assert_array_equal(y, expected[sf.last_run.task][i * 3:(i + 1) * 3])
    assert seen == [TASK_A, TASK_A, TASK_B, TASK_B]


def test_command_line_errors_are_one_line_and_keep_the_task(running, board, tmp_path, converted_build):
    sf, still_a = running
    bundle, x, _ = board
    state = str(sf.device.state_dir)
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.spec import load_spec

    np.save(tmp_path / "wrong.npy", np.zeros((2, 8, 8, 2)))
    shutil.copyfile(sf.tasks[TASK_B], tmp_path / "cut.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:200])
    foreign = BuildPaths.for_spec(load_spec("pixels"), converted_build("pixels")).weightset("edges")
    cases = [
        (["reload", bundle, "--weights", foreign], "made for frozen core"),
        (["reload", bundle, "--weights", tmp_path / "cut.npz"], "truncated"),
        (["reload", bundle, "--task", "nope"], "no task 'nope'"),
        (["run", bundle, "--input", tmp_path / "wrong.npy", "--output", tmp_path / "y.npy"], "images have shape"),
        (["run", bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", "--repeat", "7"],
         "repeat 7 is outside"),
    ]
    np.save(tmp_path / "x.npy", x)
    for args, message in cases:
        proc = run_cli(*args, "--state", state, "--emulated")
        assert proc.returncode == 2 and message in one_error_line(proc), (args, proc.stderr)
    assert not (tmp_path / "y.npy").exists()
    still_a(Semifreddo(bundle, device=EmulatedDevice(state)))
