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


def save_rows(path: Path, rows: list[dict]) -> None:
    import io

    from semifreddo.deploy.contract.fileio import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def point(value: str) -> str | float:
    """A point of the sweep: ``shipped`` or a frozen fraction."""
    return value if value == SHIPPED else float(value)


def _order(fraction) -> float:
    return -1.0 if fraction == SHIPPED else float(fraction)


def run_point(spec, fraction, build: Path, epochs_scale: float, task_epochs_scale: float) -> list[dict]:
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
    return rows


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
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--build", type=Path, default=Path("build/bench-accuracy"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .spec import load_spec

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "accuracy.csv"
    rows = load_rows(csv_path)
    for name in args.specs:
        spec = load_spec(name)
        for fraction in args.fractions:
            if any(r["spec"] == spec.name and point(r["fraction"]) == fraction for r in rows):
                print(f"{spec.name} {fraction}: done earlier, kept from {csv_path}")
                continue
            print(f"{spec.name} {fraction}:", flush=True)
            task_scale = args.epochs_scale if args.task_epochs_scale is None else args.task_epochs_scale
            rows += run_point(spec, fraction, args.build, args.epochs_scale, task_scale)
            save_rows(csv_path, rows)
    (args.out / "accuracy.md").write_text(markdown(rows))
    plot(rows, args.out / "accuracy.png")
    print((args.out / "accuracy.md").read_text())
    print(f"wrote {csv_path}, {args.out / 'accuracy.md'}, {args.out / 'accuracy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
