"""Design-space exploration: frozen fraction x bit widths x frozen format, with short training runs.

Each point of the grid is a variant of the spec (:func:`point_spec`). :func:`run_point` pre-trains
its frozen core and one target task for a few epochs, then estimates the hardware; it returns one
CSV row. :func:`explore` runs the points that the CSV does not hold yet through Dask distributed
(a local cluster on this machine's cores, or the cluster at ``scheduler``), writes the CSV after
every finished point (atomically, so an interrupted sweep keeps what it finished), and draws the
Pareto plot. Running the same command again recomputes nothing that is already in the CSV.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.errors import SemifreddoError
from semifreddo.deploy.fileio import atomic_write_bytes, atomic_write_text

FORMATS = ("fixed", "po2-1", "po2-2")
# The columns that identify a point; a row whose key matches is never computed again.
KEY = ("spec", "fraction", "weight_bits", "act_bits", "format", "task", "epochs", "subset")
COLUMNS = KEY + ("name", "status", "frozen_fraction", "frozen_width", "trainable_width", "quality_metric",
                 "quality", "source_quality", "lut", "ff", "dsp", "bram18", "area", "power_mw",
                 "area_vs_configurable", "area_vs_general", "power_vs_general", "seconds")


@dataclass(frozen=True)
class Point:
    spec: str              # spec name or path, as given
    fraction: float
    weight_bits: int       # frozen fixed-point weights and the configurable weights
    act_bits: int
    format: str            # "fixed", "po2-1" or "po2-2"; "none" when nothing is frozen
    task: str
    epochs: int
    subset: int            # 0: all samples

    def key(self) -> tuple[str, ...]:
        return tuple(_cell(getattr(self, k)) for k in KEY)


def _cell(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_spec(base, point: Point):
    """The spec of one design point (validated; raises SpecError when the combination is invalid)."""
    from semifreddo.models.fixedpoint import Fixed
    from semifreddo.models.spec import FrozenWeights

    spec = base.with_frozen_fraction(point.fraction)
    if point.format == "fixed":
        frozen = FrozenWeights("fixed", bits=point.weight_bits, integer=spec.frozen_weights.storage.integer
                               if spec.frozen_weights.format == "fixed" else 0)
    elif point.format.startswith("po2-"):
        min_exponent = spec.frozen_weights.min_exponent if spec.frozen_weights.format == "po2" else -7
        frozen = FrozenWeights("po2", terms=int(point.format[4:]), min_exponent=min_exponent)
    else:
        frozen = spec.frozen_weights
    tw, act = spec.trainable_weights, spec.activations
    tag = point.format.replace("-", "k")
    name = f"{spec.name}-w{point.weight_bits}-a{point.act_bits}-{tag}"
    return spec.replace(name=name, frozen_weights=frozen, trainable_weights=Fixed(point.weight_bits, tw.integer, True),
                        activations=Fixed(point.act_bits, act.integer, False))


def grid(spec_arg: str, base, fractions, weight_bits, act_bits, formats, task: str, epochs: int,
         subset: int) -> list[Point]:
    points = []
    for fraction, wb, ab, fmt in itertools.product(fractions, weight_bits, act_bits, formats):
        fmt = "none" if fraction == 0 else fmt
        point = Point(spec_arg, float(fraction), int(wb), int(ab), fmt, task, int(epochs), int(subset))
        if point not in points:
            points.append(point)
    return points


def run_point(point: Point, build: str) -> dict:
    """Train and estimate one design point (runs on a Dask worker). Returns its CSV row."""
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start = time.perf_counter()
    from semifreddo.models.spec import load_spec

    row = {k: getattr(point, k) for k in KEY}
    try:
        spec = point_spec(load_spec(point.spec), point)
    except SemifreddoError as exc:
        return {**row, "status": f"invalid: {exc}", "seconds": round(time.perf_counter() - start, 1)}

    import tensorflow as tf

    try:   # one thread per worker: the cluster, not TensorFlow, spreads the work over the cores
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    from semifreddo.models.training import quality, train_core, train_task

    from .estimator import estimate

    subset = point.subset or None
    core = train_core(spec, build, epochs=point.epochs, subset=subset, progress=False)
    _, source_quality = quality(core.metrics)
    metric, value = quality(core.metrics)
    if point.task != spec.source:
        result = train_task(spec, point.task, build, epochs=point.epochs, subset=subset, progress=False)
        metric, value = quality(result.metrics)
    est = estimate(spec, core.core.codes if spec.frozen_width else None, core_id=core.core.core_id)
    ip = est.designs["semifreddo"].metrics()
    ratios = est.ratios()
    return {
        **row, "name": spec.name, "status": "ok", "frozen_fraction": round(spec.frozen_fraction, 4),
        "frozen_width": spec.frozen_width, "trainable_width": spec.trainable_width, "quality_metric": metric,
        "quality": round(value, 4), "source_quality": round(source_quality, 4),
        **{k: round(ip[k], 1) for k in ("lut", "ff", "dsp", "bram18", "area", "power_mw")},
        "area_vs_configurable": round(ratios["configurable"]["area"], 2),
        "area_vs_general": round(ratios["general"]["area"], 2),
        "power_vs_general": round(ratios["general"]["power_mw"], 2),
        "seconds": round(time.perf_counter() - start, 1),
    }


# --------------------------------------------------------------------------------------------
# The CSV (the sweep's memory)
# --------------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not set(KEY) <= set(reader.fieldnames):
            raise SemifreddoError(f"{path}: not an explore CSV (expected columns {', '.join(KEY)}); "
                                  "move it away or choose another --out")
        return list(reader)


def write_rows(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def row_key(row: dict) -> tuple[str, ...]:
    return tuple(_cell(float(row[k])) if k == "fraction" else str(row[k]) for k in KEY)


# --------------------------------------------------------------------------------------------
# Running a sweep
# --------------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    csv: Path
    png: Path
    computed: int
    reused: int
    rows: list[dict]


def _client(scheduler: str | None, workers: int):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise SemifreddoError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    return Client(cluster), cluster


def explore(points: list[Point], out: Path, build: Path, *, scheduler: str | None = None, workers: int | None = None,
            progress: bool = True) -> SweepResult:
    from tqdm.auto import tqdm

    out = Path(out)
    csv_path, png_path = out / "explore.csv", out / "explore.png"
    rows = read_rows(csv_path)
    done = {row_key(row) for row in rows if row.get("status", "").split(":")[0] in ("ok", "invalid")}
    todo = [p for p in points if p.key() not in done]
    reused = len(points) - len(todo)
    computed = 0
    if todo:
        client, cluster = _client(scheduler, workers or min(len(todo), os.cpu_count() or 1))
        try:
            from dask.distributed import as_completed

            futures = [client.submit(run_point, p, str(build), pure=False, key=f"point-{'-'.join(p.key())}")
                       for p in todo]
            bar = tqdm(total=len(points), initial=reused, desc="explore", unit="point", disable=not progress,
                       file=sys.stderr, dynamic_ncols=True)
            for future in as_completed(futures):
                row = future.result()
                rows = [r for r in rows if row_key(r) != row_key(row)] + [row]
                write_rows(csv_path, rows)
                computed += 1
                bar.set_postfix_str(f"{row.get('name', '')}: {row.get('quality_metric', '')} {row.get('quality', '')}",
                                    refresh=False)
                bar.update(1)
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif not csv_path.exists():
        write_rows(csv_path, rows)
    atomic_write_bytes(png_path, pareto_plot(rows))
    return SweepResult(csv_path, png_path, computed, reused, rows)


# --------------------------------------------------------------------------------------------
# The Pareto plot
# --------------------------------------------------------------------------------------------

def pareto_front(rows: list[dict]) -> list[dict]:
    """Points no other point beats on both estimated area (lower) and quality (higher)."""
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: (float(r["area"]), -float(r["quality"])))
    front, best = [], -float("inf")
    for row in ok:
        if float(row["quality"]) > best:
            front.append(row)
            best = float(row["quality"])
    return front


def pareto_plot(rows: list[dict]) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ok = [r for r in rows if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    markers = {"fixed": "o", "po2-1": "^", "po2-2": "s", "none": "x"}
    for fmt, marker in markers.items():
        group = [r for r in ok if r["format"] == fmt]
        if group:
            points = ax.scatter([float(r["area"]) for r in group], [float(r["quality"]) for r in group],
                                c=[float(r["frozen_fraction"]) for r in group], cmap="viridis", vmin=0, vmax=1,
                                marker=marker, label=fmt, edgecolors="black", linewidths=0.4)
    front = pareto_front(rows)
    if front:
        ax.step([float(r["area"]) for r in front], [float(r["quality"]) for r in front], where="post",
                color="crimson", linewidth=1, label="Pareto front")
        fig.colorbar(points, ax=ax, label="frozen fraction")
    metric = ok[0]["quality_metric"] if ok else "quality"
    areas = [float(r["area"]) for r in ok]
    if areas and max(areas) > 5 * min(areas):
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("ESTIMATED area of the SemifreddoNet IP (slice equivalents)")
    ax.set_ylabel(f"target-task {metric} (short training)")
    ax.set_title(f"design-space exploration: {len(ok)} points", fontsize=10)
    ax.legend(fontsize=8, title="frozen format", title_fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
