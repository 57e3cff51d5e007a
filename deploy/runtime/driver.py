"""The PYNQ driver: open a deploy bundle, switch tasks by reloading registers, stream images.

::

    from semifreddo.deploy.runtime.driver import Semifreddo
    sf = Semifreddo("/home/xilinx/pynq/overlays/semifreddo_digits")   # loads the overlay if needed
    sf.tasks                     # {'digits_5_9': ..., 'parity': ...}
    sf.switch("parity")          # shadow bank, read-back check, commit; sf.last_switch has the timing
    y = sf.run(images)           # outputs shaped and scaled like the QKeras model's; sf.last_run
    sf.repeat = 2                # how many times the last block runs

The bitstream is downloaded only when the PL does not already hold it (PYNQ's record of the
loaded bitstream, path and hash), so the active task survives from one process to the next as on
any powered board. The IP is bound by its VLNV (:class:`SemifreddoIP`), the DMA by pynq's own
driver. Before anything runs, the bundle's register map is checked against the register table
PYNQ parsed from the .hwh, and the IP's ``core_id``/``regmap_id`` registers against the bundle.

**Switching while images flow.** A run holds the board's run lock from its first batch to its
last and starts the IP with ``commit`` equal to the active sequence number, so no commit can land
inside a run: every output of one ``run`` comes from one task. ``switch`` takes the same lock; if
a run is in flight it refuses at once with :class:`BoardBusy` (``wait=SECONDS`` retries until the
run ends), and the previous task stays active. Two switches, from any processes, queue for each
other on a second lock (``switch.lock``, taken before the run lock): both are made, one after the
other, and the active task is the one committed last. The locks are ``flock`` locks, released by
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
from ..contract.interface import AP_DONE, AP_IDLE, AP_START, IP_VLNV, check_pynq_release, ports, read_bundle_manifest

check_pynq_release(pynq.__version__)     # at load, before anything of pynq's is used: one line if unsupported

from pynq import DefaultIP                                   # noqa: E402
from pynq.pl_server.global_state import bitstream_hash      # noqa: E402
from ..contract.fileio import LockBusy, atomic_write_text, file_lock             # noqa: E402
from ..contract.regmap import RegisterMap, load_register_map                     # noqa: E402
from ..contract.streams import input_codes, output_values, pack_pixels           # noqa: E402
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
    for name in ports("in") + ports("out"):
        # Vitis HLS may rename an argument that is an HDL keyword (``repeat``) with a ``_r`` suffix.
        entry = registers.get(name) or registers.get(f"{name}_r")
        if entry is None:
            raise SemifreddoError(f"the hardware has no register {name!r}, but the register map needs it: the "
                                  "bundle's regmap.json does not belong to this bitstream")
        if int(entry["address_offset"]) != regmap.control[name]:
            raise SemifreddoError(f"register {name} is at {int(entry['address_offset']):#x} in the hardware but at "
                                  f"{regmap.control[name]:#x} in regmap.json: they do not belong together; refusing "
                                  "to run")
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
class RunReport:
    task: str | None
    active_seq: int
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
        self.last_run: RunReport | None = None
        runtime = Path(getattr(self.device, "state_dir", None) or Path(tempfile.gettempdir()) / "semifreddo-pl")
        self._run_lock = runtime / "run.lock"
        self._switch_lock = runtime / "switch.lock"
        self._journal = runtime / "active-task.json"
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
        (commit = active_seq, n_frames 0)."""
        ids = {"core_id": int(self.core_id[-8:], 16), "regmap_id": self.regmap.id32}
        if any(self.ip.read_register(name) != value for name, value in ids.items()):
            with self._lock(wait=None):
                self.ip.start_and_wait(self.ip.read_register("active_seq"), 0)
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

    @property
    def active_seq(self) -> int:
        return self.ip.read_register("active_seq")

    @property
    def active_task(self) -> str | None:
        """The task committed last by this driver, from any process (None if unknown)."""
        try:
            journal = json.loads(self._journal.read_text())
        except (OSError, ValueError):                    # missing, or damaged (not UTF-8, not JSON)
            return None
        if not isinstance(journal, dict):
            return None
        same_pl = journal.get("bitfile") == str(self.bitfile)
        return journal.get("task") if same_pl and journal.get("active_seq") == self.active_seq else None

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

    # --- switch --------------------------------------------------------------------------------

    def switch(self, task_or_file, wait: float = 0.0) -> SwitchReport:
        """Make a task (a bundle task name, a weight-set file or a WeightSet) the active one.

        Shadow bank written, read back and compared, then committed between frames. Any failure
        leaves the previous task active. ``wait``: seconds to wait for a run in flight."""
        started = time.perf_counter()
        ws = self.weight_set(task_or_file)
        # A task added to the bundle under a name of its own (`bundle add --task`) goes by that name.
        name = task_or_file if isinstance(task_or_file, str) and task_or_file in self.tasks else ws.task
        try:
            # Switches queue for each other (a switch takes milliseconds), then for the run lock.
            with file_lock(self._switch_lock, wait=None), self._lock(wait):
                if not self.ip.idle:
                    raise BoardBusy("the IP is busy with a run; the switch was not made and the previous task "
                                    "is still active")
                previous = self.active_seq
                self.ip.write_bank(ws.words)
                readback = self.ip.read_bank()
                bad = np.flatnonzero(readback != ws.words)
                if bad.size:
                    i = int(bad[0])
                    raise ReadBackError(
                        f"shadow bank read-back mismatch at word {i} (offset {self.regmap.bank_offset + 4 * i:#x}): "
                        f"wrote {int(ws.words[i]):#010x}, read {int(readback[i]):#010x} ({bad.size} word(s) differ); "
                        f"nothing was committed, the previous task is still active")
                seq = (previous + 1) & 0xFFFFFFFF or 1
                self.ip.start_and_wait(seq, 0)
                if self.active_seq != seq:
                    raise SemifreddoError(f"the commit of sequence {seq} did not take effect (active_seq is "
                                          f"{self.active_seq})")
                atomic_write_text(self._journal, json.dumps({
                    "active_seq": seq, "task": name, "weights": str(ws.path), "bitfile": str(self.bitfile),
                    "checksum": ws.manifest["checksum"]}) + "\n", durable=False)
        except LockBusy as exc:
            raise BoardBusy(f"a run is in flight on this board (process {exc.holder or '?'}); the switch to "
                            f"{name} was not made and the previous task is still active; retry, or pass a "
                            "wait time") from None
        self.last_switch = SwitchReport(name, str(ws.path), seq, time.perf_counter() - started)
        return self.last_switch

    # --- run -----------------------------------------------------------------------------------

    def run(self, images, batch: int = DEFAULT_BATCH, scale: float | None = None) -> np.ndarray:
        """Outputs of the active task for ``images`` (floats in [0, 1] or integer pixel codes,
        shape (n, h, w, c) or one image), shaped and scaled like the QKeras model's. ``scale``
        divides the images first (e.g. 255, or 16 for scikit-learn's digits); anything outside
        the input's range is refused (:func:`semifreddo.deploy.contract.streams.input_codes`)."""
        started = time.perf_counter()
        codes = input_codes(images, self.io, scale)
        n_in, n_out = int(self.io["input_beats"]), int(self.io["output_beats"])
        batch = max(1, min(int(batch), len(codes) or 1))
        outputs, batches = [], 0
        with self._lock(wait=None):
            seq = self.active_seq
            task = self.active_task
            inbuf = pynq.allocate((batch * n_in,), dtype=np.uint32, target=self.device)
            outbuf = pynq.allocate((batch * n_out,), dtype=np.uint32, target=self.device)
            for first in range(0, len(codes), batch):
                chunk = codes[first:first + batch]
                count_in, count_out = len(chunk) * n_in, len(chunk) * n_out
                inbuf[:count_in] = pack_pixels(chunk, self.io)
                self.dma.sendchannel.transfer(inbuf, nbytes=4 * count_in)
                self.dma.recvchannel.transfer(outbuf, nbytes=4 * count_out)
                # commit = the active sequence number: this start can never switch the task.
                self.ip.start_and_wait(seq, len(chunk), (self.dma.sendchannel, self.dma.recvchannel))
                if self.dma.recvchannel.transferred != 4 * count_out:
                    raise SemifreddoError(f"the DMA received {self.dma.recvchannel.transferred} bytes, expected "
                                          f"{4 * count_out}")
                outputs.append(output_values(np.array(outbuf[:count_out]), len(chunk), self.io))
                batches += 1
            if self.active_seq != seq:
                raise SemifreddoError("the active task changed during the run; its outputs are discarded")
        result = np.concatenate(outputs) if outputs else output_values(np.zeros(0, np.uint32), 0, self.io)
        self.last_run = RunReport(task, seq, len(codes), batches, time.perf_counter() - started)
        return result

    def status(self) -> dict:
        return {"bundle": str(self.bundle), "board": self.manifest.get("board"), "active_task": self.active_task,
                "active_seq": self.active_seq, "core_id": self.core_id, "regmap_id": self.regmap.id,
                "repeat": self.repeat, "tasks": list(self.tasks), "downloaded": self.downloaded}
