"""``make bench-frames``: whole frames through the emulated board against QKeras, in the same run.

The emulated board (the pynq driver over the C simulation of the generated HLS, what `check`, `run`
and the notebook use off the board) and the QKeras model each process the same held-out frames of
the spec's frame size; the outputs must be bit-identical, and the times are printed side by side
with their ratio. QKeras is timed after a warm-up call (graph building is not counted); the
emulated board after its task is loaded. Both use every core the machine gives them.

Usage: ``python -m semifreddo.hls_project.bench_frames --spec pixels --build build --bundle B``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="pixels")
    parser.add_argument("--build", default="build")
    parser.add_argument("--bundle", type=Path, required=True, help="the spec's emulated deploy bundle")
    parser.add_argument("--frames", type=int, default=2, help="held-out frames to time (default 2)")
    parser.add_argument("--task", help="the weight set to run (default: the spec's first target task)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    from semifreddo.models.cli_args import quiet_tensorflow
    from semifreddo.models.spec import load_spec

    quiet_tensorflow()
    from semifreddo.deploy.contract.fileio import atomic_write_text
    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.deploy.runtime.driver import Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice
    from semifreddo.models.training import load_reference_model, predict

    from .check import held_out_inputs

    spec = load_spec(args.spec)
    task = args.task or (spec.data.targets[0].task if spec.data.targets else spec.data.source)
    frames = held_out_inputs(spec, task, args.frames, args.build)
    h, w, _ = spec.input_shape
    pixels = len(frames) * h * w

    model = load_reference_model(spec, args.build, read_weight_set(args.bundle / "weightsets" / f"{task}.npz"))
    values = grid_values(frames, spec.input_bits)
    predict(model, values[:1])                                   # warm-up: Keras builds its functions
    start = time.perf_counter()
    expected = predict(model, values)
    qkeras_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as state:
        board = Semifreddo(args.bundle, device=EmulatedDevice(state))
        board.switch(task)
        start = time.perf_counter()
        actual = board.run(frames)
        board_s = time.perf_counter() - start
    differ = int(np.count_nonzero(actual != expected))

    figures = {"spec": spec.name, "task": task, "frame": [h, w], "frames": len(frames),
               "qkeras_s": round(qkeras_s, 3), "emulated_board_s": round(board_s, 3),
               "qkeras_pixels_per_s": round(pixels / qkeras_s), "emulated_board_pixels_per_s": round(pixels / board_s),
               "emulated_board_vs_qkeras": round(qkeras_s / board_s, 4), "outputs_differ": differ}
    print(f"{spec.name}/{task}: {len(frames)} frame(s) of {h}x{w} on this machine")
    print(f"  QKeras model     {qkeras_s:8.2f} s  {figures['qkeras_pixels_per_s']:>12,} pixels/s")
    print(f"  emulated board   {board_s:8.2f} s  {figures['emulated_board_pixels_per_s']:>12,} pixels/s"
          f"  ({figures['emulated_board_vs_qkeras']:.3f}x QKeras's speed, 1/{board_s / qkeras_s:.0f})")
    print(f"  {differ} of {expected.size:,} outputs differ -- {'bit-identical' if differ == 0 else 'MISMATCH'}")
    if board_s > 20 * qkeras_s:
        print("  finding: the emulated board is slower than 1/20 of QKeras on whole frames")
    if args.out:
        atomic_write_text(args.out, json.dumps(figures, indent=2) + "\n")
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
