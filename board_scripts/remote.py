"""Copying a bundle to a board over ssh/scp and installing it where PYNQ users look.

On the board (defaults for PYNQ's SD-card images; every one can be changed):

    /home/xilinx/pynq/overlays/<overlay>/       the whole bundle (.bit + .hwh side by side, driver,
                                                weight sets, register map, manifest.json)
    /home/xilinx/jupyter_notebooks/<overlay>/   the notebooks, and ``bundle`` -> the overlay folder

A board whose PYNQ lives elsewhere says so in the board table (``deploy/contract/boards.py``): the Kria
KV260 under Kria-PYNQ logs in as ``ubuntu``, takes the overlay in ``/home/ubuntu/pynq/overlays/``
and the notebooks in ``/home/root/jupyter_notebooks/``, where Kria-PYNQ's Jupyter serves them. The
bundle's manifest names its board, so ``deploy`` picks the right defaults.

The steps: check the bundle locally against its manifest; upload it with scp into
``<overlay folder>.incoming``; hash every uploaded file on the board with ``sha256sum`` and compare
with the manifest; only then swap the folder into place (a rename on the board) and copy the
notebooks. A failed upload or a checksum mismatch leaves the installed overlay untouched.

``deploy --weights`` adds one task to an overlay already installed: only that task's weight set
(and its held-out samples) and the bundle's new ``manifest.json`` are uploaded, as ``*.incoming``
files beside their final names; every file of the overlay is then hashed on the board and must
match the new manifest (so the overlay is this bundle, less the new task), the uploads included;
only then are they renamed into place, the manifest last.

Log-in is ssh's own: keys from ssh-agent or ``-i``, host keys from known_hosts. Set up key log-in
once (``ssh-copy-id xilinx@<board>``, ``ssh-copy-id ubuntu@<kria>``) so no password is asked three times.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.boards import BOARDS, DEFAULT_BOARD, Board, get_board
from semifreddo.deploy.contract.errors import SemifreddoError, ToolMissingError
from semifreddo.deploy.contract.interface import read_bundle_manifest

from semifreddo.deploy.contract.fileio import sha256_file

from .bundle import MANIFEST, compare_checksums, verify_bundle

_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+/-]*")


@dataclass(frozen=True)
class Target:
    host: str
    user: str
    port: int
    ssh_args: tuple[str, ...]   # extra options for both ssh and scp, e.g. ("-i", "key", "-o", "X=Y")

    @property
    def login(self) -> str:
        return f"{self.user}@{self.host}"


def bundle_board(bundle: Path) -> Board:
    """The board a bundle was packaged for (its PYNQ install paths and log-in user)."""
    return get_board(read_bundle_manifest(bundle)["board"])


def parse_target(host: str, user: str | None, port: int, ssh_args: str = "",
                 default_user: str = BOARDS[DEFAULT_BOARD].login_user) -> Target:
    """``host`` may carry the user (``xilinx@pynq``); ``ssh_args`` is one string, split like a shell."""
    if not host:
        raise SemifreddoError("no board host given (BOARD_HOST=... or --host)")
    if "@" in host:
        host_user, host = host.rsplit("@", 1)
        user = user or host_user
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise SemifreddoError(f"board host {host!r} is not a host name or address")
    if not 0 < port < 65536:
        raise SemifreddoError(f"port {port} is out of range")
    try:
        args = tuple(shlex.split(ssh_args or ""))
    except ValueError as exc:
        raise SemifreddoError(f"ssh arguments {ssh_args!r}: {exc}") from None
    return Target(host, user or default_user, port, args)


def remote_dir(path: str, what: str) -> str:
    """An absolute path on the board, limited to characters that need no quoting anywhere."""
    if not _SAFE_PATH.fullmatch(path) or "/../" in path + "/" or path.rstrip("/") in ("", "/"):
        raise SemifreddoError(f"{what} {path!r} must be an absolute path of letters, digits and ._+-/")
    return path.rstrip("/")


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise SemifreddoError(f"{what} failed: {detail}")
    return done.stdout


def ssh(target: Target, command: str, what: str) -> str:
    return _run(["ssh", "-p", str(target.port), *target.ssh_args, target.login, command], what)


def scp(target: Target, local: Path, remote: str) -> None:
    """Copy a file or (recursively) a folder to ``remote`` on the board."""
    _run(["scp", "-q", "-r", "-P", str(target.port), *target.ssh_args, str(local), f"{target.login}:{remote}"],
         f"copying {local} to {target.host}:{remote}")


def parse_sha256sum(output: str) -> dict[str, str]:
    """``sha256sum`` lines (``<hex>  ./path``) as path -> hex."""
    found = {}
    for line in output.splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            found[name[2:] if name.startswith("./") else name] = digest
    return found


def require_ssh() -> None:
    for tool in ("ssh", "scp"):
        if not shutil.which(tool):
            raise ToolMissingError(f"{tool} is not on PATH: install the OpenSSH client "
                                   f"(Debian/Ubuntu: apt-get install openssh-client)")


def deploy_bundle(bundle: Path, target: Target, *, overlay_dir: str | None = None,
                  notebook_dir: str | None = None) -> dict:
    """Install ``bundle`` on the board; return where it went."""
    require_ssh()
    manifest = verify_bundle(bundle)
    name = manifest["overlay"]
    board = get_board(manifest["board"])
    dest = remote_dir(overlay_dir or f"{board.overlay_root}/{name}", "overlay folder")
    notebooks = remote_dir(notebook_dir or f"{board.notebook_root}/{name}", "notebook folder")
    incoming = f"{dest}.incoming"
    q = shlex.quote

    ssh(target, f"mkdir -p {q(str(Path(dest).parent))} && rm -rf {q(incoming)}", "preparing the board")
    scp(target, bundle, incoming)
    listing = ssh(target, f"cd {q(incoming)} && find . -type f ! -name {q(MANIFEST)} -exec sha256sum {{}} +",
                  "checking the upload")
    try:
        compare_checksums(manifest, parse_sha256sum(listing), f"{target.host}:{incoming}")
    except SemifreddoError:
        ssh(target, f"rm -rf {q(incoming)}", "removing the bad upload")
        raise
    install = " && ".join([
        f"rm -rf {q(dest + '.old')}",
        f"if [ -e {q(dest)} ]; then mv {q(dest)} {q(dest + '.old')}; fi",
        f"mv {q(incoming)} {q(dest)}",
        f"rm -rf {q(dest + '.old')}",
        f"mkdir -p {q(notebooks)}",
        f"for nb in {q(dest)}/notebooks/*.ipynb; do if [ -f \"$nb\" ]; then cp \"$nb\" {q(notebooks)}/; fi; done",
        f"ln -sfn {q(dest)} {q(notebooks + '/bundle')}",
    ])
    ssh(target, install, "installing on the board")
    return {"overlay_dir": dest, "notebook_dir": notebooks, "bitstream": manifest.get("bitstream"),
            "files": len(manifest["files"]) + 1}


def _bundle_task(manifest: dict, bundle: Path, weights: str) -> str:
    """The bundle task ``weights`` names: a task name, or a weight-set file whose content is in the bundle."""
    if weights in manifest["tasks"]:
        return weights
    path = Path(weights)
    if path.is_file():
        digest = sha256_file(path)
        for task, name in manifest["tasks"].items():
            if manifest["files"].get(name) == digest:
                return task
    raise SemifreddoError(f"{weights} is not a task of {bundle} (tasks: {', '.join(manifest['tasks'])}); add it "
                          f"first with `semifreddo bundle add {bundle} WEIGHTS`")


def deploy_weights(bundle: Path, weights: str, target: Target, *, overlay_dir: str | None = None) -> dict:
    """Install one task of ``bundle`` into the overlay already on the board (see the module docstring)."""
    require_ssh()
    manifest = verify_bundle(bundle)
    task = _bundle_task(manifest, bundle, weights)
    dest = remote_dir(overlay_dir or f"{get_board(manifest['board']).overlay_root}/{manifest['overlay']}",
                      "overlay folder")
    uploads = [manifest["tasks"][task]] + ([manifest["samples"][task]] if task in manifest.get("samples", {}) else [])
    q = shlex.quote
    suffix = ".incoming"
    folders = " ".join(q(f"{dest}/{Path(name).parent}") for name in uploads)
    ssh(target, f"if [ ! -f {q(dest + '/' + MANIFEST)} ]; then echo 'no overlay installed in {dest}: deploy the "
                f"whole bundle first' >&2; exit 1; fi; mkdir -p {folders}", "checking the board")
    for name in uploads + [MANIFEST]:
        scp(target, bundle / name, f"{dest}/{name}{suffix}")
    listing = parse_sha256sum(ssh(target, f"cd {q(dest)} && find . -type f -exec sha256sum {{}} +",
                                  "checking the upload"))
    found = {name: digest for name, digest in listing.items() if not name.endswith(suffix) and name != MANIFEST}
    found.update({name[:-len(suffix)]: digest for name, digest in listing.items()
                  if name.endswith(suffix) and name[:-len(suffix)] in uploads})
    incoming = " ".join(q(f"{dest}/{name}{suffix}") for name in uploads + [MANIFEST])
    try:
        compare_checksums(manifest, found, f"{target.host}:{dest}")
        if listing.get(MANIFEST + suffix) != sha256_file(bundle / MANIFEST):
            raise SemifreddoError(f"{target.host}:{dest}: the uploaded manifest.json differs from the bundle's")
    except SemifreddoError as exc:
        ssh(target, f"rm -f {incoming}", "removing the upload")
        raise SemifreddoError(f"{exc}; nothing was changed on the board (if the overlay there is an older "
                              "package, deploy the whole bundle)") from None
    ssh(target, " && ".join(f"mv {q(f'{dest}/{name}{suffix}')} {q(f'{dest}/{name}')}" for name in uploads + [MANIFEST]),
        "installing on the board")
    return {"overlay_dir": dest, "task": task, "files": uploads + [MANIFEST]}
