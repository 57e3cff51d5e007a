"""The emulated board: a ``pynq.Device`` whose programmable logic is the compiled C simulation.

The driver (``driver.py``) runs on it unchanged, through the real pynq ``Overlay``, ``MMIO``,
``allocate`` and AXI DMA driver. Only the device differs:

* **The "bitstream"** of an emulated bundle is the IP's C simulation library,
  ``emulator/semifreddo_<spec>.so``; beside it, as a ``.hwh`` beside a ``.bit``,
  ``emulator/semifreddo_<spec>.json`` describes the emulated block design (see
  ``semifreddo.board_scripts.bundle.emulated_hardware``): the IP ``semifreddo_0`` with the register offsets read from the
  ``#pragma HLS INTERFACE`` lines of the C++ it was compiled from, and ``axi_dma_0`` in simple mode.
* **AXI-Lite** (``REGISTER_RW``): reads and writes of the IP's registers and shadow bank, and of
  the DMA's registers (PG021 simple-mode register map), are served here.
* **Memory**: ``allocate`` hands out numpy-backed ``PynqBuffer`` objects with emulated physical
  addresses; the emulated DMA copies between them and the IP's streams.
* **One start of the IP** (``ap_start``) is one ``sf_start`` of the C simulation, carried out as
  soon as the DMA has supplied every input beat and a receive buffer; a start of many pixels has
  its frames spread over the host's cores (``SimulatedIP.start_spread``), with the same outputs and
  status registers. An IP whose reused group keeps its frame in DDR reads and writes the allocated
  buffer its frame-buffer register points at.

**State that outlives a process.** A real PL keeps its registers between processes. Here the
IP's register space (control registers, shadow bank) and its weight banks live in a
file-backed store, ``<state dir>/pl.json``: every register write goes to it at once (an atomic
rename, under the lock ``<state dir>/pl.lock``), every read sees other processes' writes, and
every start first restores the weight banks into this process's library when another process
changed them (power-on, then each stored bank committed again with n_frames 0). The state
dir is the ``state_dir`` argument, else ``$SEMIFREDDO_EMULATOR_STATE``, else
``~/.local/state/semifreddo/emulated-board`` (``$XDG_STATE_HOME`` is honoured). Select the
emulated board with ``Semifreddo(bundle, device=EmulatedDevice())`` or
``SEMIFREDDO_DEVICE=emulated``.

numpy, pynq and the standard library only.
"""

from __future__ import annotations

import json
import os
import weakref
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pynq import Device
from pynq.buffer import PynqBuffer
from pynq.pl_server.global_state import bitstream_hash

from ..contract.interface import (AP_DONE, AP_IDLE, AP_READY, AP_START, DMA_VLNV, EMULATED_HARDWARE_FORMAT, FRAME_BUFFER_WORDS,
                                 EMULATED_PL_FORMAT, check_format, read_artifact, stamp)
from ..contract.errors import SemifreddoError
from ..contract.fileio import atomic_write_text, file_lock
from ..contract.simulated_ip import SimulatedIP

ENV_STATE = "SEMIFREDDO_EMULATOR_STATE"
HARDWARE_FORMAT, STATE_FORMAT = EMULATED_HARDWARE_FORMAT, EMULATED_PL_FORMAT
MEMORY_BASE = 0x1000_0000       # emulated DDR handed out by allocate()
MEMORY_END = 0x4000_0000
PAGE = 4096

# AXI DMA simple mode (PG021): channel offsets and DMASR bits.
MM2S, S2MM = 0x00, 0x30
DMACR, DMASR, ADDR, ADDR_MSB, LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
HALTED, IDLE, INT_ERR, DEC_ERR, IOC_IRQ = 0x1, 0x2, 0x10, 0x40, 0x1000


def default_state_dir() -> Path:
    if os.environ.get(ENV_STATE):
        return Path(os.environ[ENV_STATE])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "semifreddo" / "emulated-board"


class EmulatedMetadata:
    """What PYNQ's metadata parser would give for the emulated block design."""

    def __init__(self, hardware: dict):
        self.hardware = hardware
        self.ip_dict = {}
        for name, entry in hardware["ip"].items():
            self.ip_dict[name] = {**entry, "fullpath": name, "interrupts": {}, "gpio": {}, "state": None,
                                  "bdtype": None, "mem_id": "S_AXI_LITE" if name == hardware["dma_instance"]
                                  else "s_axi_ctrl", "memtype": "REGISTER", "driver": None, "device": None}
        self.mem_dict, self.gpio_dict, self.hierarchy_dict, self.clock_dict = {}, {}, {}, {}
        self.interrupt_controllers, self.interrupt_pins = {}, {}
        self.systemgraph = None


def check_state(state: dict, store: Path) -> None:
    """The PL state's fields must have the types the emulator reads (a damaged file is refused)."""
    def word(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 32

    problems = [key for key, ok in (
        *((key, key in state and (state[key] is None or isinstance(state[key], str)))
          for key in ("bitfile_name", "bitfile_hash", "timestamp")),
        ("registers", isinstance(state.get("registers"), dict)
         and all(k.isdigit() and word(v) for k, v in state["registers"].items())),
        ("bank", isinstance(state.get("bank"), list) and all(map(word, state["bank"]))),
        ("banks", isinstance(state.get("banks"), list) and all(
            isinstance(b, dict) and word(b.get("seq")) and isinstance(b.get("words"), list)
            and isinstance(state.get("bank"), list) and len(b["words"]) == len(state["bank"])
            and all(map(word, b["words"])) for b in state["banks"]))) if not ok]
    if problems:
        raise SemifreddoError(f"{store}: emulated PL state is damaged ({', '.join(problems)} malformed); delete it to "
                              "power-cycle the emulated board")


def read_hardware(bitfile: str | Path) -> dict:
    return read_artifact(Path(bitfile).with_suffix(".json"), HARDWARE_FORMAT,
                         f"the emulated bitstream {Path(bitfile).name} has no hardware description beside it; "
                         "rebuild the bundle with `semifreddo package SPEC --board emulated`")


class _Channel:
    """One channel of the emulated AXI DMA (simple mode)."""

    def __init__(self):
        self.control = 0
        self.status = HALTED
        self.address = 0
        self.length = 0          # bytes requested (then, for S2MM, bytes received)
        self.armed = False       # S2MM: a receive buffer is waiting


class EmulatedDevice(Device):
    """The emulated board. ``state_dir``: where its PL state lives (see the module docstring)."""

    def __init__(self, state_dir: str | os.PathLike | None = None):
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        super().__init__(f"emulated:{self.state_dir}")
        self.name = "emulated"
        self.capabilities = {"REGISTER_RW": True, "MEMORY_MAPPED": False, "CALLABLE": False}
        self._store = self.state_dir / "pl.json"
        self._seen = None            # (mtime, inode, size) of the store as last read
        self._state = self._power_on()
        self._sync()
        self.bitfile_name = self._state["bitfile_name"]
        self.timestamp = self._state["timestamp"] or ""
        self._hardware = None
        self._memory: list[tuple[int, int, weakref.ref]] = []     # (address, bytes, buffer) of allocations
        self._channels = {MM2S: _Channel(), S2MM: _Channel()}
        self._stream = np.zeros(0, dtype=np.uint32)               # beats the DMA has pushed towards the IP
        self._start_pending = None                                # control registers sampled at ap_start
        self._done = False
        self._corrupt = {}                                        # bank word -> xor mask (fault injection)
        self.on_start = None       # test hook: called before each start of the IP is carried out
        self.axi_lite_reads = self.axi_lite_writes = 0            # 32-bit AXI-Lite accesses served
        self.stream_bytes = 0                                     # bytes the DMA moved in both directions
        self.shadow_words = 0                                     # of the AXI-Lite words, those of the shadow bank

    # --- PL state store ----------------------------------------------------------------------

    @staticmethod
    def _power_on() -> dict:
        return {**stamp(STATE_FORMAT), "bitfile_name": None, "bitfile_hash": None, "timestamp": None,
                "registers": {}, "bank": [], "banks": []}

    def _sync(self) -> None:
        """Take in another process's writes to the store."""
        try:
            st = self._store.stat()
        except FileNotFoundError:
            return
        if (st.st_mtime_ns, st.st_ino, st.st_size) != self._seen:
            try:
                state = json.loads(self._store.read_text())
            except (OSError, ValueError) as exc:          # ValueError: not JSON, not UTF-8
                raise SemifreddoError(f"{self._store}: emulated PL state is unreadable ({exc}); delete it to "
                                      "power-cycle the emulated board") from None
            check_format(state, STATE_FORMAT, str(self._store))
            check_state(state, self._store)
            self._state = state
            self._seen = (st.st_mtime_ns, st.st_ino, st.st_size)

    def _update(self, change) -> None:
        """Apply ``change(state)`` to the latest stored state and store it, atomically and locked."""
        with file_lock(self.state_dir / "pl.lock"):
            self._sync()
            change(self._state)
            atomic_write_text(self._store, json.dumps(self._state), durable=False)
            st = self._store.stat()
            self._seen = (st.st_mtime_ns, st.st_ino, st.st_size)

    @property
    def global_state(self):
        """Which bitstream the emulated PL holds, as PYNQ's global state records it on a board."""
        self._sync()
        if not self._state["bitfile_name"]:
            return None
        return SimpleNamespace(bitfile_name=self._state["bitfile_name"], bitfile_hash=self._state["bitfile_hash"],
                               timestamp=self._state["timestamp"])

    # --- what pynq.Overlay calls ---------------------------------------------------------------

    def get_bitfile_metadata(self, bitfile_name, partial=False):
        return EmulatedMetadata(read_hardware(bitfile_name))

    def download(self, bitstream, parser=None):
        """Configure the emulated PL: every register at power-on, every weight bank empty."""
        hardware = read_hardware(bitstream.bitfile_name)
        SimulatedIP.load(bitstream.bitfile_name)           # refuse anything that is not a C simulation
        stamp = datetime.now().strftime("%Y/%m/%d %H:%M:%S +%f")

        def configure(state):
            state.clear()
            state.update(self._power_on(), bitfile_name=bitstream.bitfile_name,
                         bitfile_hash=bitstream_hash(bitstream.bitfile_name), timestamp=stamp,
                         bank=[0] * hardware["bank"]["words"],
                         banks=[{"seq": 0, "words": [0] * hardware["bank"]["words"]}
                                for _ in range(SimulatedIP.load(bitstream.bitfile_name).banks)])
        self._update(configure)
        self._hardware = None
        bitstream.timestamp = stamp
        self.reset(parser, stamp, bitstream.bitfile_name)

    def allocate(self, shape, dtype, **kwargs):
        """A buffer in the emulated DDR: numpy memory with an emulated physical address."""
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 1)
        raw = np.zeros(nbytes, dtype=np.uint8)
        address = self._place(nbytes)
        buffer = PynqBuffer(shape, dtype, buffer=raw, device_address=address, device=self, coherent=False)
        self._memory.append((address, nbytes, weakref.ref(raw)))
        return buffer

    def _place(self, nbytes: int) -> int:
        live = sorted((a, n) for a, n, ref in self._memory if ref() is not None)
        self._memory = [(a, n, ref) for a, n, ref in self._memory if ref() is not None]
        address = MEMORY_BASE
        for start, size in live:
            if address + nbytes <= start:
                break
            address = max(address, -(-(start + size) // PAGE) * PAGE)
        if address + nbytes > MEMORY_END:
            raise MemoryError("emulated DDR is full; free some pynq buffers")
        return address

    def flush(self, bo, offset, ptr, size):
        pass                      # no caches between the emulated CPU and DDR

    def invalidate(self, bo, offset, ptr, size):
        pass

    def close(self):
        pass

    # --- AXI-Lite ------------------------------------------------------------------------------

    @property
    def hardware(self) -> dict:
        if self._hardware is None:
            self._sync()
            if not self._state["bitfile_name"]:
                raise SemifreddoError("the emulated board holds no bitstream; open a bundle with the driver first")
            self._hardware = read_hardware(self._state["bitfile_name"])
            self._ip = SimulatedIP.load(self._state["bitfile_name"])
        return self._hardware

    def _decode(self, address: int) -> tuple[str, int]:
        for name, entry in self.hardware["ip"].items():
            if entry["phys_addr"] <= address < entry["phys_addr"] + entry["addr_range"]:
                return ("dma" if entry["type"] == DMA_VLNV else "ip"), address - entry["phys_addr"]
        raise SemifreddoError(f"emulated board: no IP at address {address:#x} (an AXI decode error on a board)")

    def read_registers(self, address, length):
        words = []
        for at in range(address, address + length, 4):
            where, offset = self._decode(at)
            words.append(self._read_ip(offset) if where == "ip" else self._read_dma(offset))
        self.axi_lite_reads += len(words)
        return np.array(words, dtype=np.uint32).tobytes()[:length]

    def write_registers(self, address, data):
        if isinstance(data, int):
            data = np.uint32(data & 0xFFFFFFFF).tobytes()
        words = np.frombuffer(bytes(data), dtype=np.uint32)
        self.axi_lite_writes += len(words)
        where, offset = self._decode(address)
        if where == "dma":
            for i, value in enumerate(words):
                self._write_dma(offset + 4 * i, int(value))
        else:
            self._write_ip(offset, words)

    def _read_ip(self, offset: int) -> int:
        self._sync()
        bank = self.hardware["bank"]
        if offset == 0:
            value = (AP_START if self._start_pending else AP_IDLE) | (AP_DONE | AP_READY if self._done else 0)
            self._done = False                             # ap_done and ap_ready clear on read
            return value
        if bank["offset"] <= offset < bank["offset"] + 4 * bank["words"]:
            self.shadow_words += 1
            return int(self._state["bank"][(offset - bank["offset"]) // 4])
        return int(self._state["registers"].get(str(offset), 0))

    def _write_ip(self, offset: int, words: np.ndarray) -> None:
        bank = self.hardware["bank"]
        if offset == 0:
            if int(words[0]) & AP_START and not self._start_pending:
                self._start()
            return
        if bank["offset"] <= offset < bank["offset"] + 4 * bank["words"]:
            first = (offset - bank["offset"]) // 4
            self.shadow_words += len(words)
            values = [int(v) ^ self._corrupt.pop(first + i, 0) for i, v in enumerate(words)]
            if first + len(values) > bank["words"]:
                raise SemifreddoError("emulated board: write past the end of the shadow bank")

            def write_bank(state):
                state["bank"][first:first + len(values)] = values
            self._update(write_bank)
            return
        outputs = {self.hardware["ip"][self.hardware["ip_instance"]]["registers"][name]["address_offset"]
                   for name in self._ip.outputs}

        def write_registers(state):
            for i, value in enumerate(words):
                if offset + 4 * i not in outputs:          # the IP's outputs are read-only
                    state["registers"][str(offset + 4 * i)] = int(value)
        self._update(write_registers)

    def corrupt_bank_write(self, word: int, xor_mask: int) -> None:
        """Fault injection for tests: the next write of shadow-bank word ``word`` lands with
        ``xor_mask`` flipped, as a bus or register fault would leave it."""
        self._corrupt[int(word)] = int(xor_mask)

    # --- one start of the IP -------------------------------------------------------------------

    def _register(self, name: str) -> int:
        offset = self.hardware["ip"][self.hardware["ip_instance"]]["registers"][name]["address_offset"]
        return int(self._state["registers"].get(str(offset), 0))

    def _start(self) -> None:
        """ap_start: sample the inputs, as the IP does when it starts, then run when the data is there."""
        self._sync()
        self._start_pending = {"commit": self._register("commit"), "repeat": self._register("repeat"),
                               "n_frames": self._register("n_frames"), "bank": list(self._state["bank"]),
                               "load_bank": self._register("load_bank") if self._ip.banks > 1 else 0,
                               "frame_buffer": (self._register(FRAME_BUFFER_WORDS[0]) | self._register(FRAME_BUFFER_WORDS[1]) << 32)
                               if self._ip.frame_buffer_bytes else None}
        self._done = False
        self._advance()

    def _advance(self) -> None:
        start = self._start_pending
        if start is None:
            return
        need = start["n_frames"] * self._ip.input_beats
        receive = self._channels[S2MM]
        if start["n_frames"] and (self._stream.size < need or not receive.armed):
            return                                          # the IP waits on its streams
        if self.on_start:
            self.on_start()
        frame_buffer = None
        if start["frame_buffer"] is not None and start["n_frames"]:
            # The IP's AXI master reads and writes the DDR at the address the host wrote: it must be
            # a buffer the host allocated, of the size the IP needs.
            frame_buffer = self._buffer(start["frame_buffer"], self._ip.frame_buffer_bytes)
            if frame_buffer is None:
                self._start_pending = None
                raise SemifreddoError(f"emulated board: the IP's frame buffer register holds {start['frame_buffer']:#x}, "
                                      f"not the start of {self._ip.frame_buffer_bytes:,} allocated bytes (an AXI error "
                                      "on a board); allocate it with pynq.allocate and write its address first")
        beats, self._stream = self._stream[:need], self._stream[need:]
        holder = {}

        def run(state):
            # Another process may have committed since this library last ran: restore its
            # weight banks first, then carry out this start.
            self._ip.restore([(b["seq"], b["words"]) for b in state["banks"]], start["repeat"])
            out, status = self._ip.start_spread(np.array(start["bank"], dtype=np.uint32), start["commit"],
                                                start["repeat"], start["n_frames"], beats, load_bank=start["load_bank"],
                                                frame_buffer=frame_buffer)
            state["banks"] = [{"seq": seq, "words": [int(w) for w in words]}
                              for seq, words in zip(self._ip.seqs, self._ip.words)]
            ip = self.hardware["ip"][self.hardware["ip_instance"]]["registers"]
            for name in self._ip.outputs:
                state["registers"][str(ip[name]["address_offset"])] = status[name]
                state["registers"][str(ip[f"{name}_ctrl"]["address_offset"])] = 1     # ap_vld
            holder["out"] = out
        with self._ip.lock:
            self._update(run)
        if start["n_frames"]:
            self._receive(holder["out"].view(np.uint32))
        self._settle(MM2S)
        self._start_pending = None
        self._done = True

    # --- the emulated AXI DMA ------------------------------------------------------------------

    def _buffer(self, address: int, nbytes: int) -> np.ndarray | None:
        for start, size, ref in self._memory:
            raw = ref()
            if raw is not None and start <= address and address + nbytes <= start + size:
                return raw[address - start: address - start + nbytes]
        return None

    def _read_dma(self, offset: int) -> int:
        channel = self._channels[S2MM if offset >= S2MM else MM2S]
        register = offset - (S2MM if offset >= S2MM else MM2S)
        return {DMACR: channel.control, DMASR: channel.status, ADDR: channel.address & 0xFFFFFFFF,
                ADDR_MSB: channel.address >> 32, LENGTH: channel.length}.get(register, 0)

    def _write_dma(self, offset: int, value: int) -> None:
        which = S2MM if offset >= S2MM else MM2S
        channel, register = self._channels[which], offset - which
        if register == DMACR:
            if value & 0x4:                                   # soft reset
                self._channels[which] = _Channel()
                if which == MM2S:
                    self._stream = np.zeros(0, dtype=np.uint32)   # beats not yet taken by the IP are dropped
                return
            channel.control = value
            channel.status = (channel.status & ~HALTED) if value & 1 else (channel.status | HALTED)
        elif register == DMASR:
            channel.status &= ~(value & (IOC_IRQ | 0x4000))   # interrupt bits clear when written with 1
        elif register == ADDR:
            channel.address = (channel.address & ~0xFFFFFFFF) | value
        elif register == ADDR_MSB:
            channel.address = (channel.address & 0xFFFFFFFF) | (value << 32)
        elif register == LENGTH:
            self._transfer(which, channel, value)

    def _transfer(self, which: int, channel: _Channel, nbytes: int) -> None:
        if channel.status & HALTED:
            return                                            # a halted channel ignores LENGTH writes
        memory = self._buffer(channel.address, nbytes)
        channel.length = nbytes
        channel.status &= ~IDLE
        if memory is None or nbytes == 0 or nbytes % 4:
            channel.status |= (DEC_ERR if memory is None else INT_ERR) | HALTED
            return
        if which == MM2S:
            self._stream = np.concatenate([self._stream, memory.view(np.uint32).copy()])
            self.stream_bytes += nbytes
        else:
            channel.armed = True
        self._advance()
        self._settle(MM2S)

    def _receive(self, beats: np.ndarray) -> None:
        channel = self._channels[S2MM]
        memory = self._buffer(channel.address, channel.length)
        data = beats.astype(np.uint32).tobytes()
        channel.armed = False
        if len(data) > channel.length:                       # the packet does not fit the buffer
            memory[:] = np.frombuffer(data[:channel.length], dtype=np.uint8)
            channel.status |= INT_ERR | HALTED
            return
        memory[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        channel.length = len(data)                            # TLAST ends the transfer
        channel.status |= IDLE | IOC_IRQ
        self.stream_bytes += len(data)

    def _settle(self, which: int) -> None:
        """The send channel goes idle once the IP has taken every beat it pushed."""
        channel = self._channels[which]
        if which == MM2S and self._stream.size == 0 and not channel.status & (HALTED | INT_ERR | DEC_ERR):
            channel.status |= IDLE | IOC_IRQ
