"""The demo's last step: the emulated board against the QKeras model (host side).

``python -m semifreddo.hls_project.board_check --spec digits --bundle build/digits/bundle-emulated``
drives the board with the real command line, each command its own process as a user would type
it: ``semifreddo reload --task A``, ``semifreddo run``, ``semifreddo reload --task B``,
``semifreddo run`` at every repeat count the register map allows (the repeat register changes
between runs without a reload). It compares every output the board wrote with the QKeras model's
(frozen core and that task's weight set loaded, quantized as the hardware computes, run the same
number of times) on the same held-out images, and exits 1 unless all are bit-identical.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract.errors import SemifreddoError


def board(*args) -> str:
    proc = subprocess.run([sys.executable, "-m", "semifreddo.models.cli", *map(str, args)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SemifreddoError(f"`semifreddo {' '.join(map(str, args))}` failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="digits")
    parser.add_argument("--build", default="build")
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=None)
    args = parser.parse_args(argv)

    from semifreddo.models.cli_args import quiet_tensorflow
    from semifreddo.models.spec import load_spec

    quiet_tensorflow()
    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.training import load_reference_model, predict

    from .check import held_out_inputs

    spec = load_spec(args.spec)
    work = args.bundle.parent / "board-demo"
    work.mkdir(exist_ok=True)
    task_a, task_b = (t.task for t in spec.data.targets[:2])
    all_equal = True
    for task in (task_a, task_b):
        x = held_out_inputs(spec, task, args.samples)
        np.save(work / f"x_{task}.npy", x)
        print(board("reload", args.bundle, "--task", task))
        ws = read_weight_set(args.bundle / "weightsets" / f"{task}.npz")
        model = load_reference_model(spec, args.build, ws)
        for repeat in range(spec.repeat_min, spec.repeat_max + 1):     # a run-time register: no reload
            output = work / f"y_{task}_r{repeat}.npy"
            print(board("run", args.bundle, "--input", work / f"x_{task}.npy", "--output", output,
                        "--repeat", repeat))
            y_board = np.load(output)
            set_repeat(model, spec, repeat)
            y_qkeras = predict(model, grid_values(x, spec.input_bits))
            differ = int(np.count_nonzero(y_board != y_qkeras))
            all_equal &= differ == 0 and y_board.shape == y_qkeras.shape
            print(f"{spec.name}/{task} repeat {repeat}: {differ} of {y_qkeras.size} outputs of the emulated board "
                  f"differ from the QKeras model on {len(x)} held-out images -- "
                  f"{'bit-identical' if differ == 0 else 'MISMATCH'}")
        if spec.head_type == "pixel" and spec.input_bits == 8:
            all_equal &= photo_round_trip(spec, args.bundle, work, task, x[0], model)
    print(board("status", args.bundle))
    return 0 if all_equal else 1


def photo_round_trip(spec, bundle: Path, work: Path, task: str, frame: np.ndarray, model) -> bool:
    """A held-out frame as a PNG photograph through `semifreddo run`, out as a PNG: its pixels must be
    the QKeras output clipped to [0, 1] and rounded to 8 bits."""
    from PIL import Image

    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.training import predict

    photo, output = work / "held_out.png", work / f"{task}.png"
    codes = frame.astype(np.uint8)                        # 8-bit input codes: the PNG's pixels
    Image.fromarray(codes[..., 0] if codes.shape[-1] == 1 else codes).save(photo)
    print(board("run", bundle, "--input", photo, "--output", output, "--repeat", spec.repeat_default))
    set_repeat(model, spec, spec.repeat_default)
    y = predict(model, grid_values(frame[None], spec.input_bits))[0]
    same = np.array_equal(np.asarray(Image.open(output)), np.round(np.clip(y[..., 0], 0, 1) * 255).astype(np.uint8))
    print(f"{spec.name}/{task}: {photo.name} -> {output} ({'the QKeras output, to 8 bits' if same else 'MISMATCH'})")
    return same
    print(board("status", args.bundle))
    return 0 if all_equal else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SemifreddoError as exc:
        print(f"semifreddo: error: {exc}", file=sys.stderr)
        sys.exit(2)
