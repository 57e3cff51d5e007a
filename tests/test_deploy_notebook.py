"""The board notebook, executed end to end against the emulated board (a failing cell fails)."""

import json
import sys

import nbclient
import nbformat

from test_deploy_helpers import package_emulated


def test_notebook_runs_task_a_switches_to_b_and_plots(converted_build, tmp_path, monkeypatch):
    bundle = package_emulated(converted_build("digits"), tmp_path)
    monkeypatch.setenv("SEMIFREDDO_EMULATOR_STATE", str(tmp_path / "pl"))
    monkeypatch.setenv("SEMIFREDDO_BUNDLE", "")             # found from the notebook's own folder
    path = bundle / "notebooks" / "semifreddo.ipynb"
    notebook = nbformat.read(path, as_version=4)
    # ipykernel's python3 kernel spec is the interpreter running this test: the venv's python.
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()                                          # raises CellExecutionError on a failing cell
    text = "".join(out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", []))
    assert f"python {sys.executable}" in text
    summary = json.loads(text.split("SEMIFREDDO-NOTEBOOK ", 1)[1].splitlines()[0])
    assert summary["emulated"] and len(summary["tasks"]) == 2
    task_a, task_b = summary["tasks"]
    assert summary["active_task"] == task_b
    for task in (task_a, task_b):
        assert summary["tasks"][task]["images"] == 200 and summary["tasks"][task]["switch_ms"] > 0
        assert summary["tasks"][task]["quality"][0] == "accuracy"
    plots = [out for cell in notebook.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert len(plots) == 2
