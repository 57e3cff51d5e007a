"""The hardware plan: every hardware decision about one IP, made once and written down.

``semifreddo convert`` calls :func:`make_plan` once, from the network description (what the network
is, :mod:`semifreddo.models.network`) and the spec's hardware target (board, multiplier policy,
frozen implementation, repeat hardware), and writes the result into the HLS project as
``plan.json``. Everything after conversion reads that file instead of deciding again: the backend's
passes and the writer (through the hls4ml config), the fit check before ``synth`` and ``bitstream``,
``estimate`` of a converted project, ``package`` and the bundle (register offsets), and, through the
bundle's ``regmap.json`` (the plan's register map, written out as the board-side contract), the
driver. So a project converted with ``--multipliers lut`` is priced, checked and packaged as LUT
multipliers, whatever the YAML says.

Per layer the plan holds how the hardware builds it (adder graph, constant multipliers, register
multipliers), where its configurable multipliers go (DSP48s or LUTs), which register fields it
reads, and which layer a repetition copies. For the whole IP: the repeat stage (reused group or
unrolled copies, its entry and exit streams, its frame buffer), the register map and the stream
formats.

How the multipliers are placed (:func:`assign_multipliers`) lives here too: it is a hardware
decision, not part of what the network is. So is where the reused group keeps its frame
(:func:`frame_buffer_place`). (Whether it can be built there at all is checked when the spec is
loaded, so a spec that cannot be built never gets far.)
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.boards import BOARDS, FIT_LIMITS
from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_text
from semifreddo.deploy.contract.interface import PLAN_FORMAT, read_artifact, stamp
from semifreddo.deploy.contract.regmap import RegisterMap, register_map_from_json
from semifreddo.models.layout import register_map
from semifreddo.deploy.contract.interface import FRAME_BUFFER_OFFSET
from semifreddo.models.network import Layer, Network, check_frame_buffer, describe, frame_buffer_problems, \
    on_chip_capacity_bits
from semifreddo.models.spec import HardwareTarget, Spec

PLAN_FILE = "plan.json"


# --------------------------------------------------------------------------------------------
# Placement: the decisions
# --------------------------------------------------------------------------------------------

# A DSP48E1 multiplies a 25-bit by an 18-bit signed operand (UG479). Products narrower than 9 bits
# cost fewer LUTs than a DSP is worth; synthesis leaves them in LUTs (Yosys: DSP_Y_MINWIDTH).
DSP_A_BITS, DSP_B_BITS = 25, 18
DSP_MIN_PRODUCT_BITS = 9


def dsp_slices(x_bits: int, w_bits: int) -> int:
    """DSP48E1s one multiplier of an unsigned x_bits activation and a signed w_bits weight takes
    (0: it stays in LUTs)."""
    if x_bits + w_bits < DSP_MIN_PRODUCT_BITS:
        return 0
    a, b = sorted((x_bits + 1, w_bits), reverse=True)
    return -(-a // DSP_A_BITS) * -(-b // DSP_B_BITS)


def assign_multipliers(layers, target: HardwareTarget, twin: bool = False) -> tuple[Layer, ...]:
    """Each layer's configurable multipliers to DSPs or LUTs, by the target's policy: ``dsp`` and
    ``lut`` put all in one; ``auto`` gives whole layers DSPs while the board's DSPs last (up to its
    fit limit): the set of layers that uses the most of them, the rest in LUTs."""
    needs = [layer.multipliers(twin) * dsp_slices(*layer.multiplier_operands) if layer.multipliers(twin) else 0
             for layer in layers]
    if target.multipliers == "auto":
        # Whole layers into a budget: of all subsets, keep the first found for each total of DSPs.
        reachable = {0: ()}
        budget = int(FIT_LIMITS["dsp"] * BOARDS[target.board].capacity["dsp"])
        for i, need in enumerate(needs):
            for total, chosen in list(reachable.items()):
                if need and total + need <= budget and total + need not in reachable:
                    reachable[total + need] = chosen + (i,)
        in_dsp = set(reachable[max(reachable)])
    else:
        in_dsp = {i for i, need in enumerate(needs) if need and target.multipliers == "dsp"}
    return tuple(layer if not layer.multipliers(twin) else
                 dataclasses.replace(layer, multiplier="dsp" if i in in_dsp else "lut")
                 for i, layer in enumerate(layers))


# repeat.buffer: auto keeps the frame buffer on chip while it takes at most this share of the board's
# block RAM (the rest is left to the network's line buffers and FIFOs), and puts it in DDR otherwise.
ON_CHIP_FRAME_BUFFER_SHARE = 0.25


def frame_buffer_place(network: Network) -> str:
    """Where the reused group keeps the frame between passes: "chip" (block RAM, two halves, copied
    between passes) or "ddr" (the board's DDR behind an AXI master, two halves used by pass parity)."""
    wanted = network.spec.hardware.frame_buffer
    if wanted != "auto":
        return wanted
    problems = frame_buffer_problems(network)
    small = network.frame_buffer_bits <= ON_CHIP_FRAME_BUFFER_SHARE * on_chip_capacity_bits(network.spec)
    return "chip" if "chip" not in problems and (small or "ddr" in problems) else "ddr"


def group_fifo_depth(network: Network) -> int:
    """Depth (pixels) of the streams between a reused group and its source and sink: enough for the
    skew between the group's streams, which is at most a kernel's window of lines per block, plus a
    burst; never more than a frame. (Unverified in Vitis HLS co-simulation, which is not on this machine.)"""
    h, w, _ = network.spec.input_shape
    skew = sum(network.spec.kernels[b - 1] for b in network.repeat_blocks) * w
    return min(h * w, skew + 64)


@functools.lru_cache(maxsize=64)
def hardware_layout(spec: Spec) -> Network:
    """The network as the hardware lays it out. ``repeat.hardware: reuse`` (with more than one run):
    the repeated group once, frames looping through it ``repeat`` times (``reuse`` is set; the
    writer wraps the group in the loop). ``unrolled``: every run its own pipeline stage, bypassed
    by a gate when the repeat count is smaller."""
    reuse = spec.hardware.repeat_hardware == "reuse" and spec.repeat_max > 1
    network = describe(spec, 1 if reuse else None)
    network = dataclasses.replace(network, reuse=reuse, layers=assign_multipliers(network.layers, spec.hardware))
    return dataclasses.replace(network, frame_buffer=frame_buffer_place(network)) if reuse else network


def twin_layout(spec: Spec) -> Network:
    """The fully configurable twin of the hardware: every frozen weight a register feeding a real
    multiplier, placed by the same multiplier policy."""
    network = hardware_layout(spec)
    return dataclasses.replace(network, layers=assign_multipliers(network.layers, spec.hardware, twin=True))


# --------------------------------------------------------------------------------------------
# The plan: the decisions written down
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerPlan:
    name: str
    kind: str
    implementation: str | None = None   # "adder_graph", "multipliers" (frozen constants), "registers"
    multiplier: str | None = None       # where its configurable multipliers go: "dsp" or "lut"
    fields: tuple[tuple[str, str], ...] = ()   # (Keras weight name, register field) pairs it reads
    copy_of: str | None = None          # the layer whose parameters a repetition computes with
    shuffle_register: str | None = None  # blends with a core-shuffle switch: the active register
    reads_repeat: bool = False          # repeat gates: it reads the repeat register

    def field_of(self, weight: str) -> str | None:
        return dict(self.fields).get(weight)


@dataclass(frozen=True)
class HardwarePlan:
    spec: str
    core_id: str
    target: HardwareTarget
    layers: tuple[LayerPlan, ...]
    reuse: bool                          # the repeated group exists once and frames loop through it
    group_inputs: tuple[str, ...]        # the streams entering the reused group
    group_outputs: tuple[str, ...]       # and leaving it
    frame_buffer_bits: int
    frame_buffer: str                    # with reuse: "chip" or "ddr" (frame_buffer_place); "" without
    group_fifo_depth: int                # with reuse: depth of the streams around the group (group_fifo_depth)
    regmap: RegisterMap                  # the register map (configurable words, control offsets, stream formats)

    def find(self, name: str) -> LayerPlan | None:
        """The plan of layer ``name``; None for a layer the network description does not have (hls4ml
        adds stream clones and padding of its own)."""
        return next((layer for layer in self.layers if layer.name == name), None)

    def layer(self, name: str) -> LayerPlan:
        found = self.find(name)
        if found is not None:
            return found
        raise SemifreddoError(f"the hardware plan of {self.spec} has no layer {name}; re-run `semifreddo convert`")

    def layout(self, spec: Spec) -> Network:
        """The network description as this plan builds it (the estimator prices this)."""
        network = describe(spec, 1 if self.reuse else None)
        planned = {layer.name: layer for layer in self.layers}
        if [layer.name for layer in network.layers] != list(planned):
            raise SemifreddoError(f"the hardware plan of {self.spec} was made for another network than spec "
                                  f"{spec.name} describes; re-run `semifreddo convert {spec.name}`")
        return dataclasses.replace(network, reuse=self.reuse, frame_buffer=self.frame_buffer or None, layers=tuple(
            dataclasses.replace(layer, multiplier=planned[layer.name].multiplier,
                                implementation=planned[layer.name].implementation) for layer in network.layers))

    def to_json(self) -> dict:
        return {**stamp(PLAN_FORMAT), "spec": self.spec, "core_id": self.core_id,
                "target": dataclasses.asdict(self.target),
                "repeat": {"reuse": self.reuse, "group_inputs": list(self.group_inputs),
                           "group_outputs": list(self.group_outputs), "frame_buffer_bits": self.frame_buffer_bits,
                           "frame_buffer": self.frame_buffer, "group_fifo_depth": self.group_fifo_depth},
                "layers": [{k: v for k, v in dataclasses.asdict(layer).items() if v not in (None, False, ())}
                           | {"fields": dict(layer.fields)} for layer in self.layers],
                "regmap": self.regmap.to_json()}

    @classmethod
    def from_json(cls, obj: dict, source: str = "hardware plan") -> "HardwarePlan":
        try:
            repeat = obj["repeat"]
            return cls(
                spec=str(obj["spec"]), core_id=str(obj["core_id"]), target=HardwareTarget(**obj["target"]),
                layers=tuple(LayerPlan(**{**layer, "fields": tuple(layer.get("fields", {}).items())})
                             for layer in obj["layers"]),
                reuse=bool(repeat["reuse"]), group_inputs=tuple(repeat["group_inputs"]),
                group_outputs=tuple(repeat["group_outputs"]), frame_buffer_bits=int(repeat["frame_buffer_bits"]),
                frame_buffer=str(repeat["frame_buffer"]), group_fifo_depth=int(repeat["group_fifo_depth"]),
                regmap=register_map_from_json(obj["regmap"], f"{source} (register map)"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SemifreddoError(f"{source}: malformed hardware plan ({exc.__class__.__name__}: {exc}); "
                                  "re-run `semifreddo convert`") from None

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / PLAN_FILE
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path


def shuffle_register(block: int) -> str:
    """The active register that holds a block's core-shuffle switch."""
    return f"shuffle_b{block}"


def make_plan(spec: Spec, core_id: str) -> HardwarePlan:
    """Every hardware decision for ``spec``'s IP, from its network description and hardware target."""
    network = hardware_layout(spec)
    if network.reuse:
        check_frame_buffer(network)
    layers = []
    for layer in network.layers:
        params = network.params_of(layer.original)
        layers.append(LayerPlan(
            name=layer.name, kind=layer.kind, implementation=layer.implementation, multiplier=layer.multiplier,
            fields=tuple((p.weight, p.name) for p in params if not p.frozen and p.weight != "swap"),
            copy_of=layer.copy_of, shuffle_register=shuffle_register(layer.block) if layer.shuffle else None,
            reads_repeat=layer.kind == "gate"))
    regmap = register_map(spec)
    if network.frame_buffer == "ddr":
        # The frame buffer's DDR address: a 64-bit AXI-Lite register the driver writes (not part of the
        # register map's id: weight sets do not depend on it), and the bytes the driver allocates.
        regmap = dataclasses.replace(regmap, control={**regmap.control, "frame_buffer": FRAME_BUFFER_OFFSET},
                                     io={**regmap.io, "frame_buffer": ddr_frame_buffer(network)})
    return HardwarePlan(spec.name, core_id, spec.hardware, tuple(layers), network.reuse,
                        network.group_inputs if network.reuse else (), network.group_outputs if network.reuse else (),
                        network.frame_buffer_bits if network.reuse else 0, network.frame_buffer or "",
                        group_fifo_depth(network) if network.reuse else 0, regmap)


def ddr_frame_buffer(network: Network) -> dict:
    """A DDR frame buffer as the driver sees it: two halves of one frame, one word a pixel."""
    h, w, _ = network.spec.input_shape
    return {"word_bits": network.frame_word_bits, "words": 2 * h * w,
            "bytes": 2 * h * w * network.frame_word_bits // 8}


def read_plan(hls_dir: str | Path, spec: str = "SPEC") -> HardwarePlan:
    """The ``plan.json`` of a converted HLS project (the one reader)."""
    path = Path(hls_dir) / PLAN_FILE
    obj = read_artifact(path, PLAN_FORMAT, f"run `semifreddo convert {spec}` (make hls SPEC={spec}) first")
    return HardwarePlan.from_json(obj, str(path))
