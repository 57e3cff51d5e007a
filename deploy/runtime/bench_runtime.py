"""``make bench-runtime``: what a task switch costs, against reloading a bitstream.

On the emulated board (the same driver and pynq calls as on a board, with every AXI-Lite access
counted by the device), one task switch is measured in 32-bit AXI-Lite words written and read and
in bytes moved. A switch by bitstream instead (one bitstream per task) moves the part's whole
configuration bitstream; its length is fixed per part and documented by AMD (the board table,
``boards.py``, gives each length and its source).

Usage: ``python -m semifreddo.deploy.runtime.bench_runtime BUNDLE [--repeats N]``. numpy, pynq and the
standard library only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Task-switch cost on the emulated board vs a bitstream reload.")
    parser.add_argument("bundle", type=Path, help="an emulated deploy bundle (make package BOARD=emulated)")
    parser.add_argument("--repeats", type=int, default=20)
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
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"switch": cost, "bitstreams": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
