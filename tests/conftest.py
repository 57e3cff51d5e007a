"""Shared test helpers.

Tests run the real tool chain: QKeras models trained on the bundled data, hls4ml output compiled
with g++, and the real command line. Training in tests uses small subsets and few epochs so the
suite stays fast; quality is measured by `make bench-accuracy`, not here.

Markers (registered in pyproject.toml) say what a test does, so `make test-quick` can leave out the
slow kinds with ``-m "not train and not compile and not solve"``:

* ``train``: trains a QKeras model (a tiny core or weight set), itself or through a fixture;
* ``compile``: compiles generated C++ with g++ (the C simulation library or test bench);
* ``solve``: solves da4ml adder graphs for a frozen core, mostly through the command line in a new
  process (TensorFlow's import too): the fit check that `synth` and `bitstream` run first,
  `estimate`, `explore`. 10 to 60 s a test on 2 busy cores.

A test that uses one of the fixtures below gets its markers from the fixture (``FIXTURE_MARKS``);
a test that trains or compiles by itself is marked where it is written.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SEMIFREDDO_PROGRESS", "0")

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "models" / "specs"


def run_cli(*args, cwd=None, env=None, timeout=900):
    """Run the real `semifreddo` command and return the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "semifreddo.models.cli", *map(str, args)], cwd=cwd or REPO,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def one_error_line(proc) -> str:
    """The single error line a failing command must print (and nothing else on stderr)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {proc.stderr!r}"
    assert lines[0].startswith("semifreddo: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def digits_spec():
    from semifreddo.models.spec import load_spec
    return load_spec("digits")


@pytest.fixture(scope="session")
def pixels_spec():
    from semifreddo.models.spec import load_spec
    return load_spec("pixels")


TINY = dict(epochs=1, subset=64, progress=False)

# What each shared fixture does, to whatever test uses it (directly or through another fixture).
FIXTURE_MARKS = {"tiny_build": ("train",), "fresh_build": ("train",), "converted_build": ("train", "compile")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in item.fixturenames:
            for mark in FIXTURE_MARKS.get(fixture, ()):
                item.add_marker(mark)


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """A build folder holding, per spec, a core and every task's weight set trained on tiny subsets.

    Trained once per test session (per xdist worker) and shared read-only; a test that writes
    into a build folder copies it first (see `fresh_build`).
    """
    root = tmp_path_factory.mktemp("tiny-build")
    done = set()

    def get(spec_name: str) -> Path:
        if spec_name not in done:
            from semifreddo.models.spec import load_spec
            from semifreddo.models.training import train_core, train_task

            spec = load_spec(spec_name)
            train_core(spec, root, **TINY)
            for target in spec.data.targets:
                train_task(spec, target.task, root, **TINY)
            done.add(spec_name)
        return root

    return get


@pytest.fixture
def fresh_build(tiny_build, tmp_path):
    """A private copy of the tiny build for one spec, safe to write into."""
    import shutil

    def get(spec_name: str) -> Path:
        shutil.copytree(tiny_build(spec_name) / spec_name, tmp_path / "build" / spec_name)
        return tmp_path / "build"

    return get


@pytest.fixture(scope="session")
def converted_build(tiny_build, tmp_path_factory):
    """A build folder per spec with the tiny core converted to HLS and its C simulation compiled."""
    import shutil

    done = {}

    def get(spec_name: str) -> Path:
        if spec_name not in done:
            from semifreddo.hls_project.convert import convert
            from semifreddo.hls_project.csim import build_library
            from semifreddo.models.spec import load_spec

            root = tmp_path_factory.mktemp(f"converted-{spec_name}")
            shutil.copytree(tiny_build(spec_name) / spec_name, root / spec_name)
            result = convert(load_spec(spec_name), root)
            build_library(result.hls_dir)
            done[spec_name] = root
        return done[spec_name]

    return get
