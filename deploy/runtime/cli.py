"""``semifreddo load``, ``reload``, ``run`` and ``status``: the board runtime from the command line.

Each command opens a deploy bundle with :class:`semifreddo.deploy.runtime.driver.Semifreddo` on the
board it runs on, or on the emulated board (an emulated bundle, ``--emulated``, or
``SEMIFREDDO_DEVICE=emulated``). The PL keeps its state between commands, so a ``reload`` changes
what a later ``run`` computes. Registered into the ``semifreddo`` command by
``semifreddo.models.cli``; imports only numpy, pynq and the standard library.
"""

from __future__ import annotations

from pathlib import Path

from ..contract import streams
from ..contract.errors import SemifreddoError

STAGE = 4    # where these commands appear in `semifreddo --help` (pipeline order)


def _open(args):
    from .driver import Semifreddo

    device = None
    if args.emulated:
        from .emulator import EmulatedDevice
        device = EmulatedDevice(args.state)
    elif args.state:
        raise SemifreddoError("--state is for the emulated board; add --emulated")
    return Semifreddo(args.bundle, device=device)


def cmd_reload(args) -> int:
    sf = _open(args)
    before = sf.active_task
    report = sf.switch(args.task or args.weights, wait=args.wait)
    print(f"task {report.task} active (sequence {report.active_seq}, was {before or 'unknown'}); "
          f"switched in {report.seconds * 1e3:.1f} ms without reloading the bitstream")
    return 0


def cmd_load(args) -> int:
    sf = _open(args)
    report = sf.load(args.task or args.weights, bank=args.bank, wait=args.wait)
    if report.bytes_moved == 0:
        print(f"task {report.task} is already in bank {report.bank} (sequence {report.seq}); nothing was written")
    else:
        print(f"task {report.task} loaded into bank {report.bank} of {sf.n_banks} (sequence {report.seq}) in "
              f"{report.seconds * 1e3:.1f} ms; every other bank kept serving")
    return 0


def cmd_run(args) -> int:
    from ..contract.streams import load_images, save_outputs

    sf = _open(args)
    streams.check_photo_output(args.output, sf.io)
    images = load_images(args.input)
    if args.repeat is not None:
        sf.repeat = args.repeat
    outputs = sf.run(images, task=args.task, batch=args.batch, scale=args.input_scale)
    written = save_outputs(args.output, outputs)
    report = sf.last_run
    where = str(written[0]) if len(written) == 1 else f"{written[0]} .. {written[-1].name}"
    seqs = ", ".join(f"bank {bank} sequence {seq}" for bank, seq in report.active_seq.items())
    print(f"{where}: {outputs.shape[0]} output(s) of shape {outputs.shape[1:]} from task "
          f"{report.task or 'unknown'} ({seqs}, repeat {sf.repeat}); "
          f"{report.seconds:.2f} s, {report.images_per_second:.0f} images/s")
    return 0


def cmd_status(args) -> int:
    status = _open(args).status()
    print(f"bundle       {status['bundle']} ({status['board']})")
    bank = f", bank {status['active_bank']}" if len(status["banks"]) > 1 else ""
    print(f"active task  {status['active_task'] or 'unknown'} (sequence {status['active_seq']}{bank})")
    print(f"core id      {status['core_id']}")
    print(f"register map {status['regmap_id']}")
    print(f"repeat       {status['repeat']}")
    print(f"tasks        {', '.join(status['tasks'])}")
    print(f"banks        {len(status['banks'])}")
    for row in status["banks"]:
        task = row["task"] or ("unknown (loaded by another tool)" if row["ready"] else "empty")
        checksum = row["checksum"][:16] if row["checksum"] else "-"
        print(f"  bank {row['bank']}     {task:<24} sequence {row['seq']:<6} checksum {checksum}")
    return 0


def _common(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", type=Path, help="deploy bundle folder (`semifreddo package`)")
    p.add_argument("--emulated", action="store_true",
                   help="use the emulated board (the default for an emulated bundle, or SEMIFREDDO_DEVICE=emulated)")
    p.add_argument("--state", metavar="DIR",
                   help="the emulated board's state folder (default $SEMIFREDDO_EMULATOR_STATE or "
                        "~/.local/state/semifreddo/emulated-board)")


def _weight_set_arguments(p, wait_help: str) -> None:
    """--task or --weights (one of them), and --wait: what a load or a reload takes."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", metavar="NAME", help="a task of the bundle")
    which.add_argument("--weights", metavar="FILE", type=Path, help="a weight-set file (.npz)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S", help=wait_help)


def register(sub) -> None:
    p = sub.add_parser("load", help="load a task into a weight bank while the other banks keep serving",
                       description="Load a task into one of the IP's weight banks (hardware.banks): the weight set "
                                   "is checked against the IP's core and register map, written into the shadow "
                                   "bank, read back and compared, then committed into the bank between two starts "
                                   "of the IP. Runs on other banks go on. Without --bank: the bank that already "
                                   "holds it, else a free one. On any failure every bank keeps its task.")
    _common(p)
    _weight_set_arguments(p, "seconds to wait for a run using that bank to finish (default 0: fail at once)")
    p.add_argument("--bank", type=int, metavar="K", help="the bank to load into (0..banks-1; default: a free one)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("reload", help="switch the board to another task without reloading the bitstream",
                       description="Switch the running board to another task: the weight set is checked against "
                                   "the IP's core and register map, written into the shadow bank, read back and "
                                   "compared, then committed between frames. On any failure the previous task "
                                   "stays active. A run in flight makes the switch fail at once (or after --wait).")
    _common(p)
    _weight_set_arguments(p, "seconds to wait for a run in flight to finish (default 0: fail at once)")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("run", help="run images on the board with the active task, or --task",
                       description="Stream images through the IP with the active task, or on the bank that holds "
                                   "--task (load it first with `semifreddo load`). Input: an 8-bit grey or "
                                   "RGB PNG/JPEG photograph of the IP's frame size, or a .npy array of "
                                   "shape (n, h, w, c) or (h, w, c), floats in [0, 1] (code = round(v * (2^bits - 1))) or integer "
                                   "pixel codes; anything else is refused (--input-scale divides first). "
                                   "Output: a .npy array shaped and scaled like the QKeras model's output, or, for a "
                                   "pixel IP, a PNG (values clipped to [0, 1]; several frames: NAME_0000.png, ...).")
    _common(p)
    p.add_argument("--input", required=True, type=Path, metavar="X.npy|X.png", help="input images")
    p.add_argument("--output", required=True, type=Path, metavar="Y.npy|Y.png", help="where to write the outputs")
    p.add_argument("--task", metavar="NAME", help="run on the bank that holds this task (default: the active task)")
    p.add_argument("--repeat", type=int, metavar="N", help="set the repeat count first (kept on the board)")
    p.add_argument("--batch", type=int, default=1024, metavar="N", help="frames per DMA transfer (default 1024)")
    streams.add_input_scale_argument(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="print the board's weight banks, active task, core id and repeat count",
                       description="Print the active task, core id, register map and repeat count of the board, and "
                                   "every weight bank's task, sequence number and weight-set checksum.")
    _common(p)
    p.set_defaults(func=cmd_status)
