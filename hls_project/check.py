"""Bit-exactness: the C simulation against the QKeras model, on held-out inputs.

The reference is the QKeras model with the frozen core and the weight set loaded, so it is
quantized exactly as the hardware is; every output must be identical, not merely close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.streams import checked_codes, grid_values
from semifreddo.deploy.contract.weightset import WeightSet, read_weight_set
from semifreddo.models.artifacts import BuildPaths, load_core
from semifreddo.models.layout import register_map
from semifreddo.models.spec import Spec

from .csim import CSim
from .project import read_manifest


def open_csim(spec: Spec, build=None, hls_dir: Path | None = None) -> CSim:
    """The C simulation of ``spec``'s converted project, refusing one built from another spec or core."""
    paths = BuildPaths.for_spec(spec, build)
    hls_dir = Path(hls_dir or paths.hls)
    core = load_core(paths.core, spec)
    read_manifest(hls_dir, spec.path or spec.name)        # a clear error before any compiling
    sim = CSim(hls_dir)
    if sim.core_id != core.core_id:
        raise SemifreddoError(f"{hls_dir} was converted from frozen core {sim.core_id}, but {paths.core} holds "
                              f"{core.core_id}; re-run `semifreddo convert`")
    expected = register_map(spec)
    if sim.regmap.id != expected.id:
        raise SemifreddoError(f"{hls_dir} has register map {sim.regmap.id}, but spec {spec.name} describes "
                              f"{expected.id}; re-run `semifreddo convert`")
    return sim


def load_checked_weights(spec: Spec, build, weights) -> WeightSet:
    core = load_core(BuildPaths.for_spec(spec, build).core, spec)
    return read_weight_set(weights, expect_core_id=core.core_id, expect_regmap=register_map(spec))


DEFAULT_SAMPLES = 200


def held_out_inputs(spec: Spec, task: str, count: int | None, build=None) -> np.ndarray:
    """``count`` test images for ``task`` as input codes, topped up from the spec's other tasks' test
    images if needed; ``None``: every one there is, up to DEFAULT_SAMPLES (a pixel spec's test images
    are whole frames, a few per held-out photograph). A task trained from the user's data starts
    from the held-out samples `train-task --data` kept in the build (the comparison holds for any
    input; these are the task's own); they are checked as any input is."""
    wanted, count = count, DEFAULT_SAMPLES if count is None else count
    from semifreddo.models.datasets import load_task

    kept = BuildPaths.for_spec(spec, build).sample(task)
    pools = []
    if kept.exists():
        with np.load(kept, allow_pickle=False) as samples:
            pools.append(checked_codes(samples["x"][:count], spec.input_bits, f"{kept}: x", scale_option=False))
    for t in sorted(spec.task_names, key=lambda t: t != task):
        if sum(map(len, pools)) >= count:
            break
        pools.append(load_task(spec, t).test_codes(count, spec.input_bits).astype(np.uint32))
    images = np.concatenate(pools)[:count]
    if wanted is not None and len(images) < count:
        raise SemifreddoError(f"only {len(images)} held-out inputs exist for spec {spec.name}, {count} requested")
    return images


@dataclass
class CheckResult:
    task: str
    n_inputs: int
    n_outputs: int
    mismatches: dict[int, int] = field(default_factory=dict)     # repeat -> mismatching outputs
    max_abs_diff: dict[int, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(v == 0 for v in self.mismatches.values())


def check(spec: Spec, build, weights, repeats=None, samples: int | None = None) -> CheckResult:
    """Compare C simulation with QKeras for ``weights`` at each repeat count (default: all)."""
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.training import load_reference_model, predict

    ws = load_checked_weights(spec, build, weights)
    sim = open_csim(spec, build)
    repeats = list(range(spec.repeat_min, spec.repeat_max + 1)) if repeats is None else list(repeats)
    x = held_out_inputs(spec, ws.task, samples, build)
    model = load_reference_model(spec, build, ws)
    result = CheckResult(ws.task, len(x), 0)
    for repeat in repeats:
        set_repeat(model, spec, repeat)
        expected = predict(model, grid_values(x, spec.input_bits))
        actual = sim.run(x, ws, repeat)
        result.n_outputs = int(expected.size)
        result.mismatches[repeat] = int(np.count_nonzero(expected != actual))
        result.max_abs_diff[repeat] = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
    return result


def check_layers(spec: Spec, build, weights, repeat: int | None = None) -> list[tuple[str, int, int]]:
    """Per-layer comparison for one held-out input, through a traced conversion (for debugging a
    mismatch): (layer, mismatching values, values) for every layer hls4ml traced."""
    from tensorflow import keras

    from semifreddo.models.builder import set_repeat
    from semifreddo.models.training import load_reference_model

    from .convert import convert

    ws = load_checked_weights(spec, build, weights)
    repeat = spec.repeat_default if repeat is None else repeat
    traced = convert(spec, build, trace=True)
    sim = CSim(traced.hls_dir)
    x = held_out_inputs(spec, ws.task, 1, build)
    model = load_reference_model(spec, build, ws, shared_repeats=False)
    set_repeat(model, spec, repeat)
    rows = []
    for name, values in sim.trace(x, ws, repeat).items():
        expected = keras.Model(model.input, model.get_layer(name).output)(grid_values(x, spec.input_bits)).numpy()\
            .reshape(-1)
        rows.append((name, int(np.count_nonzero(expected != values)), int(expected.size)))
    return rows
