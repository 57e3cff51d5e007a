"""What every stage's command line shares: the SPEC and --build arguments, the hardware choices
(--board, --multipliers), progress bars, and keeping TensorFlow quiet. The one home of the CLI
helpers; each stage's ``cli.py`` imports them from here.
"""

from __future__ import annotations

import argparse
import os
import warnings

from semifreddo.deploy.contract.errors import SemifreddoError


def add_spec_argument(parser: argparse.ArgumentParser) -> None:
    from .spec import shipped_specs

    parser.add_argument("spec", metavar="SPEC",
                        help=f"shipped spec name ({', '.join(shipped_specs())}) or path to a spec YAML file")


def add_build_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--build", metavar="DIR", default="build",
                        help="build folder; results go under DIR/<spec name>/ (default: build)")


def add_spec_and_build(parser: argparse.ArgumentParser) -> None:
    """SPEC and --build, which most commands take together."""
    add_spec_argument(parser)
    add_build_argument(parser)


def add_hardware_arguments(parser: argparse.ArgumentParser, board_help: str) -> None:
    """--board, --multipliers, --banks, --repeat-hardware and --frame-buffer: the hardware choices a command
    may override (see hardware_choice)."""
    from semifreddo.deploy.contract.interface import MAX_BANKS

    parser.add_argument("--board", metavar="BOARD", help=board_help)
    parser.add_argument("--multipliers", choices=("auto", "dsp", "lut"),
                        help="where configurable multipliers go (default: the spec's hardware.multipliers): auto = "
                             "DSP48s while the board's last, then LUTs; dsp; lut")
    parser.add_argument("--banks", type=int, choices=range(1, MAX_BANKS + 1), metavar="N",
                        help=f"weight sets resident in the IP at once, 1..{MAX_BANKS} (default: the spec's "
                             "hardware.banks); weight sets load into an IP of any bank count")
    parser.add_argument("--repeat-hardware", choices=("reuse", "unrolled"),
                        help="the repeated blocks built once with frames looping through them (reuse) or once per "
                             "run (unrolled); default: the spec's repeat.hardware")
    parser.add_argument("--frame-buffer", choices=("auto", "chip", "ddr"),
                        help="where a reused group keeps a frame between passes: block RAM (chip), the board's "
                             "DDR behind an AXI master (ddr), or chip while small (auto); default: the spec's "
                             "repeat.buffer")


def hardware_choice(spec, args, action: str):
    """The spec with the board and multiplier policy the command line asks for."""
    from semifreddo.deploy.contract.boards import fpga_board

    changes = {}
    if args.board:
        changes["board"] = fpga_board(args.board, action).name
    dsp = getattr(args, "dsp", False)
    if dsp and args.multipliers not in (None, "dsp"):
        raise SemifreddoError(f"--dsp and --multipliers {args.multipliers} disagree; give one of them")
    if dsp or args.multipliers:
        changes["multipliers"] = "dsp" if dsp else args.multipliers
    if getattr(args, "banks", None):
        changes["banks"] = args.banks
    if getattr(args, "repeat_hardware", None):
        changes["repeat_hardware"] = args.repeat_hardware
    if getattr(args, "frame_buffer", None):
        changes["frame_buffer"] = args.frame_buffer
    return spec.replace(**changes) if changes else spec


def add_training_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    """--epochs (overriding the spec's ``training.<section>.epochs``) and --subset."""
    parser.add_argument("--epochs", type=int, metavar="N", help=f"override the spec's training.{section}.epochs")
    parser.add_argument("--subset", type=int, metavar="N",
                        help="use at most N training and N test samples (for quick smoke runs)")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="do not show progress bars")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter off the terminal (errors still show)."""
    # Level 3 also hides TensorFlow's spurious CUDA-plugin errors on machines without a GPU.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message=".*keras.constraints.serialize.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
