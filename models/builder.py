"""Build a SemifreddoNet in QKeras from a spec.

The network, for blocks b = 1..n::

    frozen core      f_b = relu_q(conv_frozen_b(f_{b-1}))                      f_0 = input
    trainable cores  x_b^c = blend_b^c(f_{b-1}, t_{b-1}^c [or t_{b-1}^other])  (b > 1; x_1^c = input)
                     t_b^c = relu_q(conv_b^c(x_b^c))                             c in {A, B}
    repeat           block n runs `repeat` times (repeat_min..repeat_max, a runtime register)
    head             classify: dense(relu_q(avgpool(concat(f_n, t_n^A, t_n^B))))
                     pixel:    conv1x1(concat(f_n, t_n^A, t_n^B))
                     then quantized to the head's output format

Layer names are stable and meaningful (``b2_A_conv``, ``b3r2_gate_frozen``, ...): the layout of
the configurable registers and the HLS conversion both key on them.

Repetitions of the last block reuse the same layer objects by default (true weight sharing, for
training). ``shared_repeats=False`` lays every repetition out as its own layers with copied
weights, which is the form hls4ml converts: hardware has one pipeline stage per repetition, each
bypassed at run time when the repeat count is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qkeras import QActivation, QConv2D, QDense
from tensorflow import keras

from .layers import AlphaBlend, RepeatGate
from .quantizers import fixed_quantizer, frozen_weight_quantizer
from .spec import Spec

CORES = ("A", "B")


def frozen_channels_for(spec: Spec, core_index: int) -> list[int]:
    """Which frozen-core channels a trainable core blends with: core A takes the first ``width``
    channels, core B the next ``width`` (wrapping round if the frozen core is narrower)."""
    t = spec.trainable_width
    return [(core_index * t + j) % spec.frozen_width for j in range(t)]


@dataclass
class _Block:
    """Layer objects of one block, so repetitions can call the same objects again."""

    frozen_conv: object = None
    frozen_relu: object = None
    blends: dict = None
    convs: dict = None
    relus: dict = None


def _make_block(spec: Spec, b: int, prefix: str) -> _Block:
    k = spec.kernels[b - 1]
    act = fixed_quantizer(spec.activations)
    blk = _Block(blends={}, convs={}, relus={})
    if spec.frozen_width:
        blk.frozen_conv = QConv2D(
            spec.frozen_width, k, padding="same", name=f"{prefix}_frozen_conv",
            kernel_quantizer=frozen_weight_quantizer(spec.frozen_weights),
            bias_quantizer=fixed_quantizer(spec.frozen_bias))
        blk.frozen_relu = QActivation(act, name=f"{prefix}_frozen_relu")
    for ci, c in enumerate(CORES):
        if b > 1 and spec.frozen_width:
            blk.blends[c] = AlphaBlend(
                frozen_channels_for(spec, ci), spec.alpha_bits, spec.activations.bits, spec.activations.integer,
                shuffle=b in spec.shuffle_blocks, name=f"{prefix}_{c}_blend")
        blk.convs[c] = QConv2D(
            spec.trainable_width, k, padding="same", name=f"{prefix}_{c}_conv",
            kernel_quantizer=fixed_quantizer(spec.trainable_weights),
            bias_quantizer=fixed_quantizer(spec.trainable_bias))
        blk.relus[c] = QActivation(act, name=f"{prefix}_{c}_relu")
    return blk


def _apply_block(spec: Spec, blk: _Block, b: int, frozen, cores: dict):
    new_frozen = blk.frozen_relu(blk.frozen_conv(frozen)) if spec.frozen_width else None
    new_cores = {}
    for ci, c in enumerate(CORES):
        other = CORES[1 - ci]
        if c in blk.blends:
            inputs = [frozen, cores[c]] + ([cores[other]] if b in spec.shuffle_blocks else [])
            x = blk.blends[c](inputs)
        elif b > 1 and b in spec.shuffle_blocks:
            raise ValueError("core shuffle needs a frozen core")  # unreachable: shuffle_blocks needs blends
        else:
            x = cores[c]
        new_cores[c] = blk.relus[c](blk.convs[c](x))
    return new_frozen, new_cores


def build_model(spec: Spec, *, shared_repeats: bool = True, repeat: int | None = None) -> keras.Model:
    """The whole SemifreddoNet as a QKeras model. ``repeat`` sets the gates (default: the spec's)."""
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = QActivation(fixed_quantizer(spec.input_format), name="input_q")(inputs)
    frozen = x
    cores = {c: x for c in CORES}
    n = spec.blocks
    last = None
    for b in range(1, n + 1):
        blk = _make_block(spec, b, f"b{b}")
        frozen, cores = _apply_block(spec, blk, b, frozen, cores)
        last = blk

    for j in range(2, spec.repeat_max + 1):
        blk = last if shared_repeats else _make_block(spec, n, f"b{n}r{j}")
        new_frozen, new_cores = _apply_block(spec, blk, n, frozen, cores)
        if spec.frozen_width:
            frozen = RepeatGate(j, name=f"b{n}r{j}_gate_frozen")([frozen, new_frozen])
        cores = {c: RepeatGate(j, name=f"b{n}r{j}_gate_{c}")([cores[c], new_cores[c]]) for c in CORES}

    features = keras.layers.Concatenate(name="head_concat_cores")([cores["A"], cores["B"]])
    if spec.frozen_width:
        features = keras.layers.Concatenate(name="head_concat")([frozen, features])
    if spec.head_type == "classify":
        pooled = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
        pooled = QActivation(fixed_quantizer(spec.activations), name="head_pool_relu")(pooled)
        logits = QDense(spec.head_outputs, name="head_dense",
                        kernel_quantizer=fixed_quantizer(spec.head_weights),
                        bias_quantizer=fixed_quantizer(spec.head_bias))(pooled)
    else:
        logits = QConv2D(spec.head_outputs, 1, name="head_conv",
                         kernel_quantizer=fixed_quantizer(spec.head_weights),
                         bias_quantizer=fixed_quantizer(spec.head_bias))(features)
    outputs = QActivation(fixed_quantizer(spec.head_output), name="head_out")(logits)
    model = keras.Model(inputs, outputs, name=f"semifreddo_{spec.name}".replace("-", "_"))
    set_repeat(model, spec, spec.repeat_default if repeat is None else repeat)
    return model


def set_repeat(model: keras.Model, spec: Spec, repeat: int) -> None:
    """Set how many times the last block runs (the hardware's ``repeat`` register)."""
    if not spec.repeat_min <= repeat <= spec.repeat_max:
        from semifreddo.deploy.errors import SemifreddoError
        raise SemifreddoError(f"repeat {repeat} is outside the spec's range {spec.repeat_min}..{spec.repeat_max}")
    for layer in model.layers:
        if isinstance(layer, RepeatGate):
            layer.enabled.assign(1.0 if repeat >= layer.index else 0.0)


def set_shuffle(model: keras.Model, spec: Spec, blocks_on) -> None:
    """Turn the core-shuffle switch on for the given blocks and off for the others."""
    on = set(blocks_on)
    for layer in model.layers:
        if isinstance(layer, AlphaBlend) and layer.shuffle:
            block = int(layer.name.split("_")[0][1:].split("r")[0])
            layer.swap.assign(1.0 if block in on else 0.0)


def unroll_repeats(model: keras.Model, spec: Spec, repeat: int | None = None) -> keras.Model:
    """A copy of ``model`` in which every repetition of the last block has its own layers
    (the form that converts to hardware), computing exactly the same function."""
    unrolled = build_model(spec, shared_repeats=False, repeat=repeat)
    by_name = {layer.name: layer for layer in model.layers}
    n = spec.blocks
    for layer in unrolled.layers:
        name = layer.name
        if name.startswith(f"b{n}r") and "_gate_" not in name:
            source = f"b{n}_" + name.split("_", 1)[1]
        else:
            source = name
        if layer.weights and not isinstance(layer, RepeatGate):
            layer.set_weights(by_name[source].get_weights())
    return unrolled


def blend_layers(model: keras.Model):
    return [layer for layer in model.layers if isinstance(layer, AlphaBlend)]


def parameter_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights))
