"""Writes that survive a kill (issue 21, part 3), through the real command line.

Each command that writes is started, killed with SIGKILL at seeded random moments, and then:

1. no artifact that existed before is damaged or half-written: every file is byte for byte what
   it was (SHA-256), or, for the artifacts the command rewrites, a complete new version that its
   reader accepts;
2. nothing is left that gets in the way (a stale lock: flock locks die with their holder; a
   staging folder or a temporary: cleaned by the next run, or invisible to the readers);
3. the next run of the same command succeeds;
4. on the emulated board the active task still computes exactly what it did.

Kill moments are seeded fractions (15 % to 100 %) of the command's duration, measured by a run
of the same command in the same test just before (a kill that comes after the command finished
is counted as not landed; each command must take at least one). Figures: the landed kills per
command are printed (``-s``) and asserted.
"""

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, TINY, run_cli

from test_deploy_helpers import SPEC, TASK_A, TASK_B, images, package_emulated, qkeras_outputs

KILLS = 3                  # per command; 2 for the commands that train or convert (each run costs 15 s or more)


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (a missing folder: empty)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def kill_moments(seed: int, seconds: float, kills: int = KILLS) -> list[float]:
    """Seeded moments spread over the command's run, from its start-up to its last writes."""
    rng = random.Random(seed)
    return [rng.uniform(0.15, 1.0) * seconds for _ in range(kills)]


def kill_at(argv, moment: float, env=None) -> bool:
    """Start the command and SIGKILL it ``moment`` seconds later; True if it was still running."""
    proc = subprocess.Popen([sys.executable, "-m", "semifreddo.models.cli", *map(str, argv)], cwd=REPO,
                            env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=moment)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def timed_run(argv, env=None) -> float:
    """Run the command once (it must succeed); how long it took, to place the kills in its run."""
    started = time.monotonic()
    proc = run_cli(*argv, env=env)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - started


def survive(argv, moments, after_each, env=None, name=None) -> int:
    """Kill the command at each moment, call ``after_each()`` after every kill; the next run succeeds."""
    landed = 0
    for moment in moments:
        landed += kill_at(argv, moment, env)
        after_each()
    proc = run_cli(*argv, env=env)
    assert proc.returncode == 0, f"the run after the kills failed: {proc.stderr}"
    after_each()
    print(f"\n{name or argv[0]}: {landed} of {len(moments)} kills landed mid-run, artifacts intact, next run ok")
    assert landed >= 1, "no kill landed while the command ran; the moments are too late for this machine"
    return landed


def same_or_valid(before: dict, after: dict, rewritten: set, valid) -> None:
    """Every file of ``before`` is unchanged, except those in ``rewritten``, which may be a complete
    new version (``valid(name)`` reads it); no new file outside them that a reader would see."""
    for name, digest in before.items():
        assert name in after, f"{name} is gone"
        if after[name] != digest:
            assert name in rewritten, f"{name} changed"
            valid(name)


# --------------------------------------------------------------------------------------------
# the board side: reload, bundle add, package (one emulated bundle, one emulated board)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def board(converted_build, tmp_path_factory):
    build = converted_build(SPEC)
    root = tmp_path_factory.mktemp("kill-board")
    bundle = package_emulated(build, root)
    x = images()
    expected = {task: qkeras_outputs(build, task, x) for task in (TASK_A, TASK_B)}
    return root, bundle, x, expected


def computed_task(bundle, x, expected, env, tmp_path) -> str:
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", env=env)
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    which = [task for task, e in expected.items() if np.array_equal(y, e)]
    assert len(which) == 1, "the board computes neither task exactly"
    return which[0]


def test_reload_killed(board, tmp_path):
    _, bundle, x, expected = board
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    seconds = timed_run(["reload", bundle, "--task", TASK_A], env)
    files = tree_hashes(bundle)

    def after_each():
        assert tree_hashes(bundle) == files
        task = computed_task(bundle, x, expected, env, tmp_path)       # A, or B if the commit landed
        status = run_cli("status", bundle, env=env)
        assert status.returncode == 0, status.stderr
        named = status.stdout.split("active task")[1].split()[0]
        assert named in (task, "unknown"), f"status names {named} but the board computes {task}"
    survive(["reload", bundle, "--task", TASK_B], kill_moments(1, seconds), after_each, env, "reload")
    assert computed_task(bundle, x, expected, env, tmp_path) == TASK_B


def test_bundle_add_killed(board, tmp_path):
    from semifreddo.board_scripts.bundle import verify_bundle
    from semifreddo.deploy.contract.weightset import read_weight_set

    _, bundle, x, expected = board
    bundle_copy = tmp_path / "bundle"
    shutil.copytree(bundle, bundle_copy)
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    assert run_cli("reload", bundle_copy, "--task", TASK_A, env=env).returncode == 0
    weights = bundle / "weightsets" / f"{TASK_B}.npz"
    argv = ["bundle", "add", bundle_copy, weights, "--task", "extra", "--replace"]
    seconds = timed_run(argv)                     # task extra is there; the killed runs replace it
    files = tree_hashes(bundle_copy)
    added = "weightsets/extra.npz"                # and its held-out samples, found beside the weight set

    def valid(name):
        assert name == "manifest.json"
        manifest = verify_bundle(bundle_copy)                    # the new manifest lists complete files only
        read_weight_set(bundle_copy / manifest["tasks"]["extra"])

    def after_each():
        now = tree_hashes(bundle_copy)
        same_or_valid(files, now, {"manifest.json"}, valid)
        extra = set(now) - set(files) - {added, "samples/extra.npz"}
        assert all(Path(name).name.startswith(".") and name.endswith(".tmp") for name in extra), extra
        assert computed_task(bundle_copy, x, expected, env, tmp_path) == TASK_A
    survive(argv, kill_moments(2, seconds), after_each, env, "bundle add")
    manifest = verify_bundle(bundle_copy)
    assert manifest["tasks"]["extra"] == added and not [p for p in bundle_copy.rglob("*.tmp")]


def test_package_killed(board, tmp_path):
    from semifreddo.board_scripts.bundle import verify_bundle

    root, bundle, x, expected = board
    build = tmp_path / "build"
    shutil.copytree(root, build)
    bundle_copy = build / SPEC / bundle.name
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    argv = ["package", SPEC, "--board", "emulated", "--build", build]
    seconds = timed_run(argv)
    assert run_cli("reload", bundle_copy, "--task", TASK_A, env=env).returncode == 0
    inputs = {k: v for k, v in tree_hashes(build / SPEC).items() if not k.startswith(bundle.name + "/")}
    tasks = set(verify_bundle(bundle_copy)["tasks"])

    def after_each():
        now = tree_hashes(build / SPEC)
        assert {k: v for k, v in now.items() if k in inputs} == inputs              # what package reads
        assert set(verify_bundle(bundle_copy)["tasks"]) == tasks                   # old or new, complete
        assert computed_task(bundle_copy, x, expected, env, tmp_path) == TASK_A
    survive(argv, kill_moments(3, seconds), after_each, env, "package")
    assert not (bundle_copy.parent / (bundle_copy.name + ".partial")).exists()


# --------------------------------------------------------------------------------------------
# the host side: train-task, train-core, convert
# --------------------------------------------------------------------------------------------

def valid_weight_set(build):
    from semifreddo.deploy.contract.weightset import read_weight_set

    def check(name):
        assert name.startswith("weightsets/"), name
        read_weight_set(build / SPEC / name)
    return check


def test_train_task_killed(fresh_build):
    build = fresh_build(SPEC)
    argv = ["train-task", SPEC, "--task", TASK_B, "--build", build, "--epochs", TINY["epochs"], "--subset",
            TINY["subset"], "--no-progress"]
    seconds = timed_run(argv)
    before = tree_hashes(build / SPEC)
    target = f"weightsets/{TASK_B}.npz"

    def after_each():
        now = tree_hashes(build / SPEC)
        same_or_valid(before, now, {target}, valid_weight_set(build))
        assert not [n for n in set(now) - set(before) if not n.endswith(".tmp")], set(now) - set(before)
    survive(argv, kill_moments(4, seconds, kills=2), after_each, name="train-task")


def test_train_core_killed(fresh_build):
    from semifreddo.models.artifacts import load_core
    from semifreddo.models.spec import load_spec

    build = fresh_build(SPEC)
    argv = ["train-core", SPEC, "--build", build, "--epochs", TINY["epochs"], "--subset", TINY["subset"],
            "--no-progress"]
    seconds = timed_run(argv)
    before = tree_hashes(build / SPEC)
    spec = load_spec(SPEC)
    weights = valid_weight_set(build)

    def valid(name):
        if name == "core.npz":
            load_core(build / SPEC / name, spec)
        else:
            weights(name)

    def after_each():
        now = tree_hashes(build / SPEC)
        same_or_valid(before, now, {"core.npz", f"weightsets/{spec.data.source}.npz"}, valid)
    survive(argv, kill_moments(5, seconds, kills=2), after_each, name="train-core")


def test_convert_killed(converted_build, tmp_path):
    from semifreddo.deploy.contract.regmap import load_register_map
    from semifreddo.hls_project.project import read_manifest

    build = tmp_path / "build"
    shutil.copytree(converted_build(SPEC) / SPEC, build / SPEC)
    hls = build / SPEC / "hls"
    argv = ["convert", SPEC, "--build", build, "--no-compile"]
    seconds = timed_run(argv)
    before = tree_hashes(hls)

    def after_each():
        now = tree_hashes(hls)
        if now != before:                          # then a complete new project
            read_manifest(hls)
            load_register_map(hls / "regmap.json")
        assert tree_hashes(build / SPEC / "weightsets") and (build / SPEC / "core.npz").exists()
    survive(argv, kill_moments(6, seconds, kills=2), after_each, name="convert --no-compile")


# --------------------------------------------------------------------------------------------
# deploy --weights against a real sshd on 127.0.0.1
# --------------------------------------------------------------------------------------------

from test_board_deploy import bundle as board_bundle, sshd  # noqa: E402,F401  (fixtures)


def test_deploy_weights_killed(sshd, board_bundle, tmp_path):
    from test_board_helpers import register_map, write_weightsets

    overlay = tmp_path / "board" / "overlays" / "semifreddo_digits"
    remote = ["--host", f"{sshd['user']}@127.0.0.1", "--port", sshd["port"], "--overlay-dir", overlay,
              f"--ssh-args={sshd['ssh_args']}"]
    proc = run_cli("deploy", board_bundle, *remote, "--notebook-dir", tmp_path / "board" / "notebooks")
    assert proc.returncode == 0, proc.stderr
    other, mine = write_weightsets(tmp_path, register_map(), tasks=("other", "mine"))
    assert run_cli("bundle", "add", board_bundle, other).returncode == 0
    seconds = timed_run(["deploy", board_bundle, "--weights", "other", *remote])
    assert run_cli("bundle", "add", board_bundle, mine).returncode == 0
    installed = tree_hashes(overlay)
    bundle_files = tree_hashes(board_bundle)
    new = {"manifest.json", "weightsets/mine.npz"}

    def after_each():
        now = tree_hashes(overlay)
        for name, digest in now.items():
            if name in new:                                  # the old version, or the bundle's complete new one
                assert digest in (installed.get(name), bundle_files[name]), name
            elif name.endswith(".incoming"):                 # an upload not yet moved in: no reader looks at it
                continue
            else:
                assert digest == installed[name], f"{name} changed on the board"
        assert set(installed) <= set(now), "a file on the board is gone"
    survive(["deploy", board_bundle, "--weights", "mine", *remote], kill_moments(7, seconds), after_each,
            name="deploy --weights")
    assert tree_hashes(overlay) == {**installed, **{n: bundle_files[n] for n in new}}     # nothing .incoming left
