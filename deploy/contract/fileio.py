"""Atomic file and folder writes, advisory file locks and checksums (standard library only; the board
uses this too).

A file written here is either the complete new version or the old one: the bytes go to a temporary
file in the same folder, are flushed to disk, and then renamed over the target, which POSIX makes
atomic. A crash or a full disk can therefore never leave a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, BinaryIO


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a binary file that replaces ``path`` only when the ``with`` block ends without error.

    ``durable=False`` skips the fsync: the replacement is still atomic for every reader, it is
    only not guaranteed to survive a power cut (for state that a power cut loses anyway)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    with atomic_writer(path, durable) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


TEMP_SUFFIX = ".tmp"
_TEMP = re.compile(r"^\..+\.(\d+)-[^.]+\.tmp$")     # .<name>.<pid>-<random>.tmp, from atomic_writer


def is_temp_file(name: str) -> bool:
    """Whether ``name`` is an :func:`atomic_writer` temporary (never part of an artifact)."""
    return bool(_TEMP.match(name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that writers killed mid-write left under ``folder`` (their process is
    gone); a live writer's are kept. Returns what was deleted."""
    removed = []
    for path in Path(folder).rglob(f"*{TEMP_SUFFIX}"):
        match = _TEMP.match(path.name)
        if match and path.is_file() and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the C
    library, kernel or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(a))


def start_staging_dir(final: Path) -> Path:
    """A fresh, empty ``<final>.partial`` folder in which to build ``final``; see :func:`replace_dir`."""
    stage = final.with_name(final.name + ".partial")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


def replace_dir(stage: Path, final: Path) -> None:
    """Move the finished ``stage`` folder to ``final``, replacing what was there.

    Where Linux allows it the two folders are swapped in one atomic step, so ``final`` is always
    either the old or the new folder, whatever kills the process (the old one is left in ``stage``
    and deleted; a kill before that leaves it for the next :func:`start_staging_dir` to delete).
    Elsewhere two renames through ``<final>.old``: between them ``final`` is briefly absent, never
    half-written, and the next call puts a ``.old`` left without its ``final`` back first.
    """
    old = final.with_name(final.name + ".old")
    if old.exists():
        if final.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, final)              # a swap killed half-way: the old folder comes back
    if final.exists() and _exchange(stage, final):
        shutil.rmtree(stage)
        return
    if final.exists():
        os.replace(final, old)
    os.replace(stage, final)
    if old.exists():
        shutil.rmtree(old)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, wait: float | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the ``with`` block.

    Every call opens the file anew, so two holders conflict even inside one process and thread.
    ``wait=None`` blocks until the lock is free; a number gives up after that many seconds with
    :class:`LockBusy`, which names the process holding it. The holder's pid is kept in the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    raise LockBusy(path, holder) from None
                time.sleep(0.005)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class LockBusy(Exception):
    """Another holder has the lock (``holder`` is its pid as text, or '')."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by process {holder or '?'}")
        self.path = path
        self.holder = holder
