"""``make bench-hls``: conversion and C simulation, against plain hls4ml and QKeras, in one run.

For one spec's network, measured here and now (no stored figures):

* convert + compile: the Semifreddo backend (``semifreddo convert`` and its C simulation library)
  with the frozen core as adder graphs (the first time: da4ml solves every frozen conv; then again,
  with the solutions cached) and as constant multipliers, against plain hls4ml's Vitis backend
  converting the same network (every repetition unrolled) with every weight a constant and the
  Latency strategy (``convert_from_keras_model`` + ``compile()``). All start from the trained core
  on disk, so every convert time includes building the QKeras model. hls4ml compiles with ``-O3``
  (its own build script); ours with ``-O1``. Ours also switches off GCC's warning-only "access
  analysis" pass (``csim.NO_ACCESS_WARNINGS``); hls4ml's script does not.
  Our compile runs the IP's translation unit and the C ABI bridge's side by side. An adder graph
  compiles for C simulation as integer arithmetic on its values' codes (``adder_graph.csim_body``;
  Vitis HLS synthesizes da4ml's ``ap_fixed`` body): on digits that took the first compile from 25 s
  to 7-12 s (by load) and the C simulation from 340 to about 1,700 inputs/s on one core (2026-12-07).
* throughput (inputs per second): our C simulation (one start of the IP per batch, the frames spread
  over every core, each through a private copy of the library), plain hls4ml's ``predict`` (one
  library call per input), and QKeras on the CPU (eager batches). Beside it, the emulated board's
  pixels per second: the same library driven as the emulated board drives it (the driver's starts
  of ``driver.DEFAULT_BATCH`` frames under one commit, each start's frames spread over the cores by
  ``SimulatedIP.start_spread``).

Every one must agree with QKeras bit for bit on the inputs used, or the benchmark stops.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _board_starts(sim, x, ws, repeat: int, batch: int) -> np.ndarray:
    """What the emulated board computes for the driver: the weight set committed once, then starts of
    ``batch`` frames, each spread over the cores as the emulator spreads it."""
    from semifreddo.deploy.contract.streams import input_codes, output_values, pack_pixels

    seq = sim.load(0, ws)
    codes = input_codes(x, sim.io)
    outputs = []
    for first in range(0, len(codes), batch):
        chunk = codes[first:first + batch]
        beats, _ = sim._ip.start_spread(ws.words, seq, repeat, len(chunk), pack_pixels(chunk, sim.io))
        outputs.append(output_values(beats, len(chunk), sim.io))
    return np.concatenate(outputs)


def _ensure_core(spec, build: Path) -> None:
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.training import train_core

    if not BuildPaths.for_spec(spec, build).core.exists():
        print(f"no trained core under {build}; training a quick one (timing does not depend on quality)")
        train_core(spec, build, epochs=2, subset=256, progress=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semifreddo.hls_project.bench_hls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="digits")
    parser.add_argument("--build", type=Path, default=Path("build"),
                        help="build folder holding the trained core (default: build)")
    parser.add_argument("--inputs", type=int, default=500, help="held-out inputs for throughput (default 500)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import hls4ml

    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.spec import load_spec
    from semifreddo.models.training import load_reference_model, predict

    from semifreddo.deploy.contract.boards import BOARDS
    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.deploy.runtime.driver import DEFAULT_BATCH
    from semifreddo.hls_project.plan import hardware_layout

    from . import csim as csim_module
    from .check import held_out_inputs
    from .convert import conversion_model, convert
    from .extension_layers import enable_on_backend
    from .precision import hls_config

    spec = load_spec(args.spec)
    _ensure_core(spec, args.build)
    paths = BuildPaths.for_spec(spec, args.build)
    scratch = args.build / "bench-hls" / spec.name
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    bench_build = scratch / "semifreddo"
    shutil.copytree(paths.root, bench_build / spec.name, ignore=shutil.ignore_patterns("hls*", "bundle*", "synth"))

    # ---- convert + compile ------------------------------------------------------------------
    graphs = BuildPaths.for_spec(spec, bench_build).adder_graphs
    shutil.rmtree(graphs, ignore_errors=True)
    print(f"[1/5] Semifreddo backend, adder graphs: convert {spec.name} (solving every frozen conv) and compile")
    adder = spec.replace(frozen_implementation="adder_graph")
    ours, t_convert = _timed(lambda: convert(adder, bench_build))
    _, t_compile = _timed(lambda: csim_module.build_library(ours.hls_dir))
    print("[2/5] the same, converted again (adder graphs from the cache; the library is reused)")
    _, t_reconvert = _timed(lambda: convert(adder, bench_build))
    _, t_recompile = _timed(lambda: csim_module.build_library(ours.hls_dir))
    print("[3/5] Semifreddo backend, constant multipliers: convert and compile")
    mult_build = scratch / "multipliers"
    shutil.copytree(bench_build / spec.name, mult_build / spec.name, ignore=shutil.ignore_patterns("hls*", "adder*"))
    mult = spec.replace(frozen_implementation="multipliers")
    mult_conversion, t_mult_convert = _timed(lambda: convert(mult, mult_build))
    _, t_mult_compile = _timed(lambda: csim_module.build_library(mult_conversion.hls_dir))

    print("[4/5] plain hls4ml (Vitis backend, Latency, every weight constant): convert and compile")
    vitis = hls4ml.backends.get_backend("Vitis")
    enable_on_backend(vitis)
    # Both sides start from the same artifact, the trained core on disk, so plain hls4ml's convert
    # time includes building the QKeras model it converts (ours does that inside `convert`).
    plain_spec = spec.replace(frozen_implementation="multipliers", repeat_hardware="unrolled")
    (model, _), t_plain_model = _timed(lambda: conversion_model(plain_spec, bench_build))
    set_repeat(model, spec, spec.repeat_default)
    config = hls_config(hardware_layout(plain_spec))
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        plain, t_plain_convert = _timed(lambda: hls4ml.converters.convert_from_keras_model(
            model, output_dir=str(scratch / "plain-hls4ml"), project_name="myproject", backend="Vitis",
            io_type="io_stream", hls_config=config, part=BOARDS[spec.hardware.board].part, clock_period=10))
        _, t_plain_compile = _timed(plain.compile)
    t_plain_convert += t_plain_model

    # ---- throughput ---------------------------------------------------------------------------
    print(f"[5/5] throughput on {args.inputs} held-out inputs (ours on {os.cpu_count()} cores)")
    ws = read_weight_set(BuildPaths.for_spec(spec, bench_build).weightset(spec.data.source))
    x = held_out_inputs(spec, spec.data.source, args.inputs)
    x_grid = grid_values(x, spec.input_bits)                      # what the QKeras model and hls4ml compute on
    sim = csim_module.CSim(ours.hls_dir)
    sim.run(x, ws, spec.repeat_default)                         # warm up (commit, page-in, every core's copy)
    y_ours, t_ours = _timed(lambda: sim.run(x, ws, spec.repeat_default))
    y_one, t_one = _timed(lambda: sim.run(x, ws, spec.repeat_default, workers=1))
    y_board, t_board = _timed(lambda: _board_starts(sim, x, ws, spec.repeat_default, DEFAULT_BATCH))
    pixels = int(np.prod(spec.input_shape[:2]))
    with contextlib.redirect_stdout(chatter):
        y_plain, t_plain = _timed(lambda: plain.predict(np.ascontiguousarray(x_grid, dtype=np.float32)))
    reference = load_reference_model(spec, bench_build, ws)
    set_repeat(reference, spec, spec.repeat_default)
    predict(reference, x_grid[:4])
    y_keras, t_keras = _timed(lambda: predict(reference, x_grid))
    y_plain = np.asarray(y_plain).reshape(y_keras.shape)
    for name, y in (("Semifreddo C simulation", y_ours), ("Semifreddo C simulation on one core", y_one),
                    ("emulated board", y_board), ("plain hls4ml", y_plain)):
        mismatches = int(np.count_nonzero(y != y_keras))
        if mismatches:
            print(f"error: {name} differs from QKeras on {mismatches} outputs; the timings would compare "
                  "different computations", file=sys.stderr)
            return 1

    plain_total = t_plain_convert + t_plain_compile
    totals = {"adder_graph_first": t_convert + t_compile, "adder_graph_again": t_reconvert + t_recompile,
              "multipliers": t_mult_convert + t_mult_compile, "plain_hls4ml_latency": plain_total}
    rows = {
        "spec": spec.name,
        "convert_s": {"adder_graph_first": t_convert, "adder_graph_again": t_reconvert,
                      "multipliers": t_mult_convert, "plain_hls4ml": t_plain_convert},
        "compile_s": {"adder_graph_first": t_compile, "adder_graph_again": t_recompile, "multipliers": t_mult_compile,
                      "plain_hls4ml_O3": t_plain_compile},
        "convert_compile_s": totals,
        "ratio_to_plain": {k: v / plain_total for k, v in totals.items()},
        "throughput_inputs_per_s": {"semifreddo_csim": len(x) / t_ours, "semifreddo_csim_one_core": len(x) / t_one,
                                    "plain_hls4ml_csim": len(x) / t_plain,
                                    "qkeras_cpu": len(x) / t_keras, "emulated_board": len(x) / t_board},
        "emulated_board_pixels_per_s": len(x) * pixels / t_board,
        "csim_cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "inputs": len(x),
        "bit_exact": True,
    }
    tp = rows["throughput_inputs_per_s"]
    ratio = rows["ratio_to_plain"]
    lines = [
        f"# bench-hls: spec {spec.name}, measured {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "| | convert | compile | convert + compile | vs plain hls4ml |",
        "|---|---|---|---|---|",
        f"| adder graphs, first time (da4ml solves) | {t_convert:.1f} s | {t_compile:.1f} s | "
        f"{totals['adder_graph_first']:.1f} s | **{ratio['adder_graph_first']:.2f}x** (goal <= 2x) |",
        f"| adder graphs, converted again (cached) | {t_reconvert:.1f} s | {t_recompile:.1f} s (library reused) | "
        f"{totals['adder_graph_again']:.1f} s | {ratio['adder_graph_again']:.2f}x |",
        f"| constant multipliers | {t_mult_convert:.1f} s | {t_mult_compile:.1f} s | {totals['multipliers']:.1f} s | "
        f"{ratio['multipliers']:.2f}x |",
        f"| plain hls4ml, Latency, every weight constant (-O3) | {t_plain_convert:.1f} s | {t_plain_compile:.1f} s | "
        f"{plain_total:.1f} s | 1.00x |",
        "",
        f"C-sim throughput (adder graphs, {os.cpu_count()} cores): {tp['semifreddo_csim']:.0f} inputs/s; plain hls4ml "
        f"{tp['plain_hls4ml_csim']:.0f} inputs/s: **{tp['semifreddo_csim'] / tp['plain_hls4ml_csim']:.2f}x** (goal >= 3x); "
        f"QKeras on the CPU {tp['qkeras_cpu']:.0f} inputs/s. Ours on one core (plain hls4ml's `predict` uses one): "
        f"{tp['semifreddo_csim_one_core']:.0f} inputs/s, {tp['semifreddo_csim_one_core'] / tp['plain_hls4ml_csim']:.2f}x.",
        f"Emulated board (the driver's starts of {DEFAULT_BATCH} frames, each spread over the cores): "
        f"{tp['emulated_board']:.0f} inputs/s = "
        f"{rows['emulated_board_pixels_per_s']:,.0f} pixels/s ({pixels} pixels an input).",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work on the machine "
        "slows the parallel compile and the spread C simulation first).",
        f"All of them produced identical outputs on the {len(x)} inputs. The first adder-graph solve in a new "
        "virtualenv also pays about 100 s of numba compilation (once; not in these figures if it was paid before).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"hls-{spec.name}.md").write_text(report)
    (args.out / f"hls-{spec.name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
