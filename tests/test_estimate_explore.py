"""A tiny design-space sweep through a real local Dask cluster, and its resume (issue 6, item 5).

Two points (fixed-point and one-term power-of-two frozen weights), one training epoch on 64
samples each. The second run must find both points in the CSV and compute nothing; after an
"interruption" that lost one row, the third run must recompute that point only.
"""

import csv

import pytest

from semifreddo.hls_project.estimate.explore import KEY, explore, grid, read_rows, row_key
from semifreddo.models.spec import load_spec


@pytest.fixture(scope="module")
def points():
    return grid("digits", load_spec("digits"), [0.5], [4], [8], ["fixed", "po2-1"], "parity", epochs=1, subset=64)


@pytest.mark.solve
def test_sweep_writes_csv_and_plot_then_resumes_without_recomputing(points, tmp_path):
    out, build = tmp_path / "explore", tmp_path / "explore" / "points"
    first = explore(points, out, build, workers=2, progress=False)
    assert (first.computed, first.reused) == (2, 0)
    rows = read_rows(first.csv)
    assert sorted(r["format"] for r in rows) == ["fixed", "po2-1"]
    for row in rows:
        assert row["status"] == "ok"
        assert 0.0 <= float(row["quality"]) <= 1.0 and row["quality_metric"] == "accuracy"
        assert float(row["lut"]) > 0 and float(row["area_vs_general"]) > 1
        assert abs(float(row["frozen_fraction"]) - 0.5) < 0.1
    assert first.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cores = sorted(build.glob("*/core.npz"))
    assert len(cores) == 2
    stamps = {path: path.stat().st_mtime_ns for path in cores}
    csv_bytes = first.csv.read_bytes()

    # Nothing to do: the CSV holds both points; nothing is trained again.
    second = explore(points, out, build, workers=2, progress=False)
    assert (second.computed, second.reused) == (0, 2)
    assert first.csv.read_bytes() == csv_bytes
    assert {path: path.stat().st_mtime_ns for path in cores} == stamps

    # An interrupted sweep that had finished only the first point: only the other one runs.
    kept, lost = rows
    with open(first.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept))
        writer.writeheader()
        writer.writerow(kept)
    third = explore(points, out, build, workers=2, progress=False)
    assert (third.computed, third.reused) == (1, 1)
    after = {row_key(r): r for r in read_rows(first.csv)}
    assert set(after) == {row_key(kept), row_key(lost)}
    assert after[row_key(kept)] == kept
    lost_core = build / lost["name"] / "core.npz"
    kept_core = build / kept["name"] / "core.npz"
    assert kept_core.stat().st_mtime_ns == stamps[kept_core]
    assert lost_core.stat().st_mtime_ns > stamps[lost_core]
    assert after[row_key(lost)]["quality"] == lost["quality"]      # training is reproducible


def test_points_are_keyed_by_everything_that_changes_a_result(points):
    more_epochs = grid("digits", load_spec("digits"), [0.5], [4], [8], ["fixed"], "parity", epochs=2, subset=64)
    assert points[0].key() != more_epochs[0].key()
    assert set(KEY) >= {"fraction", "weight_bits", "act_bits", "format", "epochs", "subset", "task"}
    nothing_frozen = grid("digits", load_spec("digits"), [0.0], [4], [8], ["fixed", "po2-1", "po2-2"], "parity", 1, 0)
    assert [p.format for p in nothing_frozen] == ["none"]       # the format does not matter without a frozen core


def test_the_banks_knob_makes_points_of_each_bank_count():
    from semifreddo.hls_project.estimate.explore import point_spec

    base = load_spec("digits")
    points = grid("digits", base, [0.5], [4], [8], ["fixed"], "parity", 1, 0, banks=[1, 3])
    assert len(points) == 2 and points[0].key() != points[1].key() and "banks" in KEY
    specs = [point_spec(base, p) for p in points]
    assert [s.hardware.banks for s in specs] == [1, 3] and specs[0].name != specs[1].name
