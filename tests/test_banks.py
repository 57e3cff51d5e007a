"""Weight banks (hardware.banks): several tasks resident in the IP, each frame naming its bank.

The spec here matches no shipped one: digits with three banks, the last block repeated 1..3 times,
an adder-graph frozen core of fixed-point weights. Its three tasks (the source task and two
targets) are loaded into the three banks, and a stream whose frames alternate between them must
give, frame for frame, what the QKeras model gives for that frame's task, at every repeat count:
in the C simulation and on the emulated board.
"""

import threading

import numpy as np
import pytest
import yaml

from conftest import SPECS, TINY, one_error_line, run_cli
from test_deploy_helpers import package_emulated

pytestmark = [pytest.mark.train, pytest.mark.compile]


@pytest.fixture(scope="module")
def banks3(tmp_path_factory):
    """The three-bank spec, trained tiny and converted; (spec, build, tasks, inputs, expected) with
    expected[(task, repeat)] the QKeras outputs for the inputs."""
    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.hls_project.check import held_out_inputs
    from semifreddo.hls_project.convert import convert
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.spec import load_spec
    from semifreddo.models.training import load_reference_model, predict, train_core, train_task

    root = tmp_path_factory.mktemp("banks3")
    data = yaml.safe_load((SPECS / "digits.yaml").read_text())
    data["name"] = "banks3"
    data["repeat"] = {"min": 1, "max": 3, "default": 1}
    data["hardware"]["banks"] = 3
    (root / "banks3.yaml").write_text(yaml.safe_dump(data))
    spec = load_spec(str(root / "banks3.yaml"))
    build = root / "build"
    train_core(spec, build, **TINY)
    for target in spec.data.targets:
        train_task(spec, target.task, build, **TINY)
    convert(spec, build)
    tasks = list(spec.task_names)
    x = held_out_inputs(spec, tasks[0], 18, build)
    expected = {}
    for task in tasks:
        model = load_reference_model(spec, build, read_weight_set(BuildPaths.for_spec(spec, build).weightset(task)))
        for repeat in range(1, 4):
            set_repeat(model, spec, repeat)
            expected[task, repeat] = predict(model, grid_values(x, spec.input_bits))
    return spec, build, tasks, x, expected


def test_three_banks_interleaved_frame_by_frame_are_bit_exact_in_c_simulation(banks3):
    from semifreddo.hls_project.csim import CSim
    from semifreddo.models.artifacts import BuildPaths

    spec, build, tasks, x, expected = banks3
    paths = BuildPaths.for_spec(spec, build)
    sim = CSim(paths.hls)
    assert sim.regmap.banks == 3 and sim._ip.banks == 3
    for bank, task in enumerate(tasks):
        sim.load(bank, paths.weightset(task))
    frame_banks = np.arange(len(x)) % 3                 # every frame on another bank than the one before
    for repeat in range(1, 4):
        outputs = sim.run_banks(x, frame_banks, repeat)
        for bank, task in enumerate(tasks):
            mine = frame_banks == bank
            np.testing.assert_array_equal(outputs[mine], expected[task, repeat][mine], err_msg=f"{task} r{repeat}")
            # Not vacuous: the other tasks compute something else for these frames.
            other = tasks[(bank + 1) % 3]
            assert np.any(outputs[mine] != expected[other, repeat][mine])
    # A frame naming a bank with no weight set is flagged by the IP and refused.
    from semifreddo.deploy.contract.errors import SemifreddoError

    sim._ip.power_on()
    sim.load(0, paths.weightset(tasks[0]))
    with pytest.raises(SemifreddoError, match=r"1 frame\(s\) named a bank with no weight set"):
        sim.run_banks(x[:2], [0, 2])
    # The generated IP: every bank in flip-flops, the selection in front of the multipliers only.
    top = (paths.hls / "firmware" / "semifreddo_top.cpp").read_text()
    assert "static weight5_t w5_banks[3][27];" in top and "w5[i] = w5_banks[sel][i];" in top
    assert "_banks" not in "".join(line for line in (paths.hls / "firmware" / "parameters.h").read_text().splitlines())


def test_a_start_spread_over_cores_is_the_one_start_it_replaces(banks3, monkeypatch):
    """SimulatedIP.start_spread (the emulated board's starts): the frames shared between this library
    and private copies of it give the outputs and status registers of one start, with a commit into
    a bank in that start, frames on every bank, and frames flagged; the copies hold this library's
    banks, whatever they held before."""
    from semifreddo.deploy.contract import simulated_ip
    from semifreddo.deploy.contract.streams import input_codes, output_values, pack_pixels, tag_banks
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.hls_project.csim import CSim
    from semifreddo.models.artifacts import BuildPaths

    spec, build, tasks, x, expected = banks3
    paths = BuildPaths.for_spec(spec, build)
    sim = CSim(paths.hls)
    ip = sim._ip
    words = [read_weight_set(paths.weightset(task)).words for task in tasks]
    frame_banks = np.arange(len(x)) % 3
    beats = tag_banks(pack_pixels(input_codes(x, sim.io), sim.io), frame_banks, 3, sim.io)
    empty = np.zeros(0, dtype=np.uint32)
    monkeypatch.setattr(simulated_ip, "MIN_BEATS_PER_WORKER", 1)     # spread even these few frames
    shares = []
    copies = ip.copies
    monkeypatch.setattr(ip, "copies", lambda count: shares.append(count) or copies(count))

    def from_banks_0_and_1(start, commit_bank_2):
        ip.power_on()
        ip.start(words[0], 11, 2, 0, empty, load_bank=0)
        ip.start(words[1], 12, 2, 0, empty, load_bank=1)
        return start(words[2], 13 if commit_bank_2 else 0, 2, len(x), beats, load_bank=2)

    for commit in (True, False):
        one_out, one_status = from_banks_0_and_1(ip.start, commit)
        for workers in (2, 3):
            out, status = from_banks_0_and_1(lambda *a, **k: ip.start_spread(*a, workers=workers, **k), commit)
            np.testing.assert_array_equal(out, one_out)
            assert status == one_status
        assert shares[-2:] == [1, 2]
        assert one_status["unready_frames"] == (0 if commit else 6)
    values = output_values(out, len(x), sim.io)
    for bank, task in enumerate(tasks[:2]):
        np.testing.assert_array_equal(values[frame_banks == bank], expected[task, 2][frame_banks == bank])


@pytest.fixture(scope="module")
def board3(banks3, tmp_path_factory):
    spec, build, *_ = banks3
    return package_emulated(build, tmp_path_factory.mktemp("bundle3"), spec)


def test_three_tasks_interleaved_on_the_emulated_board_are_bit_exact_and_kept_across_processes(banks3, board3,
                                                                                              tmp_path):
    from semifreddo.deploy.runtime.driver import Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice

    spec, build, tasks, x, expected = banks3
    sf = Semifreddo(board3, device=EmulatedDevice(tmp_path / "pl"))
    assert sf.n_banks == 3
    reports = [sf.load(task) for task in tasks]
    assert [r.bank for r in reports] == [0, 1, 2]
    assert sf.load(tasks[1]).bytes_moved == 0            # already resident: nothing written
    for repeat in range(1, 4):
        sf.repeat = repeat
        moved = sf.device.stream_bytes
        writes = sf.device.axi_lite_writes
        outputs = sf.run({task: x for task in tasks}, batch=8)
        for task in tasks:
            np.testing.assert_array_equal(outputs[task], expected[task, repeat], err_msg=f"{task} r{repeat}")
        # One stream, no reload: no shadow-bank word written between the frames.
        assert sf.device.axi_lite_writes - writes < sf.regmap.n_words
        assert sf.device.stream_bytes > moved
    # Another process sees the same banks: status lists every bank's task, sequence and checksum,
    # and a run there on one task's bank is that task's.
    state = tmp_path / "pl"
    proc = run_cli("status", board3, "--emulated", "--state", state)
    assert proc.returncode == 0, proc.stderr
    for bank, (task, report) in enumerate(zip(tasks, reports)):
        assert f"bank {bank}" in proc.stdout and task in proc.stdout and f"sequence {report.seq} " in proc.stdout
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", board3, "--emulated", "--state", state, "--task", tasks[2], "--input", tmp_path / "x.npy",
                   "--output", tmp_path / "y.npy", "--repeat", "2")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected[tasks[2], 2])


def test_a_load_into_one_bank_while_another_bank_streams_changes_no_frame_of_the_run(banks3, board3, tmp_path):
    from semifreddo.deploy.runtime.driver import Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice

    spec, build, tasks, x, expected = banks3
    sf = Semifreddo(board3, device=EmulatedDevice(tmp_path / "pl"))
    sf.repeat = 1
    sf.load(tasks[0], bank=0)
    other = Semifreddo(board3, device=EmulatedDevice(tmp_path / "pl"))
    starts, loaded, seen = [], threading.Event(), []

    def during_start():                       # the emulated IP, mid-run
        starts.append(len(starts))
        if len(starts) == 1:
            threading.Thread(target=lambda: (other.load(tasks[1], bank=1), loaded.set())).start()
        else:
            loaded.wait(0.5)                  # give the load the time it takes; the run goes on either way
        seen.append(loaded.is_set())
    sf.device.on_start = during_start
    stream = np.concatenate([x] * 3)
    y = sf.run(stream, task=tasks[0], batch=6)
    sf.device.on_start = None
    assert loaded.is_set() and seen.index(True) < len(seen) - 1, seen   # it landed between two starts of the run
    np.testing.assert_array_equal(y, np.concatenate([expected[tasks[0], 1]] * 3))   # no frame changed
    mixed = sf.run({tasks[0]: x, tasks[1]: x})
    np.testing.assert_array_equal(mixed[tasks[1]], expected[tasks[1], 1])


def test_a_refused_weight_set_for_one_bank_leaves_every_other_bank_serving(banks3, board3, tmp_path, converted_build):
    from semifreddo.deploy.contract.errors import SemifreddoError, WeightSetError
    from semifreddo.deploy.runtime.driver import ReadBackError, Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice

    spec, build, tasks, x, expected = banks3
    sf = Semifreddo(board3, device=EmulatedDevice(tmp_path / "pl"))
    sf.repeat = 1
    sf.load(tasks[0], bank=0)
    sf.load(tasks[1], bank=1)

    def all_serving():
        out = sf.run({tasks[0]: x, tasks[1]: x})
        for task in tasks[:2]:
            np.testing.assert_array_equal(out[task], expected[task, 1])
    # Tampered: one flipped byte in a weight set's codes.
    tampered = tmp_path / "tampered.npz"
    raw = bytearray(sf.tasks[tasks[2]].read_bytes())
    raw[len(raw) // 2] ^= 0x40
    tampered.write_bytes(bytes(raw))
    with pytest.raises(WeightSetError):
        sf.load(tampered, bank=2)
    all_serving()
    # Mismatched: digits' own weight set (another core and register map).
    digits_ws = converted_build("digits") / "digits" / "weightsets" / "parity.npz"
    with pytest.raises(WeightSetError, match="made for"):
        sf.load(digits_ws, bank=1)
    all_serving()
    # Corrupted on the bus: the read-back catches it; bank 2 stays empty, the others serve.
    sf.device.corrupt_bank_write(word=3, xor_mask=1 << 2)
    with pytest.raises(ReadBackError, match="nothing was committed"):
        sf.load(tasks[2], bank=2)
    all_serving()
    with pytest.raises(SemifreddoError, match=f"task '{tasks[2]}' is in no bank"):
        sf.run(x, task=tasks[2])
    with pytest.raises(SemifreddoError, match="bank 5 does not exist"):
        sf.load(tasks[2], bank=5)
    # The command line says the same in one line each, and the banks keep serving.
    state = tmp_path / "pl"
    for args, message in (((("--task", tasks[2], "--bank", "3")), "bank 3 does not exist"),
                          ((("--weights", tampered, "--bank", "2")), "")):
        proc = run_cli("load", board3, "--emulated", "--state", state, *args)
        assert proc.returncode != 0 and message in one_error_line(proc)
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", board3, "--emulated", "--state", state, "--task", tasks[2], "--input", tmp_path / "x.npy",
                   "--output", tmp_path / "y.npy")
    assert proc.returncode != 0 and "is in no bank" in one_error_line(proc)
    all_serving()


def test_banks_in_the_spec_are_checked_and_one_bank_is_todays_ip(tmp_path):
    from semifreddo.deploy.contract.errors import SpecError
    from semifreddo.models.layout import register_map
    from semifreddo.models.spec import load_spec

    data = yaml.safe_load((SPECS / "digits.yaml").read_text())
    for bad in (0, 9, "two"):
        data["hardware"]["banks"] = bad
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
        with pytest.raises(SpecError, match="hardware.banks"):
            load_spec(str(tmp_path / "bad.yaml"))
    digits = load_spec("digits")
    one = register_map(digits)
    assert digits.hardware.banks == 1 and one.banks == 1
    assert "load_bank" not in one.control and "ready_banks" not in one.control
    three = register_map(digits.replace(banks=3))
    assert three.control["load_bank"] == 0x28 and three.bank_bits == 2 and three.banks == 3
    # The words of a weight set do not depend on the bank count: it loads into either IP.
    assert three.id == one.id and [f.word_offset for f in three.fields] == [f.word_offset for f in one.fields]


def test_the_notebook_runs_two_tasks_on_alternating_frames_from_their_banks(board3, tmp_path, monkeypatch):
    import json

    from test_deploy_notebook import execute_notebook

    monkeypatch.setenv("SEMIFREDDO_EMULATOR_STATE", str(tmp_path / "pl"))
    monkeypatch.setenv("SEMIFREDDO_BUNDLE", str(board3))
    text, _ = execute_notebook(board3)
    summary = json.loads(text.split("SEMIFREDDO-NOTEBOOK ", 1)[1].splitlines()[0])
    assert summary["alternating"] == {"banks": 3, "frames": 16, "equal": True}
    assert "3 weight banks, both tasks resident: one stream, no reload" in text
