"""`semifreddo --help` and every subcommand's `--help` describe their arguments."""

import argparse

from semifreddo.models.cli import build_parser

from conftest import run_cli


def subcommands(parser, prefix=()):
    """Every (path, parser) pair reachable through subparsers, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from subcommands(sub, prefix + (name,))


def test_every_command_documents_itself():
    parser = build_parser()
    commands = list(subcommands(parser))
    names = {" ".join(path) for path, _ in commands}
    # One stage's commands each, at least: the pipeline is all reachable from one command.
    assert {"spec", "train-core", "train-task", "weights show", "convert", "csim", "check", "estimate"} <= names
    for path, sub in commands:
        text = sub.format_help()
        assert sub.description and len(sub.description) > 20, f"{' '.join(path)} has no description"
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"`{' '.join(path)}` argument {action.dest} has no help text"
            assert action.help in " ".join(text.split()) or action.help.split()[0] in text


def test_top_level_help_runs_quickly_without_tensorflow():
    import subprocess
    import sys

    probe = ("import sys; from semifreddo.models.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('tensorflow', 'hls4ml', 'pynq') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "train-core" in proc.stdout and "convert" in proc.stdout
    proc = run_cli("convert", "--help")
    assert proc.returncode == 0 and "--part" in proc.stdout
