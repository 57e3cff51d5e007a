"""Model specs: the YAML file that describes one SemifreddoNet and its tasks.

The schema (every field, its type and meaning) is documented in ``models/specs/README.md``; this
module is its single implementation. :func:`load_spec` reads a file (or the name of a shipped
spec), checks every field, and returns an immutable :class:`Spec`. Any problem raises
:class:`~semifreddo.deploy.contract.errors.SpecError`, whose one-line message starts with the path of the
offending field, for example ``frozen_core.width: expected an integer >= 0, got 'wide'``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from semifreddo.deploy.contract.boards import BOARDS, DEFAULT_BOARD
from semifreddo.deploy.contract.errors import SpecError
from semifreddo.deploy.contract.interface import MAX_BANKS, bank_bits

from . import network
from .fixedpoint import Fixed

SPEC_DIR = Path(__file__).resolve().parent / "specs"
REPEAT_HARDWARE = ("reuse", "unrolled")
# Where the reused group's frame buffer lives: "chip" (block RAM), "ddr" (the board's DDR, behind an
# AXI master) or "auto" (the hardware plan chooses: on chip while it is small, see plan.py).
FRAME_BUFFERS = ("auto", "chip", "ddr")
FROZEN_IMPLEMENTATIONS = ("adder_graph", "multipliers")
MULTIPLIER_POLICIES = ("auto", "dsp", "lut")
FPGA_BOARDS = tuple(name for name, board in BOARDS.items() if not board.emulated)
SPEC_VERSION = 1

# Task registry: which tasks each dataset provides, and what kind of head they need. The task
# definitions themselves live in semifreddo.models.datasets; this table only serves validation.
DATASET_TASKS = {
    "digits": {"digits_0_4": ("classify", 5), "digits_5_9": ("classify", 5), "parity": ("classify", 2),
               "loops": ("classify", 2), "digits_all": ("classify", 10)},
    "photos": {"denoise": ("pixel", 1), "edges": ("pixel", 1), "sharpen": ("pixel", 1), "deblur": ("pixel", 1),
               "detail": ("pixel", 1), "emboss": ("pixel", 1)},
}
# The photographs of the photos dataset: those scikit-image 0.24 ships inside its package (read by
# semifreddo.models.datasets.load_photo; stereo_motorcycle is two images, its left and right views).
PHOTOGRAPHS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
               "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
               "stereo_motorcycle", "text")
# A spec's own data (``dataset: {name: custom, path: ...}``): its only task is the source task,
# whose kind is the head's; target tasks come later from `train-task --data`.
CUSTOM_DATASET = "custom"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
NAME_RULE = "must start with a lower-case letter and use only a-z, 0-9, '_' and '-' (40 characters at most)"


def is_valid_name(name: str) -> bool:
    """The rule for spec and task names (also a file name under build/)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


# --------------------------------------------------------------------------------------------
# The spec, as immutable dataclasses
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrozenWeights:
    """Format of the frozen-core weights: fixed-point, or a sum of ``terms`` powers of two."""

    format: str                 # "fixed" or "po2"
    bits: int = 0               # fixed only
    integer: int = 0            # fixed only
    terms: int = 0              # po2 only: 1 or 2 non-zero power-of-two terms per weight
    min_exponent: int = 0       # po2 only: smallest exponent, e.g. -7 for 2**-7

    @property
    def storage(self) -> Fixed:
        """The fixed-point format that holds every value exactly (how the constants are written)."""
        if self.format == "fixed":
            return Fixed(self.bits, self.integer, True)
        # po2: weights are clipped to [-1, 1] before quantization, so |value| <= 1 (1.0 itself needs
        # one integer bit); the resolution is 2**min_exponent.
        return Fixed(2 - self.min_exponent, 1, True)

    def describe(self) -> str:
        if self.format == "fixed":
            return f"fixed {self.bits}-bit ({self.storage.describe()})"
        return f"po2, {self.terms} term(s), exponents {self.min_exponent}..0"


@dataclass(frozen=True)
class Training:
    epochs: int
    batch_size: int
    learning_rate: float


@dataclass(frozen=True)
class Target:
    task: str
    shuffle: tuple[int, ...] = ()   # blocks whose core-shuffle switch is on for this task


@dataclass(frozen=True)
class HardwareTarget:
    """What the spec asks of the hardware (the spec's ``hardware`` section, ``frozen_core.implementation``
    and ``repeat.hardware``). The decisions made from it are the HLS project's hardware plan
    (semifreddo.hls_project.plan); nothing in models/ reads it except to describe how layers are built."""

    board: str = DEFAULT_BOARD          # the board the IP is built for (fit checks, on-chip memory)
    multipliers: str = "auto"           # configurable multipliers: "auto" (DSPs while the board's last), "dsp", "lut"
    frozen_implementation: str = "adder_graph"   # "adder_graph" (one shared adder graph per layer, da4ml) or "multipliers"
    repeat_hardware: str = "reuse"      # "reuse" (one copy, frames loop through it) or "unrolled" (one copy per run)
    banks: int = 1                      # weight sets resident in the IP at once; each frame names its bank
    frame_buffer: str = "auto"          # repeat.buffer: where a reused group keeps its frame ("auto", "chip", "ddr")


HARDWARE_FIELDS = tuple(f.name for f in dataclasses.fields(HardwareTarget))


@dataclass(frozen=True)
class DataAndTraining:
    """What the network learns from and how (the spec's ``dataset``, ``source``, ``targets``,
    ``training`` and ``seed``): nothing here changes the network or the hardware."""

    seed: int
    dataset: str
    source: str
    targets: tuple[Target, ...]
    train_core: Training
    train_task: Training
    patch: int | None = None
    stride: int | None = None
    train_images: tuple[str, ...] = ()     # photos: training photographs
    test_images: tuple[str, ...] = ()      # photos: held-out photographs (never trained on)
    noise: float = 0.0
    data_path: str | None = None        # custom dataset: its .npz or image folder, resolved
    also: tuple[str, ...] = ()          # tasks pre-trained beside the source task, each with its own head

    @property
    def pretrain_tasks(self) -> tuple[str, ...]:
        """Every task the frozen core is pre-trained on: the source task first, then ``source.also``."""
        return (self.source,) + self.also


DATA_FIELDS = tuple(f.name for f in dataclasses.fields(DataAndTraining))


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    input_shape: tuple[int, int, int]
    input_bits: int
    blocks: int
    kernels: tuple[int, ...]
    frozen_width: int
    frozen_weights: FrozenWeights
    frozen_bias: Fixed
    trainable_width: int
    trainable_weights: Fixed
    trainable_bias: Fixed
    alpha_bits: int
    core_shuffle: bool
    activations: Fixed
    repeat_min: int
    repeat_max: int
    repeat_default: int
    repeat_blocks: int            # the last repeat_blocks blocks run again as a group
    head_type: str
    head_outputs: int
    head_weights: Fixed
    head_bias: Fixed
    head_output: Fixed
    data: DataAndTraining
    hardware: HardwareTarget
    path: str | None = None


    # ---- derived properties ----------------------------------------------------------------

    @property
    def input_format(self) -> Fixed:
        return Fixed(self.input_bits, 0, False)

    @property
    def alpha_format(self) -> Fixed:
        """alpha = sigmoid(a) in [0, 1], held with ``alpha_bits`` fractional bits (1.0 included)."""
        return Fixed(self.alpha_bits + 1, 1, False)

    @property
    def task_names(self) -> tuple[str, ...]:
        return (self.data.source,) + tuple(t.task for t in self.data.targets)

    def task_kind(self, task: str) -> tuple[str, int]:
        """(head kind, classes) a task of this spec needs; a custom dataset's task is the head's own."""
        if self.data.dataset == CUSTOM_DATASET:
            return self.head_type, self.head_outputs if self.head_type == "classify" else 1
        kind, classes = DATASET_TASKS[self.data.dataset][task]
        return kind, self.input_shape[2] if kind == "pixel" else classes

    def target(self, task: str) -> Target:
        for t in self.data.targets:
            if t.task == task:
                return t
        if task == self.data.source:
            return Target(task)
        raise SpecError("targets", f"no task named {task!r} in spec {self.name} "
                        f"(its tasks are {', '.join(self.task_names)})", self.path)

    @property
    def shuffle_blocks(self) -> tuple[int, ...]:
        """Blocks (1-based) that carry a core-shuffle switch."""
        if not self.core_shuffle:
            return ()
        return tuple(range(2, self.blocks + 1))

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts by kind (frozen, configurable, total), from the network description."""
        return network.describe(self).parameter_counts()

    @property
    def repeated_blocks(self) -> tuple[int, ...]:
        """The blocks that run again as a group, in order (the last ``repeat_blocks``)."""
        return tuple(range(self.blocks - self.repeat_blocks + 1, self.blocks + 1))

    def _repeat_group(self) -> str:
        blocks = self.repeated_blocks
        return f"block {blocks[0]} runs" if len(blocks) == 1 else f"blocks {blocks[0]}..{blocks[-1]} run"

    @property
    def frozen_fraction(self) -> float:
        counts = self.parameter_counts()
        return counts["frozen"] / counts["total"]

    def with_frozen_fraction(self, fraction: float, max_width: int = 64) -> "Spec":
        """The same network with core widths chosen so that about ``fraction`` of all parameters
        are frozen, at roughly the same total parameter count. ``fraction=0`` removes the frozen
        core entirely. The spec's name gets a ``-fNN`` suffix."""
        if not 0.0 <= fraction < 1.0:
            raise SpecError("frozen_fraction", f"expected a fraction in [0, 1), got {fraction}", self.path)
        budget = self.parameter_counts()["total"]
        best = None
        for frozen_width in ([0] if fraction == 0 else range(1, max_width + 1)):
            for trainable_width in range(1, max_width + 1):
                changes = {"frozen_width": frozen_width, "trainable_width": trainable_width}
                if frozen_width == 0:
                    changes["core_shuffle"] = False
                candidate = dataclasses.replace(self, **changes)
                counts = candidate.parameter_counts()
                miss = abs(counts["frozen"] / counts["total"] - fraction)
                # Prefer hitting the fraction (within 2 points), then staying near the budget.
                score = (max(miss, 0.02), abs(math.log(counts["total"] / budget)))
                if best is None or score < best[0]:
                    best = (score, changes)
        name = f"{self.name}-f{round(fraction * 100):02d}"
        targets = tuple(Target(t.task, ()) for t in self.data.targets) if best[1]["frozen_width"] == 0 else self.data.targets
        return self.replace(name=name, targets=targets, **best[1])

    def replace(self, **changes) -> "Spec":
        """A copy with ``changes``; hardware-target fields (board, multipliers, ...) go to ``hardware``,
        data and training fields (targets, train_task, ...) to ``data``."""
        hardware = {k: changes.pop(k) for k in HARDWARE_FIELDS if k in changes}
        if hardware:
            changes["hardware"] = dataclasses.replace(self.hardware, **hardware)
        data = {k: changes.pop(k) for k in DATA_FIELDS if k in changes}
        if data:
            changes["data"] = dataclasses.replace(self.data, **data)
        new = dataclasses.replace(self, **changes)
        _check_cross_fields(new)
        return new

    def summary(self) -> str:
        counts = self.parameter_counts()
        h, w, c = self.input_shape
        return "\n".join([
            f"spec           {self.name}  ({self.path or 'built in memory'})",
            f"input          {h}x{w}x{c}, {self.input_bits}-bit pixels",
            f"blocks         {self.blocks}, kernels {list(self.kernels)}",
            f"frozen core    width {self.frozen_width}, weights {self.frozen_weights.describe()}, "
            f"bias {self.frozen_bias.describe()}, built as {self.hardware.frozen_implementation.replace('_', ' ')}s",
            f"trainable      2 cores of width {self.trainable_width}, weights {self.trainable_weights.describe()}, "
            f"bias {self.trainable_bias.describe()}, alpha {self.alpha_bits}-bit, "
            f"core shuffle {'on blocks ' + str(list(self.shuffle_blocks)) if self.shuffle_blocks else 'off'}",
            f"activations    {self.activations.describe()} (quantized ReLU)",
            f"repeat         {self._repeat_group()} {self.repeat_min}..{self.repeat_max} times (default "
            f"{self.repeat_default}), hardware: {self.hardware.repeat_hardware}"
            + (f", frame buffer {self.hardware.frame_buffer}" if self.hardware.repeat_hardware == "reuse"
               and self.repeat_max > 1 else ""),
            f"hardware       board {self.hardware.board}, configurable multipliers {self.hardware.multipliers}, "
            f"{self.hardware.banks} weight bank(s)",
            f"head           {self.head_type}, {self.head_outputs} output(s), output {self.head_output.describe()}",
            f"data           {self.data.dataset}{' ' + self.data.data_path if self.data.data_path else ''}"
            + (f": train on {len(self.data.train_images)} photographs, hold out {', '.join(self.data.test_images)}"
               if self.data.train_images else ""),
            f"tasks          source {self.data.source}"
            f"{' (pre-trained with ' + ', '.join(self.data.also) + ')' if self.data.also else ''}; "
            f"targets {', '.join(t.task for t in self.data.targets) or 'none'}",
            f"parameters     {counts['frozen']} frozen + {counts['configurable']} configurable "
            f"= {counts['total']} (frozen fraction {self.frozen_fraction:.1%})",
        ])


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------

def shipped_specs() -> list[str]:
    """The names of the specs that ship with the toolkit (models/specs/*.yaml)."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def resolve_spec_path(spec: str | Path) -> Path:
    """Accept a path to a YAML file or the name of a shipped spec (see :func:`shipped_specs`)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = SPEC_DIR / f"{spec}.yaml"
    if shipped.exists():
        return shipped
    names = ", ".join(shipped_specs())
    raise SpecError("spec", f"no spec file {spec!r} and no shipped spec of that name (shipped: {names})")


def load_spec(spec: str | Path) -> Spec:
    path = resolve_spec_path(spec)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError("spec", f"file {path} not found") from None
    except IsADirectoryError:
        raise SpecError("spec", f"{path} is a folder, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise SpecError("spec", f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError("spec", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", str(path)) from None
    return parse_spec(data, source=str(path))


class _Reader:
    """Walks a nested dict, checking types and reporting problems by dotted field path."""

    def __init__(self, data: Any, path: str, source: str | None):
        self.data, self.path, self.source = data, path, source
        if not isinstance(data, dict):
            self.fail(f"expected a mapping, got {_show(data)}")
        self.used: set[str] = set()

    def child_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, problem: str, key: str | None = None):
        raise SpecError(self.child_path(key) if key else (self.path or "spec"), problem, self.source)

    def get(self, key: str, default: Any = ..., ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail("required field is missing", key)
            return default
        return self.data[key]

    def int(self, key: str, lo: int | None = None, hi: int | None = None, default: Any = ...) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"expected an integer, got {_show(value)}", key)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else (f"<= {hi}" if lo is None else f"in {lo}..{hi}")
            self.fail(f"expected an integer {bounds}, got {value}", key)
        return value

    def float(self, key: str, lo: float, hi: float, default: Any = ...) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo < value <= hi:
            self.fail(f"expected a number in ({lo}, {hi}], got {_show(value)}", key)
        return float(value)

    def bool(self, key: str, default: Any = ...) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"expected true or false, got {_show(value)}", key)
        return value

    def str(self, key: str, choices: tuple[str, ...] | None = None, default: Any = ...) -> str:
        value = self.get(key, default)
        if not isinstance(value, str):
            self.fail(f"expected a string, got {_show(value)}", key)
        if choices is not None and value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.fail(f"{value!r} is not one of {', '.join(choices)}{extra}", key)
        return value

    def sub(self, key: str, default: Any = ...) -> "_Reader":
        return _Reader(self.get(key, default), self.child_path(key), self.source)

    def done(self, known: tuple[str, ...] | None = None):
        """Refuse fields the schema does not know (a typo must not be silently ignored)."""
        for key in self.data:
            if key not in self.used:
                options = known or tuple(self.used)
                hint = difflib.get_close_matches(str(key), options, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.fail(f"unknown field{extra}; see models/specs/README.md for the schema", str(key))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fixed(r: _Reader, key: str, signed: bool, bits_range=(2, 16), default: Any = ...) -> Fixed:
    sub = r.sub(key, default)
    bits = sub.int("bits", *bits_range)
    integer = sub.int("integer", -8, 16, default=0)
    sub.done()
    fmt = Fixed(bits, integer, signed)
    if fmt.frac < 0:
        sub.fail(f"{bits} bits cannot hold {integer} integer bits{' and a sign' if signed else ''}", "integer")
    return fmt


def _frozen_weights(r: _Reader) -> FrozenWeights:
    sub = r.sub("weights")
    fmt = sub.str("format", ("fixed", "po2"), default="fixed")
    if fmt == "fixed":
        bits = sub.int("bits", 2, 16)
        integer = sub.int("integer", -8, 8, default=0)
        sub.done()
        if bits - integer - 1 < 0:
            sub.fail(f"{bits} bits cannot hold {integer} integer bits and a sign", "integer")
        return FrozenWeights("fixed", bits=bits, integer=integer)
    terms = sub.int("terms", 1, 2)
    min_exponent = sub.int("min_exponent", -12, -1, default=-7)
    sub.done()
    return FrozenWeights("po2", terms=terms, min_exponent=min_exponent)


def _custom_data_path(ds: _Reader, source: str | None) -> str:
    """``dataset.path`` of a custom dataset: an .npz or a folder of class folders, relative to the
    spec file's folder; returned resolved."""
    given = ds.str("path")
    base = Path(source).resolve().parent if source else Path.cwd()
    path = base / given
    if path.is_dir():
        return str(path)
    if path.suffix != ".npz":
        ds.fail(f"{given!r} is neither an .npz file nor a folder of class folders", "path")
    if not path.is_file():
        ds.fail(f"{path} not found (the path is relative to the spec file's folder)", "path")
    return str(path)


def _photographs(ds: _Reader, key: str) -> tuple[str, ...]:
    """A non-empty list of distinct names from :data:`PHOTOGRAPHS`."""
    names = ds.get(key)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        ds.fail(f"expected a non-empty list of photograph names, got {_show(names)}", key)
    for name in names:
        if name not in PHOTOGRAPHS:
            hint = difflib.get_close_matches(name, PHOTOGRAPHS, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            ds.fail(f"{name!r} is not a photograph scikit-image ships{extra}; choose from {', '.join(PHOTOGRAPHS)}",
                    key)
    if len(set(names)) != len(names):
        ds.fail("lists a photograph more than once", key)
    return tuple(names)


def _training(r: _Reader, key: str) -> Training:
    sub = r.sub(key)
    t = Training(epochs=sub.int("epochs", 1, 10000), batch_size=sub.int("batch_size", 1, 65536),
                 learning_rate=sub.float("learning_rate", 0.0, 1.0))
    sub.done()
    return t


def parse_spec(data: Any, source: str | None = None) -> Spec:
    """Validate a spec given as plain data (what ``yaml.safe_load`` returns)."""
    if data is None:
        raise SpecError("spec", "the file is empty", source)
    r = _Reader(data, "", source)
    version = r.int("version", 1, default=SPEC_VERSION)
    if version != SPEC_VERSION:
        r.fail(f"spec version {version} is not supported (this toolkit reads version {SPEC_VERSION})", "version")
    name = r.str("name")
    if not is_valid_name(name):
        r.fail(NAME_RULE, "name")
    description = r.str("description", default="")
    seed = r.int("seed", 0, 2**31 - 1)

    ds = r.sub("dataset")
    dataset = ds.str("name", (*DATASET_TASKS, CUSTOM_DATASET))
    data_path = None
    patch = stride = None
    train_images = test_images = ()
    noise = 0.0
    if dataset == "photos":
        patch = ds.int("patch", 4, 128)
        stride = ds.int("stride", 1, 128)
        train_images = _photographs(ds, "train_images")
        test_images = _photographs(ds, "test_images")
        noise = ds.float("noise", 0.0, 1.0, default=0.1)
        shared = [name for name in test_images if name in train_images]
        if shared:
            ds.fail(f"{', '.join(shared)} also in train_images; a held-out photograph is never trained on",
                    "test_images")
    if dataset == CUSTOM_DATASET:
        data_path = _custom_data_path(ds, source)
    ds.done()

    inp = r.sub("input")
    shape = inp.get("shape")
    if (not isinstance(shape, list) or len(shape) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape)):
        inp.fail(f"expected [height, width, channels] of positive integers, got {_show(shape)}", "shape")
    input_bits = inp.int("bits", 1, 16)
    inp.done()

    blocks = r.int("blocks", 1, 16)
    kernel = r.get("kernel")
    kernels = tuple(kernel) if isinstance(kernel, list) else (kernel,) * blocks
    if len(kernels) != blocks:
        r.fail(f"lists {len(kernels)} kernel sizes but the spec has {blocks} blocks", "kernel")
    for k in kernels:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k > 7 or k % 2 == 0:
            r.fail(f"kernel sizes must be odd integers in 1..7, got {_show(k)}", "kernel")

    fc = r.sub("frozen_core")
    frozen_width = fc.int("width", 0, 512)
    frozen_weights = _frozen_weights(fc)
    frozen_bias = _fixed(fc, "bias", True, (2, 24))
    frozen_implementation = fc.str("implementation", FROZEN_IMPLEMENTATIONS, default="adder_graph")
    fc.done()

    tc = r.sub("trainable_cores")
    trainable_width = tc.int("width", 1, 256)
    trainable_weights = _fixed(tc, "weights", True)
    trainable_bias = _fixed(tc, "bias", True, (2, 24))
    alpha_bits = tc.int("alpha_bits", 1, 15, default=8)
    core_shuffle = tc.bool("core_shuffle", default=False)
    tc.done()

    activations = _fixed(r, "activations", False)

    rp = r.sub("repeat", default={"min": 1, "max": 1})
    repeat_min = rp.int("min", 1, 8, default=1)
    repeat_max = rp.int("max", 1, 8, default=repeat_min)
    repeat_default = rp.int("default", 1, 8, default=repeat_min)
    repeat_blocks = rp.int("blocks", 1, 15, default=1)
    repeat_hardware = rp.str("hardware", REPEAT_HARDWARE, default="reuse")
    frame_buffer = rp.str("buffer", FRAME_BUFFERS, default="auto")
    rp.done()

    hw = r.sub("hardware", default={})
    board = hw.str("board", FPGA_BOARDS, default=DEFAULT_BOARD)
    multipliers = hw.str("multipliers", MULTIPLIER_POLICIES, default="auto")
    banks = hw.int("banks", 1, MAX_BANKS, default=1)
    hw.done()

    hd = r.sub("head")
    head_type = hd.str("type", ("classify", "pixel"))
    head_outputs = hd.int("outputs", 1, 1024)
    head_weights = _fixed(hd, "weights", True)
    head_bias = _fixed(hd, "bias", True, (2, 24))
    head_output = _fixed(hd, "output", True, (2, 32))
    hd.done()

    custom = dataset == CUSTOM_DATASET
    src = r.sub("source")
    source_task = src.str("task", None if custom else tuple(DATASET_TASKS[dataset]))
    if custom and not is_valid_name(source_task):
        src.fail(NAME_RULE, "task")
    also = src.get("also", [])
    if not isinstance(also, list) or not all(isinstance(t, str) for t in also):
        src.fail(f"expected a list of task names, got {_show(also)}", "also")
    if also and dataset != "photos":
        src.fail("multi-task pre-training needs tasks on the same images: only the photos dataset has them", "also")
    for task in also:
        if task not in DATASET_TASKS[dataset]:
            src.fail(f"{task!r} is not one of {', '.join(DATASET_TASKS[dataset])}", "also")
    if source_task in also or len(set(also)) != len(also):
        src.fail("lists a task twice (the source task is pre-trained already)", "also")
    src.done()

    targets_raw = r.get("targets", [] if custom else ...)
    if not isinstance(targets_raw, list) or not (targets_raw or custom):
        r.fail(f"expected a non-empty list of target tasks, got {_show(targets_raw)}", "targets")
    if custom and targets_raw:
        r.fail("a custom dataset provides only the source task; train target tasks from your data with "
               "`semifreddo train-task SPEC --task NAME --data PATH`", "targets")
    targets = []
    for i, item in enumerate(targets_raw):
        t = _Reader(item, f"targets[{i}]", source)
        task = t.str("task", tuple(DATASET_TASKS[dataset]))
        shuffle = t.get("shuffle", [])
        if not isinstance(shuffle, list) or any(isinstance(b, bool) or not isinstance(b, int) for b in shuffle):
            t.fail(f"expected a list of block numbers, got {_show(shuffle)}", "shuffle")
        t.done()
        targets.append(Target(task, tuple(sorted(set(shuffle)))))

    tr = r.sub("training")
    train_core = _training(tr, "core")
    train_task = _training(tr, "task")
    tr.done()
    r.done()

    spec = Spec(
        name=name, description=description,
        input_shape=tuple(shape), input_bits=input_bits, blocks=blocks, kernels=kernels,
        frozen_width=frozen_width, frozen_weights=frozen_weights, frozen_bias=frozen_bias,
        trainable_width=trainable_width, trainable_weights=trainable_weights, trainable_bias=trainable_bias,
        alpha_bits=alpha_bits, core_shuffle=core_shuffle, activations=activations,
        repeat_min=repeat_min, repeat_max=repeat_max, repeat_default=repeat_default, repeat_blocks=repeat_blocks,
        hardware=HardwareTarget(board, multipliers, frozen_implementation, repeat_hardware, banks, frame_buffer),
        head_type=head_type, head_outputs=head_outputs, head_weights=head_weights, head_bias=head_bias,
        head_output=head_output, path=source,
        data=DataAndTraining(seed=seed, dataset=dataset, source=source_task, targets=tuple(targets),
                             train_core=train_core, train_task=train_task, patch=patch, stride=stride,
                             train_images=train_images, test_images=test_images, noise=noise,
                             data_path=data_path, also=tuple(also)),
    )
    _check_cross_fields(spec)
    return spec


def _check_cross_fields(s: Spec) -> None:
    """Checks that involve more than one field."""
    def fail(field: str, problem: str):
        raise SpecError(field, problem, s.path)

    h, w, c = s.input_shape
    if s.data.dataset == "digits" and (h, w, c) != (8, 8, 1):
        fail("input.shape", f"the digits dataset has 8x8x1 images, got {h}x{w}x{c}")
    if s.data.dataset == "photos":
        # input.shape is the frame the IP is built for; training cuts dataset.patch-square patches.
        if c not in (1, 3):
            fail("input.shape", f"photos have 1 channel (grey) or 3 (colour), got {c}")
        if min(h, w) < s.data.patch:
            fail("input.shape", f"the frame {h}x{w} is smaller than the {s.data.patch}x{s.data.patch} "
                 "training patches (dataset.patch)")
    if not s.repeat_min <= s.repeat_default <= s.repeat_max:
        fail("repeat", f"needs min <= default <= max, got {s.repeat_min} <= {s.repeat_default} <= {s.repeat_max}")
    if s.repeat_max > 1 and s.blocks < 2:
        fail("repeat.max", "repeating the last block needs at least 2 blocks (its input and output must match)")
    if s.repeat_blocks >= s.blocks and (s.repeat_max > 1 or s.repeat_blocks > 1):
        fail("repeat.blocks", f"the repeated group must leave the first block out (its input differs), so at most "
             f"{s.blocks - 1} of the {s.blocks} blocks can repeat, got {s.repeat_blocks}")
    for i, t in enumerate(s.data.targets):
        if t.task == s.data.source:
            fail(f"targets[{i}].task", f"{t.task!r} is the source task; a target task must differ from it")
        if t.task in s.data.also:
            fail(f"targets[{i}].task", f"{t.task!r} is a pre-training task (source.also); a target task must be "
                 "new to the frozen core")
        for b in t.shuffle:
            if b not in s.shuffle_blocks:
                fail(f"targets[{i}].shuffle", f"block {b} has no core-shuffle switch "
                     f"(switches: {list(s.shuffle_blocks) or 'none, set trainable_cores.core_shuffle'})")
    names = [t.task for t in s.data.targets]
    if len(set(names)) != len(names):
        fail("targets", "lists a task more than once")
    for i, task in enumerate(s.task_names):
        kind, classes = s.task_kind(task)
        field = "source.task" if i == 0 else f"targets[{i - 1}].task"
        if kind != s.head_type:
            fail(field, f"task {task!r} needs a {kind} head, but head.type is {s.head_type}")
        if classes > s.head_outputs:
            fail("head.outputs", f"task {task!r} needs {classes} outputs, the head has {s.head_outputs}")
    if s.head_type == "classify" and (h * w) & (h * w - 1):
        fail("input.shape", f"the classify head averages {h}x{w} pixels; the pixel count must be a power of two "
             "so that the average is exact in hardware and in float32")
    free = 32 - c * s.input_bits
    if bank_bits(s.hardware.banks) > free:
        fail("hardware.banks", f"each frame names its bank in {bank_bits(s.hardware.banks)} bit(s) of the input "
             f"stream, but {c} channel(s) of {s.input_bits} bits leave {free} of the 32 free; use at most "
             f"{1 << free if free < 3 else MAX_BANKS} banks")
    if s.head_type == "pixel":
        # The photos tasks act on every channel; other pixel tasks produce one output channel.
        outputs = c if s.data.dataset == "photos" else 1
        if s.head_outputs != outputs:
            fail("head.outputs", "the photos tasks produce one output channel per input channel: "
                 f"{outputs}, got {s.head_outputs}" if s.data.dataset == "photos" else
                 f"pixel tasks produce one output channel, got {s.head_outputs}")

    # What only the network description can check: exact float32 sums.
    network.validate(s)
