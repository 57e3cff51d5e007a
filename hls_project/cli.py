"""``semifreddo convert``, ``csim`` and ``check``: the HLS stage's commands."""

from __future__ import annotations

import sys
from pathlib import Path

from semifreddo.deploy.contract.streams import add_input_scale_argument
from semifreddo.models.cli_args import (add_build_argument, add_hardware_arguments, add_spec_and_build, add_spec_argument,
                                        hardware_choice)

STAGE = 2    # where these commands appear in `semifreddo --help` (pipeline order)


def _spec(args):
    from semifreddo.models.spec import load_spec

    return load_spec(args.spec)


def cmd_convert(args) -> int:
    spec = hardware_choice(_spec(args), args, "convert for")
    from .convert import convert
    from .csim import build_count, build_library

    result = convert(spec, args.build, part=args.part, clock_ns=args.clock_ns, log=sys.stderr)
    print(f"HLS project    {result.hls_dir}  (converted in {result.seconds:.1f} s)")
    print(f"register map   {result.regmap_path}  (id {result.regmap_id})")
    print(f"frozen core    {result.core_id}")
    if not args.no_compile:
        before = build_count(result.hls_dir)
        lib = build_library(result.hls_dir)
        state = "compiled" if build_count(result.hls_dir) > before else "reused"
        print(f"C simulation   {lib}  ({state})")
    return 0


def cmd_csim(args) -> int:
    from semifreddo.deploy.contract.streams import check_photo_output, load_images, save_outputs

    spec = _spec(args)
    from .check import load_checked_weights, open_csim

    ws = load_checked_weights(spec, args.build, args.weights)
    sim = open_csim(spec, args.build)
    check_photo_output(args.output, sim.io)
    outputs = sim.run(load_images(args.input), ws, args.repeat, scale=args.input_scale)
    written = save_outputs(args.output, outputs)
    print(f"{written[0]}{' ...' if len(written) > 1 else ''}: {outputs.shape[0]} output(s) of shape {outputs.shape[1:]} "
          f"(task {ws.task}, repeat {args.repeat or spec.repeat_min})")
    return 0


def cmd_check(args) -> int:
    spec = _spec(args)
    from .check import check, check_layers

    if args.layers:
        rows = check_layers(spec, args.build, args.weights, args.repeat)
        width = max(len(name) for name, _, _ in rows)
        for name, bad, total in rows:
            print(f"{name:<{width}}  {bad:6d} of {total:6d} values differ")
        return 0 if all(bad == 0 for _, bad, _ in rows) else 1
    from semifreddo.models.artifacts import BuildPaths

    from .csim import build_count

    repeats = None if args.repeat is None else [args.repeat]
    result = check(spec, args.build, args.weights, repeats, samples=args.samples)
    hls_dir = BuildPaths.for_spec(spec, args.build).hls
    print(f"C simulation library compiled {build_count(hls_dir)} time(s) for {hls_dir}")
    for repeat, bad in result.mismatches.items():
        verdict = "bit-exact" if bad == 0 else f"MISMATCH (largest difference {result.max_abs_diff[repeat]:.6g})"
        print(f"{spec.name}/{result.task} repeat {repeat}: {bad} of {result.n_outputs} outputs differ from QKeras "
              f"on {result.n_inputs} held-out inputs -- {verdict}")
    return 0 if result.passed else 1


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a trained frozen core into a Vitis HLS project (hls4ml)",
                       description="Convert the spec's trained frozen core into a Vitis HLS project with "
                                   "hls4ml (Semifreddo backend, io_stream): frozen weights become C++ "
                                   "constants, configurable parameters a register bank behind AXI-Lite. "
                                   "Writes BUILD/<spec>/hls/ (with its regmap.json), then compiles "
                                   "the C simulation library (reused while the C++ is unchanged).")
    add_spec_and_build(p)
    add_hardware_arguments(p, "the board the IP is for (default: the spec's hardware.board): with multipliers: auto, "
                              "its DSPs decide which layers multiply in DSP48s")
    p.add_argument("--part", default=None,
                   help="FPGA part written into the project (default: the board's; `make synth BOARD=` sets "
                        "the board's)")
    p.add_argument("--clock-ns", type=float, default=10.0, metavar="NS", help="target clock period (default 10)")
    p.add_argument("--no-compile", action="store_true", help="do not compile the C simulation library")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("csim", help="run images through the C simulation",
                       description="Run images through the C simulation of the converted IP with a weight "
                                   "set loaded into its registers. Input: a .npy array of shape (n, h, w, c) "
                                   "or (h, w, c), floats in [0, 1] or integer pixel codes (anything else is "
                                   "refused; --input-scale divides first). Output: a .npy "
                                   "array shaped and scaled like the QKeras model's output.")
    add_spec_argument(p)
    p.add_argument("--weights", required=True, metavar="W", help="weight-set file (.npz)")
    p.add_argument("--input", required=True, type=Path, metavar="X.npy", help="input images")
    p.add_argument("--output", required=True, type=Path, metavar="Y.npy", help="where to write the outputs")
    p.add_argument("--repeat", type=int, metavar="N", help="repeat count of the last block (default: the minimum)")
    add_input_scale_argument(p)
    add_build_argument(p)
    p.set_defaults(func=cmd_csim)

    p = sub.add_parser("check", help="prove the C simulation bit-exact against QKeras",
                       description="Compare the C simulation with the QKeras model (quantized exactly as the "
                                   "hardware is) on held-out inputs and print the number of mismatching "
                                   "outputs. Exit code 1 on any mismatch. --layers compares every layer for "
                                   "one input through a traced conversion, to find where a mismatch starts.")
    add_spec_argument(p)
    p.add_argument("--weights", required=True, metavar="W", help="weight-set file (.npz)")
    p.add_argument("--repeat", type=int, metavar="N", help="check only this repeat count (default: all)")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="held-out inputs to compare (default: all there are, at most 200; a pixel spec's are whole frames)")
    p.add_argument("--layers", action="store_true", help="compare layer by layer (one input, traced build)")
    add_build_argument(p)
    p.set_defaults(func=cmd_check)
