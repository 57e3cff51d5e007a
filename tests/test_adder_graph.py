"""Frozen layers as da4ml adder graphs: cost against Yosys, the cache key, and the refusal on
configurable layers."""

import numpy as np
import pytest

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.hls_project import adder_graph as ag
from semifreddo.hls_project.estimate.validate import LUT_TOLERANCE
from semifreddo.hls_project.estimate.yosys import synthesize
from semifreddo.models.artifacts import BuildPaths, load_core


def test_adder_graph_cost_within_tolerance_of_yosys_on_a_trained_slice(tiny_build, digits_spec, tmp_path):
    """16 inputs x 4 outputs of block 2's trained frozen kernel (one tap, every input channel):
    adder_graph_cost against Yosys synthesis of da4ml's own pipelined Verilog for it."""
    spec = digits_spec
    core = load_core(BuildPaths.for_spec(spec, tiny_build("digits")).core, spec)
    kernel = core.codes["b2.frozen.kernel"][0:1, 0:1, :, :4]
    bias = core.codes["b2.frozen.bias"][:4]
    args = (kernel, bias, spec.activations, spec.frozen_weights.storage, spec.frozen_bias)
    cache = ag.GraphCache(tmp_path / "graphs")
    cost = ag.adder_graph_cost(*args, cache=cache)
    job = ag.layer_job("slice", *args)
    comb = cache.load(job.key)
    assert comb is not None and cost.adders > 0 and cost.stages >= 1
    measured = synthesize(ag.graph_verilog(comb)).resources
    assert abs(cost.lut / measured["lut"] - 1) <= LUT_TOLERANCE, (cost, measured)
    assert abs(cost.ff / measured["ff"] - 1) <= 0.10, (cost, measured)
    # The graph computes the slice exactly: one-hot inputs give back the kernel's rows (plus the bias).
    w = kernel.reshape(-1, 4) * 2.0 ** -spec.frozen_weights.storage.frac
    b = bias * 2.0 ** -spec.frozen_bias.frac
    assert np.array_equal(np.asarray(comb.kernel, dtype=np.float64), w + b)


def test_cache_key_depends_on_values_and_input_format(digits_spec):
    spec = digits_spec
    kernel = np.arange(-8, 8).reshape(1, 1, 4, 4)
    base = ag.layer_job("a", kernel, None, spec.activations, spec.frozen_weights.storage, spec.frozen_bias)
    same = ag.layer_job("b", kernel, None, spec.activations, spec.frozen_weights.storage, spec.frozen_bias)
    other_input = ag.layer_job("a", kernel, None, spec.input_format, spec.frozen_weights.storage, spec.frozen_bias)
    other_kernel = ag.layer_job("a", kernel + 1, None, spec.activations, spec.frozen_weights.storage, spec.frozen_bias)
    assert base.key == same.key
    assert len({base.key, other_input.key, other_kernel.key}) == 3


def test_converter_refuses_adder_graph_on_a_layer_with_register_fields(fresh_build, digits_spec, monkeypatch):
    """A network description that asked for an adder graph on a configurable layer: the backend
    refuses in one line (the graph would build the conversion-time weights into the hardware)."""
    import dataclasses

    from semifreddo.hls_project import convert, plan
    from semifreddo.hls_project.plan import hardware_layout

    network = hardware_layout(digits_spec)
    wrong = dataclasses.replace(network, layers=tuple(
        dataclasses.replace(layer, implementation="adder_graph") if layer.name == "b2_A_conv" else layer
        for layer in network.layers))
    monkeypatch.setattr(plan, "hardware_layout", lambda spec: wrong)
    with pytest.raises(SemifreddoError, match="b2_A_conv has register fields"):
        convert.convert(digits_spec, fresh_build("digits"))
