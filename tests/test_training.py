"""Training end to end on tiny subsets of the real data (quality is the benchmark's job, not this)."""

import numpy as np
import pytest

from semifreddo.deploy.contract.weightset import read_weight_set
from semifreddo.models.artifacts import BuildPaths, load_core
from semifreddo.models.layout import frozen_tensors
from semifreddo.models.training import train_core, train_task

from conftest import TINY, run_cli


def frozen_values_from_artifact(path, spec):
    """Read the artifact with plain numpy (not the toolkit's reader) and turn codes into values."""
    with np.load(path, allow_pickle=False) as archive:
        return {t.layer + "." + t.weight: archive[t.name] * 2.0 ** -t.fmt.frac for t in frozen_tensors(spec)}


def raw_frozen_variables(model, spec):
    return {t.layer + "." + t.weight: getattr(model.get_layer(t.layer), t.weight).numpy()
            for t in frozen_tensors(spec)}


@pytest.mark.parametrize("spec_name", ["digits", "pixels"])
def test_tiny_end_to_end_train(spec_name, fresh_build):
    """train-core then train-task on each shipped spec (the core itself is trained by the fixture)."""
    from semifreddo.models.spec import load_spec

    spec = load_spec(spec_name)
    build = fresh_build(spec_name)
    paths = BuildPaths.for_spec(spec, build)
    core = load_core(paths.core, spec)
    source = read_weight_set(paths.weightset(spec.data.source), expect_core_id=core.core_id)
    assert source.manifest["role"] == "source"

    task = spec.data.targets[0].task
    paths.weightset(task).unlink()
    result = train_task(spec, task, build, **TINY)
    ws = read_weight_set(paths.weightset(task), expect_core_id=core.core_id)
    assert ws.task == task and ws.manifest["role"] == "target"
    key = "accuracy" if spec.head_type == "classify" else "psnr_db"
    assert key in ws.manifest["metrics"]

    # Task training leaves the frozen core bit-identical: the trained model's raw frozen variables
    # equal the values in the artifact written before task training.
    expected = frozen_values_from_artifact(paths.core, spec)
    actual = raw_frozen_variables(result.model, spec)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name].astype(np.float32), err_msg=name)

    # Reproducible: the same seed and data give the same weight set, word for word.
    again = train_task(spec, task, build, **TINY)
    np.testing.assert_array_equal(read_weight_set(again.weightset).words, ws.words)


def test_frozen_check_detects_movement(digits_spec, fresh_build):
    """The comparison above is able to fail: fine-tuning every weight does move the frozen core."""
    build = fresh_build("digits")
    result = train_task(digits_spec, "parity", build, mode="full", **TINY)
    expected = frozen_values_from_artifact(BuildPaths.for_spec(digits_spec, build).core, digits_spec)
    actual = raw_frozen_variables(result.model, digits_spec)
    assert any(not np.array_equal(actual[n], expected[n].astype(np.float32)) for n in expected)
    assert result.weightset is None     # baselines never write weight sets


def test_core_training_is_reproducible(digits_spec, tiny_build, tmp_path):
    first = load_core(BuildPaths.for_spec(digits_spec, tiny_build("digits")).core, digits_spec)
    again = train_core(digits_spec, tmp_path, **TINY)
    assert again.core.core_id == first.core_id


def test_cli_train_commands(tmp_path, fresh_build):
    proc = run_cli("train-core", "digits", "--build", tmp_path, "--epochs", "1", "--subset", "32", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "frozen core" in proc.stdout and "source task digits_0_4: accuracy" in proc.stdout
    build = fresh_build("digits")
    proc = run_cli("train-task", "digits", "--task", "parity", "--build", build, "--epochs", "1",
                   "--subset", "32", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "task parity: accuracy" in proc.stdout
    proc = run_cli("weights", "list", "digits", "--build", build)
    assert proc.returncode == 0 and "parity" in proc.stdout and "digits_0_4" in proc.stdout
    proc = run_cli("train-task", "digits", "--task", "edges", "--build", tmp_path)
    assert proc.returncode == 2 and "no task named 'edges'" in proc.stderr


def test_task_training_needs_a_core(tmp_path):
    proc = run_cli("train-task", "digits", "--task", "parity", "--build", tmp_path)
    assert proc.returncode == 2
    assert "run `semifreddo train-core" in proc.stderr


def test_a_pixel_head_starts_at_the_least_squares_fit(pixels_spec, tiny_build):
    """Task training starts a pixel head at the least-squares fit of the targets from the loaded
    cores' features: it predicts better than a fresh head and than the best constant, within its
    weights' format."""
    from semifreddo.models.datasets import load_task
    from semifreddo.models.network import describe
    from semifreddo.models.training import fit_pixel_head, predict, prepare_task_model

    spec, build = pixels_spec, tiny_build("pixels")
    paths = BuildPaths.for_spec(spec, build)
    core = load_core(paths.core, spec)
    source = read_weight_set(paths.weightset(spec.data.source), expect_core_id=core.core_id)
    data = load_task(spec, "edges").subset(64, spec.data.seed)
    model = prepare_task_model(spec, core, source, "semifreddo")

    def mse():
        return float(np.mean((predict(model, data.x_train) - data.y_train) ** 2))

    fresh = mse()
    fit_pixel_head(model, spec, data)
    fitted = mse()
    assert fitted < fresh
    assert fitted < float(np.var(data.y_train))
    head = next(layer for layer in describe(spec).layers if layer.core == "head" and layer.kind == "conv")
    kernel = model.get_layer(head.name).get_weights()[0]
    assert kernel.min() >= head.weight_fmt.code_min * head.weight_fmt.lsb
    assert kernel.max() <= head.weight_fmt.code_max * head.weight_fmt.lsb
