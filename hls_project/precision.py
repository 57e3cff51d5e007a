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

from semifreddo.models.fixedpoint import Fixed, fixed_for_range
from semifreddo.models.network import Layer, Network

ROUND = ("RND_CONV", "SAT")


def pool_accumulator(layer: Layer) -> Fixed:
    """The pool's exact sum with the mean's fractional bits, so that the division by the
    power-of-two pixel count, which hls4ml performs in this type, is exact."""
    return fixed_for_range(layer.accum.max_abs, layer.result.frac, signed=False)


def layer_precision(layer: Layer) -> dict:
    """hls4ml ``Precision`` settings of one layer, from its formats in the network description."""
    types = {"result": layer.result.hls(*ROUND) if layer.rounds else layer.result.hls()}
    if layer.weight_fmt is not None:
        types.update(weight=layer.weight_fmt.hls(), bias=layer.bias_fmt.hls())
    if layer.alpha_fmt is not None:
        types["alpha"] = layer.alpha_fmt.hls()
    if layer.kind == "pool":
        types["accum"] = pool_accumulator(layer).hls()
    elif layer.accum is not None:
        types["accum"] = layer.accum.hls()
    return types


def hls_config(network: Network, trace: bool = False) -> dict:
    """The hls4ml configuration dict: latency strategy, II=1, every precision explicit."""
    precisions = {layer.name: layer_precision(layer) for layer in network.layers}
    # hls4ml splits a linear activation, named `<layer>_linear`, off every QConv2D and QDense. Given
    # the layer's exact accumulator type it is a no-op, and hls4ml removes it; left to the model
    # default it would truncate the accumulator before the real activation rounds it.
    for layer in network.of_kind("conv", "dense"):
        precisions[f"{layer.name}_linear"] = {"result": layer.accum.hls()}
    layers = {name: {"Precision": types, "Trace": trace} for name, types in precisions.items()}
    for layer in network.layers:
        if layer.reuse_factor > 1:     # folded: each multiplier does reuse_factor products (exact sums either way)
            layers[layer.name].update(Strategy="Resource", ReuseFactor=layer.reuse_factor)
        if layer.implementation == "adder_graph":      # one shared adder graph (da4ml; backend.py)
            layers[layer.name]["Strategy"] = "distributed_arithmetic"
    return {
        "Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency", "BramFactor": 10**9},
        "LayerName": layers,
    }
