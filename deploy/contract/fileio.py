"""Atomic file and folder writes, advisory file locks and checksums (standard library only; the board
uses this too).

A file written here is either the complete new version or the old one: the bytes go to a temporary
file in the same folder, are flushed to disk, and then renamed over the target, which POSIX makes
atomic. A crash or a full disk can therefore never leave a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def start_staging_dir(final: Path) -> Path:
    """A fresh, empty ``<final>.partial`` folder in which to build ``final``; see :func:`replace_dir`."""
    stage = final.with_name(final.name + ".partial")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


def replace_dir(stage: Path, final: Path) -> None:
    """Move the finished ``stage`` folder to ``final``, replacing what was there.

    Each rename is atomic; between the two, ``final`` is briefly absent, never half-written.
    """
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
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
