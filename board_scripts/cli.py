"""Board-flow commands: ``boards``, ``synth``, ``bitstream``, ``package``, ``deploy``.

Registered into the ``semifreddo`` command by ``semifreddo.models.cli``. Imports of the flow
happen inside the command functions so ``--help`` answers at once. A missing tool is reported in
one line before anything is written (exit code 2); a tool step that fails names the step and its
log (exit code 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .layout import BoardBuild

from semifreddo.deploy.contract.errors import SemifreddoError

BOARD_HELP = "target board (see `semifreddo boards`)"

STAGE = 3    # where these commands appear in `semifreddo --help` (pipeline order)


def _spec_name(spec: str) -> str:
    from semifreddo.models.spec import load_spec
    return load_spec(spec).name


def _layout(args, board: str):
    return BoardBuild.of(args.build, _spec_name(args.spec), board)


def cmd_boards(args) -> int:
    from semifreddo.deploy.contract.boards import BOARDS

    print(f"{'board':<12} {'part':<22} {'PS IP':<18} {'HP bits':>7} {'clock':>9}  description")
    for b in BOARDS.values():
        print(f"{b.name:<12} {b.part or '-':<22} {b.ps_ip or '-':<18} {b.hp_data_width or '-':>7} "
              f"{b.clock_mhz:>5g} MHz  {b.description}")
        if b.board_part:
            print(f"{'':<12} board files {b.board_part}")
    print()
    print(fit_table(args.build))
    return 0


def fit_table(build) -> str:
    """Which shipped spec fits which board, estimated from each spec's trained core under ``build``
    (configurable multipliers placed for each board)."""
    from semifreddo.deploy.contract.boards import BOARDS
    from semifreddo.hls_project.estimate.estimator import estimate_spec
    from semifreddo.hls_project.estimate.report import fit_verdict
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.spec import load_spec, shipped_specs

    boards = [b.name for b in BOARDS.values() if not b.emulated]
    lines = ["which shipped spec fits which board (ESTIMATES; `semifreddo estimate SPEC --board B` for the details):",
             f"{'spec':<16}" + "".join(f"{name:<22}" for name in boards)]
    for name in shipped_specs():
        spec = load_spec(name)
        if not BuildPaths.for_spec(spec, build).core.exists():
            lines.append(f"{spec.name:<16}no trained core under {build}/{spec.name}: `make train SPEC={spec.name}` first")
            continue
        cells = []
        for board in boards:
            est = estimate_spec(spec.replace(board=board), build)
            fits, _ = fit_verdict(est)
            used = est.designs["semifreddo"].total.rounded()
            cells.append(f"{'fits' if fits else 'no'} (LUT {used['lut'] / BOARDS[board].capacity['lut']:.0%})")
        lines.append(f"{spec.name:<16}" + "".join(f"{cell:<22}" for cell in cells))
    return "\n".join(lines)


def require_fit(args, board) -> None:
    """Refuse, in one line, to spend hours of Vivado on an IP that the estimate says does not fit
    ``board`` (unless --force). The estimate is of the HLS project as converted: its hardware plan."""
    from semifreddo.deploy.contract.errors import DoesNotFitError
    from semifreddo.hls_project.estimate.estimator import estimate_spec
    from semifreddo.hls_project.estimate.report import fit_verdict
    from semifreddo.hls_project.plan import read_plan
    from semifreddo.hls_project.project import read_manifest
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.spec import load_spec

    if args.force:
        print(f"--force: not checking whether the IP fits {board.name}")
        return
    spec = load_spec(args.spec)
    hls = BuildPaths.for_spec(spec, args.build).hls
    read_manifest(hls, args.spec)              # "no HLS project at ...: convert first" before anything else
    plan = read_plan(hls, args.spec)
    est = estimate_spec(spec, args.build, plan=plan, cache_graphs=False)   # writes nothing
    fits, line = fit_verdict(est, board.name)
    if not fits:
        hint = (f"convert for it (`semifreddo convert {args.spec} --board {board.name}`), "
                if plan.target.board != board.name and plan.target.multipliers == "auto" else "")
        raise DoesNotFitError(f"{line}; {hint}narrow the spec (`semifreddo explore`) or pass --force (FORCE=1)")
    print(line)


def cmd_synth(args) -> int:
    from semifreddo.deploy.contract.boards import fpga_board
    from .flow import run_synth
    from .report import cost_model_estimate, format_table
    from .tools import find_hls_tool

    board = fpga_board(args.board, "synthesize")
    require_fit(args, board)             # before looking for the tools: a design too big costs one line
    find_hls_tool()                      # before reading anything else: a missing tool costs one line
    layout = _layout(args, board.name)
    result = run_synth(layout, board, clock_mhz=args.clock_mhz, cosim=args.cosim)
    print(f"IP exported -> {layout.ip_repo}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.report:
        try:
            estimate = cost_model_estimate(args.spec, args.build, args.clock_mhz or board.clock_mhz)
        except SemifreddoError as exc:   # the estimate is a side dish; the synthesis result stands
            print(f"(no estimate: {exc})")
            estimate = None
        print(format_table(result.report, estimate))
    return 0


def cmd_bitstream(args) -> int:
    from semifreddo.deploy.contract.boards import fpga_board
    from .flow import run_bitstream
    from .tools import find_vivado

    from semifreddo.hls_project.project import MANIFEST

    board = fpga_board(args.board, "implement")
    layout = _layout(args, board.name)
    if (layout.hls_source / MANIFEST).exists():   # else: synthesize first, run_bitstream says so
        require_fit(args, board)
    find_vivado()
    result = run_bitstream(layout, board, jobs=args.jobs)
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"bitstream -> {result.bitstream}")
    print(f"hwh       -> {result.hwh}")
    return 0


def cmd_package(args) -> int:
    from semifreddo.deploy.contract.boards import get_board
    from .bundle import build_bundle

    from semifreddo.models.spec import load_spec

    board = get_board(args.board)
    spec = load_spec(args.spec)
    layout = BoardBuild.of(args.build, spec.name, board.name)
    manifest = build_bundle(layout, board, spec)
    what = "no bitstream (emulated board)" if board.emulated else f"overlay {manifest['bitstream']}"
    print(f"bundle -> {layout.bundle}: {what}, {len(manifest['tasks'])} tasks "
          f"({', '.join(manifest['tasks'])}), {len(manifest['files']) + 1} files")
    _say_samples(manifest)
    return 0


def _say_samples(manifest: dict, tasks=None) -> None:
    """Which tasks the bundle carries held-out samples for (the notebook measures quality on them)."""
    tasks = list(manifest["tasks"]) if tasks is None else tasks
    missing = [t for t in tasks if t not in manifest.get("samples", {})]
    if missing:
        print(f"no held-out samples for {', '.join(missing)} (their data is not at hand); the notebook shows "
              "their outputs on other tasks' images and their quality as measured at training")


def cmd_bundle_add(args) -> int:
    from .bundle import add_to_bundle

    name, manifest = add_to_bundle(Path(args.bundle), Path(args.weights), task=args.task, replace=args.replace,
                                   samples=args.samples)
    print(f"task {name} added to {args.bundle} ({manifest['tasks'][name]}; checked against core "
          f"{manifest['core_id']} and register map {manifest['regmap_id']}); tasks now: {', '.join(manifest['tasks'])}")
    if name in manifest["samples"]:
        print(f"held-out samples -> {manifest['samples'][name]}")
    _say_samples(manifest, [name])
    return 0


def cmd_deploy(args) -> int:
    from .remote import bundle_board, deploy_bundle, deploy_weights, parse_target

    board = bundle_board(Path(args.bundle))      # its PYNQ install: log-in user, overlay and notebook folders
    target = parse_target(args.host, args.user, args.port, args.ssh_args, default_user=board.login_user)
    if args.weights:
        where = deploy_weights(Path(args.bundle), args.weights, target, overlay_dir=args.overlay_dir)
        print(f"task {where['task']} installed on {target.host} in {where['overlay_dir']}: "
              f"{', '.join(where['files'])} (checksums verified on the board); "
              f"switch to it with `semifreddo reload BUNDLE --task {where['task']}`")
        return 0
    where = deploy_bundle(Path(args.bundle), target, overlay_dir=args.overlay_dir, notebook_dir=args.notebook_dir)
    print(f"installed {where['files']} files on {target.host}: overlay {where['overlay_dir']}, "
          f"notebooks {where['notebook_dir']}")
    return 0


def register(sub) -> None:
    from semifreddo.models.cli_args import add_spec_argument

    def spec_board(p, force=False):
        add_spec_argument(p)
        p.add_argument("--board", required=True, metavar="BOARD", help=BOARD_HELP)
        p.add_argument("--build", metavar="DIR", default="build",
                       help="build folder; results go under DIR/<spec name>/ (default: build)")
        if force:
            p.add_argument("--force", action="store_true",
                           help="run even if the estimate says the IP does not fit the board")

    p = sub.add_parser("boards", help="list the boards the flow can build for",
                       description="List the board table: FPGA part, board files, PS IP, HP port width, "
                                   "default clock; then which shipped spec fits which board, estimated from each "
                                   "spec's trained core. Adding a board is one entry in deploy/contract/boards.py.")
    p.add_argument("--build", metavar="DIR", default="build",
                   help="build folder with the shipped specs' trained cores (default: build)")
    p.set_defaults(func=cmd_boards)

    p = sub.add_parser(
        "synth", help="Vitis HLS: C simulation, C synthesis, IP export",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run Vitis HLS in batch mode on the HLS project that `semifreddo convert` wrote "
                    "(BUILD/<spec>/hls/): C simulation, C synthesis, export of the IP "
                    "(VLNV from hls_manifest.json), and C/RTL co-simulation with --cosim. Output: "
                    "BUILD/<spec>/synth/<board>/hls/. Prints latency, II, LUT, FF, DSP and BRAM from the "
                    "synthesis report.",
        epilog="needs vitis_hls (or vitis-run) on PATH: source the settings64.sh of a Vitis install first")
    spec_board(p, force=True)
    p.add_argument("--cosim", action="store_true", help="also run C/RTL co-simulation (slow)")
    p.add_argument("--clock-mhz", type=float, metavar="MHZ",
                   help="target clock (default: the board's, see `semifreddo boards`); the bitstream uses it too")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "bitstream", help="Vivado: block design, implementation, .bit and .hwh",
        description="Run Vivado in batch mode: a block design with the board's Zynq PS, an AXI DMA on an HP "
                    "port and the exported IP on the GP port, then synthesis, implementation and "
                    "write_bitstream. Output: BUILD/<spec>/synth/<board>/vivado/semifreddo_<spec>.bit and .hwh. "
                    "Needs `semifreddo synth` for the same board first.",
        epilog="needs vivado on PATH: source the settings64.sh of a Vivado install first")
    spec_board(p, force=True)
    p.add_argument("--jobs", type=int, metavar="N", help="parallel Vivado jobs (default: all cores)")
    p.set_defaults(func=cmd_bitstream)

    p = sub.add_parser(
        "package", help="build the deploy bundle for a board",
        description="Collect bitstream, .hwh, register map, every task weight set, the board-side driver "
                    "and the notebooks into BUILD/<spec>/bundle-<board>/ with a manifest.json listing each "
                    "file's SHA-256. Weight sets for another core or register map are refused. "
                    "--board emulated packages without a bitstream, for the emulated board.")
    spec_board(p)
    p.set_defaults(func=cmd_package)

    p = sub.add_parser(
        "deploy", help="copy a bundle to a board over ssh and install it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check BUNDLE against its manifest, upload it with scp, verify every checksum on the "
                    "board, then install it:\n"
                    "  overlay   OVERLAY_DIR  (default /home/xilinx/pynq/overlays/<overlay>;\n"
                    "                          kv260 (Kria-PYNQ): /home/ubuntu/pynq/overlays/<overlay>)\n"
                    "  notebooks NOTEBOOK_DIR (default /home/xilinx/jupyter_notebooks/<overlay>;\n"
                    "                          kv260: /home/root/jupyter_notebooks/<overlay>),\n"
                    "            with a 'bundle' link to the overlay folder.\n"
                    "An existing installation is replaced only after the upload checked out.",
        epilog="set up key log-in once with `ssh-copy-id xilinx@<board>`; "
               "example: semifreddo deploy build/digits/bundle-pynq-z2 --host 192.168.2.99")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder made by `semifreddo package`")
    p.add_argument("--host", required=True, metavar="HOST", help="board address or name, optionally USER@HOST")
    p.add_argument("--user", metavar="USER", help="log-in user (default: xilinx; kv260: ubuntu)")
    p.add_argument("--port", type=int, default=22, metavar="PORT", help="ssh port (default: 22)")
    p.add_argument("--overlay-dir", metavar="DIR", help="absolute folder on the board for the overlay")
    p.add_argument("--notebook-dir", metavar="DIR", help="absolute folder on the board for the notebooks")
    p.add_argument("--ssh-args", default="", metavar="ARGS",
                   help="extra arguments for ssh and scp, as one string, e.g. \"-i ~/.ssh/pynq -o ConnectTimeout=10\"")
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="copy only this task of the bundle (a task name, or a weight-set file that `bundle add` "
                        "put in it) and the new manifest into the overlay already installed on the board")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("bundle", help="change an existing deploy bundle",
                       description="Change an existing deploy bundle without packaging it again.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="COMMAND", required=True)
    a = bsub.add_parser(
        "add", help="add a task's weight set to a bundle (no new bitstream)",
        description="Add a weight set to an existing bundle: it is checked against the bundle's core id and "
                    "register map, copied to weightsets/<task>.npz, and manifest.json is rewritten with its "
                    "checksum (each file written atomically, the manifest last; the bundle is verified before "
                    "and after). The held-out samples that `train-task --data` wrote beside it come along. "
                    "Then `semifreddo deploy BUNDLE --weights TASK` installs it on a board and "
                    "`semifreddo reload BUNDLE --task TASK` switches to it.",
        epilog="example: semifreddo bundle add build/digits/bundle-emulated build/digits/weightsets/mine.npz")
    a.add_argument("bundle", metavar="BUNDLE", help="bundle folder made by `semifreddo package`")
    a.add_argument("weights", metavar="WEIGHTS", help="weight-set file (.npz), e.g. from `semifreddo train-task`")
    a.add_argument("--task", metavar="NAME", help="the task's name in the bundle (default: the weight set's task)")
    a.add_argument("--replace", action="store_true", help="replace a task of the same name")
    a.add_argument("--samples", metavar="FILE",
                   help="held-out samples to ship with it (default: BUILD/<spec>/samples/<task>.npz if there)")
    a.set_defaults(func=cmd_bundle_add)
