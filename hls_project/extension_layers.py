"""hls4ml support for the two layers SemifreddoNets add to QKeras (see semifreddo.models.layers).

For each: a Keras-to-hls4ml handler, an hls4ml IR layer, and config/function templates that call
the C++ in ``templates/nnet_semifreddo.h``. These are registered through hls4ml's extension API
by :func:`register_extension_layers`, which the Semifreddo backend calls once.

With the Semifreddo backend the runtime operands are never constants: a blend's alpha is a
weight variable that the writer turns into active registers, the core-shuffle switch is the active
register ``shuffle_b<block>``, and a gate reads the ``repeat`` register. On any other hls4ml
backend (the "every weight constant" baseline of ``make bench-hls``) the same layers compile with
alpha as an ordinary constant weight array and the switch and repeat count as literals taken from
the Keras model.
"""

from __future__ import annotations

import numpy as np
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.model.attributes import Attribute, TypeAttribute, WeightAttribute
from hls4ml.model.layers import Layer

from .project import BACKEND_NAME, TEMPLATES

INCLUDE = ["nnet_utils/nnet_semifreddo.h"]


# --------------------------------------------------------------------------------------------
# IR layers
# --------------------------------------------------------------------------------------------

class AlphaBlendLayer(Layer):
    """inputs: frozen, own[, other]; output: the blended trainable-core features."""

    _expected_attributes = [
        Attribute("n_chan"),
        Attribute("n_frozen"),
        Attribute("frozen_offset"),
        Attribute("shuffle", value_type=bool),
        WeightAttribute("alpha"),
        TypeAttribute("alpha"),
        TypeAttribute("accum"),
    ]

    def initialize(self):
        own = self.get_input_variable(self.inputs[1])
        self.add_output_variable(own.shape)
        self.add_weights_variable(name="alpha", var_name="alpha{index}", data="alpha")


class RepeatGateLayer(Layer):
    """inputs: previous, new; output: new if repeat >= index else previous."""

    _expected_attributes = [Attribute("gate_index"), Attribute("enabled", value_type=bool)]

    def initialize(self):
        prev = self.get_input_variable(self.inputs[0])
        self.add_output_variable(prev.shape)


# --------------------------------------------------------------------------------------------
# Keras handlers
# --------------------------------------------------------------------------------------------

def parse_alpha_blend(keras_layer, input_names, input_shapes, data_reader):
    config = keras_layer["config"]
    channels = config["frozen_channels"]
    n_frozen = input_shapes[0][-1]
    offset = channels[0]
    if channels != [(offset + j) % n_frozen for j in range(len(channels))]:
        raise ValueError(f"{config['name']}: frozen channels must be consecutive (mod the frozen width)")
    # alpha as the forward pass uses it: quantize(sigmoid(a)), exactly on its grid.
    from semifreddo.models.fixedpoint import Fixed
    from semifreddo.models.quantizers import fixed_quantizer

    a = data_reader.get_weights_data(config["name"], "a")
    alpha = fixed_quantizer(Fixed(config["alpha_bits"] + 1, 1, False))(1.0 / (1.0 + np.exp(-a.astype(np.float64))))
    layer = {
        "class_name": "SemifreddoAlphaBlend",
        "name": config["name"],
        "inputs": input_names,
        "n_chan": len(channels),
        "n_frozen": n_frozen,
        "frozen_offset": offset,
        "shuffle": bool(config["shuffle"]),
        "alpha_data": np.asarray(alpha, dtype=np.float32),
        "swap_value": int(data_reader.get_weights_data(config["name"], "swap")),
    }
    return layer, list(input_shapes[1])


def parse_repeat_gate(keras_layer, input_names, input_shapes, data_reader):
    config = keras_layer["config"]
    layer = {"class_name": "SemifreddoRepeatGate", "name": config["name"], "inputs": input_names,
             "gate_index": int(config["index"]),
             "enabled": bool(data_reader.get_weights_data(config["name"], "enabled"))}
    return layer, list(input_shapes[0])


# --------------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------------

BLEND_CONFIG = """struct config{index} : nnet::alpha_blend_config {{
    static const unsigned n_pixels = {n_pixels};
    static const unsigned n_chan = {n_chan};
    static const unsigned n_frozen = {n_frozen};
    static const unsigned frozen_offset = {frozen_offset};
    typedef {alpha_t} alpha_t;
    typedef {accum_t} accum_t;
    template<class x_T, class y_T>
    using product = nnet::product::{product}<x_T, y_T>;
}};\n"""

GATE_CONFIG = """struct config{index} : nnet::repeat_gate_config {{
    static const unsigned n_elements = {n_elements};
    static const unsigned index = {gate_index};
}};\n"""


class AlphaBlendConfigTemplate(LayerConfigTemplate):
    def __init__(self):
        super().__init__(AlphaBlendLayer)

    def format(self, node):
        params = self._default_config_params(node)
        own = node.get_input_variable(node.inputs[1])
        params["n_pixels"] = int(np.prod(own.shape[:-1]))
        params["alpha_t"] = node.get_weights("alpha").type.name
        params["accum_t"] = node.get_attr("accum_t").name
        choice = node.get_attr("semifreddo_multiplier", None)     # the hardware plan's: DSP48s or LUTs
        params["product"] = f"mult_{choice}" if choice else "mult"
        return BLEND_CONFIG.format(**params)


class AlphaBlendFunctionTemplate(FunctionCallTemplate):
    def __init__(self):
        super().__init__(AlphaBlendLayer, include_header=INCLUDE)

    def format(self, node):
        frozen, own = (node.get_input_variable(name) for name in node.inputs[:2])
        out = node.get_output_variable()
        alpha = node.get_weights("alpha").name
        types = f"{frozen.type.name}, {own.type.name}, {out.type.name}, config{node.index}"
        if node.get_attr("shuffle"):
            other = node.get_input_variable(node.inputs[2])
            swap = (node.get_attr("shuffle_register") if _has_registers(node)
                    else f"ap_uint<1>({node.get_attr('swap_value')})")
            return (f"nnet::alpha_blend_shuffle<{types}>({frozen.name}, {own.name}, {other.name}, {out.name}, "
                    f"{alpha}, {swap});")
        return f"nnet::alpha_blend<{types}>({frozen.name}, {own.name}, {out.name}, {alpha});"


class RepeatGateConfigTemplate(LayerConfigTemplate):
    def __init__(self):
        super().__init__(RepeatGateLayer)

    def format(self, node):
        params = self._default_config_params(node)
        out = node.get_output_variable()
        params["n_elements"] = int(np.prod(out.shape[:-1]))
        return GATE_CONFIG.format(**params)


class RepeatGateFunctionTemplate(FunctionCallTemplate):
    def __init__(self):
        super().__init__(RepeatGateLayer, include_header=INCLUDE)

    def format(self, node):
        prev, new = (node.get_input_variable(name) for name in node.inputs)
        out = node.get_output_variable()
        repeat = ("repeat" if _has_registers(node)
                  else f"ap_uint<32>({node.get_attr('gate_index') if node.get_attr('enabled') else 0})")
        return (f"nnet::repeat_gate<{prev.type.name}, {new.type.name}, {out.type.name}, config{node.index}>"
                f"({prev.name}, {new.name}, {out.name}, {repeat});")


def _has_registers(node) -> bool:
    """True for the Semifreddo backend (runtime registers), False for plain hls4ml (literals)."""
    return node.model.config.backend.name == BACKEND_NAME


def register_extension_layers(backend) -> None:
    """Register the IR layers (once per process) and their templates with ``backend``."""
    from hls4ml.model.layers import layer_map, register_layer

    if "SemifreddoAlphaBlend" not in layer_map:
        register_layer("SemifreddoAlphaBlend", AlphaBlendLayer)
        register_layer("SemifreddoRepeatGate", RepeatGateLayer)
    for template in (AlphaBlendConfigTemplate, AlphaBlendFunctionTemplate, RepeatGateConfigTemplate,
                     RepeatGateFunctionTemplate):
        backend.register_template(template)


def enable_on_backend(backend) -> None:
    """Make the layers available on another hls4ml backend (e.g. plain Vitis), all constants."""
    register_extension_layers(backend)
    if not any(dst.endswith("nnet_semifreddo.h") for dst in backend.get_custom_source()):
        backend.register_source(TEMPLATES / "nnet_semifreddo.h")
    register_keras_handlers()


def register_keras_handlers() -> None:
    """Teach hls4ml's Keras reader the two layers. Called by the converter, not at plugin load:
    hls4ml's converters package is not importable while hls4ml is still loading its plugins."""
    from hls4ml.converters.keras_v2_to_hls import get_layer_handlers, register_keras_v2_layer_handler

    if "AlphaBlend" not in get_layer_handlers():
        register_keras_v2_layer_handler("AlphaBlend", parse_alpha_blend)
        register_keras_v2_layer_handler("RepeatGate", parse_repeat_gate)
