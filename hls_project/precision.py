"""Every precision of the generated HLS, chosen on purpose so that C simulation is bit-exact.

Why this is bit-exact by construction (and where each rule comes from):

* Inputs, weights, biases and alpha are integer codes on fixed grids; their HLS types are exactly
  those grids (``Fixed.hls()``), so no value changes on the way in.
* Every sum of products (convolution, dense, average pool, blend) accumulates in a type sized by
  :func:`semifreddo.models.fixedpoint.sum_of_products` to hold the exact result: no rounding and
  no overflow inside a layer. A convolution's result type is its accumulator, so nothing is lost
  between the convolution and its activation either.
* Rounding happens only where QKeras quantizes: the ReLU activations, the alpha blend, the pooled
  features and the head's output. QKeras rounds half to even and saturates, which is
  ``AP_RND_CONV, AP_SAT``, set on each of those result types.
* On the QKeras side every one of those exact sums has at most 24 significant bits (spec
  validation refuses anything wider), so float32 computes them exactly in any order, and its
  quantizers see the same values the hardware's rounding sees.

hls4ml would otherwise infer ("auto") types, and it folds a trailing ``QActivation`` into the
layer before when that layer's precision is unspecified, which is how a default conversion ends
up one LSB off. Here nothing is left unspecified.
"""

from __future__ import annotations

from semifreddo.models.builder import CORES
from semifreddo.models.fixedpoint import Fixed, fixed_for_range, sum_of_products
from semifreddo.models.spec import Spec

ROUND = ("RND_CONV", "SAT")


def blend_accumulator(spec: Spec) -> Fixed:
    """t + alpha * (f - t) exactly: f, t activations, alpha with alpha_bits fractional bits."""
    act = spec.activations
    frac = act.frac + spec.alpha_bits
    # |f - t| < 2**integer, alpha <= 1, and the sum stays within [0, 2**integer): one extra
    # integer bit covers the intermediate difference.
    return fixed_for_range(2 * act.max_abs, frac, signed=True)


def pool_mean(spec: Spec) -> Fixed:
    """The exact mean of height*width activations (a power-of-two count, checked by the spec)."""
    h, w, _ = spec.input_shape
    shift = (h * w).bit_length() - 1
    return fixed_for_range(spec.activations.max_abs, spec.activations.frac + shift, signed=False)


def pool_accumulator(spec: Spec) -> Fixed:
    """The exact sum of height*width activations, with the mean's fractional bits (so the division
    by the power-of-two pixel count that hls4ml performs in this type is exact)."""
    h, w, _ = spec.input_shape
    mean = pool_mean(spec)
    return fixed_for_range(h * w * spec.activations.max_abs, mean.frac, signed=False)


def conv_types(inputs: Fixed, weights: Fixed, bias: Fixed, n_terms: int) -> dict:
    acc = sum_of_products(inputs, weights, n_terms, bias).hls()
    return {"weight": weights.hls(), "bias": bias.hls(), "accum": acc, "result": acc}


def layer_precisions(spec: Spec, layer_names: list[str]) -> dict[str, dict]:
    """hls4ml ``Precision`` settings for every layer of the (unrolled) QKeras model."""
    act = spec.activations.hls(*ROUND)
    out: dict[str, dict] = {}
    for name in layer_names:
        block_tag, _, rest = name.partition("_")
        if name == "image":
            out[name] = {"result": spec.input_format.hls()}
        elif name == "input_q":
            out[name] = {"result": spec.input_format.hls(*ROUND)}
        elif rest.endswith("relu") or name == "head_pool_relu" or rest.startswith("gate_"):
            out[name] = {"result": act}
        elif rest.endswith("_blend"):
            out[name] = {"result": act, "alpha": spec.alpha_format.hls(), "accum": blend_accumulator(spec).hls()}
        elif rest == "frozen_conv" or rest in {f"{c}_conv" for c in CORES}:
            block = int(block_tag[1:].split("r")[0])
            core = "frozen" if rest == "frozen_conv" else "core"
            k = spec.kernels[block - 1]
            inputs = spec.input_format if block == 1 else spec.activations
            weights = spec.frozen_weights.storage if core == "frozen" else spec.trainable_weights
            bias = spec.frozen_bias if core == "frozen" else spec.trainable_bias
            out[name] = conv_types(inputs, weights, bias, k * k * spec.block_in_channels(block, core))
        elif name in ("head_concat", "head_concat_cores"):
            out[name] = {"result": act}
        elif name == "head_pool":
            out[name] = {"result": pool_mean(spec).hls(), "accum": pool_accumulator(spec).hls()}
        elif name in ("head_dense", "head_conv"):
            out[name] = conv_types(spec.activations, spec.head_weights, spec.head_bias, spec.head_in_channels)
        elif name == "head_out":
            out[name] = {"result": spec.head_output.hls(*ROUND)}
        else:
            raise ValueError(f"no precision rule for layer {name!r}")
    return out


def hls_config(spec: Spec, layer_names: list[str], trace: bool = False) -> dict:
    """The hls4ml configuration dict: latency strategy, II=1, every precision explicit."""
    precisions = layer_precisions(spec, layer_names)
    # hls4ml splits a linear activation, named `<layer>_linear`, off every QConv2D and QDense. Given
    # the layer's exact accumulator type it is a no-op, and hls4ml removes it; left to the model
    # default it would truncate the accumulator before the real activation rounds it.
    for name, types in list(precisions.items()):
        if "accum" in types and "weight" in types:
            precisions[f"{name}_linear"] = {"result": types["accum"]}
    return {
        "Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency", "BramFactor": 10**9},
        "LayerName": {name: {"Precision": types, "Trace": trace} for name, types in precisions.items()},
    }
