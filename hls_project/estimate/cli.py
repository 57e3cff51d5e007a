"""The ``estimate`` and ``explore`` commands (registered into ``semifreddo`` by models/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.interface import MAX_BANKS
from semifreddo.models.cli_args import (add_hardware_arguments, add_progress_argument, add_spec_and_build,
                                  hardware_choice, quiet_tensorflow)

STAGE = 2.5    # where these commands appear in `semifreddo --help` (pipeline order)


def _list(kind, name: str, lo: float, hi: float):
    """An argparse type for a comma-separated list of numbers in [lo, hi]."""
    def parse(text: str):
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected comma-separated numbers, got {text!r}") from None
        bad = [v for v in values if not lo <= v <= hi]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"{name}: every value must lie in [{lo:g}, {hi:g}], got {text!r}")
        return values
    return parse


def _choices(name: str, choices: tuple[str, ...]):
    """An argparse type for a comma-separated list of some of ``choices``."""
    def parse(text: str):
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"{name}: {', '.join(bad) or repr(text)} not one of {', '.join(choices)}")
        return values
    return parse


def _formats(text: str):
    from .explore import FORMATS

    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in FORMATS]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"unknown frozen format(s) {', '.join(bad) or repr(text)}; "
                                         f"choose from {', '.join(FORMATS)}")
    return values


def cmd_estimate(args) -> int:
    from semifreddo.models.spec import load_spec

    spec = load_spec(args.spec)
    if args.clock <= 0:
        raise SemifreddoError(f"--clock must be a positive frequency in MHz, got {args.clock:g}")
    quiet_tensorflow()
    from semifreddo.models.artifacts import BuildPaths

    from .costs import UnitCosts
    from .estimator import estimate_spec
    from .report import fit_verdict, text_report, write_outputs

    fit_board = None
    if args.converted:
        # The project as `semifreddo convert` built it: its hardware plan, whatever the YAML says now.
        from semifreddo.deploy.contract.boards import fpga_board
        from semifreddo.hls_project.plan import read_plan

        if args.multipliers or args.dsp or args.banks or args.repeat_hardware or args.frame_buffer:
            raise SemifreddoError("--converted prices the project as it was converted; convert again with "
                                  "--multipliers, --banks, --repeat-hardware or --frame-buffer to change it")
        plan = read_plan(BuildPaths.for_spec(spec, args.build).hls, args.spec)
        fit_board = fpga_board(args.board, "fit").name if args.board else None
        est = estimate_spec(spec, args.build, UnitCosts.load(args.table), plan=plan, clock_mhz=args.clock,
                            cache_graphs=False)
    else:
        spec = hardware_choice(spec, args, "estimate")
        est = estimate_spec(spec, args.build, UnitCosts.load(args.table), clock_mhz=args.clock)
    print(text_report(est, layers=not args.brief))
    out = Path(args.out) if args.out else BuildPaths.for_spec(spec, args.build).root / "estimate"
    paths = write_outputs(est, out)
    print(f"\nwrote {paths['txt']}, {paths['json'].name}, {paths['png'].name}")
    if args.board:
        fits, line = fit_verdict(est, fit_board)
        print(line)
        return 0 if fits else 1
    return 0


def cmd_explore(args) -> int:
    from semifreddo.models.spec import load_spec

    base = load_spec(args.spec)
    quiet_tensorflow()
    from semifreddo.deploy.contract.boards import fpga_board

    from .explore import DEFAULT, explore, grid

    task = args.task or base.data.targets[0].task
    base.target(task)                                  # refuses a task the spec does not have
    if args.epochs < 1:
        raise SemifreddoError(f"--epochs must be at least 1, got {args.epochs}")
    if args.workers is not None and args.workers < 1:
        raise SemifreddoError(f"--workers must be at least 1, got {args.workers}")
    board = fpga_board(args.board, "fit").name if args.board else DEFAULT
    points = grid(args.spec, base, args.fractions, args.weight_bits, args.act_bits or [base.activations.bits],
                  args.formats, task, args.epochs, args.subset or 0, frozen_widths=args.frozen_widths or (DEFAULT,),
                  trainable_widths=args.trainable_widths or (DEFAULT,), trainable_bits=args.trainable_bits or (DEFAULT,),
                  implementations=args.implementations or (DEFAULT,), repeat_hardware=args.repeat_hardware or (DEFAULT,),
                  multipliers=args.multipliers or (DEFAULT,), board=board, full=args.full, banks=args.banks or (DEFAULT,))
    out = Path(args.out) if args.out else Path(args.build) / base.name / "explore"
    build = out / "points"
    result = explore(points, out, build, scheduler=args.scheduler, workers=args.workers, progress=args.progress)
    ok = [r for r in result.rows if r.get("status") == "ok"]
    invalid = [r for r in result.rows if str(r.get("status", "")).startswith("invalid")]
    print(f"{len(points)} points: {result.computed} computed, {result.reused} already in {result.csv}")
    print(f"{'name':<40} {'frozen':>7} {'quality':>8} {'gap':>7} {'LUT (est.)':>11} {'DSP':>5} "
          f"{'area vs general':>15} {'power vs general':>16}  fits")
    for row in sorted(ok, key=lambda r: float(r["area"])):
        gap = f"{100 * float(row['gap']):+.1f}" if row.get("gap") not in (None, "") else "-"
        print(f"{row['name']:<40} {float(row['frozen_fraction']):>7.1%} {float(row['quality']):>8.4f} {gap:>7} "
              f"{float(row['lut']):>11,.0f} {float(row['dsp']):>5,.0f} {float(row['area_vs_general']):>14.1f}x "
              f"{float(row['power_vs_general']):>15.1f}x  {row.get('fits', '')}")
    for row in invalid:
        print(f"skipped {row['fraction']}/{row['weight_bits']}/{row['act_bits']}/{row['format']}: {row['status']}")
    goal = [r for r in ok if float(r["area_vs_general"]) >= 10 and float(r["power_vs_general"]) >= 10
            and r.get("gap") not in (None, "") and float(r["gap"]) >= -0.01]
    print(f"{len(goal)} point(s) reach 10x area and power with a gap of at most 1 point"
          + ("" if args.full else " (run with --full to measure the gap to full fine-tuning)"))
    print(f"wrote {result.csv} and {result.png} (areas are ESTIMATES from the unit-cost table)")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "estimate", help="estimate area, latency and power of the IP and two baselines",
        description="Estimate LUT, FF, DSP, BRAM, latency/throughput and power of the SemifreddoNet IP (from the "
                    "trained frozen codes: zeros and few-digit constants are cheap), of its fully configurable "
                    "twin, and of a general-purpose accelerator at the same throughput; print per-layer tables "
                    "and ratios and write BUILD/<spec>/estimate/estimate.{txt,json,png}. Every figure is an "
                    "estimate priced by the Yosys-characterized unit-cost table (make characterize).")
    add_spec_and_build(p)
    add_hardware_arguments(p, "the board to fit (default: the spec's hardware.board); the report then ends with one "
                              "line saying whether the IP fits it, and the exit code is 0 if it does, 1 if not")
    p.add_argument("--dsp", action="store_true", help="the same as --multipliers dsp")
    p.add_argument("--converted", action="store_true",
                   help="price the converted HLS project as its hardware plan built it (BUILD/<spec>/hls/plan.json: "
                        "board, multipliers, implementations), not as the spec would build it now")
    p.add_argument("--clock", type=float, default=100.0, metavar="MHZ",
                   help="clock for throughput and power (default 100)")
    p.add_argument("--table", metavar="FILE", help="unit-cost table (default: the one shipped in the package)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: BUILD/<spec>/estimate)")
    p.add_argument("--brief", action="store_true", help="print only the totals and ratios")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser(
        "explore", help="sweep frozen fraction x bit widths x frozen format (short training runs)",
        description="Design-space exploration: for every combination of frozen fraction, weight bits, "
                    "activation bits and frozen-weight format, pre-train the core and one target task for a few "
                    "epochs and estimate the IP. Writes explore.csv and a Pareto plot explore.png; running the "
                    "same command again skips the points the CSV already holds. Points run in parallel through "
                    "Dask distributed: a local cluster on this machine's cores, or the cluster at --scheduler "
                    "(its workers need this package installed).")
    add_spec_and_build(p)
    p.add_argument("--fractions", type=_list(float, "--fractions", 0.0, 0.99), default=[0.5, 0.75, 0.9],
                   metavar="F,F,...", help="frozen fractions, 0 = no frozen core (default 0.5,0.75,0.9)")
    p.add_argument("--weight-bits", type=_list(int, "--weight-bits", 2, 16), default=[4, 6, 8], metavar="B,B,...",
                   help="bits of the configurable weights and of fixed-point frozen weights (default 4,6,8)")
    p.add_argument("--act-bits", type=_list(int, "--act-bits", 2, 16), metavar="B,B,...",
                   help="activation bits (default: the spec's)")
    p.add_argument("--formats", type=_formats, default=["fixed", "po2-1", "po2-2"], metavar="F,F,...",
                   help="frozen-weight formats: fixed (b-bit), po2-1 and po2-2 (sums of 1 or 2 powers of two); "
                        "default all three")
    p.add_argument("--frozen-widths", type=_list(int, "--frozen-widths", 0, 512), metavar="W,W,...",
                   help="frozen-core widths (with --trainable-widths instead of --fractions; default: the spec's)")
    p.add_argument("--trainable-widths", type=_list(int, "--trainable-widths", 1, 256), metavar="W,W,...",
                   help="trainable-core widths (instead of deriving the widths from --fractions)")
    p.add_argument("--trainable-bits", type=_list(int, "--trainable-bits", 2, 16), metavar="B,B,...",
                   help="bits of the configurable weights (default: --weight-bits)")
    p.add_argument("--implementations", type=_choices("--implementations", ("adder_graph", "multipliers")),
                   metavar="I,I", help="frozen convs as adder_graph and/or multipliers (default: the spec's)")
    p.add_argument("--repeat-hardware", type=_choices("--repeat-hardware", ("reuse", "unrolled")), metavar="H,H",
                   help="repeated blocks reused and/or unrolled (default: the spec's)")
    p.add_argument("--multipliers", type=_choices("--multipliers", ("auto", "dsp", "lut")), metavar="P,P",
                   help="configurable-multiplier policies to try (default: the spec's)")
    p.add_argument("--board", metavar="BOARD", help="the board to fit (a `fits` column; default: the spec's)")
    p.add_argument("--banks", type=_list(int, "--banks", 1, MAX_BANKS), metavar="N,N",
                   help=f"weight-bank counts to try, 1..{MAX_BANKS} (hardware.banks; default: the spec's): the "
                        "storage and selection of N resident weight sets are priced and fit-checked")
    p.add_argument("--full", action="store_true",
                   help="also train full fine-tuning at each point's size, to report the accuracy gap (slower)")
    p.add_argument("--task", metavar="NAME", help="target task whose quality is reported (default: the spec's first)")
    p.add_argument("--epochs", type=int, default=5, metavar="N",
                   help="training epochs per point, core and task (default 5)")
    p.add_argument("--subset", type=int, metavar="N", help="use at most N training and N test samples")
    p.add_argument("--out", metavar="DIR", help="output folder (default: BUILD/<spec>/explore)")
    p.add_argument("--workers", type=int, metavar="N", help="local Dask workers (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 "
                                                          "(default: a local cluster)")
    add_progress_argument(p)
    p.set_defaults(func=cmd_explore)
