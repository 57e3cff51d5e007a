"""The network description: what a spec's SemifreddoNet is, layer by layer. Every stage reads it.

:func:`describe` turns a validated :class:`~.spec.Spec` into a :class:`Network`: the layers in graph
order, each with its kind, its inputs, the block and core it belongs to, which layer a repetition
copies, its kernel and channel counts, the exact formats of its inputs, weights, bias, accumulator
and result, whether its parameters are frozen (constants) or configurable (registers), and how the
hardware builds it. The QKeras builder, the register layout, parameter counts, the float32
exactness check, hls4ml's precision configuration, the backend's marking of configurable weights
and the estimator all read this description; none of them parses a layer name.

The network, for blocks b = 1..n (``f`` the frozen core, ``t^A``, ``t^B`` the trainable cores)::

    frozen core      f_b = relu_q(conv_frozen_b(f_{b-1}))                      f_0 = input
    trainable cores  x_b^c = blend_b^c(f_{b-1}, t_{b-1}^c [or t_{b-1}^other])  (b > 1; x_1^c = input)
                     t_b^c = relu_q(conv_b^c(x_b^c))                             c in {A, B}
    repeat           the last k blocks run `repeat` times as a group (repeat_min..repeat_max, a
                     run-time register; k = repeat.blocks)
    head             classify: dense(relu_q(avgpool(concat(f_n, t_n^A, t_n^B))))
                     pixel:    conv1x1(concat(f_n, t_n^A, t_n^B))
                     then quantized to the head's output format

Layer names are stable (``b2_A_conv``, ``b3r2_gate_frozen``, ``head_dense``): they name the Keras
layers, the hls4ml layers and the estimate's rows, but no code reads meaning out of them. The
j-th run of the repeated group is laid out as copies named ``b<b>r<j>_...`` whose ``copy_of`` is
the original layer, followed by one repeat gate per feature stream. That is the function the
QKeras model computes (shared weights across runs). The hardware either builds it that way
(``repeat.hardware: unrolled``: one pipeline stage per run) or builds the group once and loops
frames through it (``reuse``): the hardware plan (semifreddo.hls_project.plan) says which.

Parameter tensors (:class:`Param`) are named ``b2.A.kernel``, ``b1.frozen.bias``, ``head.kernel``;
those are the register fields and the frozen-core artifact's array names. ``configurable`` lists
them in register order (per block: core A then B: alpha, conv kernel, conv bias; then the block's
core-shuffle switch; last the head's kernel and bias).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semifreddo.deploy.contract.boards import BOARDS
from semifreddo.deploy.contract.errors import SpecError

from .fixedpoint import FLOAT32_EXACT_BITS, Fixed, fixed_for_range, significant_bits, sum_of_products
if TYPE_CHECKING:                  # a Spec is described here; spec.py imports this module
    from .spec import Spec

CORES = ("A", "B")
BRAM18_BITS = 18 * 1024
SWITCH = Fixed(1, 1, False)        # the core-shuffle switch: 0 or 1

# Layer kinds. Every layer has exactly one of them; the stages dispatch on it.
KINDS = ("input", "quantize", "conv", "relu", "blend", "gate", "concat", "pool", "dense", "output")


@dataclass(frozen=True)
class Param:
    """One parameter tensor: its name (register field or core array), the layer holding it, its format."""

    name: str                   # e.g. "b2.A.kernel"
    layer: str                  # the layer that holds it (never a repeat copy)
    weight: str                 # "kernel", "bias", "alpha" or "swap"
    shape: tuple[int, ...]
    fmt: Fixed
    frozen: bool
    block: int | None = None
    lo: int | None = None       # code range, when narrower than the format's
    hi: int | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str                          # one of KINDS
    inputs: tuple[str, ...]            # the layers feeding it, in argument order
    tag: str                           # "b2", "b3r2" (a repetition), "head" or "input": where it sits
    block: int | None = None           # 1..n for block layers (repetitions included)
    core: str | None = None            # "frozen", "A", "B" or "head"
    run: int = 1                       # which run of the repeated block this layer computes
    copy_of: str | None = None         # the layer whose parameters a repetition computes with
    kernel: int = 1
    c_in: int = 0
    c_out: int = 0
    in_fmt: Fixed | None = None        # format of the (first) input
    weight_fmt: Fixed | None = None
    bias_fmt: Fixed | None = None
    alpha_fmt: Fixed | None = None     # blends
    accum: Fixed | None = None         # the exact sum: nothing is rounded inside the layer
    result: Fixed | None = None
    rounds: bool = False               # the result is quantized (round half to even, saturate)
    frozen: bool = False               # its parameters are constants in hardware
    implementation: str | None = None  # how hardware computes it: frozen convs "adder_graph" or "multipliers"
                                       # (constants), configurable layers "registers"
    padding: str = "same"              # convs
    frozen_channels: tuple[int, ...] = ()  # blends: the frozen-core channel of each own channel
    shuffle: bool = False              # blends with a core-shuffle switch
    reuse_factor: int = 1              # products per multiplier: > 1 folds the layer over that many cycles
    multiplier: str | None = None      # where its configurable multipliers go: "dsp" or "lut" (hardware layout)

    def multipliers(self, twin: bool = False) -> int:
        """Configurable multipliers it instantiates (``twin``: as if its frozen weights were registers)."""
        if self.kind in ("conv", "dense") and (twin or not self.frozen):
            return -(-self.n_terms * self.c_out // self.reuse_factor)
        return self.c_out if self.kind == "blend" else 0

    @property
    def multiplier_operands(self) -> tuple[int, int]:
        """(activation bits, weight bits) of its multipliers; a blend multiplies alpha by f - t."""
        if self.kind == "blend":
            return self.alpha_fmt.bits, self.result.bits + 1
        return self.in_fmt.bits, self.weight_fmt.bits

    @property
    def original(self) -> str:
        """The layer whose parameters this one uses (itself unless it is a repetition)."""
        return self.copy_of or self.name

    @property
    def n_terms(self) -> int:
        """Products summed per output value (convs and dense)."""
        return self.kernel * self.kernel * self.c_in

    def title(self) -> str:
        """A short phrase for messages, e.g. "block 2 frozen conv"."""
        if self.kind == "conv" and self.core in ("frozen", "A", "B"):
            return f"block {self.block} {'frozen' if self.frozen else 'trainable'} conv"
        return {"pool": "global average pool", "dense": "head", "conv": "head"}.get(self.kind, self.name)


@dataclass(frozen=True)
class Network:
    spec: Spec
    layers: tuple[Layer, ...]
    frozen: tuple[Param, ...]          # frozen-core tensors, block by block
    configurable: tuple[Param, ...]    # register fields, in register order
    repeat_blocks: tuple[int, ...]     # the blocks a repetition runs again, as a group
    runs: int                          # runs of the repeated group laid out (1 .. repeat_max)
    group_inputs: tuple[str, ...]      # the streams entering the repeated group (frozen, A, B)
    group_outputs: tuple[str, ...]     # and leaving it after its first run, in the same order
    reuse: bool = False                # hardware: the group exists once and frames loop through it
    frame_buffer: str | None = None    # hardware, with reuse: where its frame buffer is ("chip" or "ddr")

    def in_group(self, layer: Layer) -> bool:
        """Whether the layer is part of (a run of) the repeated group."""
        return layer.block in self.repeat_blocks and layer.kind != "gate"

    @property
    def group_pixel_bits(self) -> int:
        """Bits of one pixel of every stream the reused group passes from one pass to the next."""
        return sum(self.layer(name).c_out * self.layer(name).result.bits for name in self.group_outputs)

    @property
    def frame_buffer_bits(self) -> int:
        """Memory the reused group needs: two frames (one read, one written) of every stream it passes around."""
        h, w, _ = self.spec.input_shape
        return 2 * h * w * self.group_pixel_bits

    @property
    def frame_word_bits(self) -> int:
        """A DDR frame buffer's word: one pixel of every group stream, packed, padded to a power of two
        of at least 32 bits (an AXI master's data width)."""
        return max(32, 1 << (self.group_pixel_bits - 1).bit_length())

    @functools.cached_property
    def _by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def layer(self, name: str) -> Layer:
        return self._by_name[name]

    def of_kind(self, *kinds: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind in kinds]

    def copies(self, name: str) -> list[Layer]:
        """The repetitions of layer ``name`` (they compute with its parameters)."""
        return [layer for layer in self.layers if layer.copy_of == name]

    def params_of(self, layer: str) -> list[Param]:
        return [p for p in self.frozen + self.configurable if p.layer == layer]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts by kind. Frozen fraction = frozen / (frozen + configurable)."""
        frozen = sum(p.size for p in self.frozen)
        configurable = sum(p.size for p in self.configurable)
        return {"frozen": frozen, "configurable": configurable, "total": frozen + configurable}

    def check_exact(self) -> None:
        """Every sum must fit the 24 significant bits float32 holds exactly, or the QKeras reference
        could not be bit-exact with the hardware. Raises SpecError naming the field to change."""
        fields = {"frozen": "frozen_core.weights", "A": "trainable_cores.weights", "B": "trainable_cores.weights",
                  "head": "head.weights"}
        for layer in self.layers:
            if layer.run != 1 or layer.accum is None or layer.kind == "blend":
                continue
            field = "input.shape" if layer.kind == "pool" else fields[layer.core]
            if significant_bits(layer.accum) > FLOAT32_EXACT_BITS:
                raise SpecError(field, f"the {layer.title()} needs a {significant_bits(layer.accum)}-bit "
                                f"accumulator, more than the {FLOAT32_EXACT_BITS} bits float32 holds exactly; the "
                                "QKeras reference could not be bit-exact. Use fewer bits or a narrower layer",
                                self.spec.path)


# --------------------------------------------------------------------------------------------
# Formats of the layers that are more than a sum of products
# --------------------------------------------------------------------------------------------

def blend_accumulator(spec: Spec) -> Fixed:
    """t + alpha * (f - t) exactly: f, t activations, alpha with alpha_bits fractional bits."""
    act = spec.activations
    # |f - t| < 2**integer, alpha <= 1, and the sum stays within [0, 2**integer): one extra
    # integer bit covers the intermediate difference.
    return fixed_for_range(2 * act.max_abs, act.frac + spec.alpha_bits, signed=True)


def pool_mean(spec: Spec) -> Fixed:
    """The exact mean of height*width activations (a power-of-two count, checked by the spec)."""
    h, w, _ = spec.input_shape
    shift = (h * w).bit_length() - 1
    return fixed_for_range(spec.activations.max_abs, spec.activations.frac + shift, signed=False)


# --------------------------------------------------------------------------------------------
# Building the description
# --------------------------------------------------------------------------------------------

def dense_reuse_factor(n_in: int, n_out: int, cycles: int) -> int:
    """The largest reuse factor, at most ``cycles``, that hls4ml's Resource strategy accepts for an
    n_in x n_out dense layer (its rule, FPGABackend._validate_reuse_factor: the products divide
    evenly over the multipliers, and each multiplier serves whole rows or whole columns)."""
    def valid(rf: int) -> bool:
        limit = -(-(n_in * n_out) // min(n_in, rf))
        return ((limit % n_out == 0) or rf >= n_in) and (rf % n_in == 0 or rf < n_in) and (n_in * n_out) % rf == 0
    return max(rf for rf in range(1, min(cycles, n_in * n_out) + 1) if valid(rf))


def frozen_channels_for(spec: Spec, core_index: int) -> tuple[int, ...]:
    """Which frozen-core channels a trainable core blends with: core A takes the first ``width``
    channels, core B the next ``width`` (wrapping round if the frozen core is narrower)."""
    t = spec.trainable_width
    return tuple((core_index * t + j) % spec.frozen_width for j in range(t))


class _Builder:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.layers: list[Layer] = []
        self.frozen: list[Param] = []
        self.configurable: list[Param] = []

    def add(self, **fields) -> str:
        self.layers.append(Layer(**fields))
        return fields["name"]

    def conv(self, tag: str, block: int, core: str, source: str, run: int, copy_of: str | None) -> str:
        spec = self.spec
        frozen = core == "frozen"
        k = spec.kernels[block - 1]
        c_in = spec.input_shape[2] if block == 1 else (spec.frozen_width if frozen else spec.trainable_width)
        in_fmt = spec.input_format if block == 1 else spec.activations
        weights = spec.frozen_weights.storage if frozen else spec.trainable_weights
        bias = spec.frozen_bias if frozen else spec.trainable_bias
        width = spec.frozen_width if frozen else spec.trainable_width
        accum = sum_of_products(in_fmt, weights, k * k * c_in, bias)
        return self.add(name=f"{tag}_{core}_conv", kind="conv", inputs=(source,), tag=tag, block=block, core=core,
                        run=run, copy_of=copy_of and f"{copy_of}_{core}_conv", kernel=k, c_in=c_in, c_out=width,
                        in_fmt=in_fmt, weight_fmt=weights, bias_fmt=bias, accum=accum, result=accum, frozen=frozen,
                        implementation=spec.hardware.frozen_implementation if frozen else "registers")

    def relu(self, tag: str, block: int, core: str, source: str, run: int, copy_of: str | None, width: int) -> str:
        act = self.spec.activations
        return self.add(name=f"{tag}_{core}_relu", kind="relu", inputs=(source,), tag=tag, block=block, core=core,
                        run=run, copy_of=copy_of and f"{copy_of}_{core}_relu", c_in=width, c_out=width,
                        in_fmt=self.layer(source).result, result=act, rounds=True)

    def layer(self, name: str) -> Layer:
        return next(layer for layer in reversed(self.layers) if layer.name == name)

    def block(self, block: int, streams: dict[str, str], run: int = 1) -> dict[str, str]:
        """Lay out one block (one run of it); returns the names of its three output streams."""
        spec = self.spec
        tag = f"b{block}" if run == 1 else f"b{block}r{run}"
        copy_of = None if run == 1 else f"b{block}"
        out = {}
        if spec.frozen_width:
            conv = self.conv(tag, block, "frozen", streams["frozen"], run, copy_of)
            out["frozen"] = self.relu(tag, block, "frozen", conv, run, copy_of, spec.frozen_width)
        shuffle = block in spec.shuffle_blocks
        for ci, core in enumerate(CORES):
            source = streams[core]
            if block > 1 and spec.frozen_width:
                inputs = (streams["frozen"], streams[core]) + ((streams[CORES[1 - ci]],) if shuffle else ())
                source = self.add(
                    name=f"{tag}_{core}_blend", kind="blend", inputs=inputs, tag=tag, block=block, core=core, run=run,
                    copy_of=copy_of and f"{copy_of}_{core}_blend", c_in=spec.trainable_width,
                    c_out=spec.trainable_width, in_fmt=spec.activations, alpha_fmt=spec.alpha_format,
                    accum=blend_accumulator(spec), result=spec.activations, rounds=True,
                    frozen_channels=frozen_channels_for(spec, ci), shuffle=shuffle, implementation="registers")
            conv = self.conv(tag, block, core, source, run, copy_of)
            out[core] = self.relu(tag, block, core, conv, run, copy_of, spec.trainable_width)
        if run == 1:
            self.block_params(block, shuffle)
        return out

    def block_params(self, block: int, shuffle: bool) -> None:
        spec = self.spec
        tag = f"b{block}"
        if spec.frozen_width:
            conv = self.layer(f"{tag}_frozen_conv")
            self.frozen += [Param(f"{tag}.frozen.kernel", conv.name, "kernel", (conv.kernel, conv.kernel, conv.c_in,
                                  conv.c_out), conv.weight_fmt, True, block),
                            Param(f"{tag}.frozen.bias", conv.name, "bias", (conv.c_out,), conv.bias_fmt, True, block)]
        for core in CORES:
            if block > 1 and spec.frozen_width:
                blend = self.layer(f"{tag}_{core}_blend")
                self.configurable.append(Param(f"{tag}.{core}.alpha", blend.name, "alpha", (blend.c_out,),
                                               blend.alpha_fmt, False, block, lo=0, hi=1 << spec.alpha_bits))
            conv = self.layer(f"{tag}_{core}_conv")
            self.configurable += [
                Param(f"{tag}.{core}.kernel", conv.name, "kernel", (conv.kernel, conv.kernel, conv.c_in, conv.c_out),
                      conv.weight_fmt, False, block),
                Param(f"{tag}.{core}.bias", conv.name, "bias", (conv.c_out,), conv.bias_fmt, False, block)]
        if shuffle:
            # One switch per block, held by core A's blend (core B's blend reads the same register).
            self.configurable.append(Param(f"{tag}.shuffle", f"{tag}_A_blend", "swap", (), SWITCH, False, block))

    def gates(self, block: int, run: int, previous: dict[str, str], new: dict[str, str]) -> dict[str, str]:
        """After run ``run`` of the repeated blocks: pass the new features if repeat >= run."""
        out = {}
        for stream in previous:
            width = self.layer(new[stream]).c_out
            out[stream] = self.add(name=f"b{block}r{run}_gate_{stream}", kind="gate", inputs=(previous[stream],
                                   new[stream]), tag=f"b{block}r{run}", block=block, core=stream, run=run,
                                   c_in=width, c_out=width, in_fmt=self.spec.activations,
                                   result=self.spec.activations, rounds=True)
        return out

    def head(self, streams: dict[str, str]) -> None:
        spec = self.spec
        act = spec.activations
        h, w, _ = spec.input_shape
        channels = spec.frozen_width + 2 * spec.trainable_width
        features = self.add(name="head_concat_cores", kind="concat", inputs=(streams["A"], streams["B"]), tag="head",
                            core="head", c_in=2 * spec.trainable_width, c_out=2 * spec.trainable_width, in_fmt=act,
                            result=act, rounds=True)
        if spec.frozen_width:
            features = self.add(name="head_concat", kind="concat", inputs=(streams["frozen"], features), tag="head",
                                core="head", c_in=channels, c_out=channels, in_fmt=act, result=act, rounds=True)
        accum = sum_of_products(act, spec.head_weights, channels, spec.head_bias)
        if spec.head_type == "classify":
            pool = self.add(name="head_pool", kind="pool", inputs=(features,), tag="head", core="head",
                            c_in=channels, c_out=channels, in_fmt=act, accum=sum_of_products(act, Fixed(1, 0, False), h * w),
                            result=pool_mean(spec))
            pooled = self.add(name="head_pool_relu", kind="relu", inputs=(pool,), tag="head", core="head",
                              c_in=channels, c_out=channels, in_fmt=pool_mean(spec), result=act, rounds=True)
            # The dense layer sees one vector per frame, so it is folded over the frame's pixels.
            logits = self.add(name="head_dense", kind="dense", inputs=(pooled,), tag="head", core="head", c_in=channels,
                              c_out=spec.head_outputs, in_fmt=act, weight_fmt=spec.head_weights,
                              bias_fmt=spec.head_bias, accum=accum, result=accum, implementation="registers",
                              reuse_factor=dense_reuse_factor(channels, spec.head_outputs, h * w))
            kernel_shape = (channels, spec.head_outputs)
        else:
            logits = self.add(name="head_conv", kind="conv", inputs=(features,), tag="head", core="head", kernel=1,
                              c_in=channels, c_out=spec.head_outputs, in_fmt=act, weight_fmt=spec.head_weights,
                              bias_fmt=spec.head_bias, accum=accum, result=accum, implementation="registers",
                              padding="valid")
            kernel_shape = (1, 1, channels, spec.head_outputs)
        self.configurable += [Param("head.kernel", logits, "kernel", kernel_shape, spec.head_weights, False),
                              Param("head.bias", logits, "bias", (spec.head_outputs,), spec.head_bias, False)]
        self.add(name="head_out", kind="output", inputs=(logits,), tag="head", core="head", c_in=spec.head_outputs,
                 c_out=spec.head_outputs, in_fmt=accum, result=spec.head_output, rounds=True)


@functools.lru_cache(maxsize=64)
def describe(spec: Spec, runs: int | None = None) -> Network:
    """The network of ``spec`` with ``runs`` runs of the repeated block laid out (default: every
    run up to ``repeat.max``, which is the function the QKeras model and the hardware compute)."""
    runs = spec.repeat_max if runs is None else runs
    if not 1 <= runs <= spec.repeat_max:
        raise ValueError(f"runs {runs} outside 1..{spec.repeat_max}")
    b = _Builder(spec)
    b.add(name="image", kind="input", inputs=(), tag="input", c_out=spec.input_shape[2], result=spec.input_format)
    x = b.add(name="input_q", kind="quantize", inputs=("image",), tag="input", c_in=spec.input_shape[2],
              c_out=spec.input_shape[2], in_fmt=spec.input_format, result=spec.input_format, rounds=True)
    streams = {"frozen": x, "A": x, "B": x} if spec.frozen_width else {"A": x, "B": x}
    group = spec.repeated_blocks
    entering = {}
    for block in range(1, spec.blocks + 1):
        if block == group[0]:
            entering = streams
        streams = b.block(block, streams)
    leaving = streams
    for run in range(2, runs + 1):
        new = streams
        for block in group:
            new = b.block(block, new, run)
        streams = b.gates(group[-1], run, streams, new)
    b.head(streams)
    return Network(spec, tuple(b.layers), tuple(b.frozen), tuple(b.configurable), group, runs,
                   tuple(entering.values()), tuple(leaving.values()))


MAX_AXI_MASTER_BITS = 1024    # the widest AXI master data bus Vitis HLS builds (UG1399, m_axi interfaces)


def on_chip_capacity_bits(spec) -> int:
    """Block RAM of the spec's board, in bits."""
    return BOARDS[spec.hardware.board].capacity["bram18"] * BRAM18_BITS


def frame_buffer_problems(network: Network) -> dict[str, str]:
    """Why the reused group's frame buffer cannot be built on chip ("chip") or in DDR ("ddr"), if it
    cannot: on chip it must fit the board's block RAM; in DDR a pixel of every group stream must fit
    one AXI master word."""
    spec = network.spec
    problems = {}
    capacity = on_chip_capacity_bits(spec)
    if network.frame_buffer_bits > capacity:
        problems["chip"] = (f"needs a frame buffer of {network.frame_buffer_bits / 1024:,.0f} kbit, more than the "
                            f"{capacity / 1024:,.0f} kbit of block RAM on {spec.hardware.board}")
    if network.group_pixel_bits > MAX_AXI_MASTER_BITS:
        problems["ddr"] = (f"passes {network.group_pixel_bits} bits a pixel between passes, more than one "
                           f"{MAX_AXI_MASTER_BITS}-bit AXI master word of a DDR frame buffer")
    return problems


def check_frame_buffer(network: Network) -> None:
    """The reused group's frame buffer must be buildable where the spec asks (``repeat.buffer``)."""
    spec = network.spec
    wanted = spec.hardware.frame_buffer
    problems = frame_buffer_problems(network)
    places = ("chip", "ddr") if wanted == "auto" else (wanted,)
    if all(place in problems for place in places):
        where = {"chip": "on chip", "ddr": "in DDR"}
        why = "; ".join(f"{where[place]} it {problems[place]}" for place in places)
        other = "" if wanted == "auto" else f"`repeat.buffer: {'ddr' if wanted == 'chip' else 'chip'}`, "
        raise SpecError("repeat.buffer" if wanted != "auto" else "repeat.hardware",
                        f"reusing blocks {list(spec.repeated_blocks)}: {why}; use {other}"
                        "`repeat.hardware: unrolled`, a smaller frame or narrower cores", spec.path)


def validate(spec: Spec) -> None:
    """Checks of a spec that need its network (spec validation calls this last): exact float32 sums,
    and a reused repeat group's frame buffer buildable where ``repeat.buffer`` puts it."""
    describe(spec).check_exact()
    if spec.hardware.repeat_hardware == "reuse" and spec.repeat_max > 1:
        check_frame_buffer(describe(spec, 1))
