"""Power-of-two frozen weights (FLightNN, k = 1 and 2) through the whole chain (issue 11, item 2).

A spec the shipped ones do not cover: po2 frozen weights, a kernel size that differs per block and
a repeat range of 1..3 on the reused last block. It trains (tiny), converts with the frozen convs as
adder graphs, and the real `semifreddo check` compares the C simulation with the QKeras model at
every repeat count; then the bundle for the emulated board runs it against QKeras too, at every repeat count.
"""

import os

import pytest
import yaml

from conftest import SPECS, TINY, run_cli

pytestmark = [pytest.mark.train, pytest.mark.compile]   # every test trains and converts a po2 core


@pytest.fixture(scope="module", params=[1, 2], ids=["po2-k1", "po2-k2"])
def po2_build(request, tmp_path_factory):
    from semifreddo.models.spec import load_spec
    from semifreddo.models.training import train_core, train_task

    terms = request.param
    root = tmp_path_factory.mktemp(f"po2-k{terms}")
    data = yaml.safe_load((SPECS / "digits.yaml").read_text())
    data.update(name=f"digits-po2k{terms}", kernel=[3, 5, 3], repeat={"min": 1, "max": 3, "default": 1})
    data["frozen_core"]["weights"] = {"format": "po2", "terms": terms, "min_exponent": -6}
    path = root / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(str(path))
    build = root / "build"
    train_core(spec, build, **TINY)
    for target in spec.data.targets:
        train_task(spec, target.task, build, **TINY)
    return spec, path, build


def test_po2_frozen_core_converts_and_is_bit_exact_at_every_repeat_count(po2_build):
    spec, path, build = po2_build
    proc = run_cli("convert", path, "--build", build)
    assert proc.returncode == 0, proc.stderr
    top = (build / spec.name / "hls" / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    assert top.count("dense_da_wrapper_") == 3          # every frozen conv is an adder graph
    for task in ("digits_0_4", "parity"):
        weights = build / spec.name / "weightsets" / f"{task}.npz"
        proc = run_cli("check", path, "--weights", weights, "--samples", 60, "--build", build)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for repeat in (1, 2, 3):
            assert f"repeat {repeat}: 0 of 300 outputs differ" in proc.stdout, proc.stdout


def test_po2_bundle_runs_bit_exact_on_the_emulated_board(po2_build, tmp_path):
    import subprocess
    import sys

    spec, path, build = po2_build
    assert run_cli("convert", path, "--build", build).returncode == 0
    proc = run_cli("package", path, "--board", "emulated", "--build", build)
    assert proc.returncode == 0, proc.stderr
    bundle = build / spec.name / "bundle-emulated"
    env = dict(os.environ, SEMIFREDDO_EMULATOR_STATE=str(tmp_path / "state"))
    proc = subprocess.run([sys.executable, "-m", "semifreddo.hls_project.board_check", "--spec", str(path),
                           "--build", str(build), "--bundle", str(bundle), "--samples", "40"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for task in ("digits_5_9", "parity"):
        for repeat in (1, 2, 3):
            assert f"{spec.name}/{task} repeat {repeat}: 0 of 200 outputs of the emulated board differ" \
                in proc.stdout, proc.stdout
