"""The ``Semifreddo`` hls4ml backend: Vitis HLS code generation with a register bank.

It is hls4ml's Vitis backend plus these things:

* the SemifreddoNet extension layers (alpha blend, repeat gate) and their C++ (extension API);
* the pass :class:`MarkConfigurableWeights`, which tags every configurable weight variable with
  its register field (from the register map the converter attaches to the model), gives repeat
  copies of a layer the same arrays as the original, and clears the zero count hls4ml derives
  from the (placeholder) values of configurable weights, since any value can arrive at run time;
* its own writer (:mod:`semifreddo.hls_project.writer`), which emits frozen weights as constants
  and configurable ones as active registers loaded from the AXI-Lite shadow bank;
* the pass :class:`AdderGraphCodegen`, which builds layers with hls4ml's ``distributed_arithmetic``
  strategy (the frozen convs with ``frozen_core.implementation: adder_graph``) as da4ml adder
  graphs, cached on disk (:mod:`semifreddo.hls_project.adder_graph`). It takes the place of hls4ml's
  own ``vivado:distributed_arithmetic_codegen`` in this backend's copy of the ``optimize`` flow:
  that pass asserts the backend is called vivado or vitis, and solves again on every conversion;
* the pass :class:`PlaceMultipliers`, which binds each layer's configurable multipliers to DSPs or
  LUTs as the network description chose.

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

    class AdderGraphCodegen(OptimizerPass):
        """Layers with strategy distributed_arithmetic: da4ml's adder graph as C++ (``da_codegen``).

        Produces what hls4ml's DA pass produces (same kernel layout and input formats, via hls4ml's
        ``get_kernel_inp_kif``; same ``dense_da_<index>`` function and wrapper), so hls4ml's DA
        templates and its writer's ``nnet_code_gen.h`` take it unchanged. Solves every DA layer of
        the model in one go, from the cache where it can.
        """

        def match(self, node):
            return node.get_attr("strategy", None) == "distributed_arithmetic" and "da_codegen" not in node.attributes

        def transform(self, model, node):
            from hls4ml.backends.vivado.passes.distributed_arithmetic import add_kernel_wrapper
            from hls4ml.model.types import Source

            from .adder_graph import GraphCache, build_graphs, hls_function

            info = semifreddo_info(model)
            nodes = [n for n in model.get_layers() if self.match(n)]
            graphs = build_graphs([_adder_graph_job(n, info) for n in nodes], GraphCache(info["adder_graph_cache"]),
                                  progress=info["progress"])
            first: dict[int, int] = {}       # graph -> index of the layer that emits its C++
            for n in nodes:
                comb = graphs[n.name]
                n_in, n_out = comb.shape
                fn_name = f"dense_da_{n.index}"
                if id(comb) in first:
                    # A repeat copy: call the original's function instead of compiling the graph twice.
                    code = (f"template <typename inp_t, typename out_t>\nvoid {fn_name}(inp_t model_inp[{n_in}], "
                            f"out_t model_out[{n_out}]) {{\n    #pragma HLS INLINE\n"
                            f"    dense_da_{first[id(comb)]}<inp_t, out_t>(model_inp, model_out);\n}}\n")
                else:
                    first[id(comb)] = n.index
                    code = hls_function(comb, fn_name)
                code += "\n\n" + add_kernel_wrapper(n.index, n_in, n_out)
                n.set_attr("da_codegen", Source(code))
                n.set_attr("da_kernel_cost", comb.cost)
            return False

    class SemifreddoBackend(VitisBackend):
        def __init__(self):
            FPGABackend.__init__(self, BACKEND_NAME)
            self._register_layer_attributes()
            register_extension_layers(self)
            self.register_pass("mark_configurable_weights", MarkConfigurableWeights)
            self.register_pass("adder_graph_codegen", AdderGraphCodegen)
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
            requirements[requirements.index("vivado:optimize")] = self._optimize_flow()
            requirements.insert(requirements.index("vivado:init_layers"), validation.name)
            requirements.insert(requirements.index("vivado:apply_templates"), registers)
            requirements.insert(requirements.index("vivado:apply_templates") + 1, templates)
            requirements.insert(requirements.index(templates) + 1, multipliers)
            self._default_flow = register_flow("ip", None, requires=requirements, backend=self.name)
            self._writer_flow = register_flow("write", ["make_stamp", f"{self.name.lower()}:write_hls"],
                                              requires=[self._default_flow], backend=self.name)

        def _optimize_flow(self):
            # hls4ml's optimize flow with our adder-graph pass in the place of its DA codegen pass.
            optimize = get_flow("vivado:optimize")
            passes = list(optimize.optimizers)
            passes[passes.index(HLS4ML_DA_PASS)] = f"{self.name.lower()}:adder_graph_codegen"
            return register_flow("optimize", passes, requires=optimize.requires, backend=self.name)

        def compile(self, model):
            from .csim import build_library

            return str(build_library(Path(model.config.get_output_dir())))

    return SemifreddoBackend


PLAIN_PRODUCT = "nnet::product::mult<"      # what hls4ml's templates write for an ordinary multiply
HLS4ML_DA_PASS = "vivado:distributed_arithmetic_codegen"


def _adder_graph_job(node, info):
    """What da4ml solves for one DA layer; refuses layers the adder graph cannot or must not build."""
    from hls4ml.backends.vivado.passes.distributed_arithmetic import get_kernel_inp_kif
    from hls4ml.model.layers import Conv1D, Conv2D, Dense, DepthwiseConv1D, DepthwiseConv2D

    from semifreddo.deploy.errors import SemifreddoError

    from .adder_graph import Job

    fields = info["layers"].get(node.name, {}).get("fields")
    if fields:
        # The generated adder graph ignores the weight arrays, so a register could never reach it.
        raise SemifreddoError(f"layer {node.name} has register fields ({', '.join(sorted(fields.values()))}); "
                              "the adder-graph (distributed_arithmetic) strategy builds weights into the hardware "
                              "and is only for frozen layers")
    if not isinstance(node, (Dense, Conv1D, Conv2D)) or isinstance(node, (DepthwiseConv1D, DepthwiseConv2D)):
        raise SemifreddoError(f"layer {node.name} ({node.class_name}) cannot be built as an adder graph; "
                              "use frozen_core.implementation: multipliers")
    if node.get_attr("reuse_factor", 1) != 1:
        raise SemifreddoError(f"layer {node.name} has reuse factor {node.get_attr('reuse_factor')}; an adder graph "
                              "computes every product at once: use frozen_core.implementation: multipliers")
    kernel = node.attributes["weight"].data
    bias = node.attributes["bias"].data.ravel() if node.attributes.get("bias") is not None else None
    k, i, f = get_kernel_inp_kif(node)
    return Job(node.name, kernel.reshape(-1, kernel.shape[-1]), bias, k, i, f)

# hls4ml names Keras's "kernel" "weight"; the register map uses Keras's names.
_KERAS_WEIGHT = {"weight": "kernel", "bias": "bias", "alpha": "alpha"}
