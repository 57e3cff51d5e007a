"""The Vitis HLS C-synthesis report: reading ``csynth.xml`` and printing its summary.

``csynth_design`` writes ``<solution>/syn/report/csynth.xml`` (and ``<top>_csynth.xml``, the same
summary for the top function). The fields read here are the ones UG1399 "Synthesis Summary"
describes: latency (best/worst case, cycles), initiation interval (min/max), and the LUT, FF, DSP,
BRAM_18K and URAM estimates with what the part has available. Older Vivado HLS reports call the
DSP count ``DSP48E``; both are read. A latency or interval that depends on run-time values is
written as ``undef`` and read as unknown (None).

Beside the report the table shows the cost model's figures (:func:`cost_model_estimate`), labelled
as estimates, so a user sees how far the model was from Vitis HLS's own numbers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError

RESOURCES = (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram_18k", "BRAM_18K"), ("uram", "URAM"))


@dataclass(frozen=True)
class CsynthReport:
    tool_version: str | None
    part: str | None
    top: str | None
    target_clock_ns: float | None
    estimated_clock_ns: float | None
    latency_best: int | None
    latency_worst: int | None
    interval_min: int | None
    interval_max: int | None
    used: dict = field(default_factory=dict)        # lut, ff, dsp, bram_18k, uram -> count
    available: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _text(root, path: str) -> str | None:
    node = root.find(path)
    return node.text.strip() if node is not None and node.text else None


def _number(text: str | None, kind=int):
    try:
        return kind(text)
    except (TypeError, ValueError):
        return None          # missing, "undef", "-"


def _resources(node) -> dict:
    if node is None:
        return {}
    values = {child.tag: _number(child.text) for child in node}
    if "DSP" not in values and "DSP48E" in values:
        values["DSP"] = values["DSP48E"]
    return {key: values[tag] for key, tag in RESOURCES if values.get(tag) is not None}


def parse_csynth(path: str | Path) -> CsynthReport:
    path = Path(path)
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise SemifreddoError(f"{path}: no synthesis report") from None
    except ElementTree.ParseError as exc:
        raise SemifreddoError(f"{path}: not a readable csynth XML report ({exc})") from None
    if root.tag != "profile" or root.find("PerformanceEstimates") is None:
        raise SemifreddoError(f"{path}: not a Vitis HLS csynth report (no <profile>/<PerformanceEstimates>)")
    latency = "PerformanceEstimates/SummaryOfOverallLatency/"
    return CsynthReport(
        tool_version=_text(root, "ReportVersion/Version"),
        part=_text(root, "UserAssignments/Part"),
        top=_text(root, "UserAssignments/TopModelName"),
        target_clock_ns=_number(_text(root, "UserAssignments/TargetClockPeriod"), float),
        estimated_clock_ns=_number(_text(root, "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
                                   float),
        latency_best=_number(_text(root, latency + "Best-caseLatency")),
        latency_worst=_number(_text(root, latency + "Worst-caseLatency")),
        interval_min=_number(_text(root, latency + "Interval-min")),
        interval_max=_number(_text(root, latency + "Interval-max")),
        used=_resources(root.find("AreaEstimates/Resources")),
        available=_resources(root.find("AreaEstimates/AvailableResources")),
    )


def _span(low, high) -> str:
    if low is None and high is None:
        return "undef"
    if low is None or high is None or low == high:
        return f"{low if low is not None else high:,}"
    return f"{low:,}-{high:,}"


def _count(used, available) -> str:
    if used is None:
        return "-"
    if available:
        return f"{used:,} ({100.0 * used / available:.1f}%)"
    return f"{used:,}"


def format_table(report: CsynthReport, estimate: dict | None = None) -> str:
    """The summary table; with ``estimate``, a second column holds the cost model's figures."""
    clock = []
    if report.target_clock_ns:
        clock.append(f"target {report.target_clock_ns:g} ns")
    if report.estimated_clock_ns:
        clock.append(f"estimated {report.estimated_clock_ns:g} ns")
    title = ", ".join(x for x in (f"Vitis HLS {report.tool_version}" if report.tool_version else None,
                                  report.part, *clock) if x)
    rows = [("latency (cycles)", _span(report.latency_best, report.latency_worst)),
            ("II (cycles)", _span(report.interval_min, report.interval_max))]
    rows += [(label, _count(report.used.get(key), report.available.get(key)))
             for key, label in RESOURCES if key != "uram" or report.used.get("uram")]
    header = ("", "csynth")
    if estimate:
        keys = ["latency_cycles", "ii", *(key for key, _ in RESOURCES)]
        values = [estimate.get(k) for k in keys]
        rows = [(name, value, "-" if est is None else f"{est:,}") for (name, value), est in zip(rows, values)]
        header = ("", "csynth", "estimate")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"C synthesis report ({title})" if title else "C synthesis report"]
    lines += ["  " + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
              for row in [header, *rows]]
    if "undef" in (rows[0][1], rows[1][1]):
        lines.append("  undef: depends on run-time values (frames per start, repeat count)")
    if estimate and estimate.get("label"):
        lines.append(f"  estimate: {estimate['label']}")
    return "\n".join(lines)


def cost_model_estimate(spec, build, clock_mhz: float) -> dict:
    """The cost model's figures for the IP of ``spec`` (a shipped name or a YAML path), for the
    estimate column: latency, LUT, FF, DSP and BRAM, and the label that says they are estimates.
    Priced as the converted project's hardware plan built it, when there is a converted project
    (after `synth` there always is); otherwise as the spec describes it."""
    from semifreddo.hls_project.estimate.estimator import estimate_spec
    from semifreddo.hls_project.plan import PLAN_FILE, read_plan
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.spec import load_spec

    loaded = load_spec(spec)
    hls = BuildPaths.for_spec(loaded, build).hls
    plan = read_plan(hls, spec) if (hls / PLAN_FILE).exists() else None
    est = estimate_spec(loaded, build, plan=plan, clock_mhz=clock_mhz, cache_graphs=False)
    ip = est.designs["semifreddo"]
    used = ip.total.rounded()
    return {"latency_cycles": ip.latency_cycles, "ii": None, "lut": used["lut"], "ff": used["ff"],
            "dsp": used["dsp"], "bram_18k": used["bram18"], "label": est.label}
