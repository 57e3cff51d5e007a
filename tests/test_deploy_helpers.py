"""Shared set-up of the deploy tests (no tests here): an emulated bundle built from the tiny
converted build, and the QKeras model's outputs to compare the emulated board with."""

import shutil
from pathlib import Path

import numpy as np

SPEC = "digits"
TASK_A, TASK_B = "parity", "digits_5_9"
N_IMAGES = 12          # the C simulation of digits runs about 80 images/s


def package_emulated(converted_root: Path, dest: Path, spec=None) -> Path:
    """Copy what packaging reads (HLS project with its compiled library, weight sets, core) and
    build the emulated bundle there (of ``spec``, a loaded Spec, default digits). Returns the bundle folder."""
    from semifreddo.deploy.contract.boards import get_board
    from semifreddo.board_scripts.bundle import build_bundle
    from semifreddo.board_scripts.layout import BoardBuild

    name = spec.name if spec is not None else SPEC
    for part in ("hls", "weightsets", "core.npz"):
        source = converted_root / name / part
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, dest / name / part)
    layout = BoardBuild.of(dest, name, "emulated")
    build_bundle(layout, get_board("emulated"), spec)
    return layout.bundle


def images() -> np.ndarray:
    """Held-out images as input codes (what the board takes)."""
    from semifreddo.models.datasets import load_task
    from semifreddo.models.spec import load_spec

    spec = load_spec(SPEC)
    return load_task(spec, TASK_A).test_codes(N_IMAGES, spec.input_bits)


def qkeras_outputs(build: Path, task: str, x: np.ndarray, repeat: int = 1) -> np.ndarray:
    """What the QKeras model computes with the frozen core and ``task``'s weight set, for input codes
    ``x`` (the model computes on their grid values)."""
    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.spec import load_spec
    from semifreddo.models.training import load_reference_model, predict

    spec = load_spec(SPEC)
    model = load_reference_model(spec, build, read_weight_set(BuildPaths.for_spec(spec, build).weightset(task)))
    set_repeat(model, spec, repeat)
    return predict(model, grid_values(x, spec.input_bits))
