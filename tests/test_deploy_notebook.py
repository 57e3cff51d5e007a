"""The board notebook, executed end to end against the emulated board (a failing cell fails)."""

import json
import sys

import nbclient
import nbformat
import numpy as np

from conftest import run_cli
from test_deploy_helpers import SPEC, package_emulated


def execute_notebook(bundle):
    """Run the bundle's notebook; return (all text output, the executed notebook)."""
    path = bundle / "notebooks" / "semifreddo.ipynb"
    notebook = nbformat.read(path, as_version=4)
    # ipykernel's python3 kernel spec is the interpreter running this test: the venv's python.
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()                                          # raises CellExecutionError on a failing cell
    text = "".join(out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", []))
    return text, notebook


def plots(cells):
    return [out for cell in cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def added_task_cells(notebook, added: bool):
    return [cell for cell in notebook.cells if ("added-task" in cell.metadata.get("tags", [])) == added]


def check_tasks_a_and_b(text, notebook):
    assert f"python {sys.executable}" in text
    summary = json.loads(text.split("SEMIFREDDO-NOTEBOOK ", 1)[1].splitlines()[0])
    assert summary["emulated"] and len(summary["tasks"]) == 2
    task_a, task_b = summary["tasks"]
    assert summary["active_task"] == task_b
    for task in (task_a, task_b):
        assert summary["tasks"][task]["images"] == 200 and summary["tasks"][task]["switch_ms"] > 0
        assert summary["tasks"][task]["quality"][0] == "accuracy"
    # The two tasks on alternating frames (one bank here: a reload before each frame), each frame its task's.
    assert summary["alternating"] == {"banks": 1, "frames": 16, "equal": True}
    assert len(plots(added_task_cells(notebook, added=False))) == 2
    return json.loads(text.split("SEMIFREDDO-NOTEBOOK-ADDED ", 1)[1].splitlines()[0])


def test_notebook_runs_task_a_switches_to_b_and_plots(converted_build, tmp_path, monkeypatch):
    bundle = package_emulated(converted_build(SPEC), tmp_path)
    monkeypatch.setenv("SEMIFREDDO_EMULATOR_STATE", str(tmp_path / "pl"))
    monkeypatch.setenv("SEMIFREDDO_BUNDLE", "")             # found from the notebook's own folder
    text, notebook = execute_notebook(bundle)
    assert check_tasks_a_and_b(text, notebook) == {}        # no task was added after the build
    assert len(plots(notebook.cells)) == 2


def test_notebook_switches_to_a_task_added_after_the_build(converted_build, tmp_path, monkeypatch):
    """A task trained on the host from the user's data after the bundle was built, added with
    `bundle add`: the notebook switches to it as a third task and plots its outputs."""
    from test_userdata import digits_images_and_labels

    build = tmp_path / "build"
    bundle = package_emulated(converted_build(SPEC), build)
    images, digit = digits_images_and_labels()
    np.savez(tmp_path / "big.npz", x=images, y=(digit >= 5).astype(np.int64))
    proc = run_cli("train-task", SPEC, "--task", "big", "--data", tmp_path / "big.npz", "--build", build,
                   "--epochs", "1", "--subset", "64", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("bundle", "add", bundle, build / SPEC / "weightsets" / "big.npz")
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("SEMIFREDDO_EMULATOR_STATE", str(tmp_path / "pl"))
    monkeypatch.setenv("SEMIFREDDO_BUNDLE", "")
    text, notebook = execute_notebook(bundle)
    added = check_tasks_a_and_b(text, notebook)
    assert list(added) == ["big"]
    assert added["big"]["active"] == "big" and added["big"]["switch_ms"] > 0
    assert added["big"]["images"] == 64 and added["big"]["quality"][0] == "accuracy"   # its held-out samples
    assert "big: from " + str(tmp_path / "big.npz") in text
    assert len(plots(added_task_cells(notebook, added=True))) == 1
