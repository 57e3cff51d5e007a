"""The ``Semifreddo`` hls4ml backend: Vitis HLS code generation with a register bank.

It is hls4ml's Vitis backend plus these things:

* the SemifreddoNet extension layers (alpha blend, repeat gate) and their C++ (extension API);
* the pass :class:`MarkConfigurableWeights`, which puts the hardware plan (:mod:`.plan`, attached
  to the hls4ml config by the converter) on the IR: every configurable weight variable gets its
  register field, every layer the registers it reads and its multiplier choice; it gives repeat
  copies of a layer the same arrays as the original, and clears the zero count hls4ml derives
  from the (placeholder) values of configurable weights, since any value can arrive at run time;
* its own writer (:mod:`semifreddo.hls_project.writer`), which emits frozen weights as constants
  and configurable ones as active registers loaded from the AXI-Lite shadow bank;
* the pass :class:`AdderGraphCodegen`, which builds layers with hls4ml's ``distributed_arithmetic``
  strategy (the frozen convs with ``frozen_core.implementation: adder_graph``) as da4ml adder
  graphs, cached on disk (:mod:`semifreddo.hls_project.adder_graph`). It takes the place of hls4ml's
  own ``vivado:distributed_arithmetic_codegen`` in this backend's copy of the ``optimize`` flow:
  that pass asserts the backend is called vivado or vitis, and solves again on every conversion;
* hls4ml's conv and dense templates with the multiplier choice as a parameter
  (:func:`chosen_product_templates`): each layer's configurable multipliers go to DSPs or LUTs as
  the hardware plan chose.

hls4ml finds the backend through the ``hls4ml.backends`` entry point declared in pyproject.toml,
which calls :func:`register`. Nothing in hls4ml is patched or forked.
"""

from __future__ import annotations

from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError

from .project import BACKEND_NAME, TEMPLATES, conversion_info, model_plan


def register(register_backend, register_writer) -> None:
    """Entry point for hls4ml's plugin loader (group ``hls4ml.backends``)."""
    from .writer import writer_class

    register_writer(BACKEND_NAME, writer_class())
    register_backend(BACKEND_NAME, _backend_class())


def _backend_class():
    # Imported here, not at module level: hls4ml imports this module while it is still loading.
    from hls4ml.backends.fpga.fpga_backend import FPGABackend
    from hls4ml.backends.vitis.vitis_backend import VitisBackend
    from hls4ml.model.flow import get_flow, register_flow
    from hls4ml.model.optimizer import OptimizerPass

    from .extension_layers import register_extension_layers

    class MarkConfigurableWeights(OptimizerPass):
        """Put the hardware plan's per-layer decisions on hls4ml's IR, where the templates and the
        writer read them: each configurable weight variable gets its register field, a layer the
        active registers it reads (``semifreddo_registers``), whether it reads the repeat register,
        and where its configurable multipliers go (``semifreddo_multiplier``). Repeat copies
        compute with their original's arrays."""

        def match(self, node):
            return not node.get_attr("semifreddo_marked", False)

        def transform(self, model, node):
            plan = model_plan(model)
            layer = plan.find(node.name)     # None for a layer hls4ml added: nothing configurable
            registers = []
            for hls_name, var in (node.weights.items() if layer else ()):
                field = layer.field_of(_KERAS_WEIGHT.get(hls_name, hls_name))
                if layer.copy_of:
                    # A repetition of the repeated group computes with the original layer's arrays.
                    var.name = model.graph[layer.copy_of].get_weights(hls_name).name
                if field is not None:
                    var.register_field = field
                    var.nzeros = 0
                    var.nonzeros = var.data_length
                    registers.append(var.name)
            if layer and layer.shuffle_register:
                node.set_attr("shuffle_register", layer.shuffle_register)
                registers.append(layer.shuffle_register)
            node.set_attr("semifreddo_registers", registers)
            node.set_attr("semifreddo_reads_repeat", bool(layer and layer.reads_repeat))
            node.set_attr("semifreddo_multiplier", layer.multiplier if layer else None)
            node.set_attr("semifreddo_marked", True)
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

            info = conversion_info(model)
            nodes = [n for n in model.get_layers() if self.match(n)]
            graphs = build_graphs([_adder_graph_job(n) for n in nodes], GraphCache(info["adder_graph_cache"]),
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
            requirements = get_flow("vivado:ip").requires.copy()
            requirements[requirements.index("vivado:optimize")] = self._optimize_flow()
            requirements.insert(requirements.index("vivado:init_layers"), validation.name)
            requirements.insert(requirements.index("vivado:apply_templates"), registers)
            requirements.insert(requirements.index("vivado:apply_templates") + 1, templates)
            self._default_flow = register_flow("ip", None, requires=requirements, backend=self.name)
            self._writer_flow = register_flow("write", ["make_stamp", f"{self.name.lower()}:write_hls"],
                                              requires=[self._default_flow], backend=self.name)

        def _init_file_optimizers(self):
            # hls4ml's templates, with those of the layers that can hold configurable multipliers
            # taking the plan's multiplier choice as a parameter (chosen_product_templates).
            optimizers = super()._init_file_optimizers()
            for name, template in chosen_product_templates().items():
                if name in optimizers:
                    optimizers[name] = template
            return optimizers

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


HLS4ML_DA_PASS = "vivado:distributed_arithmetic_codegen"


def chosen_product_templates() -> dict:
    """hls4ml's config and function-call templates of the layers that multiply by registers (conv,
    pointwise conv, dense), each taking the layer's ``semifreddo_multiplier`` as a parameter. The
    config gets a derived struct whose product binds the multipliers to DSP48s or LUTs
    (templates/multiplier_config.h), and the call names that struct; hls4ml's own config is left as
    it is. Keyed by hls4ml's template names, which they replace in this backend."""
    from string import Template

    from hls4ml.backends.vivado.passes.convolution_templates import Conv2DConfigTemplate, Conv2DFunctionTemplate
    from hls4ml.backends.vivado.passes.core_templates import DenseConfigTemplate, DenseFunctionTemplate
    from hls4ml.backends.vivado.passes.pointwise import (PointwiseConv2DConfigTemplate,
                                                         PointwiseConv2DFunctionTemplate)

    nested, flat = (Template(part.strip() + "\n") for part in
                    (TEMPLATES / "multiplier_config.h").read_text().split("// ---- flat ----"))

    class ChosenProductConfig:
        def format(self, node):
            config = super().format(node)
            choice = node.get_attr("semifreddo_multiplier")
            if not choice:
                return config
            derived = nested if hasattr(self, "mult_template") else flat   # conv configs nest their product
            return config + "\n" + derived.substitute(config=f"config{node.index}", impl=choice, layer=node.name)

    class ChosenProductCall:
        def _default_function_params(self, node):
            params = super()._default_function_params(node)
            if node.get_attr("semifreddo_multiplier"):
                params["config"] = f"config{node.index}_{node.get_attr('semifreddo_multiplier')}"
            return params

    templates = {}
    for mixin, hls4ml_class in ((ChosenProductConfig, Conv2DConfigTemplate), (ChosenProductCall, Conv2DFunctionTemplate),
                                (ChosenProductConfig, DenseConfigTemplate), (ChosenProductCall, DenseFunctionTemplate),
                                (ChosenProductConfig, PointwiseConv2DConfigTemplate),
                                (ChosenProductCall, PointwiseConv2DFunctionTemplate)):
        template = type(f"Chosen{hls4ml_class.__name__}", (mixin, hls4ml_class), {})()
        templates[template.get_name()] = template
    return templates


def _adder_graph_job(node):
    """What da4ml solves for one DA layer; refuses layers the adder graph cannot or must not build."""
    from hls4ml.backends.vivado.passes.distributed_arithmetic import get_kernel_inp_kif
    from hls4ml.model.layers import Conv1D, Conv2D, Dense, DepthwiseConv1D, DepthwiseConv2D

    from .adder_graph import Job

    fields = [field for _, field in model_plan(node.model).layer(node.name).fields]
    if fields:
        # The generated adder graph ignores the weight arrays, so a register could never reach it.
        raise SemifreddoError(f"layer {node.name} has register fields ({', '.join(sorted(fields))}); "
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
