"""`make deploy` / `semifreddo deploy` against a real OpenSSH server on 127.0.0.1.

The test starts Debian's sshd with a host key, an authorized_keys file and a config of its own in
a temporary folder, on a free loopback port, and deploys into temporary folders standing in for
the board's overlay and notebook folders. Only 127.0.0.1 is contacted. The installed files are
checked one by one against the bundle, with hashlib.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, one_error_line, run_cli
from semifreddo.board_scripts.remote import parse_sha256sum, parse_target, remote_dir
from semifreddo.deploy.contract.errors import SemifreddoError

from test_board_helpers import SPEC, install_fake_tools, make_hls_project, tool_env

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")
SETUP_STAMP = ".venv/.semifreddo-setup"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A running sshd on 127.0.0.1 that accepts one client key; yields the ssh arguments to use it."""
    assert SSHD.exists(), "openssh-server is not installed: run `make setup` (it installs DEB_PACKAGES)"
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege-separation folder
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    shutil.copyfile(keys / "client_key.pub", keys / "authorized_keys")
    port = free_port()
    (keys / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {keys / 'host_key'}
PidFile {keys / 'sshd.pid'}
AuthorizedKeysFile {keys / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp {SFTP_SERVER}
LogLevel VERBOSE
""")
    (keys / "known_hosts").write_text(f"[127.0.0.1]:{port} {(keys / 'host_key.pub').read_text()}")
    log = open(keys / "sshd.log", "w")
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(keys / "sshd_config")], stdout=log, stderr=log)
    ssh_args = (f"-F /dev/null -i {keys / 'client_key'} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o UserKnownHostsFile={keys / 'known_hosts'} -o StrictHostKeyChecking=yes -o ConnectTimeout=20")
    try:
        for _ in range(600):                  # wait until it listens (bounded; normally at once)
            if server.poll() is not None:
                pytest.fail(f"sshd exited: {(keys / 'sshd.log').read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield {"port": port, "user": os.environ.get("USER") or subprocess.check_output(["id", "-un"], text=True).strip(),
               "ssh_args": ssh_args, "log": keys / "sshd.log"}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def bundle(tmp_path):
    """A pynq-z2 bundle built with the stand-in tools."""
    build = tmp_path / "build"
    make_hls_project(build)
    env = tool_env(install_fake_tools(tmp_path))
    for step in ("synth", "bitstream", "package"):
        proc = run_cli(step, SPEC, "--board", "pynq-z2", "--build", build, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return build / SPEC / "bundle-pynq-z2"


def assert_installed(bundle: Path, overlay: Path, notebooks: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    installed = {p.relative_to(overlay).as_posix() for p in overlay.rglob("*") if p.is_file()}
    assert installed == {*manifest["files"], "manifest.json"}
    for name in installed:
        digest = hashlib.sha256((overlay / name).read_bytes()).hexdigest()
        assert digest == hashlib.sha256((bundle / name).read_bytes()).hexdigest(), name
        if name != "manifest.json":
            assert digest == manifest["files"][name], name
    assert (overlay / "semifreddo_digits.bit").exists() and (overlay / "semifreddo_digits.hwh").exists()
    assert (notebooks / "bundle").is_symlink() and (notebooks / "bundle").resolve() == overlay.resolve()
    for name in manifest["notebooks"]:
        assert (notebooks / Path(name).name).read_bytes() == (bundle / name).read_bytes()
    assert not overlay.with_name(overlay.name + ".incoming").exists()


@pytest.mark.solve
def test_make_deploy_installs_every_file_over_ssh(sshd, bundle, tmp_path):
    board = tmp_path / "board"
    overlay, notebooks = board / "overlays" / "semifreddo_digits", board / "jupyter_notebooks" / "semifreddo_digits"
    make = ["make", "--no-print-directory", "-o", SETUP_STAMP, "deploy", "BOARD_HOST=127.0.0.1",
            f"BOARD_USER={sshd['user']}", f"BOARD_PORT={sshd['port']}", f"BUNDLE={bundle}",
            f"OVERLAY_DIR={overlay}", f"NOTEBOOK_DIR={notebooks}", f"SSH_OPTS={sshd['ssh_args']}"]
    proc = subprocess.run(make, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr + sshd["log"].read_text()
    assert f"overlay {overlay}" in proc.stdout
    assert_installed(bundle, overlay, notebooks)

    # Deploying again replaces the installation: a file left over from before disappears.
    (overlay / "leftover.txt").write_text("old")
    proc = subprocess.run(make, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_installed(bundle, overlay, notebooks)


@pytest.mark.solve
def test_a_damaged_bundle_is_refused_before_anything_is_sent(sshd, bundle, tmp_path):
    (bundle / "regmap.json").write_text("{}")
    overlay = tmp_path / "board" / "overlays" / "x"
    proc = run_cli("deploy", bundle, "--host", f"{sshd['user']}@127.0.0.1", "--port", sshd["port"],
                   "--overlay-dir", overlay, "--notebook-dir", tmp_path / "board" / "nb", f"--ssh-args={sshd['ssh_args']}")
    assert proc.returncode == 2
    assert "checksum differs for regmap.json" in one_error_line(proc)
    assert not (tmp_path / "board").exists()


@pytest.mark.solve
def test_an_unreachable_board_is_one_line(bundle, tmp_path):
    proc = run_cli("deploy", bundle, "--host", "127.0.0.1", "--port", free_port(), "--overlay-dir", tmp_path / "o",
                   "--ssh-args=-F /dev/null -o BatchMode=yes -o ConnectTimeout=5")
    assert proc.returncode == 2
    assert "preparing the board failed:" in one_error_line(proc)


@pytest.mark.solve
def test_missing_ssh_client_is_one_line(bundle, tmp_path):
    proc = run_cli("deploy", bundle, "--host", "127.0.0.1", env={"PATH": str(tmp_path / "nothing")})
    assert proc.returncode == 2
    assert "ssh is not on PATH" in one_error_line(proc)


def test_target_and_remote_path_checks():
    t = parse_target("xilinx@pynq.local", None, 22, "-i key -o A=B")
    assert (t.user, t.host, t.ssh_args) == ("xilinx", "pynq.local", ("-i", "key", "-o", "A=B"))
    assert parse_target("192.168.2.99", None, 22).user == "xilinx"
    assert parse_target("192.168.2.99", None, 22, default_user="ubuntu").user == "ubuntu"
    assert parse_target("me@192.168.2.99", None, 22, default_user="ubuntu").user == "me"
    for bad in ("relative/dir", "/with space", "/a/../b", "/", "/x;rm"):
        with pytest.raises(SemifreddoError):
            remote_dir(bad, "overlay folder")
    with pytest.raises(SemifreddoError, match="no board host"):
        parse_target("", None, 22)
    assert parse_sha256sum("ab12  ./weightsets/a.npz\ncd34  ./regmap.json\n") == \
        {"weightsets/a.npz": "ab12", "regmap.json": "cd34"}


@pytest.mark.solve
def test_make_deploy_weights_installs_one_new_task_on_the_board(sshd, bundle, tmp_path):
    """A task added to the bundle after it was installed: only its weight set and the new manifest go
    over, both verified on the board, and the installation equals the bundle again."""
    from test_board_helpers import register_map, write_weightsets

    board = tmp_path / "board"
    overlay, notebooks = board / "overlays" / "semifreddo_digits", board / "jupyter_notebooks" / "semifreddo_digits"
    target = ["BOARD_HOST=127.0.0.1", f"BOARD_USER={sshd['user']}", f"BOARD_PORT={sshd['port']}",
              f"BUNDLE={bundle}", f"OVERLAY_DIR={overlay}", f"SSH_OPTS={sshd['ssh_args']}"]
    make = ["make", "--no-print-directory", "-o", SETUP_STAMP]
    proc = subprocess.run(make + ["deploy", f"NOTEBOOK_DIR={notebooks}"] + target, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    (weights,) = write_weightsets(tmp_path, register_map(), tasks=("mine",))
    proc = subprocess.run(make + ["add-task", f"BUNDLE={bundle}", f"WEIGHTS={weights}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    untouched = {name: (overlay / name).stat().st_mtime_ns for name in json.loads(
        (overlay / "manifest.json").read_text())["files"]}
    proc = subprocess.run(make + ["deploy-weights", f"WEIGHTS={weights}"] + target, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr + sshd["log"].read_text()
    assert "task mine installed" in proc.stdout and "weightsets/mine.npz, manifest.json" in proc.stdout
    assert_installed(bundle, overlay, notebooks)
    assert json.loads((overlay / "manifest.json").read_text())["tasks"]["mine"] == "weightsets/mine.npz"
    assert all((overlay / name).stat().st_mtime_ns == t for name, t in untouched.items())    # nothing else copied
    assert not list(overlay.rglob("*.incoming"))

    # An overlay on the board that is not this bundle (a file changed there) is refused; nothing changes.
    write_weightsets(tmp_path, register_map(), tasks=("other",))
    assert run_cli("bundle", "add", bundle, tmp_path / "other.npz").returncode == 0
    (overlay / "regmap.json").write_text("{}")
    before = {p: p.read_bytes() for p in overlay.rglob("*") if p.is_file()}
    proc = run_cli("deploy", bundle, "--weights", "other", "--host", f"{sshd['user']}@127.0.0.1", "--port",
                   sshd["port"], "--overlay-dir", overlay, f"--ssh-args={sshd['ssh_args']}")
    assert proc.returncode == 2
    assert "checksum differs for regmap.json; nothing was changed on the board" in one_error_line(proc)
    assert {p: p.read_bytes() for p in overlay.rglob("*") if p.is_file()} == before
    # A weight set that is not in the bundle, and a board with no overlay yet, are one line each.
    proc = run_cli("deploy", bundle, "--weights", "nothing", "--host", "127.0.0.1", "--port", sshd["port"],
                   f"--ssh-args={sshd['ssh_args']}")
    assert proc.returncode == 2 and "nothing is not a task of" in one_error_line(proc)
    proc = run_cli("deploy", bundle, "--weights", "other", "--host", f"{sshd['user']}@127.0.0.1", "--port",
                   sshd["port"], "--overlay-dir", board / "empty", f"--ssh-args={sshd['ssh_args']}")
    assert proc.returncode == 2 and "no overlay installed in" in one_error_line(proc)


@pytest.mark.solve
def test_a_kv260_bundle_goes_where_kria_pynq_looks(tmp_path):
    """Packaged for the KV260, `deploy` logs in as ubuntu and installs into Kria-PYNQ's folders. The
    ssh on PATH here only records what it was asked to do (and fails, like an unreachable board)."""
    build = tmp_path / "build"
    make_hls_project(build)
    bin_dir = install_fake_tools(tmp_path)
    env = tool_env(bin_dir)
    for step in ("synth", "bitstream", "package"):
        proc = run_cli(step, SPEC, "--board", "kv260", "--build", build, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    log = tmp_path / "ssh.log"
    for tool in ("ssh", "scp"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "connection refused" >&2\nexit 255\n')
        (bin_dir / tool).chmod(0o755)
    proc = run_cli("deploy", build / SPEC / "bundle-kv260", "--host", "192.168.2.77", env=env)
    assert proc.returncode == 2
    assert "preparing the board failed: connection refused" in one_error_line(proc)
    called = log.read_text()
    assert "ubuntu@192.168.2.77" in called
    assert "mkdir -p /home/ubuntu/pynq/overlays" in called
