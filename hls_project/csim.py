"""C simulation: the generated HLS project compiled by g++ and driven through its C ABI.

The library is built once per project content: its file name carries a hash of every source,
header and compiler flag, so a new weight set or repeat count (which only change register values)
reuses it, and only a re-conversion that changes the C++ builds again. ``csim/builds.json``
counts the builds.

:class:`CSim` is the Python API. ``start()`` is one start of the IP, exactly as the board driver
sees it (shadow bank words, commit sequence number, repeat, frames, AXI-Stream beats);
``run()`` is the convenient form: images and a weight set in, outputs out, shaped and scaled like
the QKeras model's.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract.errors import SemifreddoError, ToolMissingError
from semifreddo.deploy.contract.fileio import atomic_write_text
from semifreddo.deploy.contract.regmap import RegisterMap, load_register_map
from semifreddo.deploy.contract.simulated_ip import SimulatedIP
from semifreddo.deploy.contract.streams import input_codes, output_values, pack_pixels, tag_banks
from semifreddo.deploy.contract.weightset import WeightSet, check_compatible, read_weight_set

from .project import CFLAGS, REGMAP, project_files, read_manifest

COMPILER = os.environ.get("CXX", "g++")
# -O1 compiles the fully unrolled layer templates several times faster than -O3; -O2 made the C
# simulation of digits about 5 % faster (1,780 -> 1,880 inputs/s on one core) for 8 s more compile.
# Most of its time is now hls4ml's configurable layers' ap_fixed products (adder graphs compute on
# integer codes in C simulation: adder_graph.csim_body).
# -fno-gnu-unique (as hls4ml's own build_lib.sh uses): static variables inside hls4ml's templates
# (line buffers) would otherwise be GNU-unique symbols, shared by every library in the process that
# instantiates a template of the same name, e.g. the C simulations of two specs.
# The -Wno-* set switches off GCC 12's "access analysis" warning pass (-Wstringop-overflow and
# friends gate it together); on the unrolled layer code it took two thirds of the compile time
# (59 s -> 22 s for digits) and it only ever warns, so the generated code is the same.
NO_ACCESS_WARNINGS = ("-Wno-stringop-overflow -Wno-stringop-overread -Wno-free-nonheap-object -Wno-mismatched-new-delete"
                      " -Wno-mismatched-dealloc -Wno-use-after-free -Wno-dangling-pointer"
                      " -Wno-alloc-size-larger-than -Wno-vla-larger-than")
# -fno-exceptions: nothing in the generated code throws; it saves about 14 % of the compile
# (measured on the adder-graph digits project), the outputs are the same.
OPT_FLAGS = "-O1 -fPIC -fno-gnu-unique -fno-exceptions " + NO_ACCESS_WARNINGS

_lock = threading.Lock()
_sequences: dict[str, int] = {}       # library path -> last commit sequence number used in this process
# Below this many pixels per core (16 digits of 8x8), run() keeps to one core (a start costs little,
# a copy's first load more); whole camera frames go one or more to a core.
MIN_PIXELS_PER_WORKER = 16 * 64


def library_key(hls_dir: Path) -> str:
    digest = hashlib.sha256(f"{COMPILER} {OPT_FLAGS} {CFLAGS}".encode())
    for path in project_files(hls_dir):
        digest.update(str(path.relative_to(hls_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _compile(hls_dir: Path, command: list[str], what: str) -> None:
    log = hls_dir / "csim" / "compile.log"
    proc = subprocess.run(command, cwd=hls_dir, capture_output=True, text=True)
    with open(log, "a") as handle:
        handle.write(" ".join(command) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SemifreddoError(f"{what} failed to compile; see {log}")


def _object(hls_dir: Path, source: str, key: str) -> Path:
    """``source`` compiled once into ``csim/<stem>-<key>.o``."""
    obj = hls_dir / "csim" / f"{Path(source).stem}-{key}.o"
    if not obj.exists():
        tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
        _compile(hls_dir, [COMPILER, "-c", *OPT_FLAGS.split(), *CFLAGS.split(), source,
                           "-o", str(tmp.relative_to(hls_dir))], f"the C++ of {source}")
        os.replace(tmp, obj)
    return obj


def _top_object(hls_dir: Path, key: str) -> Path:
    """The IP's C++ compiled once; the simulation library and the test bench both link it."""
    return _object(hls_dir, "firmware/semifreddo_top.cpp", key)


def build_library(hls_dir: Path) -> Path:
    """Compile the project's C simulation library unless an identical one exists; return its path."""
    hls_dir = Path(hls_dir)
    if not (hls_dir / "semifreddo_bridge.cpp").exists():
        raise SemifreddoError(f"{hls_dir}: not a converted HLS project (run `semifreddo convert`)")
    if shutil.which(COMPILER) is None:
        raise ToolMissingError(f"C++ compiler {COMPILER!r} not found; install g++ (apt-get install g++)")
    csim_dir = hls_dir / "csim"
    key = library_key(hls_dir)
    lib = csim_dir / f"libsemifreddo-{key}.so"
    with _lock:
        if lib.exists():
            return lib
        csim_dir.mkdir(exist_ok=True)
        # The IP and the C ABI bridge are two translation units: g++ compiles them side by side (the
        # IP takes most of the time, so this only saves the bridge's few seconds on a second core).
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            top = pool.submit(_top_object, hls_dir, key)
            bridge = pool.submit(_object, hls_dir, "semifreddo_bridge.cpp", key)
            objects = [top.result(), bridge.result()]
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        _compile(hls_dir, [COMPILER, *OPT_FLAGS.split(), "-shared", *(str(obj.relative_to(hls_dir)) for obj in objects),
                           "-o", str(tmp.relative_to(hls_dir))], "the C simulation library")
        os.replace(tmp, lib)
        for stale in [*csim_dir.glob("libsemifreddo-*.so"), *csim_dir.glob("*-*.o")]:
            if key not in stale.name:
                stale.unlink()       # a process that still has it loaded keeps its mapping
        builds = csim_dir / "builds.json"
        record = json.loads(builds.read_text()) if builds.exists() else {"builds": 0, "libraries": []}
        record["builds"] += 1
        record["libraries"].append(lib.name)
        atomic_write_text(builds, json.dumps(record, indent=1) + "\n")
        return lib


def run_testbench(hls_dir: Path) -> subprocess.CompletedProcess:
    """Build and run the Vitis HLS C test bench (tb/) with g++, against the project's tb_data/."""
    hls_dir = Path(hls_dir)
    build_library(hls_dir)
    obj = _top_object(hls_dir, library_key(hls_dir))
    exe = hls_dir / "csim" / "semifreddo_tb"
    _compile(hls_dir, [COMPILER, "-O1", *CFLAGS.split(), "tb/semifreddo_tb.cpp", str(obj.relative_to(hls_dir)),
                       "-o", str(exe.relative_to(hls_dir))], "the C test bench")
    return subprocess.run([str(exe)], cwd=hls_dir, capture_output=True, text=True)


def build_count(hls_dir: Path) -> int:
    path = Path(hls_dir) / "csim" / "builds.json"
    return json.loads(path.read_text())["builds"] if path.exists() else 0


class CSim:
    """The compiled IP. ``CSim(hls_dir)`` builds the library if needed and loads it."""

    def __init__(self, hls_dir: str | os.PathLike):
        self.hls_dir = Path(hls_dir)
        self.manifest = read_manifest(self.hls_dir)
        self.regmap: RegisterMap = load_register_map(self.hls_dir / REGMAP)
        self.core_id: str = self.manifest["core_id"]
        self.library = build_library(self.hls_dir)
        self._ip = SimulatedIP.load(self.library)       # the one ctypes binding (deploy/simulated_ip.py)
        self._lib = self._ip._lib
        if self._ip.bank_words != self.regmap.n_words:
            raise SemifreddoError(f"{self.library}: library does not match the project's register map; "
                                  "re-run `semifreddo convert`")

    @property
    def io(self) -> dict:
        return self.regmap.io

    def start(self, bank: np.ndarray, commit: int, repeat: int, n_frames: int,
              in_beats: np.ndarray) -> tuple[np.ndarray, dict]:
        """One start of the IP. Returns the output beats and the status registers."""
        if np.asarray(bank).size != self.regmap.n_words:
            raise SemifreddoError(f"bank has {np.asarray(bank).size} words, the register map {self.regmap.n_words}")
        return self._ip.start(bank, commit, repeat, n_frames, in_beats)

    def trace(self, image, weights: WeightSet | str | os.PathLike, repeat: int | None = None) -> dict:
        """Every traced layer's output for one image (needs a project converted with tracing)."""
        layers = self.manifest.get("trace")
        if not layers:
            raise SemifreddoError(f"{self.hls_dir}: converted without tracing; use `semifreddo check --layers`")
        buffers = {name: np.zeros(size, dtype=np.float64) for name, size in layers.items()}
        self._lib.sf_trace_buffer.argtypes = [ctypes.c_char_p, np.ctypeslib.ndpointer(np.float64)]
        for name, buffer in buffers.items():
            self._lib.sf_trace_buffer(name.encode(), buffer)
        self.run(np.asarray(image)[None] if np.asarray(image).ndim == 3 else image[:1], weights, repeat)
        return buffers

    def check_weights(self, weights: WeightSet | str | os.PathLike) -> WeightSet:
        if not isinstance(weights, WeightSet):
            return read_weight_set(weights, expect_core_id=self.core_id, expect_regmap=self.regmap)
        return check_compatible(weights, self.core_id, self.regmap)

    def run(self, images, weights: WeightSet | str | os.PathLike, repeat: int | None = None,
            batch: int = 4096, workers: int | None = None,
            scale: float | None = None) -> np.ndarray:
        """Outputs for ``images`` with ``weights`` committed, shaped and scaled like the QKeras model's.

        The frames are spread over ``workers`` cores (default: every core): frames are independent,
        and each core runs its share through a private copy of the library (its own active registers
        and line buffers), committing ``weights`` at each start as the first core does. The outputs
        are the same whatever the split (``tests/test_hls.py``)."""
        ws = self.check_weights(weights)
        lo, hi = self.regmap.repeat_range
        repeat = lo if repeat is None else int(repeat)
        if not lo <= repeat <= hi:
            raise SemifreddoError(f"repeat {repeat} is outside this IP's range {lo}..{hi}")
        codes = input_codes(images, self.io, scale)
        pixels = int(np.prod(codes.shape[1:3]))
        n = max(1, min(workers or os.cpu_count() or 1, len(codes), len(codes) * pixels // MIN_PIXELS_PER_WORKER))
        parts = np.array_split(codes, n) if n > 1 else [codes]
        ips = [self._ip, *self._ip.copies(n - 1)]
        if n == 1:
            return self._run_on(ips[0], codes, ws, repeat, batch)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n) as pool:     # ctypes lets go of the GIL during sf_start
            done = list(pool.map(lambda job: self._run_on(job[0], job[1], ws, repeat, batch), zip(ips, parts)))
        return np.concatenate(done)

    # --- weight banks -------------------------------------------------------------------------

    def load(self, bank: int, weights: WeightSet | str | os.PathLike) -> int:
        """Commit ``weights`` into weight bank ``bank`` (a start of no frames); returns its sequence number."""
        ws = self.check_weights(weights)
        if not 0 <= int(bank) < self.regmap.banks:
            raise SemifreddoError(f"bank {bank} does not exist: this IP has banks 0..{self.regmap.banks - 1}")
        key = str(self._ip.path)
        with _lock:
            seq = _sequences[key] = self._ip.new_sequence(_sequences.get(key, 0), int(bank))
        lo = self.regmap.repeat_range[0]
        _, status = self._ip.start(ws.words, seq, lo, 0, np.zeros(0, np.uint32), load_bank=int(bank))
        if status["active_seq"] != seq:
            raise SemifreddoError(f"C simulation: the commit into bank {bank} did not take effect")
        return seq

    def run_banks(self, images, frame_banks, repeat: int | None = None, batch: int = 4096,
                  scale: float | None = None) -> np.ndarray:
        """Outputs for ``images``, frame ``i`` computed on weight bank ``frame_banks[i]`` (loaded
        before with :meth:`load`), in one stream: the IP selects each frame's bank itself. A frame
        that names a bank holding no weight set is refused (the IP flags it)."""
        lo, hi = self.regmap.repeat_range
        repeat = lo if repeat is None else int(repeat)
        if not lo <= repeat <= hi:
            raise SemifreddoError(f"repeat {repeat} is outside this IP's range {lo}..{hi}")
        codes = input_codes(images, self.io, scale)
        frame_banks = np.asarray(frame_banks, dtype=np.int64).reshape(-1)
        if frame_banks.size != len(codes):
            raise SemifreddoError(f"{frame_banks.size} bank number(s) for {len(codes)} image(s)")
        outputs = []
        for first in range(0, len(codes), batch):
            chunk = codes[first:first + batch]
            beats = tag_banks(pack_pixels(chunk, self.io), frame_banks[first:first + batch], self.regmap.banks,
                              self.io)
            out, status = self._ip.start(np.zeros(self.regmap.n_words, np.uint32), 0, repeat, len(chunk), beats)
            if status.get("unready_frames"):
                raise SemifreddoError(f"{status['unready_frames']} frame(s) named a bank with no weight set "
                                      f"(banks ready: {status['ready_banks']:#b}); load it first")
            outputs.append(output_values(out, len(chunk), self.io))
        return np.concatenate(outputs) if outputs else output_values(np.zeros(0, np.int32), 0, self.io)

    def _run_on(self, ip, codes, ws: WeightSet, repeat: int, batch: int) -> np.ndarray:
        """``codes`` through one loaded library, ``batch`` frames per start, ``ws`` committed each start."""
        key = str(ip.path)
        outputs = []
        for first in range(0, len(codes), batch):
            chunk = codes[first:first + batch]
            with _lock:
                seq = _sequences[key] = ip.new_sequence(_sequences.get(key, 0))
            beats, status = ip.start(ws.words, seq, repeat, len(chunk), pack_pixels(chunk, self.io))
            if status["active_seq"] != seq:
                raise SemifreddoError("C simulation: the commit did not take effect")
            outputs.append(output_values(beats, len(chunk), self.io))
        return np.concatenate(outputs) if outputs else output_values(np.zeros(0, np.int32), 0, self.io)

