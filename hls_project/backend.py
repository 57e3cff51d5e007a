"""The ``Semifreddo`` hls4ml backend: Vitis HLS code generation with a register bank.

It is hls4ml's Vitis backend plus three things:

* the SemifreddoNet extension layers (alpha blend, repeat gate) and their C++ (extension API);
* the pass :class:`MarkConfigurableWeights`, which tags every configurable weight variable with
  its register field (from the register map the converter attaches to the model), gives repeat
  copies of a layer the same arrays as the original, and clears the zero count hls4ml derives
  from the (placeholder) values of configurable weights, since any value can arrive at run time;
* its own writer (:mod:`semifreddo.hls_project.writer`), which emits frozen weights as constants
  and configurable ones as active registers loaded from the AXI-Lite shadow bank.

hls4ml finds the backend through the ``hls4ml.backends`` entry point declared in pyproject.toml,
which calls :func:`register`. Nothing in hls4ml is patched or forked.
"""

from __future__ import annotations

from pathlib import Path

BACKEND_NAME = "Semifreddo"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def register(register_backend, register_writer) -> None:
    """Entry point for hls4ml's plugin loader (group ``hls4ml.backends``)."""
    from .writer import writer_class

    register_writer(BACKEND_NAME, writer_class())
    register_backend(BACKEND_NAME, _backend_class())


def semifreddo_info(model) -> dict:
    """What the converter tells the backend (register map, ids, io shapes), via the hls4ml config."""
    return model.config.config["HLSConfig"]["Model"]["Semifreddo"]


def _backend_class():
    # Imported here, not at module level: hls4ml imports this module while it is still loading.
    from hls4ml.backends.fpga.fpga_backend import FPGABackend
    from hls4ml.backends.vitis.vitis_backend import VitisBackend
    from hls4ml.model.flow import get_flow, register_flow
    from hls4ml.model.optimizer import OptimizerPass

    from .extension_layers import register_extension_layers

    class MarkConfigurableWeights(OptimizerPass):
        """Tag configurable weights with their register field; share arrays between repeat copies."""

        def match(self, node):
            return bool(node.weights) and not node.get_attr("semifreddo_marked", False)

        def transform(self, model, node):
            info = semifreddo_info(model)["layers"][node.name]
            for hls_name, var in node.weights.items():
                field = info["fields"].get(_KERAS_WEIGHT.get(hls_name, hls_name))
                if info["copy_of"]:
                    # A repetition of the last block computes with the original layer's arrays.
                    var.name = model.graph[info["copy_of"]].get_weights(hls_name).name
                if field is not None:
                    var.register_field = field
                    var.nzeros = 0
                    var.nonzeros = var.data_length
            if "shuffle_register" in info:
                node.set_attr("shuffle_register", info["shuffle_register"])
            node.set_attr("semifreddo_marked", True)
            return False

    class PlaceMultipliers(OptimizerPass):
        """Bind each layer's configurable multipliers to DSP48s or LUTs, as the network description
        chose (the spec's multiplier policy): its config's product becomes mult_dsp or mult_lut."""

        def match(self, node):
            info = semifreddo_info(node.model)["layers"].get(node.name, {})
            return bool(info.get("multiplier")) and PLAIN_PRODUCT in (node.get_attr("config_cpp") or "")

        def transform(self, model, node):
            choice = semifreddo_info(model)["layers"][node.name]["multiplier"]
            node.set_attr("config_cpp", node.get_attr("config_cpp").replace(
                PLAIN_PRODUCT, f"nnet::product::mult_{choice}<"))
            return False

    class SemifreddoBackend(VitisBackend):
        def __init__(self):
            FPGABackend.__init__(self, BACKEND_NAME)
            self._register_layer_attributes()
            register_extension_layers(self)
            self.register_pass("mark_configurable_weights", MarkConfigurableWeights)
            self.register_pass("place_multipliers", PlaceMultipliers)
            self.register_source(TEMPLATES / "nnet_semifreddo.h")
            self.register_source(TEMPLATES / "semifreddo_axis.h")
            self._register_flows()

        def _register_flows(self):
            # Vitis's flows, with the configurable-weight pass before templates are applied (the
            # templates read weight names and zero counts) and our writer at the end.
            vitis = "vitis"
            validation = get_flow(f"{vitis}:validation")
            registers = register_flow("registers", [f"{self.name.lower()}:mark_configurable_weights"],
                                      requires=["vivado:init_layers"], backend=self.name)
            templates = register_flow("apply_templates", self._get_layer_templates,
                                      requires=["vivado:init_layers", registers], backend=self.name)
            multipliers = register_flow("multipliers", [f"{self.name.lower()}:place_multipliers"],
                                        requires=[templates], backend=self.name)
            requirements = get_flow("vivado:ip").requires.copy()
            requirements.insert(requirements.index("vivado:init_layers"), validation.name)
            requirements.insert(requirements.index("vivado:apply_templates"), registers)
            requirements.insert(requirements.index("vivado:apply_templates") + 1, templates)
            requirements.insert(requirements.index(templates) + 1, multipliers)
            self._default_flow = register_flow("ip", None, requires=requirements, backend=self.name)
            self._writer_flow = register_flow("write", ["make_stamp", f"{self.name.lower()}:write_hls"],
                                              requires=[self._default_flow], backend=self.name)

        def compile(self, model):
            from .csim import build_library

            return str(build_library(Path(model.config.get_output_dir())))

    return SemifreddoBackend


PLAIN_PRODUCT = "nnet::product::mult<"      # what hls4ml's templates write for an ordinary multiply

# hls4ml names Keras's "kernel" "weight"; the register map uses Keras's names.
_KERAS_WEIGHT = {"weight": "kernel", "bias": "bias", "alpha": "alpha"}
