"""``make bench-runtime``: what a task switch costs, against reloading a bitstream, and a stream that
alternates two tasks on every frame with weight banks against a reload per switch.

On the emulated board (the same driver and pynq calls as on a board, with every AXI-Lite access
counted by the device), one task switch is measured in 32-bit AXI-Lite words written and read and
in bytes moved. A switch by bitstream instead (one bitstream per task) moves the part's whole
configuration bitstream; its length is fixed per part and documented by AMD (the board table,
``boards.py``, gives each length and its source).

With ``--banked BUNDLE`` (an emulated bundle of the same network built with two or more weight
banks), a stream whose frames alternate between two tasks is run twice in the same run on the
emulated board: both tasks resident in their banks, each frame naming its bank (no load at all);
and one bank, reloaded before every frame (shadow bank written, read back, committed). It prints
frames per second of each (emulator wall time, not a board figure) and the shadow-bank bytes
moved per switch, counted by the emulated device.

Usage: ``python -m semifreddo.deploy.runtime.bench_runtime BUNDLE [--banked BUNDLE] [--repeats N]``.
numpy, pynq and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..contract.boards import BOARDS

def measure(bundle: Path, repeats: int) -> dict:
    from .driver import Semifreddo
    from .emulator import EmulatedDevice

    with tempfile.TemporaryDirectory() as state:
        device = EmulatedDevice(state)
        sf = Semifreddo(bundle, device=device)
        tasks = list(sf.tasks)
        if len(tasks) < 2:
            raise SystemExit(f"{bundle}: needs two tasks to switch between")
        sf.switch(tasks[0])
        counts, seconds = [], []
        for i in range(repeats):
            reads, writes = device.axi_lite_reads, device.axi_lite_writes
            report = sf.switch(tasks[(i + 1) % 2])
            counts.append((device.axi_lite_writes - writes, device.axi_lite_reads - reads))
            seconds.append(report.seconds)
        if len(set(counts)) != 1:
            raise SystemExit(f"switches differ in AXI-Lite traffic: {sorted(set(counts))}")
        written, read = counts[0]
        return {"bank_words": sf.regmap.n_words, "words_written": written, "words_read": read,
                "bytes_moved": 4 * (written + read), "emulated_switch_ms_median": 1e3 * statistics.median(seconds),
                "tasks": tasks[:2]}


def measure_banks(bundle: Path, frames: int) -> dict:
    """Alternating two tasks frame by frame: with both resident in banks, and with a reload per switch."""
    from .driver import Semifreddo
    from .emulator import EmulatedDevice

    with tempfile.TemporaryDirectory() as state:
        device = EmulatedDevice(state)
        sf = Semifreddo(bundle, device=device)
        tasks = list(sf.tasks)[:2]
        if len(tasks) < 2 or sf.n_banks < 2:
            raise SystemExit(f"{bundle}: needs two tasks and an IP of two or more banks (hardware.banks)")
        io = sf.io
        x = np.random.default_rng(0).integers(0, 2 ** int(io["input_bits"]), (frames, *io["input_shape"]))
        sf.load(tasks[0], bank=0)
        sf.load(tasks[1], bank=1)
        shadow, started = device.shadow_words, time.perf_counter()
        sf.run({tasks[0]: x, tasks[1]: x})                 # one stream, frames alternate between the banks
        banked_s, banked_words = time.perf_counter() - started, device.shadow_words - shadow
        shadow, started, reloads = device.shadow_words, time.perf_counter(), 0
        for frame in range(frames):
            for task in tasks:                              # the same alternation, one bank reloaded each time
                reloads += sf.load(task, bank=0).bytes_moved > 0     # (the first finds its task there already)
                sf.run(x[frame:frame + 1], task=task)
        reload_s, reload_words = time.perf_counter() - started, device.shadow_words - shadow
        switches = 2 * frames - 1
        return {"tasks": tasks, "banks": sf.n_banks, "frames": 2 * frames,
                "banked_fps": 2 * frames / banked_s, "reload_fps": 2 * frames / reload_s,
                "banked_bytes_per_switch": 4 * banked_words / switches,
                "reload_bytes_per_switch": 4 * reload_words / max(1, reloads)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Task-switch cost on the emulated board vs a bitstream reload.")
    parser.add_argument("bundle", type=Path, help="an emulated deploy bundle (make package BOARD=emulated)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--banked", type=Path, metavar="BUNDLE",
                        help="an emulated bundle of the same network with two or more weight banks: also measure a "
                             "stream alternating two tasks per frame, with banks and with a reload per switch")
    parser.add_argument("--frames", type=int, default=32, help="frames per task in the alternating stream")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    cost = measure(args.bundle, args.repeats)
    print(f"task switch ({cost['tasks'][0]} <-> {cost['tasks'][1]}), shadow bank of {cost['bank_words']} words, "
          f"measured on the emulated board over {args.repeats} switches:")
    print(f"  AXI-Lite words written {cost['words_written']}, read {cost['words_read']}  ->  "
          f"{cost['bytes_moved']:,} bytes moved (emulator wall time {cost['emulated_switch_ms_median']:.1f} ms, "
          "not a board figure)")
    print(f"\n{'board':<12} {'part':<22} {'full bitstream':>16} {'switch':>10} {'ratio':>10}  source")
    rows = []
    for board in (b for b in BOARDS.values() if b.bitstream_bits):
        nbytes = board.bitstream_bits // 8
        ratio = nbytes / cost["bytes_moved"]
        rows.append({"board": board.name, "part": board.part, "bitstream_bytes": nbytes, "ratio": ratio,
                     "source": board.bitstream_source})
        print(f"{board.name:<12} {board.part:<22} {nbytes:>14,} B {cost['bytes_moved']:>8,} B {ratio:>9,.0f}x  "
              f"{board.bitstream_source}")
    result = {"switch": cost, "bitstreams": rows}
    if args.banked:
        banks = measure_banks(args.banked, args.frames)
        result["alternating"] = banks
        print(f"\na stream alternating {banks['tasks'][0]} and {banks['tasks'][1]} on every frame, {banks['frames']} "
              f"frames, measured in the same run on the emulated board (emulator wall time, not a board figure):")
        print(f"  {banks['banks']} weight banks, both tasks resident:  {banks['banked_fps']:8.1f} frames/s, "
              f"{banks['banked_bytes_per_switch']:,.0f} bytes moved per switch")
        print(f"  one bank, reloaded per switch:        {banks['reload_fps']:8.1f} frames/s, "
              f"{banks['reload_bytes_per_switch']:,.0f} bytes moved per switch (shadow bank written and read back)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
