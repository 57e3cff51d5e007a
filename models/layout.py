"""Which parameters are frozen and which are configurable, and how each is stored as integers.

:func:`configurable_tensors` lists the configurable parameters in register order. It is the only
place that order is decided; :func:`register_map` turns it into word offsets through
``semifreddo.deploy.regmap.build_register_map``, and the HLS conversion turns the same map into
the register bank and its unpack logic.

Register order: for each block, for core A then B: alpha (blocks after the first), conv kernel,
conv bias; then the block's core-shuffle switch; finally the head's kernel and bias. Inside a
tensor, elements are in C order of the Keras weight array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tensorflow import keras

from semifreddo.deploy.regmap import Field, RegisterMap, build_register_map

from .builder import CORES
from .fixedpoint import Fixed
from .layers import AlphaBlend
from .quantizers import to_codes
from .spec import Spec


@dataclass(frozen=True)
class Tensor:
    """One parameter tensor: its register/artifact name, where it lives in the Keras model, its format."""

    name: str          # e.g. "b2.A.kernel"
    layer: str         # Keras layer name, e.g. "b2_A_conv"
    weight: str        # "kernel", "bias", "alpha" or "swap"
    shape: tuple[int, ...]
    fmt: Fixed
    lo: int | None = None
    hi: int | None = None


def _conv_shapes(spec: Spec, b: int, core: str, width: int) -> tuple[tuple, tuple]:
    k = spec.kernels[b - 1]
    return (k, k, spec.block_in_channels(b, core), width), (width,)


def frozen_tensors(spec: Spec) -> list[Tensor]:
    out = []
    if not spec.frozen_width:
        return out
    for b in range(1, spec.blocks + 1):
        kshape, bshape = _conv_shapes(spec, b, "frozen", spec.frozen_width)
        out.append(Tensor(f"b{b}.frozen.kernel", f"b{b}_frozen_conv", "kernel", kshape, spec.frozen_weights.storage))
        out.append(Tensor(f"b{b}.frozen.bias", f"b{b}_frozen_conv", "bias", bshape, spec.frozen_bias))
    return out


def configurable_tensors(spec: Spec) -> list[Tensor]:
    out = []
    t = spec.trainable_width
    for b in range(1, spec.blocks + 1):
        kshape, bshape = _conv_shapes(spec, b, "core", t)
        for c in CORES:
            if b > 1 and spec.frozen_width:
                out.append(Tensor(f"b{b}.{c}.alpha", f"b{b}_{c}_blend", "alpha", (t,), spec.alpha_format,
                                  lo=0, hi=1 << spec.alpha_bits))
            out.append(Tensor(f"b{b}.{c}.kernel", f"b{b}_{c}_conv", "kernel", kshape, spec.trainable_weights))
            out.append(Tensor(f"b{b}.{c}.bias", f"b{b}_{c}_conv", "bias", bshape, spec.trainable_bias))
        if b in spec.shuffle_blocks:
            out.append(Tensor(f"b{b}.shuffle", f"b{b}_A_blend", "swap", (), Fixed(1, 1, False)))
    head_layer = "head_dense" if spec.head_type == "classify" else "head_conv"
    if spec.head_type == "classify":
        kshape = (spec.head_in_channels, spec.head_outputs)
    else:
        kshape = (1, 1, spec.head_in_channels, spec.head_outputs)
    out.append(Tensor("head.kernel", head_layer, "kernel", kshape, spec.head_weights))
    out.append(Tensor("head.bias", head_layer, "bias", (spec.head_outputs,), spec.head_bias))
    return out


def register_map(spec: Spec) -> RegisterMap:
    """The register map for ``spec`` (the word layout of its configurable parameters)."""
    fields = [Field(t.name, t.shape, t.fmt.bits, t.fmt.signed, t.fmt.frac, t.lo, t.hi,
                    meta={"layer": t.layer, "weight": t.weight}) for t in configurable_tensors(spec)]
    return build_register_map(fields, (spec.repeat_min, spec.repeat_max), io=stream_io(spec))


def stream_io(spec: Spec) -> dict:
    """What the IP's AXI streams carry (see semifreddo.deploy.streams): shapes, widths, beat counts."""
    h, w, _ = spec.input_shape
    out_shape = [spec.head_outputs] if spec.head_type == "classify" else [h, w, spec.head_outputs]
    return {"spec": spec.name, "input_shape": list(spec.input_shape), "input_bits": spec.input_bits,
            "input_beats": h * w, "head": spec.head_type, "output_shape": out_shape,
            "output_bits": spec.head_output.bits, "output_frac": spec.head_output.frac,
            "output_beats": int(np.prod(out_shape))}


# --------------------------------------------------------------------------------------------
# Moving parameters between a Keras model and integer codes
# --------------------------------------------------------------------------------------------

def _weight_var(layer: keras.layers.Layer, weight: str):
    if weight == "kernel":
        return layer.kernel
    if weight == "bias":
        return layer.bias
    if weight == "alpha":
        return layer.a
    if weight == "swap":
        return layer.swap
    raise KeyError(weight)


def _quantized_value(layer: keras.layers.Layer, weight: str) -> np.ndarray:
    """The value the forward pass actually uses (after the layer's quantizer)."""
    if weight == "alpha":
        return layer.alpha().numpy()
    if weight == "swap":
        return layer.swap.numpy()
    var = _weight_var(layer, weight)
    quantizer = layer.kernel_quantizer_internal if weight == "kernel" else layer.bias_quantizer_internal
    return np.asarray(quantizer(var).numpy())


def extract_codes(model: keras.Model, tensors: list[Tensor]) -> dict[str, np.ndarray]:
    """Integer codes of the given tensors as the model's forward pass uses them."""
    codes = {}
    for t in tensors:
        value = _quantized_value(model.get_layer(t.layer), t.weight)
        codes[t.name] = to_codes(value, t.fmt).reshape(t.shape)
    return codes


def apply_codes(model: keras.Model, tensors: list[Tensor], codes: dict[str, np.ndarray]) -> None:
    """Load integer codes into the model so its forward pass uses exactly those values.

    Shared-weight repetitions pick the values up automatically; for an unrolled model the
    repetition layers (``b{n}r{j}_*``) are loaded as well.
    """
    layers = {layer.name: layer for layer in model.layers}
    for t in tensors:
        value = np.asarray(codes[t.name], dtype=np.float64).reshape(t.shape) * 2.0 ** -t.fmt.frac
        for layer in [layers[t.layer]] + _repetitions(layers, t.layer):
            if t.weight == "alpha":
                # alpha = quantize(sigmoid(a)): store the logit of the exact alpha; the quantizer
                # then returns that alpha again (0 and 1 map to large finite logits).
                p = np.clip(value, 1e-12, 1 - 1e-12)
                logit = np.log(p) - np.log1p(-p)
                logit = np.where(value <= 0, -30.0, np.where(value >= 1, 30.0, logit))
                layer.a.assign(logit.astype(np.float32))
                got = to_codes(layer.alpha().numpy(), t.fmt)
                if not np.array_equal(got, np.asarray(codes[t.name]).reshape(t.shape)):
                    raise AssertionError(f"alpha codes of {t.name} did not survive the logit round trip")
            elif t.weight == "swap":
                for blend in (layers.get(layer.name.replace("_A_", f"_{c}_")) for c in CORES):
                    if isinstance(blend, AlphaBlend):
                        blend.swap.assign(float(value))
            else:
                _weight_var(layer, t.weight).assign(value.astype(np.float32))


def _repetitions(layers: dict, name: str) -> list:
    """The copies of layer ``b{n}_<rest>`` in an unrolled model: ``b{n}r{j}_<rest>``."""
    block, rest = name.split("_", 1)
    return [layer for other, layer in layers.items()
            if other.split("_", 1)[0].startswith(block + "r") and other.split("_", 1)[1] == rest]


def frozen_layer_names(spec: Spec) -> set[str]:
    return {t.layer for t in frozen_tensors(spec)}
