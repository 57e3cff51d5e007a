"""Printing and plotting an :class:`~.estimator.Estimate`: per-layer tables, totals, ratios, a bar chart.

Every output carries the estimate label (which table, which multiplier policy, the area and
power models), so no number leaves this module looking like a synthesis result.
"""

from __future__ import annotations

import math

import json
from pathlib import Path

from semifreddo.deploy.contract.fileio import atomic_write_bytes, atomic_write_text

from semifreddo.deploy.contract.boards import BOARDS, FIT_LIMITS

from .costs import Resources
from .estimator import DESIGNS, TITLES, Design, Estimate

METRICS = (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram18", "BRAM18"), ("area", "area"),
           ("power_mw", "power mW"))


def _layer_table(design: Design) -> list[str]:
    lines = [f"{'layer':<20} {'LUT':>8} {'FF':>8} {'DSP':>5} {'BRAM18':>6} {'pJ/cyc':>8} {'lat':>5}  what"]
    for layer in design.layers:
        r = layer.resources.rounded()
        lines.append(f"{layer.name:<20} {r['lut']:>8} {r['ff']:>8} {r['dsp']:>5} {r['bram18']:>6} "
                     f"{layer.pj_per_cycle:>8.2f} {layer.latency:>5}  {layer.note}")
    t = design.total.rounded()
    lines.append(f"{'total':<20} {t['lut']:>8} {t['ff']:>8} {t['dsp']:>5} {t['bram18']:>6} "
                 f"{sum(layer.pj_per_cycle for layer in design.layers):>8.2f}")
    return lines


def summary_rows(est: Estimate) -> list[dict]:
    rows = []
    for name in DESIGNS:
        d = est.designs[name]
        m = d.metrics()
        rows.append({"design": name, **{k: round(v, 2) for k, v in m.items()},
                     "cycles_per_frame": d.cycles_per_frame, "latency_cycles": d.latency_cycles,
                     "frames_per_second": round(d.frames_per_second, 1), "clock_mhz": d.clock_mhz})
    return rows


def by_repeat_rows(est: Estimate) -> list[dict]:
    """Throughput at every repeat count, and the general accelerator sized for the same throughput."""
    ip = est.designs["semifreddo"]
    rows = []
    for repeat, cycles in ip.cycles_by_repeat.items():
        general = est.general_by_repeat[repeat]
        ip_area, ip_power = ip.total.area, ip.power_at(repeat)
        rows.append({"repeat": repeat, "cycles_per_frame": cycles,
                     "frames_per_second": round(ip.clock_mhz * 1e6 / cycles, 1), "ip_power_mw": round(ip_power, 2),
                     "general_area": round(general.total.area, 1), "general_power_mw": round(general.power_mw, 2),
                     "area_vs_general": round(general.total.area / ip_area, 3),
                     "power_vs_general": round(general.power_mw / ip_power, 3)})
    return rows


def throughput_lines(est: Estimate) -> list[str]:
    spec = est.spec
    ip = est.designs["semifreddo"]
    h, w, _ = spec.input_shape
    blocks = list(spec.repeated_blocks)
    head = (f"throughput: every layer takes one pixel per clock (II=1); a {h}x{w} frame, padded for the "
            f"convolutions, takes {ip.cycles_by_repeat[spec.repeat_min]} cycles")
    if spec.repeat_max == 1:
        return [f"{head}: {ip.frames_per_second:,.0f} frames/s at {ip.clock_mhz:g} MHz"]
    if spec.hardware.repeat_hardware == "unrolled":
        lines = [f"{head} at every repeat count (repeat.hardware: unrolled: blocks {blocks} are laid out "
                 f"{spec.repeat_max} times)"]
    else:
        lines = [f"{head}; repeat.hardware: reuse: blocks {blocks} exist once and a frame passes through them "
                 f"`repeat` times, so the repeat stage needs about `repeat` frame periods per frame"]
    lines.append(f"{'repeat':>8} {'cycles/frame':>13} {'frames/s':>11} {'IP mW':>8} {'general area':>13} "
                 f"{'general mW':>11} {'area ratio':>11} {'power ratio':>12}   (general accelerator at the same "
                 "throughput)")
    for row in by_repeat_rows(est):
        lines.append(f"{row['repeat']:>8} {row['cycles_per_frame']:>13,} {row['frames_per_second']:>11,.0f} "
                     f"{row['ip_power_mw']:>8.1f} {row['general_area']:>13,.0f} {row['general_power_mw']:>11.1f} "
                     f"{row['area_vs_general']:>10.1f}x {row['power_vs_general']:>11.1f}x")
    lines.append(f"the comparison below is at the spec's default repeat count, {spec.repeat_default}")
    return lines


def text_report(est: Estimate, layers: bool = True) -> str:
    spec = est.spec
    ip = est.designs["semifreddo"]
    out = [f"ESTIMATE (not a synthesis result) for spec {spec.name}: frozen fraction {spec.frozen_fraction:.1%}"
           + (f", frozen core {est.core_id}" if est.core_id else ""),
           est.label, *throughput_lines(est), ""]
    if layers:
        for name in DESIGNS:
            d = est.designs[name]
            out.append(f"== {d.title} (latency {d.latency_cycles} cycles = {d.latency_cycles / d.clock_mhz:.2f} us)")
            out += _layer_table(d) + [f"   note: {n}" for n in d.notes] + [""]
    lines = sum((layer.line_buffer for layer in ip.layers), Resources())
    h, w, _ = spec.input_shape
    out.append(f"line buffers of the IP at {w} pixels a line (hls4ml's ap_shift_reg rows, in SRLs): "
               f"{lines.lut:,.0f} LUT, {lines.lut / max(1.0, ip.total.lut):.0%} of its LUTs (in the totals)")
    out.append(f"{'design':<30} " + " ".join(f"{label:>10}" for _, label in METRICS))
    for row in summary_rows(est):
        out.append(f"{TITLES[row['design']]:<30} " + " ".join(f"{row[key]:>10,.1f}" for key, _ in METRICS))
    out.append("")
    out.append("ratios (baseline / SemifreddoNet IP; higher means the IP is smaller or cooler):")
    for name, ratio in est.ratios().items():
        out.append(f"{'vs ' + TITLES[name]:<30} " + " ".join(
            f"{ratio[key]:>9.1f}x" if ratio[key] == ratio[key] else f"{'n/a':>10}" for key, _ in METRICS))
    out += [""] + bank_lines(est) + [""] + board_fit(ip, spec)
    return "\n".join(out)


def bank_lines(est: Estimate) -> list[str]:
    """What each number of weight banks the spec may choose adds to the IP (hardware.banks), against
    the configurable cores themselves, and the count at which the banks cost as much."""
    cores = est.configurable.area
    lines = [f"weight banks (hardware.banks; ESTIMATE, added to the one-bank IP; this spec has "
             f"{est.spec.hardware.banks}): configurable cores (trainable convs, blends, head) "
             f"{cores:,.1f} slice eq."]
    for n, r in est.bank_prices.items():
        lines.append(f"  {n} bank(s): LUT {r.lut:>8,.0f}  FF {r.ff:>8,.0f}  area {r.area:>9,.1f}  "
                     f"= {r.area / cores if cores else 0:5.2f} x the configurable cores")
    equal = next((n for n, r in est.bank_prices.items() if cores and r.area >= cores), None)
    prices = est.bank_prices
    per_bank = (prices[max(prices)].area - prices[2].area) / (max(prices) - 2) if max(prices) > 2 else None
    if per_bank:
        lines.append(f"  each bank beyond two adds about {per_bank:,.1f} slice eq.")
    if equal:
        lines.append(f"  the banks cost as much as the configurable cores at {equal} banks")
    elif per_bank and cores:
        at = max(prices) + math.ceil((cores - prices[max(prices)].area) / per_bank)
        lines.append(f"  up to {max(prices)} banks they cost less than the configurable cores; at that rate they "
                     f"would equal them at about {at} banks")
    return lines


def board_fit(design: Design, spec) -> list[str]:
    """Estimated utilization of each board's programmable logic (board table capacities)."""
    used = design.total.rounded()
    lines = [f"does the {TITLES[design.name]} fit? (estimated use of each board's programmable logic, multipliers "
             f"placed for {spec.hardware.board}; a board fits when every share is within {_limits()})"]
    for board in BOARDS.values():
        if not board.capacity:
            continue
        shares = {key: used.get(key, 0) / capacity for key, capacity in board.capacity.items()}
        verdict = "fits" if all(shares[key] <= FIT_LIMITS[key] for key in shares) else "does NOT fit"
        lines.append(f"  {board.name:<11} {board.part:<22} " + "  ".join(
            f"{key.upper()} {share:6.0%}" for key, share in shares.items()) + f"  -> {verdict}")
    return lines


def _limits() -> str:
    return ", ".join(f"{key.upper()} {limit:.0%}" for key, limit in FIT_LIMITS.items())


def fit_verdict(est: Estimate, board_name: str | None = None) -> tuple[bool, str]:
    """Whether the IP fits a board (default: the spec's) with margin, as one line naming what is over
    and by how much."""
    board = BOARDS[board_name or est.spec.hardware.board]
    used = est.designs["semifreddo"].total.rounded()
    over = []
    for key, capacity in board.capacity.items():
        limit = FIT_LIMITS[key] * capacity
        if used[key] > limit:
            over.append(f"{key.upper()} {used[key]:,} is {used[key] / capacity:.0%} of its {capacity:,}, "
                        f"{used[key] - limit:,.0f} over the {FIT_LIMITS[key]:.0%} limit")
    shares = ", ".join(f"{key.upper()} {used[key] / capacity:.0%}" for key, capacity in board.capacity.items())
    if over:
        return False, f"the {est.spec.name} IP does NOT fit {board.name} ({board.part}) by estimate: {'; '.join(over)}"
    return True, f"the {est.spec.name} IP fits {board.name} ({board.part}) by estimate: {shares} (limits {_limits()})"


def to_json(est: Estimate) -> dict:
    return {
        "label": est.label, "spec": est.spec.name, "frozen_fraction": est.spec.frozen_fraction,
        "core_id": est.core_id, "table": est.table, "board": est.spec.hardware.board, "multipliers": est.spec.hardware.multipliers,
        "designs": {name: {"summary": row, "layers": [
            {"name": layer.name, **layer.resources.rounded(), "pj_per_cycle": round(layer.pj_per_cycle, 3),
             "latency": layer.latency, "note": layer.note} for layer in est.designs[name].layers]}
            for name, row in zip(DESIGNS, summary_rows(est))},
        "ratios": {name: {k: round(v, 3) for k, v in r.items()} for name, r in est.ratios().items()},
        "repeat": {"hardware": est.spec.hardware.repeat_hardware, "default": est.spec.repeat_default,
                   "by_repeat": by_repeat_rows(est)},
        "banks": {"chosen": est.spec.hardware.banks, "configurable_cores": est.configurable.rounded(),
                  "added": {str(n): r.rounded() for n, r in est.bank_prices.items()}},
    }


def write_outputs(est: Estimate, folder: Path) -> dict[str, Path]:
    """Write ``estimate.txt``, ``estimate.json`` and ``estimate.png`` into ``folder``."""
    folder = Path(folder)
    paths = {"txt": folder / "estimate.txt", "json": folder / "estimate.json", "png": folder / "estimate.png"}
    atomic_write_text(paths["txt"], text_report(est) + "\n")
    atomic_write_text(paths["json"], json.dumps(to_json(est), indent=1) + "\n")
    atomic_write_bytes(paths["png"], bar_chart(est))
    return paths


def bar_chart(est: Estimate) -> bytes:
    """PNG: each design's LUT, FF, area and power relative to the SemifreddoNet IP (log scale)."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    keys = [("lut", "LUT"), ("ff", "FF"), ("area", "area (slice eq.)"), ("power_mw", "power")]
    ip = est.designs["semifreddo"].metrics()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    width = 0.26
    for i, name in enumerate(DESIGNS):
        m = est.designs[name].metrics()
        values = [m[k] / ip[k] if ip[k] else 0 for k, _ in keys]
        bars = ax.bar([j + (i - 1) * width for j in range(len(keys))], values, width, label=TITLES[name])
        for bar, value in zip(bars, values):
            ax.annotate(f"{value:.1f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(range(len(keys)), [label for _, label in keys])
    ax.set_ylabel("relative to the SemifreddoNet IP")
    ax.set_title(f"ESTIMATE: {est.spec.name}, frozen fraction {est.spec.frozen_fraction:.0%}", fontsize=10)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, f"estimate from {est.table}; multipliers {est.spec.hardware.multipliers} on {est.spec.hardware.board}; "
             "power: Horowitz 45 nm op energies", fontsize=6.5, color="dimgray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
