"""Bring your own task, end to end: tasks no shipped dataset has (digits with labels of their own, as
an .npz; a class-per-folder set of PNGs) are trained on the demo's core with `train-task --data`,
added to the emulated bundle with `bundle add`, switched to with `reload` and run with `run`, all
through the real command line; the board's outputs are bit-exact with the QKeras model's."""

import json

import numpy as np

from conftest import one_error_line, run_cli
from semifreddo.deploy.runtime.driver import Semifreddo
from semifreddo.deploy.runtime.emulator import EmulatedDevice

from test_deploy_helpers import SPEC, package_emulated
from test_userdata import digits_images_and_labels, snapshot, write_png_classes


def qkeras(build, weights, x):
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.models.spec import load_spec
    from semifreddo.models.training import load_reference_model, predict

    return predict(load_reference_model(load_spec(SPEC), build, read_weight_set(weights)), x)


def test_new_tasks_from_user_data_join_the_bundle_and_run_bit_exact(converted_build, tmp_path):
    build = tmp_path / "build"
    bundle = package_emulated(converted_build(SPEC), build)
    weightsets = build / SPEC / "weightsets"
    images, digit = digits_images_and_labels()

    # Task 1: "mod3", the digit modulo 3, from an .npz of 8-bit codes (every image: the training is
    # fed batch by batch from the codes).
    np.savez(tmp_path / "mod3.npz", x=images, y=digit % 3)
    proc = run_cli("train-task", SPEC, "--task", "mod3", "--data", tmp_path / "mod3.npz", "--build", build,
                   "--epochs", "1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "1347 for training, 450 held out (seeded stratified 25 % split)" in proc.stdout
    assert "task mod3: accuracy" in proc.stdout
    # Task 2: low / mid / high digits (0-3, 4-7, 8-9) from a folder of PNGs, one sub-folder per class.
    write_png_classes(tmp_path / "pngs", images[:300], digit[:300] // 4, ["0-low", "1-mid", "2-high"])
    proc = run_cli("train-task", SPEC, "--task", "thirds", "--data", tmp_path / "pngs", "--build", build,
                   "--epochs", "1", "--subset", "64", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "300 images in 3 class folders (0-low, 1-mid, 2-high), resized to 8x8, converted to grey scale" in proc.stdout

    from semifreddo.deploy.contract.weightset import read_weight_set
    manifest = read_weight_set(weightsets / "mod3.npz").manifest
    assert manifest["role"] == "user" and manifest["classes"] == 3 and manifest["kind"] == "classify"
    assert manifest["data"]["source"] == str(tmp_path / "mod3.npz") and manifest["data"]["n_train"] == 1347
    assert len(manifest["data"]["sha256"]) == 64 and manifest["metrics"]["n_test"] == 450

    # The C simulation agrees with QKeras on the new task's own held-out images (no recompile).
    proc = run_cli("check", SPEC, "--weights", weightsets / "mod3.npz", "--build", build, "--samples", "40")
    assert proc.returncode == 0 and "0 of 200 outputs differ" in proc.stdout, proc.stdout + proc.stderr

    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    opened_before = Semifreddo(bundle, device=EmulatedDevice(tmp_path / "pl"))
    before = json.loads((bundle / "manifest.json").read_text())
    proc = run_cli("bundle", "add", bundle, weightsets / "mod3.npz")
    assert proc.returncode == 0, proc.stderr
    assert "task mod3 added" in proc.stdout and "held-out samples -> samples/mod3.npz" in proc.stdout
    proc = run_cli("bundle", "add", bundle, weightsets / "thirds.npz", "--task", "size")    # a name of its own
    assert proc.returncode == 0, proc.stderr
    after = json.loads((bundle / "manifest.json").read_text())
    assert after["tasks"] == {**before["tasks"], "mod3": "weightsets/mod3.npz", "size": "weightsets/size.npz"}
    assert (bundle / "weightsets" / "size.npz").read_bytes() == (weightsets / "thirds.npz").read_bytes()
    assert set(after["samples"]) == set(after["tasks"])
    from semifreddo.board_scripts.bundle import verify_bundle
    assert verify_bundle(bundle) == after

    # A name clash is refused unless --replace, and nothing changes.
    files = snapshot(bundle)
    proc = run_cli("bundle", "add", bundle, weightsets / "thirds.npz", "--task", "mod3")
    assert proc.returncode == 2 and "already has a task 'mod3'; pass --replace" in one_error_line(proc)
    assert snapshot(bundle) == files

    # The board picks up the new tasks at its next opening; the command line is a new process each time.
    assert "mod3" not in opened_before.tasks
    assert {"mod3", "size"} <= set(Semifreddo(bundle, device=EmulatedDevice(tmp_path / "pl")).tasks)
    for task, weights in (("mod3", weightsets / "mod3.npz"), ("size", weightsets / "thirds.npz"), ("parity", None)):
        weights = weights or weightsets / "parity.npz"
        with np.load(bundle / "samples" / f"{task}.npz", allow_pickle=False) as samples:
            codes = samples["x"][:12]                           # samples hold input codes
        assert codes.dtype == np.uint8
        proc = run_cli("reload", bundle, "--task", task, env=env)
        assert proc.returncode == 0 and f"task {task} active" in proc.stdout, proc.stderr
        np.save(tmp_path / "x.npy", codes)
        proc = run_cli("run", bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", env=env)
        assert proc.returncode == 0 and f"from task {task}" in proc.stdout, proc.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), qkeras(build, weights, codes / 256.0))
    proc = run_cli("status", bundle, env=env)
    assert "active task  parity" in proc.stdout and "mod3, size" in proc.stdout

    # --replace swaps the weight set (and drops samples it has none for), checksums rewritten.
    proc = run_cli("bundle", "add", bundle, weightsets / "parity.npz", "--task", "mod3", "--replace")
    assert proc.returncode == 0, proc.stderr
    replaced = verify_bundle(bundle)
    assert (bundle / "weightsets" / "mod3.npz").read_bytes() == (weightsets / "parity.npz").read_bytes()
    assert "mod3" not in replaced["samples"] and not (bundle / "samples" / "mod3.npz").exists()
    assert "no held-out samples for mod3" in proc.stdout


def test_bundle_add_refuses_a_weight_set_for_another_core(converted_build, tmp_path):
    from test_board_helpers import OTHER_CORE_ID, register_map, write_weightsets

    bundle = package_emulated(converted_build(SPEC), tmp_path / "build")
    files = snapshot(bundle)
    (stray,) = write_weightsets(tmp_path, register_map(), core_id=OTHER_CORE_ID, tasks=("stray",))
    proc = run_cli("bundle", "add", bundle, stray)
    assert proc.returncode == 2 and f"made for frozen core {OTHER_CORE_ID}" in one_error_line(proc)
    (bundle / "regmap.json").write_text((bundle / "regmap.json").read_text() + " ")     # a damaged bundle
    proc = run_cli("bundle", "add", bundle, bundle / "weightsets" / "parity.npz", "--task", "again")
    assert proc.returncode == 2 and "checksum differs for regmap.json" in one_error_line(proc)
    del files["regmap.json"]
    assert {k: v for k, v in snapshot(bundle).items() if k != "regmap.json"} == files
