"""The deploy bundle: layout, manifest checksums, and what `package` refuses.

The bitstream and .hwh come from the stand-in tools (see test_board_flow.py); checksums are
recomputed here with hashlib, independently of the code under test.
"""

import hashlib
import json
import shutil

import pytest

from conftest import REPO, one_error_line, run_cli
from semifreddo.board_scripts import bundle as bundle_module
from semifreddo.deploy.contract.boards import get_board
from semifreddo.board_scripts.bundle import build_bundle, verify_bundle
from semifreddo.board_scripts.layout import BoardBuild
from semifreddo.deploy.contract.interface import IP_VLNV
from semifreddo.deploy.contract.errors import SemifreddoError

from test_board_helpers import (OTHER_CORE_ID, SPEC, install_fake_tools, make_hls_project, register_map, tool_env,
                                write_weightsets)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(folder):
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def built(tmp_path):
    """A build folder with synth and bitstream done for pynq-z2 (stand-in tools)."""
    build = tmp_path / "build"
    make_hls_project(build)
    env = tool_env(install_fake_tools(tmp_path))
    for step in ("synth", "bitstream"):
        proc = run_cli(step, SPEC, "--board", "pynq-z2", "--build", build, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return build


@pytest.mark.solve
def test_board_bundle_layout_and_checksums(built):
    proc = run_cli("package", SPEC, "--board", "pynq-z2", "--build", built)
    assert proc.returncode == 0, proc.stderr
    bundle = built / SPEC / "bundle-pynq-z2"
    manifest = json.loads((bundle / "manifest.json").read_text())

    driver = {f"semifreddo/deploy/{p.relative_to(REPO / 'deploy').as_posix()}" for p in (REPO / "deploy").rglob("*.py")}
    notebooks = {f"notebooks/{p.name}" for p in (REPO / "deploy" / "runtime" / "notebooks").glob("*.ipynb")}
    weightsets = {f"weightsets/{p.name}" for p in (built / SPEC / "weightsets").glob("*.npz")}
    samples = {name.replace("weightsets/", "samples/") for name in weightsets}   # held-out images per task
    assert files_under(bundle) == {"manifest.json", "regmap.json", "semifreddo_digits.bit", "semifreddo_digits.hwh",
                                   *weightsets, *driver, *notebooks, *samples}
    assert len(weightsets) == 2 and "semifreddo/deploy/contract/regmap.py" in driver
    # every file but the manifest is listed, with its SHA-256
    assert manifest["files"] == {name: sha256(bundle / name) for name in files_under(bundle) - {"manifest.json"}}
    vivado = built / SPEC / "synth" / "pynq-z2" / "vivado"
    assert sha256(bundle / "semifreddo_digits.bit") == sha256(vivado / "semifreddo_digits.bit")
    assert (bundle / "regmap.json").read_bytes() == (built / SPEC / "synth" / "pynq-z2" / "hls" / "regmap.json").read_bytes()
    for name in driver:
        assert (bundle / name).read_bytes() == (REPO / name.removeprefix("semifreddo/")).read_bytes()
    assert (manifest["board"], manifest["emulated"], manifest["bitstream"], manifest["hwh"]) == \
        ("pynq-z2", False, "semifreddo_digits.bit", "semifreddo_digits.hwh")
    assert manifest["tasks"] == {"digits_5_9": "weightsets/digits_5_9.npz", "parity": "weightsets/parity.npz"}
    assert manifest["regmap_id"] == register_map().id
    assert verify_bundle(bundle) == manifest
    assert not (built / SPEC / "bundle-pynq-z2.partial").exists()


def test_emulated_bundle_has_no_bitstream(tmp_path):
    build = tmp_path / "build"
    make_hls_project(build)
    proc = run_cli("package", SPEC, "--board", "emulated", "--build", build)
    assert proc.returncode == 0, proc.stderr
    bundle = build / SPEC / "bundle-emulated"
    manifest = verify_bundle(bundle)
    assert manifest["emulated"] is True and manifest["bitstream"] is None and manifest["hwh"] is None
    assert "emulated board" in manifest["note"]
    assert not [p for p in bundle.iterdir() if p.suffix in (".bit", ".hwh")]
    assert (bundle / "regmap.json").read_bytes() == (build / SPEC / "hls" / "regmap.json").read_bytes()


def test_notebooks_and_driver_are_copied_from_the_deploy_folder(tmp_path, monkeypatch):
    build = tmp_path / "build"
    make_hls_project(build)
    driver = tmp_path / "deploy"
    (driver / "runtime" / "notebooks").mkdir(parents=True)
    (driver / "board.py").write_text("print('driver')\n")
    (driver / "runtime" / "run.py").write_text("print('runtime')\n")
    (driver / "runtime" / "notebooks" / "semifreddo.ipynb").write_text('{"cells": []}\n')
    (driver / "runtime" / "notebooks" / "scratch.txt").write_text("not a notebook\n")
    monkeypatch.setattr(bundle_module, "deploy_source", lambda: driver)
    manifest = build_bundle(BoardBuild.of(build, SPEC, "emulated"), get_board("emulated"))
    bundle = build / SPEC / "bundle-emulated"
    assert (bundle / "semifreddo/deploy/board.py").read_text() == "print('driver')\n"
    assert (bundle / "semifreddo/deploy/runtime/run.py").read_text() == "print('runtime')\n"
    assert manifest["notebooks"] == ["notebooks/semifreddo.ipynb"]
    assert not (bundle / "notebooks" / "scratch.txt").exists()


def test_verify_catches_changed_missing_and_extra_files(tmp_path):
    build = tmp_path / "build"
    make_hls_project(build)
    assert run_cli("package", SPEC, "--board", "emulated", "--build", build).returncode == 0
    bundle = build / SPEC / "bundle-emulated"
    for damage, message in [(lambda b: (b / "weightsets" / "parity.npz").write_bytes(b"x"), "checksum differs for weightsets/parity.npz"),
                            (lambda b: (b / "regmap.json").unlink(), "missing regmap.json"),
                            (lambda b: (b / "stray.txt").write_text("?"), "not in the manifest stray.txt")]:
        copy = tmp_path / "copy"
        shutil.copytree(bundle, copy)
        damage(copy)
        with pytest.raises(SemifreddoError, match=message):
            verify_bundle(copy)
        shutil.rmtree(copy)


@pytest.mark.solve
def test_weight_set_for_another_core_is_refused_and_the_old_bundle_kept(built):
    assert run_cli("package", SPEC, "--board", "pynq-z2", "--build", built).returncode == 0
    bundle = built / SPEC / "bundle-pynq-z2"
    before = (bundle / "manifest.json").read_bytes()
    write_weightsets(built / SPEC / "weightsets", register_map(), core_id=OTHER_CORE_ID, tasks=("stray",))
    proc = run_cli("package", SPEC, "--board", "pynq-z2", "--build", built)
    assert proc.returncode == 2
    assert "stray.npz" in one_error_line(proc) and OTHER_CORE_ID in one_error_line(proc)
    assert (bundle / "manifest.json").read_bytes() == before
    assert not (built / SPEC / "bundle-pynq-z2.partial").exists()


@pytest.mark.solve
def test_hwh_that_does_not_match_the_board_or_ip_is_refused(built):
    hwh = built / SPEC / "synth" / "pynq-z2" / "vivado" / "semifreddo_digits.hwh"
    good = hwh.read_text()
    hwh.write_text(good.replace('MODTYPE="processing_system7"', 'MODTYPE="zynq_ultra_ps_e"'))
    proc = run_cli("package", SPEC, "--board", "pynq-z2", "--build", built)
    assert proc.returncode == 2 and "has no processing_system7" in one_error_line(proc)
    hwh.write_text(good.replace(IP_VLNV, IP_VLNV.replace(":1.0", ":2.0")))
    proc = run_cli("package", SPEC, "--board", "pynq-z2", "--build", built)
    assert proc.returncode == 2 and f"expected IP semifreddo_0 of type {IP_VLNV}" in one_error_line(proc)


@pytest.mark.solve
def test_bitstream_older_than_the_ip_is_refused(built, tmp_path):
    make_hls_project(built, core_id=OTHER_CORE_ID)          # a new core: re-convert, re-synthesize
    env = tool_env(install_fake_tools(tmp_path))
    assert run_cli("synth", SPEC, "--board", "pynq-z2", "--build", built, env=env).returncode == 0
    proc = run_cli("package", SPEC, "--board", "pynq-z2", "--build", built)
    assert proc.returncode == 2 and "was built from an older IP" in one_error_line(proc)


def test_package_for_a_board_without_bitstream_says_what_to_run(tmp_path):
    build = tmp_path / "build"
    make_hls_project(build)
    proc = run_cli("package", SPEC, "--board", "zcu104", "--build", build)
    assert proc.returncode == 2
    assert "run `semifreddo bitstream digits --board zcu104` first" in one_error_line(proc)
    assert not (build / SPEC / "bundle-zcu104").exists()
