"""``make bench-accuracy``: target-task quality against frozen fraction, and two baselines.

For every shipped spec, at the spec's own size ("shipped": its widths, bits and epochs as they are)
and at frozen fractions of about 0, 50, 75 and 90 % (core widths chosen by
``Spec.with_frozen_fraction`` at about the spec's parameter count), this pre-trains a core on the
source task and then, for every target task, trains:

* ``semifreddo``: only the configurable parameters (what a weight set holds);
* ``full``: every weight, the frozen core included (the upper bound a SemifreddoNet gives up);
* ``head``: the frozen core and the source task's trainable cores fixed, only the head trained.

Quality is accuracy for digits and PSNR (dB) for pixels, on held-out data, computed with the
quantized model (what the hardware computes). Results: ``accuracy.csv``, ``accuracy.md`` and
``accuracy.png`` in ``--out``. Finished (spec, fraction) points are kept in the CSV and skipped on a
re-run, so an interrupted benchmark resumes.

For a photos spec at its shipped point, the PSNR of every held-out frame is measured too, for the
SemifreddoNet, full fine-tuning and the task's classical filter (:mod:`semifreddo.models.classical`,
tuned on the training photographs): ``pixel-frames.csv`` and the table ``pixel-quality.md`` in
``--build``, printed at the end, with whether every target task is within 0.5 dB of full
fine-tuning and above its classical filter.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

SHIPPED = "shipped"       # the spec's own point, as it is shipped
FRACTIONS = (SHIPPED, 0.0, 0.5, 0.75, 0.9)
METHODS = ("semifreddo", "full", "head")
FIELDS = ["spec", "fraction", "frozen_fraction", "frozen_width", "trainable_width", "task", "method", "metric",
          "value", "seconds"]
GOALS = {"accuracy": ("points", 100.0, 1.0), "psnr_db": ("dB", 1.0, 0.5)}   # unit, scale, allowed gap


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def save_rows(path: Path, rows: list[dict], fields: list[str] = FIELDS) -> None:
    import io

    from semifreddo.deploy.contract.fileio import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def point(value: str) -> str | float:
    """A point of the sweep: ``shipped`` or a frozen fraction."""
    return value if value == SHIPPED else float(value)


def _order(fraction) -> float:
    return -1.0 if fraction == SHIPPED else float(fraction)


def run_point(spec, fraction, build: Path, epochs_scale: float, task_epochs_scale: float,
              frames: list[dict] | None = None) -> list[dict]:
    """Train one point; for a photos spec, ``frames`` (when given) collects the PSNR of every
    held-out frame for the SemifreddoNet, full fine-tuning and the classical filter."""
    from .training import quality, train_core, train_task

    variant = spec if fraction == SHIPPED else spec.with_frozen_fraction(fraction)
    core_epochs = max(1, round(variant.data.train_core.epochs * epochs_scale))
    task_epochs = max(1, round(variant.data.train_task.epochs * task_epochs_scale))
    train_core(variant, build, epochs=core_epochs)
    rows = []
    for target in variant.data.targets:
        for method in METHODS:
            start = time.perf_counter()
            result = train_task(variant, target.task, build, mode=method, epochs=task_epochs)
            metric, value = quality(result.metrics)
            rows.append({"spec": spec.name, "fraction": fraction, "frozen_fraction": round(variant.frozen_fraction, 4),
                         "frozen_width": variant.frozen_width, "trainable_width": variant.trainable_width,
                         "task": target.task, "method": method, "metric": metric, "value": value,
                         "seconds": round(time.perf_counter() - start, 1)})
            print(f"  {spec.name} {fraction} {target.task:<12} {method:<10} {metric} {value:.4f}", flush=True)
            if frames is not None and method in FRAME_METHODS:
                frames += frame_rows(variant, target.task, method, result.model)
        if frames is not None:
            frames += frame_rows(variant, target.task, "classical")
    return rows


FRAME_METHODS = ("semifreddo", "full")         # and "classical": the task's classical filter
FRAME_FIELDS = ["spec", "task", "photo", "method", "psnr_db", "mse", "parameter"]


def frame_rows(spec, task: str, method: str, model=None) -> list[dict]:
    """PSNR (and MSE, to pool frames) of every held-out frame of a photos spec's task, by the trained
    ``model`` (quantized, as the hardware computes) or by the task's classical filter, tuned on the
    training photographs (:mod:`semifreddo.models.classical`)."""
    import numpy as np

    from .classical import as_read, classical_filter, tune
    from .datasets import load_task, photo_frames, psnr
    from .training import predict

    data = load_task(spec, task)
    labels = [label for label, _ in photo_frames(spec, spec.data.test_images)]
    parameter = ""
    if method == "classical":
        parameter = tune(task, spec.data.train_images, spec.input_shape[2], spec.data.noise, spec.data.seed,
                         spec.input_bits)
        outputs = [classical_filter(task, as_read(x, spec.input_bits), parameter) for x in data.x_test]
    else:
        outputs = predict(model, data.x_test, batch_size=1)
    rows = []
    for label, out, target in zip(labels, outputs, data.y_test):
        mse = float(np.mean((np.asarray(out, np.float64) - target) ** 2))
        rows.append({"spec": spec.name, "task": task, "photo": label, "method": method,
                     "psnr_db": round(psnr(out, target), 3), "mse": mse, "parameter": parameter})
    return rows


def frames_markdown(frames: list[dict], allowed: float = GOALS["psnr_db"][2]) -> str:
    """Per task and per held-out frame: SemifreddoNet, full fine-tuning, classical filter, the gaps,
    and whether the task meets the goal (all frames pooled: within ``allowed`` dB of full
    fine-tuning and above the classical filter)."""
    import numpy as np

    from .classical import FILTERS

    lines = ["# Pixel quality on held-out photographs", "",
             "PSNR (dB) of every held-out frame, quantized model (what the hardware computes). Gap = "
             "SemifreddoNet minus full fine-tuning; vs classical = SemifreddoNet minus the classical filter "
             "(its parameter tuned on the training photographs). \"all frames\" pools the squared error of "
             "every frame.", ""]
    for spec in sorted({r["spec"] for r in frames}):
        srows = [r for r in frames if r["spec"] == spec]
        lines += [f"## {spec}", "", "| task | photograph | semifreddo | full | classical | gap | vs classical |",
                  "|---|---|---|---|---|---|---|"]
        verdicts = []
        for task in dict.fromkeys(r["task"] for r in srows):
            trows = [r for r in srows if r["task"] == task]
            value = {(r["photo"], r["method"]): r for r in trows}
            photos = list(dict.fromkeys(r["photo"] for r in trows))

            def pooled(method):
                mse = np.mean([float(value[(p, method)]["mse"]) for p in photos])
                return float("inf") if mse == 0 else 10 * np.log10(1 / mse)
            for photo in photos + ["all frames"]:
                sf, full, cl = ((pooled(m) if photo == "all frames" else float(value[(photo, m)]["psnr_db"]))
                                for m in ("semifreddo", "full", "classical"))
                lines.append(f"| {task} | {photo} | {sf:.2f} | {full:.2f} | {cl:.2f} | {sf - full:+.2f} | {sf - cl:+.2f} |")
            sf, full, cl = (pooled(m) for m in ("semifreddo", "full", "classical"))
            name, knob, _ = FILTERS[task]
            met = sf - full >= -allowed and sf > cl
            verdicts.append(f"- {task}: {'met' if met else 'not met'} (gap {sf - full:+.2f} dB, "
                            f"{sf - cl:+.2f} dB against {name}, {knob} {value[(photos[0], 'classical')]['parameter']})")
        lines += ["", f"Goal: every target task within {allowed} dB of full fine-tuning and above its classical filter "
                  "(all frames):", ""] + verdicts + [""]
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict]) -> str:
    lines = ["# Accuracy benchmark", "",
             "Target-task quality on held-out data (quantized model). digits: accuracy; pixels: PSNR in dB.",
             "Gap = SemifreddoNet minus full fine-tuning.", ""]
    for spec in sorted({r["spec"] for r in rows}):
        srows = [r for r in rows if r["spec"] == spec]
        metric = srows[0]["metric"]
        unit, scale, allowed = GOALS[metric]
        for r in srows:
            r["fraction"] = point(r["fraction"])
        fractions = sorted({r["fraction"] for r in srows}, key=_order)

        def frozen(f):
            share = float(next(r["frozen_fraction"] for r in srows if r["fraction"] == f))
            return f"shipped ({share:.0%} frozen)" if f == SHIPPED else f"{share:.0%} frozen"
        lines.append(f"## {spec}")
        lines.append("")
        header = "| task | method | " + " | ".join(frozen(f) for f in fractions) + " |"
        lines += [header, "|---|---|" + "---|" * len(fractions)]
        for task in sorted({r["task"] for r in srows}):
            values = {(r["fraction"], r["method"]): float(r["value"]) * scale for r in srows if r["task"] == task}
            for method in METHODS:
                cells = [f"{values[(f, method)]:.2f}" if (f, method) in values else "-" for f in fractions]
                lines.append(f"| {task} | {method} | " + " | ".join(cells) + " |")
            gaps = [f"{values[(f, 'semifreddo')] - values[(f, 'full')]:+.2f}"
                    if (f, "semifreddo") in values and (f, "full") in values else "-" for f in fractions]
            lines.append(f"| {task} | gap ({unit}) | " + " | ".join(gaps) + " |")
        def within(f):
            return all(float(a["value"]) * scale - float(b["value"]) * scale >= -allowed
                       for a in srows for b in srows
                       if a["fraction"] == f and b["fraction"] == f and a["task"] == b["task"]
                       and a["method"] == "semifreddo" and b["method"] == "full")
        reached = [f for f in fractions if f != SHIPPED and f >= 0.75 and within(f)]
        lines.append("")
        lines.append(f"Goal: at >= 75 % frozen, within {allowed} {unit} of full fine-tuning on every target: "
                     + (f"met at {', '.join(f'{f:.0%}' for f in reached)}." if reached else "not met."))
        if SHIPPED in fractions:
            lines.append(f"At the shipped point, within {allowed} {unit} on every target: "
                         + ("met." if within(SHIPPED) else "not met."))
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = sorted({r["spec"] for r in rows})
    fig, axes = plt.subplots(1, len(specs), figsize=(6 * len(specs), 4.2), squeeze=False)
    styles = {"semifreddo": "o-", "full": "s--", "head": "^:"}
    for ax, spec in zip(axes[0], specs):
        srows = [r for r in rows if r["spec"] == spec]
        metric = srows[0]["metric"]
        unit, scale, _ = GOALS[metric]
        for task in sorted({r["task"] for r in srows}):
            for method in METHODS:
                points = sorted((float(r["frozen_fraction"]), float(r["value"]) * scale) for r in srows
                                if r["task"] == task and r["method"] == method and r["fraction"] != SHIPPED)
                if points:
                    xs, ys = zip(*points)
                    ax.plot([100 * x for x in xs], ys, styles[method], label=f"{task}: {method}")
        ax.set_title(f"{spec}: target-task quality vs frozen fraction")
        ax.set_xlabel("frozen fraction of all parameters (%)")
        ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semifreddo.models.bench_accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from .spec import shipped_specs

    parser.add_argument("--specs", nargs="+", default=shipped_specs(), help="specs to measure (default: every shipped spec)")
    parser.add_argument("--fractions", nargs="+", type=point, default=list(FRACTIONS),
                        help="points: `shipped` (the spec as it is) and frozen fractions (default: shipped 0 0.5 0.75 0.9)")
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="multiply every spec's epochs by this (e.g. 0.1 for a quick look)")
    parser.add_argument("--task-epochs-scale", type=float, default=None,
                        help="multiply only the task-training epochs by this (default: --epochs-scale); "
                             "for asking whether the target tasks are under-trained with the same core")
    parser.add_argument("--frame", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="measure photos specs on held-out frames of this size instead of input.shape (the "
                             "network is the same at every frame size; a reused repeat group is then modelled "
                             "unrolled, which computes the same function)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--build", type=Path, default=Path("build/bench-accuracy"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .spec import load_spec

    args.out.mkdir(parents=True, exist_ok=True)
    args.build.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "accuracy.csv"
    frames_csv = args.build / "pixel-frames.csv"         # per held-out frame, photos specs' shipped point
    rows, frames = load_rows(csv_path), load_rows(frames_csv)
    from semifreddo.deploy.contract.errors import SemifreddoError

    specs = []
    for name in args.specs:
        try:
            spec = load_spec(name)
            if args.frame and spec.data.dataset == "photos":
                spec = spec.replace(input_shape=(*args.frame, spec.input_shape[2]), repeat_hardware="unrolled")
        except SemifreddoError as exc:
            parser.error(str(exc))
        specs.append(spec)
    for spec in specs:
        if args.frame and spec.data.dataset == "photos":
            print(f"{spec.name}: held-out frames of {args.frame[0]}x{args.frame[1]}")
        for fraction in args.fractions:
            if any(r["spec"] == spec.name and point(r["fraction"]) == fraction for r in rows):
                print(f"{spec.name} {fraction}: done earlier, kept from {csv_path}")
                continue
            print(f"{spec.name} {fraction}:", flush=True)
            task_scale = args.epochs_scale if args.task_epochs_scale is None else args.task_epochs_scale
            per_frame = [] if spec.data.dataset == "photos" and fraction == SHIPPED else None
            rows += run_point(spec, fraction, args.build, args.epochs_scale, task_scale, per_frame)
            save_rows(csv_path, rows)
            if per_frame:
                frames = [r for r in frames if r["spec"] != spec.name] + per_frame
                save_rows(frames_csv, frames, FRAME_FIELDS)
    (args.out / "accuracy.md").write_text(markdown(rows))
    plot(rows, args.out / "accuracy.png")
    print((args.out / "accuracy.md").read_text())
    written = [csv_path, args.out / "accuracy.md", args.out / "accuracy.png"]
    if frames:
        (args.build / "pixel-quality.md").write_text(frames_markdown(frames))
        print((args.build / "pixel-quality.md").read_text())
        written += [frames_csv, args.build / "pixel-quality.md"]
    print(f"wrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
