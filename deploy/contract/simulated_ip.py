"""The compiled C simulation of the IP, called through its C ABI with ctypes.

``semifreddo convert`` compiles the generated HLS project into ``libsemifreddo-<hash>.so``. Its
ABI (``semifreddo_bridge.cpp``, written by ``hls_project/writer.py``)::

    int sf_abi_version();  unsigned sf_bank_words(), sf_banks(), sf_input_beats(), sf_output_beats();
    uint64_t sf_frame_buffer_bytes();  void sf_power_on();
    int sf_start(const uint32_t *bank_words, uint32_t commit, uint32_t load_bank, uint32_t repeat,
                 uint32_t n_frames, const uint32_t *in_words, uint32_t n_in, int32_t *out_codes,
                 uint32_t n_out, uint8_t *frame_bytes, uint64_t frame_size, uint32_t *status);

One ``sf_start`` is one start of the real HLS top function: if ``commit`` is not 0 and differs from
the sequence number of weight bank ``load_bank``, the shadow bank is copied into that bank; then
``n_frames`` frames are streamed, each on the bank its first beat names. ``status`` receives the
IP's output registers (``ports("out", banks)``: active_seq, the low 32 bits of the core id and
the register-map id, and with several banks ready_banks and unready_frames). The banks are static
inside the library, so they persist from one start to the next within a process, and a new
process starts at power-on (every sequence number 0, every word 0; ``sf_power_on`` goes back there).

This is the one ctypes binding of that library: the host's C simulation (``hls_project.csim``)
and the emulated board (``emulator.py``) both use it. numpy and the standard library only.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

from .interface import C_ABI_VERSION, ports
from .errors import SemifreddoError

START_ERRORS = {-1: "input beats were left unread", -2: "the number of output beats was wrong",
                -3: "TLAST was not on the last output beat", -4: "the frame buffer in DDR is too small"}

# start_spread() spreads a start's frames over the cores only above this many input beats per core
# (16 digits of 8x8 pixels): a start costs little, a copy's first load more.
MIN_BEATS_PER_WORKER = 16 * 64

_words = np.ctypeslib.ndpointer(np.uint32, flags="C_CONTIGUOUS")
_codes = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")


class SimulatedIP:
    """One loaded C simulation library. Use :meth:`load`: the library's active registers are
    process-wide, so every user in a process must share one object per library file."""

    _loaded: dict[str, "SimulatedIP"] = {}
    _copies: dict[str, list["SimulatedIP"]] = {}      # library path -> private copies (copies())
    _loading = threading.Lock()

    def __init__(self, path: Path):
        self.path = path
        try:
            self._lib = ctypes.CDLL(str(path))
            self._lib.sf_start.restype = ctypes.c_int
            self._lib.sf_start.argtypes = [_words, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                           _words, ctypes.c_uint32, _codes, ctypes.c_uint32, ctypes.c_void_p,
                                           ctypes.c_uint64, _words]
            version = self._lib.sf_abi_version()
        except (OSError, AttributeError) as exc:
            raise SemifreddoError(f"{path}: not a semifreddo C simulation library ({exc})") from None
        if version != C_ABI_VERSION:
            raise SemifreddoError(f"{path}: C simulation ABI version {version}, this toolkit speaks {C_ABI_VERSION}; "
                                  "re-run `semifreddo convert`")
        self.bank_words = int(self._lib.sf_bank_words())
        self.banks = int(self._lib.sf_banks())
        self.input_beats = int(self._lib.sf_input_beats())
        self.output_beats = int(self._lib.sf_output_beats())
        self._lib.sf_frame_buffer_bytes.restype = ctypes.c_uint64
        self.frame_buffer_bytes = int(self._lib.sf_frame_buffer_bytes())   # 0: no frame buffer in DDR
        self._frame_scratch = None             # the host's own "DDR" for it when no buffer is given
        self.outputs = ports("out", self.banks)
        self.lock = threading.RLock()          # the library's statics allow one start at a time
        # What the library's weight banks hold now (it starts at power-on): sequence number, words.
        self.seqs = [0] * self.banks
        self.words = [np.zeros(self.bank_words, dtype=np.uint32) for _ in range(self.banks)]


    @classmethod
    def load(cls, path: str | Path) -> "SimulatedIP":
        path = Path(path).resolve()
        if not path.is_file():
            raise SemifreddoError(f"{path}: C simulation library not found")
        with cls._loading:
            if str(path) not in cls._loaded:
                cls._loaded[str(path)] = cls(path)
            return cls._loaded[str(path)]

    def start(self, bank, commit: int, repeat: int, n_frames: int, in_beats,
              load_bank: int = 0, frame_buffer: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
        """One start of the IP. Returns the output beats (int32 codes) and the status registers.
        ``frame_buffer``: the bytes (uint8, contiguous) the IP's DDR frame buffer uses, if it has
        one; by default a private scratch buffer (host C simulation)."""
        bank = np.ascontiguousarray(bank, dtype=np.uint32)
        if bank.shape != (self.bank_words,):
            raise SemifreddoError(f"bank has {bank.size} words, the IP {self.bank_words}")
        in_beats = np.ascontiguousarray(in_beats, dtype=np.uint32).reshape(-1)
        n_out = int(n_frames) * self.output_beats
        out = np.zeros(max(n_out, 1), dtype=np.int32)
        status = np.zeros(len(self.outputs), dtype=np.uint32)
        load_bank = int(load_bank) & 0xFFFFFFFF
        target = load_bank if load_bank < self.banks else 0
        with self.lock:
            if frame_buffer is None and self.frame_buffer_bytes:
                if self._frame_scratch is None:
                    self._frame_scratch = np.zeros(self.frame_buffer_bytes, dtype=np.uint8)
                frame_buffer = self._frame_scratch
            if frame_buffer is not None and (frame_buffer.dtype != np.uint8 or not frame_buffer.flags.c_contiguous):
                raise SemifreddoError("the frame buffer must be contiguous bytes (uint8)")
            frame_pointer = frame_buffer.ctypes.data if frame_buffer is not None else None
            frame_size = frame_buffer.nbytes if frame_buffer is not None else 0
            code = self._lib.sf_start(bank, int(commit) & 0xFFFFFFFF, load_bank, int(repeat) & 0xFFFFFFFF,
                                      int(n_frames) & 0xFFFFFFFF, in_beats, in_beats.size, out, n_out, frame_pointer,
                                      frame_size, status)
            reported = {name: int(value) for name, value in zip(self.outputs, status)}
            if reported["active_seq"] != self.seqs[target]:
                self.words[target] = bank.copy()     # the IP copied the shadow bank into this bank
                self.seqs[target] = reported["active_seq"]
        if code != 0:
            raise SemifreddoError(f"C simulation: {START_ERRORS.get(code, f'error {code}')}")
        return out[:n_out], reported

    def start_spread(self, bank, commit: int, repeat: int, n_frames: int, in_beats, load_bank: int = 0,
                     workers: int | None = None, frame_buffer: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
        """One start of the IP, as :meth:`start`, with its frames spread over ``workers`` cores
        (default: every core). Frames are independent: each core runs the start (its commit, then
        its share of the frames, in order) on a library holding the weight banks this one holds, this
        one or a private copy of it. Output beats and status registers are those of the one start
        (``unready_frames`` counts every share's). A DDR ``frame_buffer`` is used by the share of the
        last frames, so it ends holding what the one start would leave; the other shares pass their
        frames through private buffers."""
        n_frames = int(n_frames)
        per_frame = self.input_beats
        n = max(1, min(workers or os.cpu_count() or 1, n_frames, n_frames * per_frame // MIN_BEATS_PER_WORKER))
        if n == 1:
            return self.start(bank, commit, repeat, n_frames, in_beats, load_bank, frame_buffer)
        from concurrent.futures import ThreadPoolExecutor

        in_beats = np.ascontiguousarray(in_beats, dtype=np.uint32).reshape(-1)
        if in_beats.size != n_frames * per_frame:
            return self.start(bank, commit, repeat, n_frames, in_beats, load_bank, frame_buffer)   # the IP reports it
        bounds = np.linspace(0, n_frames, n + 1).astype(int)
        with self.lock:
            banks = list(zip(self.seqs, self.words))

            def share(ip, k):
                with ip.lock:
                    ip.restore(banks, repeat)
                    return ip.start(bank, commit, repeat, bounds[k + 1] - bounds[k],
                                    in_beats[bounds[k] * per_frame:bounds[k + 1] * per_frame], load_bank,
                                    frame_buffer if k == n - 1 else None)

            with ThreadPoolExecutor(max_workers=n - 1) as pool:   # ctypes lets go of the GIL during sf_start
                others = [pool.submit(share, ip, k + 1) for k, ip in enumerate(self.copies(n - 1))]
                done = [self.start(bank, commit, repeat, bounds[1], in_beats[:bounds[1] * per_frame], load_bank)]
                done += [job.result() for job in others]
        status = dict(done[0][1])
        if "unready_frames" in status:
            status["unready_frames"] = sum(s["unready_frames"] for _, s in done)
        return np.concatenate([out for out, _ in done]), status

    def copies(self, count: int) -> list["SimulatedIP"]:
        """``count`` private copies of this library, loaded (each a copy of the file in a temporary
        folder: the dynamic loader would hand back the same object, and the same statics, for the
        same file). Kept for the process; their weight banks are whatever their last user left."""
        import atexit
        import shutil
        import tempfile

        with SimulatedIP._loading:
            have = SimulatedIP._copies.setdefault(str(self.path), [])
            while len(have) < count:
                folder = Path(tempfile.mkdtemp(prefix="semifreddo-csim-"))
                atexit.register(shutil.rmtree, folder, True)
                copy = folder / self.path.name
                shutil.copyfile(self.path, copy)
                have.append(SimulatedIP(copy))
            return have[:count]

    def new_sequence(self, after: int = 0, bank: int = 0) -> int:
        """A commit sequence number, not 0, that differs from bank ``bank``'s (so a commit really copies)."""
        seq = (int(after) % 0xFFFFFFF0) + 1
        return seq if seq != self.seqs[bank] else seq % 0xFFFFFFF0 + 1

    def power_on(self) -> None:
        """Every bank back to power-on (sequence 0, every word 0)."""
        with self.lock:
            self._lib.sf_power_on()
            self.seqs = [0] * self.banks
            self.words = [np.zeros(self.bank_words, dtype=np.uint32) for _ in range(self.banks)]

    def restore(self, banks, repeat: int) -> None:
        """Make the weight banks hold ``banks``, a list of (sequence number, words) per bank (0 =
        power-on): from power-on, each bank that holds a weight set committed again under its number."""
        wanted = [(int(seq), np.ascontiguousarray(words, dtype=np.uint32)) for seq, words in banks]
        with self.lock:
            if all(seq == have and np.array_equal(words, words_now)
                   for (seq, words), have, words_now in zip(wanted, self.seqs, self.words)):
                return
            self.power_on()
            empty = np.zeros(0, dtype=np.uint32)
            for k, (seq, words) in enumerate(wanted):
                if seq:
                    self.start(words, seq, repeat, 0, empty, load_bank=k)
