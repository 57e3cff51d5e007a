"""Pre-characterize the unit blocks with Yosys and write the unit-cost table.

    python -m semifreddo.hls_project.estimate.characterize [--jobs N] [--out FILE] [--reuse]

(``make characterize``.) Every sample point of every family in :mod:`.units` is synthesized with
the one recipe of :mod:`.yosys`; each model's coefficients are then fitted by least squares to the
measured resources (a ``lookup`` family keeps its points and is priced by the nearest larger one).
The table records the Yosys version and the exact synthesis script, every measured point, and each
model's fit error, so anyone can redo or audit the calibration. Yosys 0.23's netlists are the same
from run to run, so the table regenerates identically except for its timestamp and timings.
``--reuse`` keeps the measurements of points the existing table already holds (same Yosys version)
and synthesizes only new ones, then refits everything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from semifreddo.deploy.contract.interface import UNIT_COSTS_FORMAT, read_artifact, stamp
from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_text

from .units import FAMILIES, Family
from .yosys import SYNTH_SCRIPT, synthesize, yosys_version

TABLE_FORMAT = UNIT_COSTS_FORMAT
DEFAULT_TABLE = Path(__file__).resolve().parent / "tables" / "xc7_yosys.json"


def measure(family: Family, point: dict) -> dict:
    result = synthesize(family.verilog(point), dsp=family.dsp)
    return {"params": point, "features": family.features(point), "resources": result.resources,
            "seconds": round(result.seconds, 2)}


def fit_model(measured: list[dict], resources: tuple[str, ...]) -> dict:
    """Least-squares coefficients of each resource on the points' features, with the fit error:
    the worst absolute error, and the worst relative error over points of at least 20 units (the
    relative error of a 2-LUT block says little)."""
    names = sorted({name for m in measured for name in m["features"]})
    a = np.array([[m["features"].get(name, 0.0) for name in names] for m in measured])
    fit = {"features": names, "coefficients": {}, "max_abs_error": {}, "max_relative_error": {}}
    for resource in resources:
        y = np.array([m["resources"][resource] for m in measured], dtype=float)
        coefficients, *_ = np.linalg.lstsq(a, y, rcond=None)
        error = np.abs(a @ coefficients - y)
        fit["coefficients"][resource] = {n: round(float(c), 4) for n, c in zip(names, coefficients)}
        fit["max_abs_error"][resource] = round(float(error.max()), 1)
        large = y >= 20
        fit["max_relative_error"][resource] = round(float(np.max(error[large] / y[large])), 3) if large.any() else 0.0
    return fit


def _recorded(path: Path) -> dict:
    """Measurements of an existing table, by family and parameters, if it was made with this Yosys."""
    try:
        table = read_artifact(path, TABLE_FORMAT, "")
    except SemifreddoError:
        return {}
    if table.get("tool") != yosys_version() or table.get("script") != SYNTH_SCRIPT:
        return {}
    return {(name, json.dumps(p["params"], sort_keys=True)): p
            for name, family in table.get("families", {}).items() for p in family["points"]}


def characterize(families=FAMILIES, jobs: int = 2, progress: bool = True, reuse_from: Path | None = None) -> dict:
    tasks = [(family, point) for family in families for point in family.points]
    recorded = _recorded(reuse_from) if reuse_from else {}
    bar = tqdm(total=len(tasks), desc="characterize (yosys)", unit="block", disable=not progress, file=sys.stderr)

    def run(task):
        family, point = task
        old = recorded.get((family.name, json.dumps(point, sort_keys=True)))
        result = ({**old, "features": family.features(point)} if old else measure(family, point))
        bar.update(1)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run, tasks))
    bar.close()
    by_family: dict[str, list[dict]] = {}
    for (family, _), result in zip(tasks, results):
        by_family.setdefault(family.name, []).append(result)

    models = {}
    for family in families:
        model = models.setdefault(family.model, {"families": [], "fitted": family.fitted})
        model["families"].append(family.name)
    lookups = {f.model for f in families if f.lookup}
    for name, model in models.items():
        model["fitted"] = list(model["fitted"])
        if name in lookups:
            model["lookup"] = True
            continue
        measured = [m for f in model["families"] for m in by_family[f]]
        model.update(fit_model(measured, model["fitted"]))

    return {
        **stamp(TABLE_FORMAT),
        "tool": yosys_version(), "target": "Xilinx 7-series (synth_xilinx -family xc7)",
        "script": SYNTH_SCRIPT,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "regenerate": "make characterize",
        "families": {f.name: {"model": f.model, "description": f.description, "dsp": f.dsp,
                              "points": by_family[f.name]} for f in families},
        "models": models,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_TABLE, help=f"table to write (default {DEFAULT_TABLE})")
    parser.add_argument("--jobs", type=int, default=2, help="Yosys runs at once (default 2)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep measurements the existing table holds for this Yosys; synthesize only new points")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    table = characterize(jobs=args.jobs, progress=args.progress, reuse_from=args.out if args.reuse else None)
    atomic_write_text(args.out, json.dumps(table, indent=1) + "\n")
    seconds = sum(p["seconds"] for f in table["families"].values() for p in f["points"])
    print(f"{table['tool']}: {sum(len(f['points']) for f in table['families'].values())} blocks "
          f"({seconds:.0f} s of synthesis) -> {args.out}")
    for name, model in table["models"].items():
        if model.get("lookup"):
            print(f"  {name:<16} lookup by size")
            continue
        errors = ", ".join(f"{r} {model['max_relative_error'][r]:.0%} / {model['max_abs_error'][r]:g}"
                           for r in model["fitted"])
        print(f"  {name:<16} worst fit error (relative / absolute): {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
