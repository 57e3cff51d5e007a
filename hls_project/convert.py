"""``semifreddo convert``: a trained frozen core -> a Vitis HLS project, through hls4ml.

The project is written to ``BUILD/<spec>/hls/`` (layout in hls_project/README.md), together with
its hardware plan ``plan.json`` (every hardware decision, made here once: :mod:`.plan`) and the
plan's register map ``regmap.json``. It is generated in a staging folder and swapped into place, so an
interrupted conversion never leaves a half-written project behind.

The QKeras model handed to hls4ml is the spec's network with every repetition of the last block
laid out (``shared_repeats=False``), the frozen core's codes loaded, and, when it exists, the
source task's weight set loaded too: the configurable values are real, which is what lets the
tests prove none of them leaks into the generated code.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract.boards import BOARDS
from semifreddo.deploy.contract.fileio import replace_dir, start_staging_dir
from semifreddo.deploy.contract.streams import grid_codes, pack_pixels
from semifreddo.deploy.contract.weightset import read_weight_set
from semifreddo.models.artifacts import BuildPaths, load_core
from semifreddo.models.builder import build_network, set_repeat
from semifreddo.models.layout import apply_codes, configurable_tensors, frozen_tensors
from semifreddo.models.spec import Spec

from .plan import HardwarePlan, hardware_layout, make_plan
from .precision import hls_config
from .project import REGMAP, TOP

DEFAULT_CLOCK_NS = 10
TB_FRAMES = 4


@dataclass
class Conversion:
    hls_dir: Path
    regmap_path: Path
    core_id: str
    regmap_id: str
    seconds: float
    hls_model: object = None
    plan: HardwarePlan | None = None


def conversion_model(spec: Spec, build, with_weights: bool = True):
    """The QKeras model that hls4ml converts: the hardware's layers, frozen codes and (when it
    exists) the source task's weight set loaded."""
    paths = BuildPaths.for_spec(spec, build)
    core = load_core(paths.core, spec)
    model = build_network(hardware_layout(spec), shared_repeats=False, repeat=spec.repeat_max, storage_grid=True)
    apply_codes(model, frozen_tensors(spec), core.codes)
    source = paths.weightset(spec.data.source)
    if with_weights and source.exists():
        apply_codes(model, configurable_tensors(spec), read_weight_set(source, expect_core_id=core.core_id).codes())
    return model, core


def convert(spec: Spec, build=None, *, part: str | None = None, clock_ns: float = DEFAULT_CLOCK_NS,
            trace: bool = False, log=None) -> Conversion:
    """Convert the spec's trained frozen core into an HLS project (see the module docstring)."""
    import hls4ml

    from .backend import BACKEND_NAME
    from .extension_layers import register_keras_handlers

    register_keras_handlers()
    part = part or BOARDS[spec.hardware.board].part
    start = time.perf_counter()
    paths = BuildPaths.for_spec(spec, build)
    model, core = conversion_model(spec, build)
    plan = make_plan(spec, core.core_id)           # every hardware decision, once; written as plan.json
    config = hls_config(plan.layout(spec), trace=trace)
    config["Model"]["Semifreddo"] = {"plan": plan.to_json(), "adder_graph_cache": str(paths.adder_graphs),
                                     "progress": os.environ.get("SEMIFREDDO_PROGRESS", "1") != "0"}

    target = paths.root / "hls-trace" if trace else paths.hls
    staging = start_staging_dir(target)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            hls_model = hls4ml.converters.convert_from_keras_model(
                model, output_dir=str(staging), project_name=TOP, backend=BACKEND_NAME, io_type="io_stream",
                hls_config=config, part=part, clock_period=clock_ns)
            hls_model.config.trace_output = trace
            hls_model.write()
        _write_tb_data(spec, build, staging, plan)
        (staging / "convert.log").write_text(chatter.getvalue())
    except Exception:
        if log:
            log.write(chatter.getvalue())
        raise
    _swap_into_place(staging, target)
    return Conversion(target, target / REGMAP, core.core_id, plan.regmap.id, time.perf_counter() - start,
                      hls_model, plan)


def _swap_into_place(staging: Path, target: Path) -> None:
    # Keep the compiled C simulation libraries: they are named by a hash of the sources, so an
    # unchanged project reuses its library and a changed one gets a new one.
    if (target / "csim").is_dir():
        (target / "csim").rename(staging / "csim")
    replace_dir(staging, target)


def _write_tb_data(spec: Spec, build, hls_dir: Path, plan: HardwarePlan) -> None:
    """Test-bench data: a weight set, a few held-out inputs, and the QKeras model's output codes."""
    from semifreddo.models.datasets import load_task
    from semifreddo.models.training import load_reference_model, predict

    paths = BuildPaths.for_spec(spec, build)
    source = paths.weightset(spec.data.source)
    if not source.exists():
        return
    ws = read_weight_set(source, expect_core_id=plan.core_id, expect_regmap=plan.regmap)
    rmap = plan.regmap
    images = load_task(spec, spec.data.source).x_test[:TB_FRAMES]        # on the input grid
    model = load_reference_model(spec, build, ws)
    set_repeat(model, spec, spec.repeat_default)
    expected = predict(model, images).reshape(-1).astype(np.float64) * 2.0 ** spec.head_output.frac
    tb = hls_dir / "tb_data"
    tb.mkdir(exist_ok=True)
    (tb / "bank.txt").write_text("\n".join(str(int(w)) for w in ws.words) + "\n")
    (tb / "settings.txt").write_text(f"{spec.repeat_default}\n{len(images)}\n")
    (tb / "inputs.txt").write_text("\n".join(str(int(w)) for w in pack_pixels(grid_codes(images, spec.input_bits), rmap.io))
                                   + "\n")
    (tb / "expected.txt").write_text("\n".join(str(int(round(v))) for v in expected) + "\n")
