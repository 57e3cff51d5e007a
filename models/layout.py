"""The configurable registers' layout, and moving parameters between a Keras model and integer codes.

Which parameters exist, which are frozen and in what order the registers hold the configurable ones
is decided by the network description (:mod:`.network`); :func:`register_map` turns that order into
word offsets through ``semifreddo.deploy.contract.regmap.build_register_map``, and the HLS conversion turns
the same map into the register bank and its unpack logic. Inside a tensor, elements are in C order
of the Keras weight array.
"""

from __future__ import annotations

import numpy as np
from tensorflow import keras

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.regmap import Field, RegisterMap, build_register_map

from .network import Param, describe
from .quantizers import to_codes
from .spec import Spec

Tensor = Param     # a parameter tensor as the layout and the artifacts see it


def frozen_tensors(spec: Spec) -> list[Param]:
    return list(describe(spec).frozen)


def configurable_tensors(spec: Spec) -> list[Param]:
    return list(describe(spec).configurable)


def register_map(spec: Spec) -> RegisterMap:
    """The register map for ``spec`` (the word layout of its configurable parameters)."""
    fields = [Field(t.name, t.shape, t.fmt.bits, t.fmt.signed, t.fmt.frac, t.lo, t.hi,
                    meta={"layer": t.layer, "weight": t.weight, "block": t.block}) for t in configurable_tensors(spec)]
    return build_register_map(fields, (spec.repeat_min, spec.repeat_max), io=stream_io(spec), banks=spec.hardware.banks)


def stream_io(spec: Spec) -> dict:
    """What the IP's AXI streams carry (see semifreddo.deploy.contract.streams): shapes, widths, beat counts."""
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


def apply_codes(model: keras.Model, tensors: list[Param], codes: dict[str, np.ndarray]) -> None:
    """Load integer codes into the model so its forward pass uses exactly those values.

    The repetitions of a layer (separate layers in a model built with unshared repeats) get the
    same values; with shared repeats they are the same layer object.
    """
    network = describe(model_spec(model))
    layers = {layer.name: layer for layer in model.layers}
    for t in tensors:
        value = np.asarray(codes[t.name], dtype=np.float64).reshape(t.shape) * 2.0 ** -t.fmt.frac
        targets = {id(layers[name]): layers[name] for name in [t.layer] + [c.name for c in network.copies(t.layer)]
                   if name in layers}
        for layer in targets.values():
            if t.weight == "alpha":
                # alpha = quantize(sigmoid(a)): store the logit of the exact alpha; the quantizer
                # then returns that alpha again (0 and 1 map to large finite logits).
                p = np.clip(value, 1e-12, 1 - 1e-12)
                logit = np.log(p) - np.log1p(-p)
                logit = np.where(value <= 0, -30.0, np.where(value >= 1, 30.0, logit))
                layer.a.assign(logit.astype(np.float32))
                got = to_codes(layer.alpha().numpy(), t.fmt)
                if not np.array_equal(got, np.asarray(codes[t.name]).reshape(t.shape)):
                    raise SemifreddoError(f"alpha codes of {t.name} did not survive the logit round trip; this is a "
                                          "bug in semifreddo (please report it with the weight set)")
            elif t.weight == "swap":
                set_switch(model, t.block, bool(value))
            else:
                _weight_var(layer, t.weight).assign(value.astype(np.float32))


def set_switch(model: keras.Model, block: int, on: bool) -> None:
    """Set the core-shuffle switch of ``block`` in every blend that reads it (both cores, every run)."""
    present = {layer.name for layer in model.layers}
    for layer in describe(model_spec(model)).of_kind("blend"):
        if layer.shuffle and layer.block == block and layer.name in present:
            model.get_layer(layer.name).swap.assign(1.0 if on else 0.0)


def model_spec(model: keras.Model) -> Spec:
    """The spec a model was built from (the builder attaches it)."""
    return model.semifreddo_spec


def frozen_layer_names(spec: Spec) -> set[str]:
    return {t.layer for t in frozen_tensors(spec)}
