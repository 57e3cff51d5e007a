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

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_bytes, atomic_write_text

FORMATS = ("fixed", "po2-1", "po2-2")
AREA_GOAL = 10.0          # the paper's claim: 10x less area and power than a general-purpose accelerator
GAP_GOAL = 0.01           # within 1 accuracy point of full fine-tuning
# The columns that identify a point; a row whose key matches is never computed again. A key column
# an older CSV does not have reads as "-" (the spec's own value).
KEY = ("spec", "fraction", "weight_bits", "act_bits", "format", "task", "epochs", "subset", "frozen_width",
       "trainable_width", "trainable_bits", "implementation", "repeat_hardware", "multipliers", "board", "full",
       "banks")
COLUMNS = KEY + ("name", "status", "frozen_fraction", "frozen_channels", "trainable_channels", "quality_metric", "quality", "source_quality",
                 "full_quality", "gap", "lut", "ff", "dsp", "bram18", "area", "power_mw", "area_vs_configurable",
                 "area_vs_general", "power_vs_general", "fits", "seconds")
DEFAULT = "-"             # a knob left at the spec's value


@dataclass(frozen=True)
class Point:
    spec: str              # spec name or path, as given
    fraction: float        # frozen fraction the widths are chosen for (unused when widths are given)
    weight_bits: int       # frozen fixed-point weights (and the configurable ones, unless trainable_bits)
    act_bits: int
    format: str            # "fixed", "po2-1" or "po2-2"; "none" when nothing is frozen
    task: str
    epochs: int
    subset: int            # 0: all samples
    frozen_width: object = DEFAULT          # widths: DEFAULT derives both from the fraction
    trainable_width: object = DEFAULT
    trainable_bits: object = DEFAULT        # configurable weight bits (DEFAULT: weight_bits)
    implementation: str = DEFAULT           # frozen_core.implementation
    repeat_hardware: str = DEFAULT          # repeat.hardware
    multipliers: str = DEFAULT              # hardware.multipliers
    board: str = DEFAULT                    # hardware.board: the board to fit
    full: bool = False                      # also train full fine-tuning at the same size, for the gap
    banks: object = DEFAULT                 # hardware.banks: weight sets resident at once

    def key(self) -> tuple[str, ...]:
        return tuple(_cell(getattr(self, k)) for k in KEY)


def _cell(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_spec(base, point: Point):
    """The spec of one design point (validated; raises SpecError when the combination is invalid)."""
    from semifreddo.models.fixedpoint import Fixed
    from semifreddo.models.spec import FrozenWeights

    if point.frozen_width == DEFAULT and point.trainable_width == DEFAULT:
        spec = base.with_frozen_fraction(point.fraction)
    else:
        spec = base.replace(frozen_width=base.frozen_width if point.frozen_width == DEFAULT else int(point.frozen_width),
                            trainable_width=base.trainable_width if point.trainable_width == DEFAULT
                            else int(point.trainable_width))
    if point.format == "fixed":
        frozen = FrozenWeights("fixed", bits=point.weight_bits, integer=spec.frozen_weights.storage.integer
                               if spec.frozen_weights.format == "fixed" else 0)
    elif point.format.startswith("po2-"):
        min_exponent = spec.frozen_weights.min_exponent if spec.frozen_weights.format == "po2" else -7
        frozen = FrozenWeights("po2", terms=int(point.format[4:]), min_exponent=min_exponent)
    else:
        frozen = spec.frozen_weights
    tw, act = spec.trainable_weights, spec.activations
    trainable_bits = point.weight_bits if point.trainable_bits == DEFAULT else int(point.trainable_bits)
    hardware = {field: value for field, value in (("frozen_implementation", point.implementation),
                                                 ("repeat_hardware", point.repeat_hardware),
                                                 ("multipliers", point.multipliers), ("board", point.board))
                if value != DEFAULT}
    tag = point.format.replace("-", "k")
    name = (f"{spec.name}-f{spec.frozen_width}t{spec.trainable_width}-w{point.weight_bits}c{trainable_bits}"
            f"-a{point.act_bits}-{tag}")
    name += "".join(f"-{value}" for value in hardware.values())
    if point.banks != DEFAULT:
        hardware["banks"] = int(point.banks)
        name += f"-b{int(point.banks)}"
    return spec.replace(name=name[:40].rstrip("-"), frozen_weights=frozen,
                        trainable_weights=Fixed(trainable_bits, tw.integer, True),
                        activations=Fixed(point.act_bits, act.integer, False), **hardware)


def grid(spec_arg: str, base, fractions, weight_bits, act_bits, formats, task: str, epochs: int, subset: int, *,
         frozen_widths=(DEFAULT,), trainable_widths=(DEFAULT,), trainable_bits=(DEFAULT,),
         implementations=(DEFAULT,), repeat_hardware=(DEFAULT,), multipliers=(DEFAULT,), board: str = DEFAULT,
         full: bool = False, banks=(DEFAULT,)) -> list[Point]:
    """Every combination of the knobs. Given widths replace the fractions (the frozen fraction is
    then whatever the widths give)."""
    if frozen_widths != (DEFAULT,) or trainable_widths != (DEFAULT,):
        fractions = [base.frozen_fraction]
    points = []
    for combo in itertools.product(fractions, weight_bits, act_bits, formats, frozen_widths, trainable_widths,
                                   trainable_bits, implementations, repeat_hardware, multipliers, banks):
        fraction, wb, ab, fmt, fw, tw, tb, impl, rh, mult, nb = combo
        nothing_frozen = fraction == 0 or fw == 0
        fmt = "none" if nothing_frozen else fmt
        point = Point(spec_arg, float(fraction), int(wb), int(ab), fmt, task, int(epochs), int(subset), fw, tw, tb,
                      DEFAULT if nothing_frozen else impl, rh, mult, board, full, nb)
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
    from .report import fit_verdict

    subset = point.subset or None
    core = train_core(spec, build, epochs=point.epochs, subset=subset, progress=False)
    _, source_quality = quality(core.metrics)
    metric, value = quality(core.metrics)
    full_value = gap = ""
    if point.task != spec.data.source:
        result = train_task(spec, point.task, build, epochs=point.epochs, subset=subset, progress=False)
        metric, value = quality(result.metrics)
        if point.full:
            full = train_task(spec, point.task, build, mode="full", epochs=point.epochs, subset=subset,
                              progress=False, write=False)
            full_value = round(quality(full.metrics)[1], 4)
            gap = round(value - full_value, 4)
    est = estimate(spec, core.core.codes if spec.frozen_width else None, core_id=core.core.core_id)
    ip = est.designs["semifreddo"].metrics()
    ratios = est.ratios()
    fits, _ = fit_verdict(est)
    return {
        **row, "name": spec.name, "status": "ok", "frozen_fraction": round(spec.frozen_fraction, 4),
        "frozen_channels": spec.frozen_width, "trainable_channels": spec.trainable_width, "quality_metric": metric,
        "quality": round(value, 4), "source_quality": round(source_quality, 4), "full_quality": full_value,
        "gap": gap, **{k: round(ip[k], 1) for k in ("lut", "ff", "dsp", "bram18", "area", "power_mw")},
        "area_vs_configurable": round(ratios["configurable"]["area"], 2),
        "area_vs_general": round(ratios["general"]["area"], 2),
        "power_vs_general": round(ratios["general"]["power_mw"], 2),
        "fits": f"{'yes' if fits else 'no'} ({spec.hardware.board})", "seconds": round(time.perf_counter() - start, 1),
    }


# --------------------------------------------------------------------------------------------
# The CSV (the sweep's memory)
# --------------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not set(KEY[:8]) <= set(reader.fieldnames):
            raise SemifreddoError(f"{path}: not an explore CSV (expected columns {', '.join(KEY[:8])}); "
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
    return tuple(_cell(float(row[k])) if k == "fraction" else str(row.get(k) or DEFAULT) for k in KEY)


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
    """Two panels. Left: quality against estimated IP area, with the Pareto front. Right: the
    paper's question: area ratio against the general-purpose accelerator (x) and the gap to full
    fine-tuning (y, when the sweep trained it; else quality), with the 10x line, the 1-point line
    and, on the left, the LUT capacity of each board."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from semifreddo.deploy.contract.boards import BOARDS, FIT_LIMITS

    ok = [r for r in rows if r.get("status") == "ok"]
    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110)
    markers = {"fixed": "o", "po2-1": "^", "po2-2": "s", "none": "x"}
    with_gap = [r for r in ok if r.get("gap") not in (None, "")]
    points = None
    for fmt, marker in markers.items():
        group = [r for r in ok if r["format"] == fmt]
        if not group:
            continue
        colors = [float(r["frozen_fraction"]) for r in group]
        points = ax.scatter([float(r["lut"]) for r in group], [float(r["quality"]) for r in group], c=colors,
                            cmap="viridis", vmin=0, vmax=1, marker=marker, label=fmt, edgecolors="black",
                            linewidths=0.4)
        y = [100 * float(r["gap"]) if with_gap else float(r["quality"]) for r in group if not with_gap or r in with_gap]
        x = [float(r["area_vs_general"]) for r in group if not with_gap or r in with_gap]
        ax_ratio.scatter(x, y, c=[c for c, r in zip(colors, group) if not with_gap or r in with_gap], cmap="viridis",
                         vmin=0, vmax=1, marker=marker, edgecolors="black", linewidths=0.4)
    front = pareto_front(rows)
    if front:
        ax.step([float(r["lut"]) for r in front], [float(r["quality"]) for r in front], where="post",
                color="crimson", linewidth=1, label="Pareto front")
    if points is not None:
        fig.colorbar(points, ax=ax_ratio, label="frozen fraction")
    for board in BOARDS.values():
        if board.capacity:
            ax.axvline(FIT_LIMITS["lut"] * board.capacity["lut"], color="gray", linestyle=":", linewidth=1)
            ax.annotate(f"{board.name} ({FIT_LIMITS['lut']:.0%} of LUTs)",
                        (FIT_LIMITS["lut"] * board.capacity["lut"], 1), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color="dimgray")
    metric = ok[0]["quality_metric"] if ok else "quality"
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("ESTIMATED LUTs of the SemifreddoNet IP")
    ax.set_ylabel(f"target-task {metric} (short training)")
    ax.set_title(f"design-space exploration: {len(ok)} points", fontsize=10)
    ax.legend(fontsize=8, title="frozen format", title_fontsize=8)
    ax_ratio.axvline(AREA_GOAL, color="crimson", linestyle="--", linewidth=1)
    ax_ratio.annotate(f"{AREA_GOAL:g}x (the paper's claim)", (AREA_GOAL, 0.02), xycoords=("data", "axes fraction"),
                      rotation=90, ha="right", fontsize=7, color="crimson")
    if with_gap:
        ax_ratio.axhline(-100 * GAP_GOAL, color="crimson", linestyle="--", linewidth=1)
        ax_ratio.annotate("1 point below full fine-tuning", (0.01, -100 * GAP_GOAL), xycoords=("axes fraction", "data"),
                          va="bottom", fontsize=7, color="crimson")
    ax_ratio.set_xlabel("ESTIMATED area ratio: general-purpose accelerator / IP (same throughput)")
    ax_ratio.set_ylabel("gap to full fine-tuning (points)" if with_gap else f"target-task {metric}")
    ax_ratio.set_title("goal: right of the 10x line and above the 1-point line" if with_gap
                       else "goal: right of the 10x line (sweep with --full for the accuracy gap)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
