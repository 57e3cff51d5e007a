"""Two processes at once on one emulated board (issue 21, part 4), through the real command line.

Two `reload`s of different tasks started together, and a `reload` during a long `run`: they
serialize (flock locks), every `run` computes all its outputs with exactly one task's weights, and
`status` names the task that won, which is the task the board then computes.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, one_error_line, run_cli

from test_deploy_helpers import TASK_A, TASK_B, images, package_emulated, qkeras_outputs

ROUNDS = 3                 # rounds of two reloads started together
LONG = 100                 # a long run: the held-out images this many times, 4 per DMA batch (it must outlast
                           # the start-up of a `reload` process; 20 did not once the C simulation got 5x faster)


def start(*args, env):
    return subprocess.Popen([sys.executable, "-m", "semifreddo.models.cli", *map(str, args)], cwd=REPO,
                            env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def board(converted_build, tmp_path_factory):
    build = converted_build("digits")
    bundle = package_emulated(build, tmp_path_factory.mktemp("emulated"))
    x = images()
    expected = {task: qkeras_outputs(build, task, x) for task in (TASK_A, TASK_B)}
    assert all((expected[TASK_A] != expected[TASK_B]).any(axis=1)), "every image must tell the tasks apart"
    return bundle, x, expected


def active_task(bundle, env) -> tuple[str, int]:
    proc = run_cli("status", bundle, env=env)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("active task"))
    task, seq = line.split()[2], int(line.split("sequence ")[1].rstrip(")"))
    return task, seq


def computes(bundle, x, expected, env, tmp_path) -> str:
    """Run the held-out images; return the one task whose outputs they all are."""
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", env=env)
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    which = {task for task, e in expected.items() if np.array_equal(y, e)}
    assert len(which) == 1, "the outputs are not one task's"
    return which.pop()


def test_two_reloads_at_once_serialize_and_status_names_the_winner(board, tmp_path):
    bundle, x, expected = board
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    assert run_cli("reload", bundle, "--task", TASK_A, env=env).returncode == 0
    _, seq = active_task(bundle, env)
    for _ in range(ROUNDS):
        procs = [start("reload", bundle, "--task", task, env=env) for task in (TASK_B, TASK_A)]
        results = [finish(p) for p in procs]
        assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
        # Both were made, one after the other: two commits, and the later one is the active task.
        committed = sorted((int(out.split("sequence ")[1].split(",")[0]), out.split()[1]) for _, out, _ in results)
        assert [s for s, _ in committed] == [seq + 1, seq + 2]
        winner, seq = active_task(bundle, env)
        assert (winner, seq) == (committed[-1][1], seq) and seq == committed[-1][0]
        assert computes(bundle, x, expected, env, tmp_path) == winner


def test_a_reload_during_a_run_waits_and_the_run_is_one_task(board, tmp_path):
    bundle, x, expected = board
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    assert run_cli("reload", bundle, "--task", TASK_A, env=env).returncode == 0
    long = np.concatenate([x] * LONG)
    np.save(tmp_path / "long.npy", long)
    runner = start("run", bundle, "--input", tmp_path / "long.npy", "--output", tmp_path / "long_y.npy",
                   "--batch", "4", env=env)
    lock = tmp_path / "pl" / "run.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip() == str(runner.pid)):     # the run holds the board
        assert runner.poll() is None and time.monotonic() < deadline, "the run never took the board"
        time.sleep(0.02)
    refused = run_cli("reload", bundle, "--task", TASK_B, env=env)                  # no --wait: refused at once
    reload = start("reload", bundle, "--task", TASK_B, "--wait", "120", env=env)   # waits for the run
    code, out, err = finish(runner)
    assert code == 0 and f"from task {TASK_A}" in out, err
    assert refused.returncode == 2 and "the previous task is still active" in one_error_line(refused)
    code, out, err = finish(reload)
    assert code == 0 and f"task {TASK_B} active" in out, err
    y = np.load(tmp_path / "long_y.npy")
    np.testing.assert_array_equal(y, np.concatenate([expected[TASK_A]] * LONG))    # every output: task A
    assert active_task(bundle, env)[0] == TASK_B
    assert computes(bundle, x, expected, env, tmp_path) == TASK_B
