"""The code's shape, checked: imports go one way (no cycles, hidden in functions or not), and the
board side (deploy/) imports only numpy, pynq and the standard library."""

import ast
import sys
from pathlib import Path

from conftest import REPO

STAGES = {"models": "semifreddo.models", "hls_project": "semifreddo.hls_project",
          "board_scripts": "semifreddo.board_scripts", "deploy": "semifreddo.deploy"}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in STAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every semifreddo module ``name`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:        # annotations only: never imported at run time
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def test_no_import_cycles():
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    # Packages import nothing of their own here; a module depends on its package's __init__ only.
    state, cycle = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycle.extend(stack[stack.index(nxt):] + [nxt])
                return True
            if nxt not in state and visit(nxt, stack + [nxt]):
                return True
        state[node] = "done"
        return False

    for name in graph:
        if name not in state and visit(name, [name]):
            break
    assert not cycle, " -> ".join(cycle)


def test_the_board_side_imports_only_numpy_pynq_and_the_standard_library():
    # Pillow (PIL) ships on every PYNQ image; the board side imports it only to read and write photographs.
    allowed = {"numpy", "pynq", "semifreddo", "PIL"} | set(sys.stdlib_module_names)
    for name, path in modules().items():
        if not name.startswith("semifreddo.deploy"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = {node.module.split(".")[0]}
            else:
                continue
            assert tops <= allowed, f"{path}: imports {sorted(tops - allowed)}"
            assert not any(a.name.startswith("semifreddo.") and not a.name.startswith("semifreddo.deploy")
                           for a in getattr(node, "names", [])), path
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("semifreddo."):
                assert node.module.startswith("semifreddo.deploy"), f"{path}: imports {node.module}"
