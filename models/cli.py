"""The ``semifreddo`` command.

The command is assembled from one ``cli.py`` per stage folder; each defines ``register(sub)``
that adds that stage's subcommands and ``STAGE``, its place in the pipeline. The later stages'
modules are found through the ``semifreddo.commands`` entry points (pyproject.toml), so this first
stage imports none of them. This file holds the entry point and the model stage's own commands
(``spec``, ``train-core``, ``train-task``, ``weights``). Heavy imports (TensorFlow, hls4ml) happen
inside the command functions, so ``--help`` answers at once.

Every error about bad input is one line on stderr, ``semifreddo: error: ...``, with exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from semifreddo.deploy.contract.errors import SemifreddoError

from .cli_args import (add_build_argument, add_progress_argument, add_spec_and_build, add_spec_argument,
                       add_training_arguments, quiet_tensorflow)

EPILOG = """\
typical session:
  semifreddo train-core digits                      pre-train the frozen core
  semifreddo train-task digits --task all           train every target task's weight set
  semifreddo train-task digits --task mine --data my.npz   a task of your own, from your data
  semifreddo weights show build/digits/weightsets/parity.npz

SPEC is a shipped spec name (digits, digits-lean, pixels) or a path to a YAML file; the schema is in
models/specs/README.md. Results go under BUILD/<spec name>/ (BUILD is --build, default build/).
"""


# --------------------------------------------------------------------------------------------
# model-stage commands
# --------------------------------------------------------------------------------------------

def cmd_spec(args) -> int:
    from .spec import load_spec

    spec = load_spec(args.spec)
    print(spec.summary())
    return 0


def cmd_train_core(args) -> int:
    from .spec import load_spec

    spec = load_spec(args.spec)
    quiet_tensorflow()
    from .training import quality, train_core

    result = train_core(spec, args.build, epochs=args.epochs, subset=args.subset, progress=args.progress)
    key, value = quality(result.metrics)
    print(f"frozen core {result.core.core_id} -> {result.core.path}")
    print(f"source task {spec.data.source}: {key} {value:.4f} on {result.metrics['n_test']} held-out samples")
    print(f"weight set  {spec.data.source} -> {result.weightset}")
    return 0


def cmd_train_task(args) -> int:
    from .spec import load_spec

    spec = load_spec(args.spec)
    if args.data is not None:
        return train_task_from_data(spec, args)
    if args.replace:
        raise SemifreddoError("--replace is for --data: retraining one of the spec's tasks from your own data")
    tasks = [t.task for t in spec.data.targets] if args.task == ["all"] else args.task
    for task in tasks:
        spec.target(task)   # validate every name before training anything
    check_repeat(spec, args.repeat)
    quiet_tensorflow()
    from .training import quality, train_task

    for task in tasks:
        result = train_task(spec, task, args.build, epochs=args.epochs, subset=args.subset, progress=args.progress,
                            repeat=args.repeat)
        key, value = quality(result.metrics)
        print(f"task {task}: {key} {value:.4f} on {result.metrics['n_test']} held-out samples "
              f"-> {result.weightset}")
    return 0


def check_repeat(spec, repeat: int | None) -> None:
    if repeat is not None and not spec.repeat_min <= repeat <= spec.repeat_max:
        raise SemifreddoError(f"--repeat {repeat} is outside spec {spec.name}'s range "
                              f"{spec.repeat_min}..{spec.repeat_max}")


def train_task_from_data(spec, args) -> int:
    """``train-task SPEC --task NAME --data PATH``: a task from the user's own data. Everything is
    checked, the data included, before training starts; the weight set is written at the end."""
    from .artifacts import BuildPaths, require_core
    from .spec import NAME_RULE, is_valid_name

    if len(args.task) != 1 or args.task == ["all"]:
        raise SemifreddoError("--data trains one task: give exactly one --task NAME")
    task = args.task[0]
    if not is_valid_name(task):
        raise SemifreddoError(f"task name {task!r}: {NAME_RULE}")
    if task == spec.data.source:
        raise SemifreddoError(f"{task!r} is the source task of spec {spec.name}: its weight set comes with the "
                              "frozen core (`semifreddo train-core`); choose another task name")
    if task in spec.task_names and not args.replace:
        raise SemifreddoError(f"{task!r} is one of spec {spec.name}'s tasks; pass --replace to retrain it from "
                              "your data, or choose another task name")
    check_repeat(spec, args.repeat)
    require_core(BuildPaths.for_spec(spec, args.build).core, spec)      # no core: say so before reading data
    quiet_tensorflow()
    from .userdata import describe_source, load_user_task

    data = load_user_task(spec, task, args.data, batch_size=spec.data.train_task.batch_size)
    print(describe_source(data))
    from .training import quality, train_task

    result = train_task(spec, task, args.build, epochs=args.epochs, subset=args.subset, progress=args.progress,
                        data=data, repeat=args.repeat)
    key, value = quality(result.metrics)
    print(f"task {task}: {key} {value:.4f} on {result.metrics['n_test']} held-out samples -> {result.weightset}")
    return 0


def cmd_weights_show(args) -> int:
    from semifreddo.deploy.contract.weightset import describe, read_weight_set

    expect_core = expect_regmap = None
    if args.spec:
        from .artifacts import BuildPaths, load_core
        from .spec import load_spec

        spec = load_spec(args.spec)
        expect_core = load_core(BuildPaths.for_spec(spec, args.build).core, spec).core_id
        from .layout import register_map
        expect_regmap = register_map(spec)
    ws = read_weight_set(args.file, expect_core_id=expect_core, expect_regmap=expect_regmap)
    print(describe(ws))
    return 0


def cmd_weights_list(args) -> int:
    from semifreddo.deploy.contract.errors import WeightSetError
    from semifreddo.deploy.contract.weightset import read_weight_set

    from .artifacts import BuildPaths, load_core
    from .layout import register_map
    from .spec import load_spec

    spec = load_spec(args.spec)
    paths = BuildPaths.for_spec(spec, args.build)
    core = load_core(paths.core, spec)
    rmap = register_map(spec)
    files = sorted(paths.weightsets.glob("*.npz"))
    print(f"spec {spec.name}: frozen core {core.core_id}, register map {rmap.id} ({rmap.n_words} words), "
          f"frozen fraction {spec.frozen_fraction:.1%}")
    print(f"{'task':<14} {'role':<8} {'quality':<22} {'file'}")
    for path in files:
        try:
            ws = read_weight_set(path, expect_core_id=core.core_id, expect_regmap=rmap)
        except WeightSetError as exc:
            print(f"{path.stem:<14} {'REFUSED':<8} {str(exc)}")
            continue
        m = ws.manifest["metrics"]
        q = f"accuracy {m['accuracy']:.2%}" if "accuracy" in m else f"PSNR {m['psnr_db']:.2f} dB"
        print(f"{ws.task:<14} {ws.manifest.get('role', ''):<8} {q:<22} {path}")
    if not files:
        print(f"(no weight sets yet: run `semifreddo train-task {spec.name} --task all`)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("spec", help="validate a model spec and print its summary",
                       description="Validate a model spec and print what it describes (sizes, formats, "
                                   "parameter counts, frozen fraction). Exit code 2 names the bad field.")
    add_spec_argument(p)
    p.set_defaults(func=cmd_spec)

    p = sub.add_parser("train-core", help="pre-train the frozen core on the source task",
                       description="Train the whole network on the spec's source task, then write the "
                                   "frozen-core artifact BUILD/<spec>/core.npz (with its core id) and the "
                                   "source task's weight set BUILD/<spec>/weightsets/<source>.npz.")
    add_spec_and_build(p)
    add_training_arguments(p, "core")
    add_progress_argument(p)
    p.set_defaults(func=cmd_train_core)

    p = sub.add_parser("train-task", help="train a target task's configurable weight set",
                       description="Train only the configurable parameters (trainable cores, alpha "
                                   "blends, head) of a target task on the frozen core, and write the "
                                   "weight set BUILD/<spec>/weightsets/<task>.npz. The frozen core is "
                                   "checked to be bit-identical afterwards. With --data PATH the task is "
                                   "yours: its images and labels (or target images) come from PATH, a "
                                   "quarter is held out to measure its quality unless PATH gives x_test "
                                   "and y_test, and bad data is refused before anything is trained.")
    add_spec_argument(p)
    p.add_argument("--task", required=True, action="append", metavar="NAME",
                   help="target task to train (repeat for several, or 'all' for every target in the spec); "
                        "with --data, the name of your new task")
    p.add_argument("--data", metavar="PATH",
                   help="train the task from your own data: an .npz with x, y (optionally x_test, y_test) or a "
                        "folder with one sub-folder of images per class")
    p.add_argument("--replace", action="store_true",
                   help="with --data: retrain one of the spec's own target tasks from your data")
    add_build_argument(p)
    add_training_arguments(p, "task")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="train with the repeated blocks running N times (default: the spec's repeat.default); "
                        "their weights are shared across runs, as in the hardware")
    add_progress_argument(p)
    p.set_defaults(func=cmd_train_task)

    p = sub.add_parser("weights", help="inspect weight-set files",
                       description="Inspect weight-set files.")
    wsub = p.add_subparsers(dest="weights_command", metavar="COMMAND", required=True)
    w = wsub.add_parser("show", help="validate a weight set and print its manifest",
                        description="Validate a weight-set file (format, checksum, word count, code ranges) "
                                    "and print its manifest and register layout. With --spec, also check "
                                    "that it was made for that spec's frozen core and register map.")
    w.add_argument("file", metavar="FILE", help="weight-set file (.npz)")
    w.add_argument("--spec", metavar="SPEC", help="also check core id and register map against this spec's build")
    add_build_argument(w)
    w.set_defaults(func=cmd_weights_show)
    w = wsub.add_parser("list", help="list a spec's weight sets with their quality",
                        description="List the weight sets under BUILD/<spec>/weightsets/, each validated "
                                    "against the spec's frozen core and register map, with its quality on "
                                    "held-out data.")
    add_spec_and_build(w)
    w.set_defaults(func=cmd_weights_list)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semifreddo",
        description="SemifreddoNets from QKeras to a PYNQ board: train partially frozen networks, "
                    "convert them with hls4ml, build the hardware, and drive it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register(sub)
    for module in _stage_cli_modules():
        module.register(sub)
    return parser


def _stage_cli_modules():
    """The other stages' command modules (entry points ``semifreddo.commands``), in pipeline order."""
    from importlib.metadata import entry_points

    modules = [ep.load() for ep in entry_points(group="semifreddo.commands")]
    return sorted(modules, key=lambda module: module.STAGE)


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SemifreddoError as exc:
        print(f"semifreddo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("semifreddo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:              # the reader went away (`semifreddo estimate ... | head`)
        sys.stderr.close()
        return 141


if __name__ == "__main__":
    sys.exit(main())
