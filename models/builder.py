"""Build a SemifreddoNet in QKeras from its network description (:mod:`.network`).

One Keras layer per described layer, wired as the description says. Repetitions of the last
block reuse the original layer objects by default (true weight sharing, for training).
``shared_repeats=False`` gives every repetition its own layers, which is the form hls4ml converts;
:func:`semifreddo.models.layout.apply_codes` loads the same values into a layer and its copies.
"""

from __future__ import annotations

from qkeras import QActivation, QConv2D, QDense
from tensorflow import keras

from .layers import AlphaBlend, RepeatGate
from .layout import set_switch
from .network import Layer, Network, describe
from .quantizers import fixed_quantizer, frozen_weight_quantizer
from .spec import Spec


def keras_layer(spec: Spec, layer: Layer, storage_grid: bool = False):
    if layer.kind in ("quantize", "relu", "output"):
        return QActivation(fixed_quantizer(layer.result), name=layer.name)
    if layer.kind in ("conv", "dense"):
        # storage_grid (for hls4ml): frozen kernels described by the fixed-point grid that holds them
        # exactly, which hls4ml reads as exact constants, rather than by their format's own quantizer
        # (PowerOfTwoTerms, which hls4ml does not know); the codes loaded lie on that grid already.
        kernel_quantizer = (fixed_quantizer(layer.weight_fmt) if not layer.frozen or storage_grid
                            else frozen_weight_quantizer(spec.frozen_weights))
        quantizers = dict(kernel_quantizer=kernel_quantizer, bias_quantizer=fixed_quantizer(layer.bias_fmt))
        if layer.kind == "dense":
            return QDense(layer.c_out, name=layer.name, **quantizers)
        return QConv2D(layer.c_out, layer.kernel, padding=layer.padding, name=layer.name, **quantizers)
    if layer.kind == "blend":
        act = layer.result
        return AlphaBlend(layer.frozen_channels, spec.alpha_bits, act.bits, act.integer, shuffle=layer.shuffle,
                          name=layer.name)
    if layer.kind == "gate":
        return RepeatGate(layer.run, name=layer.name)
    if layer.kind == "concat":
        return keras.layers.Concatenate(name=layer.name)
    if layer.kind == "pool":
        return keras.layers.GlobalAveragePooling2D(name=layer.name)
    raise ValueError(f"no Keras layer for kind {layer.kind!r}")


def build_network(network: Network, *, shared_repeats: bool = True, repeat: int | None = None,
                  storage_grid: bool = False, any_size: bool = False) -> keras.Model:
    """The QKeras model of a network description. ``repeat`` sets the gates (default: the spec's);
    ``storage_grid`` describes frozen kernels by their exact storage format (for conversion);
    ``any_size``: a pixel network takes frames of any height and width (see :func:`model_input_shape`)."""
    spec = network.spec
    objects: dict[str, object] = {}
    tensors: dict[str, object] = {}
    for layer in network.layers:
        if layer.kind == "input":
            tensors[layer.name] = keras.Input(shape=model_input_shape(spec, any_size), name=layer.name)
            continue
        if shared_repeats and layer.copy_of:
            objects[layer.name] = objects[layer.copy_of]
        else:
            objects[layer.name] = keras_layer(spec, layer, storage_grid)
        inputs = [tensors[name] for name in layer.inputs]
        tensors[layer.name] = objects[layer.name](inputs if len(inputs) > 1 else inputs[0])
    model = keras.Model(tensors[network.layers[0].name], tensors[network.output.name],
                        name=f"semifreddo_{spec.name}".replace("-", "_"))
    model.semifreddo_spec = spec
    set_repeat(model, spec, spec.repeat_default if repeat is None else repeat)
    return model


def model_input_shape(spec: Spec, any_size: bool) -> tuple:
    """The Keras input shape. A pixel network is convolutions, blends and a 1x1 head, so it computes
    the same function at every frame size (each layer's 'same' padding at the frame's borders is the
    hardware's): it trains on patches and is the reference on whole frames with one weight set. The
    classify head averages a fixed pixel count, so it keeps the spec's frame."""
    if any_size and spec.head_type == "pixel":
        return (None, None, spec.input_shape[2])
    return spec.input_shape


def build_model(spec: Spec, *, shared_repeats: bool = True, repeat: int | None = None,
                any_size: bool = True) -> keras.Model:
    """The whole SemifreddoNet as a QKeras model, every run of the repeated block laid out; a pixel
    network takes any frame size (``any_size``), a classifier the spec's."""
    return build_network(describe(spec), shared_repeats=shared_repeats, repeat=repeat, any_size=any_size)


def set_repeat(model: keras.Model, spec: Spec, repeat: int) -> None:
    """Set how many times the last block runs (the hardware's ``repeat`` register)."""
    if not spec.repeat_min <= repeat <= spec.repeat_max:
        from semifreddo.deploy.contract.errors import SemifreddoError
        raise SemifreddoError(f"repeat {repeat} is outside the spec's range {spec.repeat_min}..{spec.repeat_max}")
    for layer in model.layers:
        if isinstance(layer, RepeatGate):
            layer.enabled.assign(1.0 if repeat >= layer.index else 0.0)


def set_shuffle(model: keras.Model, spec: Spec, blocks_on) -> None:
    """Turn the core-shuffle switch on for the given blocks and off for the others."""
    for block in spec.shuffle_blocks:
        set_switch(model, block, block in set(blocks_on))
