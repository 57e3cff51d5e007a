"""The PYNQ driver: open a deploy bundle, load tasks into weight banks, stream images.

::

    from semifreddo.deploy.runtime.driver import Semifreddo
    sf = Semifreddo("/home/xilinx/pynq/overlays/semifreddo_digits")   # loads the overlay if needed
    sf.tasks                     # {'digits_5_9': ..., 'parity': ...}
    sf.switch("parity")          # shadow bank, read-back check, commit; sf.last_switch has the timing
    y = sf.run(images)           # outputs shaped and scaled like the QKeras model's; sf.last_run
    sf.repeat = 2                # how many times the last block runs

**Weight banks.** An IP built with ``hardware.banks: N`` holds N weight sets at once, and every
frame names its bank (in the input stream's side-band field, which the driver fills in)::

    sf.load("digits_5_9")        # into a free bank (or the one that already holds it)
    sf.load("parity", bank=2)
    y = sf.run(images, task="parity")                    # on the bank that holds parity
    ys = sf.run({"digits_5_9": a, "parity": b})          # interleaved frame by frame, no reload
    sf.banks                     # per bank: task, sequence number, checksum

A load writes the shadow bank, reads it back and commits it into its bank between two starts of
the IP; runs on other banks go on around it. A run on a bank that holds no ready weight set is
refused with one line; ``switch(task)`` loads a task (into bank 0 with one bank) and makes it
the one a plain ``run(images)`` uses.

**A frame buffer in DDR.** An IP whose reused repeat group keeps its frame in DDR (the register
map's ``frame_buffer``) gets a buffer from ``pynq.allocate`` at its first run; its address is written
into the IP before every start, under the run lock.

The bitstream is downloaded only when the PL does not already hold it (PYNQ's record of the
loaded bitstream, path and hash), so the active task survives from one process to the next as on
any powered board. The IP is bound by its VLNV (:class:`SemifreddoIP`), the DMA by pynq's own
driver. Before anything runs, the bundle's register map is checked against the register table
PYNQ parsed from the .hwh, and the IP's ``core_id``/``regmap_id`` registers against the bundle.

**Loading while images flow.** A run holds a lock per bank it uses (``bank<k>.lock``) from its
first batch to its last, and the board's run lock for each start of the IP; it starts the IP with
``commit`` 0, which never commits, so no commit can land inside a run: every output of one ``run``
comes from the weight sets its banks held when it began. A load into a bank a run is using refuses
at once with :class:`BoardBusy` (``wait=SECONDS`` retries until the run ends), and the bank keeps
its task; a load into another bank goes through between two starts of the run. Two loads, from any
processes, queue for each other on a second lock (``switch.lock``, taken first): both are made,
one after the other. The locks are ``flock`` locks, released by
the kernel when their holder dies, so a killed process never leaves a stale lock. A streaming script therefore switches between two
``run`` calls, from the same or another process; images keep flowing before and after it.

The device: an explicit ``device=`` argument, else ``SEMIFREDDO_DEVICE=emulated`` (the emulated
board of ``emulator.py``), else the emulated board for a bundle built for it, else pynq's active
device (the board). numpy, pynq and the standard library only. Runs on PYNQ 3.0 and 3.1
(``contract.PYNQ_RELEASES``); importing it under another release raises one-line SemifreddoError.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pynq

from ..contract.errors import SemifreddoError
from ..contract.interface import (AP_DONE, AP_IDLE, AP_START, FRAME_BUFFER_WORDS, IP_VLNV, check_pynq_release, ports,
                                  read_bundle_manifest)

check_pynq_release(pynq.__version__)     # at load, before anything of pynq's is used: one line if unsupported

from pynq import DefaultIP                                   # noqa: E402
from pynq.pl_server.global_state import bitstream_hash      # noqa: E402
from ..contract.fileio import LockBusy, atomic_write_text, file_lock             # noqa: E402
from ..contract.regmap import RegisterMap, load_register_map                     # noqa: E402
from ..contract.streams import input_codes, output_values, pack_pixels, tag_banks  # noqa: E402
from ..contract.weightset import WeightSet, check_compatible, read_weight_set    # noqa: E402

ENV_DEVICE = "SEMIFREDDO_DEVICE"
DEFAULT_BATCH = 1024          # frames per start of the IP (one DMA transfer each way)
TIMEOUT = 30.0                # seconds to wait for ap_done before calling the IP stuck


class BoardBusy(SemifreddoError):
    """A run is in flight on the board; the switch was not made."""


class ReadBackError(SemifreddoError):
    """The shadow bank did not read back what was written; nothing was committed."""


class SemifreddoIP(DefaultIP):
    """The semifreddo IP's AXI-Lite side: control registers and the shadow bank."""

    bindto = [IP_VLNV]

    def __init__(self, description):
        super().__init__(description=description)
        self.description = description
        self.regmap: RegisterMap | None = None

    def attach(self, regmap: RegisterMap) -> None:
        self.regmap = regmap

    def read_register(self, name: str) -> int:
        return self.read(self.regmap.control[name])

    def write_register(self, name: str, value: int) -> None:
        self.write(self.regmap.control[name], int(value) & 0xFFFFFFFF)

    def write_bank(self, words: np.ndarray) -> None:
        self.mmio.write(self.regmap.bank_offset, np.ascontiguousarray(words, dtype="<u4").tobytes())

    def read_bank(self) -> np.ndarray:
        return np.array([self.read(self.regmap.bank_offset + 4 * i) for i in range(self.regmap.n_words)],
                        dtype=np.uint32)

    @property
    def idle(self) -> bool:
        return bool(self.read(0) & AP_IDLE)

    def start_and_wait(self, commit: int, n_frames: int, streams=()) -> None:
        """One start of the IP: ``n_frames`` frames (0 = only apply a pending commit); ``streams``
        are DMA channels to wait for after the IP is done."""
        self.write_register("commit", commit)
        self.write_register("n_frames", n_frames)
        self.write(0, AP_START)
        deadline = time.monotonic() + TIMEOUT
        while not self.read(0) & AP_DONE:          # ap_done clears on read: only this loop reads it
            if time.monotonic() > deadline:
                raise SemifreddoError(f"the IP did not finish within {TIMEOUT:.0f} s (n_frames {n_frames}); "
                                      "check the DMA and the bitstream")
        for channel in streams:
            channel.wait()


def check_register_map(description: dict, regmap: RegisterMap) -> None:
    """The register offsets PYNQ read from the hardware description must be the register map's."""
    registers = description.get("registers") or {}
    if not registers:
        raise SemifreddoError("the .hwh lists no registers for the IP, so the register map cannot be checked; "
                              "rebuild the bitstream with `semifreddo bitstream`")
    for name in ports("in", regmap.banks) + ports("out", regmap.banks):
        # Vitis HLS may rename an argument that is an HDL keyword (``repeat``) with a ``_r`` suffix.
        entry = registers.get(name) or registers.get(f"{name}_r")
        if entry is None:
            raise SemifreddoError(f"the hardware has no register {name!r}, but the register map needs it: the "
                                  "bundle's regmap.json does not belong to this bitstream")
        if int(entry["address_offset"]) != regmap.control[name]:
            raise SemifreddoError(f"register {name} is at {int(entry['address_offset']):#x} in the hardware but at "
                                  f"{regmap.control[name]:#x} in regmap.json: they do not belong together; refusing "
                                  "to run")
    if "frame_buffer" in regmap.control:
        # The DDR frame buffer's 64-bit address: Vitis HLS's two words, low then high.
        for word, name in enumerate(FRAME_BUFFER_WORDS):
            entry = registers.get(name)
            if entry is None or int(entry["address_offset"]) != regmap.control["frame_buffer"] + 4 * word:
                raise SemifreddoError(f"the hardware has no register {name} at {regmap.control['frame_buffer'] + 4 * word:#x}, "
                                      "but regmap.json gives the IP a frame buffer in DDR there: they do not belong "
                                      "together; refusing to run")
    banked = [name for name in ports("in", 2) + ports("out", 2) if name not in ports("in") + ports("out")]
    if regmap.banks == 1 and any(name in registers for name in banked):
        raise SemifreddoError("the hardware has weight-bank registers, but the bundle's regmap.json describes an IP "
                              "of one bank: they do not belong together; refusing to run")
    end = regmap.bank_offset + 4 * regmap.n_words
    if int(description.get("addr_range", 0)) < end:
        raise SemifreddoError(f"the IP's address range {int(description.get('addr_range', 0)):#x} is smaller than "
                              f"the shadow bank of regmap.json (ends at {end:#x}); refusing to run")


def select_device(device, manifest: dict):
    """The pynq device to open the bundle on (see the module docstring)."""
    if device is not None:
        return device
    choice = os.environ.get(ENV_DEVICE, "")
    if choice not in ("", "emulated", "board"):
        raise SemifreddoError(f"{ENV_DEVICE}={choice!r}: expected 'emulated' or 'board'")
    if choice == "emulated" or (choice == "" and manifest.get("emulated")):
        from .emulator import EmulatedDevice
        return EmulatedDevice()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # pynq's "is the XRT environment sourced?"
        try:
            return pynq.Device.active_device
        except RuntimeError:
            raise SemifreddoError(f"no PYNQ device found: run this on the board, or use the emulated board "
                                  f"({ENV_DEVICE}=emulated)") from None


def _bitstream_in_pl(device):
    """PYNQ's record of the bitstream the PL holds (path and hash), or None."""
    state = getattr(device, "global_state", None)        # the emulated board keeps its own
    if state is None and not hasattr(device, "global_state"):
        from pynq.pl_server import global_state as gs
        if Path("/sys/class/fpga_manager/fpga0/state").exists():
            gs.initial_global_state_file_boot_check()   # forget the record of a PL lost to a reboot
        state = gs.load_global_state() if gs.global_state_file_exists() else None
    return state


@dataclass
class SwitchReport:
    task: str
    weights: str
    active_seq: int
    seconds: float


@dataclass
class LoadReport:
    task: str
    weights: str
    bank: int
    seq: int
    bytes_moved: int      # AXI-Lite bytes: the shadow bank written and read back (0: the bank held it already)
    seconds: float


@dataclass
class RunReport:
    task: str | None      # the task of each bank the run used, comma-separated
    active_seq: dict      # bank -> sequence number of the weight set it ran on
    images: int
    batches: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else float("inf")


class Semifreddo:
    """A deploy bundle opened on a board (or the emulated board)."""

    def __init__(self, bundle: str | os.PathLike, device=None, download: bool | None = None):
        self.bundle = Path(bundle).resolve()
        self.manifest = read_bundle_manifest(self.bundle)
        self.regmap = load_register_map(self.bundle / self.manifest["regmap"])
        if self.regmap.id != self.manifest["regmap_id"]:
            raise SemifreddoError(f"{self.bundle}: regmap.json ({self.regmap.id}) is not the register map the "
                                  f"bundle was built for ({self.manifest['regmap_id']})")
        self.core_id = self.manifest["core_id"]
        self.device = select_device(device, self.manifest)
        self.bitfile = self._bitfile()
        if download is None:
            loaded = _bitstream_in_pl(self.device)
            download = not (loaded and loaded.bitfile_name == str(self.bitfile)
                            and loaded.bitfile_hash == bitstream_hash(str(self.bitfile)))
        self.overlay = pynq.Overlay(str(self.bitfile), download=download, device=self.device)
        self.downloaded = download
        ip_name, dma_name = self.manifest["ip_instance"], self.manifest["dma_instance"]
        if ip_name not in self.overlay.ip_dict or self.overlay.ip_dict[ip_name]["type"] != IP_VLNV:
            raise SemifreddoError(f"{self.bitfile.name}: has no {ip_name} of type {IP_VLNV}")
        check_register_map(self.overlay.ip_dict[ip_name], self.regmap)
        self.ip: SemifreddoIP = getattr(self.overlay, ip_name)
        self.ip.attach(self.regmap)
        self.dma = getattr(self.overlay, dma_name)
        self.last_switch: SwitchReport | None = None
        self.last_load: LoadReport | None = None
        self.last_run: RunReport | None = None
        self._seqs_seen: dict[int, int] = {}
        runtime = Path(getattr(self.device, "state_dir", None) or Path(tempfile.gettempdir()) / "semifreddo-pl")
        self._runtime = runtime
        self._run_lock = runtime / "run.lock"
        self._switch_lock = runtime / "switch.lock"
        self._journal = runtime / "banks.json"
        self._frame_buffer = None                    # the reused group's frame buffer in DDR (allocated at the first run)
        self._identify()
        lo, hi = self.regmap.repeat_range
        if not lo <= self.repeat <= hi:                  # a freshly configured PL holds 0
            self.repeat = lo

    def _bitfile(self) -> Path:
        name = self.manifest.get("bitstream") or (self.manifest.get("emulator") or {}).get("bitstream")
        if not name:
            raise SemifreddoError(f"{self.bundle}: the bundle has neither a bitstream nor an emulated one "
                                  "(rebuild it with `semifreddo package`)")
        path = self.bundle / name
        if not path.is_file():
            raise SemifreddoError(f"{path}: listed in the bundle's manifest but missing")
        return path

    def _identify(self) -> None:
        """The IP must be the one this bundle was built for. Its id registers are outputs, valid
        after its first start; on a freshly configured PL that start is one that commits nothing
        (commit 0, n_frames 0)."""
        ids = {"core_id": int(self.core_id[-8:], 16), "regmap_id": self.regmap.id32}
        if any(self.ip.read_register(name) != value for name, value in ids.items()):
            with self._lock(wait=None):
                self.ip.start_and_wait(0, 0)
        for name, expected in ids.items():
            found = self.ip.read_register(name)
            if found != expected:
                raise SemifreddoError(f"the IP reports {name} {found:08x}, the bundle expects {expected:08x}: the "
                                      "PL holds another design; refusing to run")

    def _lock(self, wait: float | None):
        """The board's run lock (see the module docstring); LockBusy if not free within ``wait`` s."""
        return file_lock(self._run_lock, wait)

    # --- tasks ---------------------------------------------------------------------------------

    @property
    def io(self) -> dict:
        return self.regmap.io

    @property
    def tasks(self) -> dict[str, Path]:
        """The bundle's tasks as its manifest.json listed them when this object was opened (a task
        added later with `semifreddo bundle add` is there at the next opening)."""
        return {task: self.bundle / name for task, name in self.manifest["tasks"].items()}

    def weight_set(self, task_or_file: str | os.PathLike | WeightSet) -> WeightSet:
        """A bundle task's weight set, or a weight-set file, checked against this IP."""
        if isinstance(task_or_file, WeightSet):
            return check_compatible(task_or_file, self.core_id, self.regmap)
        path = self.tasks.get(str(task_or_file)) or Path(task_or_file)
        if not path.exists() and path.suffix != ".npz" and len(path.parts) == 1:    # a task name, not a file
            raise SemifreddoError(f"no task {task_or_file!r} in {self.bundle.name} (tasks: {', '.join(self.tasks)})")
        return read_weight_set(path, expect_core_id=self.core_id, expect_regmap=self.regmap)

    # --- weight banks --------------------------------------------------------------------------

    @property
    def n_banks(self) -> int:
        return self.regmap.banks

    def _bank_lock(self, bank: int, wait: float | None):
        """The lock a run holds on each bank it uses, and a load on the bank it writes."""
        return file_lock(self._runtime / f"bank{bank}.lock", wait)

    def _check_bank(self, bank) -> int:
        if isinstance(bank, bool) or not isinstance(bank, (int, np.integer)) or not 0 <= bank < self.n_banks:
            raise SemifreddoError(f"bank {bank!r} does not exist: this IP has {self.n_banks} bank(s), "
                                  f"0..{self.n_banks - 1}")
        return int(bank)

    def bank_seq(self, bank: int) -> int:
        """The sequence number of the weight set bank ``bank`` holds, as the IP reports it (0: none).
        With several banks the IP reports the bank its ``load_bank`` register names, after a start:
        this makes one that commits nothing (commit 0, no frames)."""
        bank = self._check_bank(bank)
        if self.n_banks == 1:
            return self.ip.read_register("active_seq")
        with self._lock(wait=None):
            self.ip.write_register("load_bank", bank)
            self.ip.start_and_wait(0, 0)
            return self.ip.read_register("active_seq")

    def _ready(self) -> set[int]:
        """The banks that hold a committed weight set (the IP's own record)."""
        if self.n_banks == 1:
            return {0} if self.ip.read_register("active_seq") else set()
        mask = self.ip.read_register("ready_banks")
        return {k for k in range(self.n_banks) if mask >> k & 1}

    def _read_journal(self) -> dict:
        """What this driver loaded into each bank, from any process: bank -> {task, seq, checksum,
        weights}, and the active bank. Entries for another bitstream are forgotten."""
        try:
            journal = json.loads(self._journal.read_text())
        except (OSError, ValueError):                    # missing, or damaged (not UTF-8, not JSON)
            journal = None
        if not isinstance(journal, dict) or journal.get("bitfile") != str(self.bitfile) or \
                not isinstance(journal.get("banks"), dict):
            return {"bitfile": str(self.bitfile), "active_bank": 0, "banks": {}}
        journal["banks"] = {k: v for k, v in journal["banks"].items() if isinstance(v, dict)}   # damaged: forgotten
        return journal

    def _write_journal(self, journal: dict) -> None:
        atomic_write_text(self._journal, json.dumps(journal) + "\n", durable=False)

    @property
    def banks(self) -> list[dict]:
        """Every bank: its task, the sequence number the IP reports, the weight set's checksum, and
        whether it is ready (holds a committed weight set). A bank the IP holds under another
        number than this driver recorded shows its task as unknown."""
        journal, ready = self._read_journal(), self._ready()
        rows = []
        for k in range(self.n_banks):
            seq = self.bank_seq(k) if k in ready else 0
            entry = journal["banks"].get(str(k), {})
            known = bool(entry) and entry.get("seq") == seq and seq != 0
            rows.append({"bank": k, "ready": k in ready, "seq": seq, "task": entry.get("task") if known else None,
                         "checksum": entry.get("checksum") if known else None})
        return rows

    def bank_of(self, task: str) -> int:
        """The bank that holds ``task`` (refused in one line when none does)."""
        rows = self.banks
        for row in rows:
            if row["task"] == task and row["ready"]:
                return row["bank"]
        held = ", ".join(f"{r['bank']}: {r['task'] or ('unknown' if r['ready'] else 'empty')}" for r in rows)
        raise SemifreddoError(f"task {task!r} is in no bank of the IP (banks {held}); load it first: "
                              f"sf.load({task!r}) or `semifreddo load BUNDLE --task {task}`")

    @property
    def active_bank(self) -> int:
        """The bank a run without a task uses: the one ``switch`` chose last (bank 0 with one bank)."""
        bank = self._read_journal().get("active_bank", 0)
        return bank if isinstance(bank, int) and 0 <= bank < self.n_banks else 0

    @property
    def active_seq(self) -> int:
        return self.bank_seq(self.active_bank)

    @property
    def active_task(self) -> str | None:
        """The task in the active bank, loaded by this driver from any process (None if unknown)."""
        bank = self.active_bank
        entry = self._read_journal()["banks"].get(str(bank), {})
        return entry.get("task") if entry.get("seq") and entry.get("seq") == self.bank_seq(bank) else None

    @property
    def repeat(self) -> int:
        return self.ip.read_register("repeat")

    @repeat.setter
    def repeat(self, value: int) -> None:
        lo, hi = self.regmap.repeat_range
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
            raise SemifreddoError(f"repeat {value!r} is outside this IP's range {lo}..{hi}")
        with self._lock(wait=None):
            self.ip.write_register("repeat", int(value))

    # --- load and switch -------------------------------------------------------------------------

    def load(self, task_or_file, bank: int | None = None, wait: float = 0.0) -> "LoadReport":
        """Load a task (a bundle task name, a weight-set file or a WeightSet) into a weight bank.

        ``bank=None``: the bank that already holds this weight set (then nothing is written), else
        a free one; with one bank, bank 0. A bank named explicitly is always written. The shadow bank is written, read back and compared, then
        committed into the bank between two starts of the IP, while runs on other banks go on. Any
        failure leaves every bank as it was. ``wait``: seconds to wait for a run that uses the bank."""
        started = time.perf_counter()
        ws = self.weight_set(task_or_file)
        # A task added to the bundle under a name of its own (`bundle add --task`) goes by that name.
        name = task_or_file if isinstance(task_or_file, str) and task_or_file in self.tasks else ws.task
        checksum = ws.manifest["checksum"]
        if bank is not None:
            bank = self._check_bank(bank)
        try:
            # Loads queue for each other (a load takes milliseconds), then wait for the bank's runs.
            with file_lock(self._switch_lock, wait=None):
                journal = self._read_journal()
                reuse = bank is None
                if bank is None:
                    bank = self._choose_bank(journal, name, checksum)
                with self._bank_lock(bank, wait):
                    entry = journal["banks"].get(str(bank), {})
                    with self._between_starts():
                        current = self.bank_seq(bank)
                    if reuse and current and entry.get("seq") == current and \
                            (entry.get("task"), entry.get("checksum")) == (name, checksum):
                        return self._report(LoadReport(name, str(ws.path), bank, current, 0,
                                                       time.perf_counter() - started))
                    seq = self._commit(ws, bank, max([current] + [e.get("seq", 0) for e in journal["banks"].values()]))
                    journal["banks"][str(bank)] = {"task": name, "seq": seq, "checksum": checksum,
                                                   "weights": str(ws.path)}
                    self._write_journal(journal)
        except LockBusy as exc:
            raise BoardBusy(f"a run is in flight on bank {bank} of this board (process {exc.holder or '?'}); the "
                            f"switch to {name} was not made and the previous task is still active in that bank; "
                            "retry, load into another bank, or pass a wait time") from None
        return self._report(LoadReport(name, str(ws.path), bank, seq, 8 * self.regmap.n_words,
                                       time.perf_counter() - started))

    def _report(self, report: "LoadReport") -> "LoadReport":
        self.last_load = report
        return report

    def _between_starts(self):
        """Priority over runs between two of their starts: a run takes this lock briefly before each
        start, so while a load holds it, the runs wait after their current start."""
        return file_lock(self._runtime / "commit.lock", wait=None)

    def _choose_bank(self, journal: dict, name: str, checksum: str) -> int:
        """For a load that names no bank: the bank this driver loaded the weight set into, else a
        free one (the IP's ready flags), else a one-line refusal."""
        if self.n_banks == 1:
            return 0
        ready = self._ready()
        for k in sorted(ready):
            entry = journal["banks"].get(str(k), {})
            if (entry.get("task"), entry.get("checksum")) == (name, checksum):
                return k
        free = [k for k in range(self.n_banks) if k not in ready]
        if free:
            return free[0]
        held = ", ".join(f"{k}: {journal['banks'].get(str(k), {}).get('task', 'unknown')}" for k in range(self.n_banks))
        raise SemifreddoError(f"every bank holds a task ({held}); name the bank to replace: "
                              f"load({name!r}, bank=N) or `semifreddo load BUNDLE --task {name} --bank N`")

    def _commit(self, ws: WeightSet, bank: int, last_seq: int) -> int:
        """Shadow bank written, read back, compared (while runs go on: no frame reads the shadow
        bank); then committed into ``bank`` between two starts. Returns its sequence number."""
        self.ip.write_bank(ws.words)
        readback = self.ip.read_bank()
        bad = np.flatnonzero(readback != ws.words)
        if bad.size:
            i = int(bad[0])
            raise ReadBackError(
                f"shadow bank read-back mismatch at word {i} (offset {self.regmap.bank_offset + 4 * i:#x}): "
                f"wrote {int(ws.words[i]):#010x}, read {int(readback[i]):#010x} ({bad.size} word(s) differ); "
                f"nothing was committed, the previous task is still active in bank {bank} and every other bank "
                "is untouched")
        seq = (last_seq + 1) & 0xFFFFFFFF or 1
        with self._between_starts(), self._lock(wait=None):
            if self.n_banks > 1:
                self.ip.write_register("load_bank", bank)
            self.ip.start_and_wait(seq, 0)
            reported = self.ip.read_register("active_seq")
        if reported != seq:
            raise SemifreddoError(f"the commit of sequence {seq} into bank {bank} did not take effect (the IP "
                                  f"reports {reported})")
        return seq

    def switch(self, task_or_file, wait: float = 0.0) -> SwitchReport:
        """Make a task (a bundle task name, a weight-set file or a WeightSet) the active one: the
        one a run without ``task`` uses. With one bank the weight set is loaded into it; with
        several, into the bank that holds it already or a free one (:meth:`load`). Any failure
        leaves the previous task active. ``wait``: seconds to wait for a run in flight."""
        report = self.load(task_or_file, bank=0 if self.n_banks == 1 else None, wait=wait)
        with file_lock(self._switch_lock, wait=None):
            journal = self._read_journal()
            journal["active_bank"] = report.bank
            self._write_journal(journal)
        self.last_switch = SwitchReport(report.task, report.weights, report.seq, report.seconds)
        return self.last_switch

    # --- run -----------------------------------------------------------------------------------

    def run(self, images, task: str | None = None, batch: int = DEFAULT_BATCH, scale: float | None = None):
        """Outputs for ``images`` (floats in [0, 1] or integer pixel codes, shape (n, h, w, c) or one
        image), shaped and scaled like the QKeras model's, on the bank that holds ``task`` (default:
        the active bank). ``images`` may be a dict {task: images}: the tasks' frames are interleaved
        frame by frame in one stream, each on its own bank, and a dict {task: outputs} is returned.
        ``scale`` divides the images first (e.g. 255, or 16 for scikit-learn's digits); anything
        outside the input's range is refused (:func:`semifreddo.deploy.contract.streams.input_codes`)."""
        started = time.perf_counter()
        mixed = isinstance(images, dict)
        if mixed and task is not None:
            raise SemifreddoError("run(): give images per task as a dict, or task=..., not both")
        groups = {name: input_codes(x, self.io, scale) for name, x in images.items()} if mixed else \
            {task: input_codes(images, self.io, scale)}
        banks = {name: (self.active_bank if name is None else self.bank_of(name)) for name in groups}
        # Frame by frame: the first frame of every task, then the second, ...
        order = sorted(((i, n) for n, (name, codes) in enumerate(groups.items()) for i in range(len(codes))))
        names = list(groups)
        codes = np.stack([groups[names[n]][i] for i, n in order]) if order else np.zeros(
            (0, *self.io["input_shape"]), np.uint32)
        frame_banks = np.array([banks[names[n]] for _, n in order], dtype=np.int64)
        outputs, batches = self._stream(codes, frame_banks, sorted(set(banks.values())), batch)
        if mixed:
            result = {name: outputs[[j for j, (_, n) in enumerate(order) if names[n] == name]] for name in names}
        else:
            result = outputs
        label = ", ".join(str(self._task_in(b) or "unknown") for b in sorted(set(banks.values())))
        self.last_run = RunReport(label if groups else None, self._seqs_seen, len(codes), batches,
                                  time.perf_counter() - started)
        return result

    def _task_in(self, bank: int) -> str | None:
        entry = self._read_journal()["banks"].get(str(bank), {})
        return entry.get("task") if entry.get("seq") == self._seqs_seen.get(bank) else None

    def _stream(self, codes: np.ndarray, frame_banks: np.ndarray, used: list[int], batch: int):
        """Stream ``codes``, frame i on bank ``frame_banks[i]``, holding each used bank's lock
        throughout and the run lock for each start."""
        from contextlib import ExitStack

        n_in, n_out = int(self.io["input_beats"]), int(self.io["output_beats"])
        batch = max(1, min(int(batch), len(codes) or 1))
        outputs, batches = [], 0
        with ExitStack() as held:
            for bank in used:
                held.enter_context(self._bank_lock(bank, wait=None))
            ready = self._ready()
            for bank in used:
                if bank not in ready:
                    raise SemifreddoError(f"bank {bank} holds no weight set; load a task into it first "
                                          f"(`semifreddo load BUNDLE --task NAME --bank {bank}`)")
            seqs = {bank: self.bank_seq(bank) for bank in used}
            inbuf = pynq.allocate((batch * n_in,), dtype=np.uint32, target=self.device)
            outbuf = pynq.allocate((batch * n_out,), dtype=np.uint32, target=self.device)
            frame_buffer = self._frame_buffer_in_ddr()
            for first in range(0, len(codes), batch):
                chunk = codes[first:first + batch]
                count_in, count_out = len(chunk) * n_in, len(chunk) * n_out
                inbuf[:count_in] = tag_banks(pack_pixels(chunk, self.io), frame_banks[first:first + batch],
                                             self.n_banks, self.io)
                with self._between_starts():
                    pass                          # a load waiting to commit goes first
                with self._lock(wait=None):
                    if frame_buffer is not None:     # another process may have pointed the IP at its own buffer
                        self.ip.write(self.regmap.control["frame_buffer"], frame_buffer.device_address & 0xFFFFFFFF)
                        self.ip.write(self.regmap.control["frame_buffer"] + 4, frame_buffer.device_address >> 32)
                    self.dma.sendchannel.transfer(inbuf, nbytes=4 * count_in)
                    self.dma.recvchannel.transfer(outbuf, nbytes=4 * count_out)
                    # commit 0 never commits: this start cannot change any bank.
                    self.ip.start_and_wait(0, len(chunk), (self.dma.sendchannel, self.dma.recvchannel))
                    flagged = self.ip.read_register("unready_frames") if self.n_banks > 1 else 0
                if flagged:
                    raise SemifreddoError(f"the IP flagged {flagged} frame(s) that named a bank with no weight set; "
                                          "their outputs are discarded")
                if self.dma.recvchannel.transferred != 4 * count_out:
                    raise SemifreddoError(f"the DMA received {self.dma.recvchannel.transferred} bytes, expected "
                                          f"{4 * count_out}")
                outputs.append(output_values(np.array(outbuf[:count_out]), len(chunk), self.io))
                batches += 1
            if any(self.bank_seq(bank) != seq for bank, seq in seqs.items()):
                raise SemifreddoError("the weight set of a bank changed during the run; its outputs are discarded")
        self._seqs_seen = seqs
        result = np.concatenate(outputs) if outputs else output_values(np.zeros(0, np.uint32), 0, self.io)
        return result, batches

    def _frame_buffer_in_ddr(self):
        """The DDR the IP's reused group keeps its frame in between passes (None: it keeps it on chip)."""
        if "frame_buffer" not in self.regmap.control:
            return None
        if self._frame_buffer is None:
            size = int(self.io["frame_buffer"]["bytes"])
            self._frame_buffer = pynq.allocate((size,), dtype=np.uint8, target=self.device)
        return self._frame_buffer

    def status(self) -> dict:
        return {"bundle": str(self.bundle), "board": self.manifest.get("board"), "active_task": self.active_task,
                "active_seq": self.active_seq, "active_bank": self.active_bank, "core_id": self.core_id,
                "regmap_id": self.regmap.id, "repeat": self.repeat, "tasks": list(self.tasks), "banks": self.banks,
                "downloaded": self.downloaded}
