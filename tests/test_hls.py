"""The hls4ml conversion: constants vs registers, bit-exact C simulation, one build per core.

The parsing below reads the generated C++ as text, independently of the writer that produced it:
every frozen tensor must appear as one weights header whose initializer holds exactly the trained
codes, and every configurable tensor as an active register array with no initializer, loaded only
from the AXI-Lite bank.
"""

import json
import re

import numpy as np
import pytest

from semifreddo.deploy.contract.weightset import read_weight_set
from semifreddo.hls_project.check import check
from semifreddo.hls_project.csim import CSim, build_count, run_testbench
from semifreddo.models.artifacts import BuildPaths, load_core
from semifreddo.models.layout import configurable_tensors, frozen_tensors, register_map
from semifreddo.models.spec import load_spec

from conftest import SPECS as SPEC_DIR
from conftest import one_error_line, run_cli

SPECS = ["digits", "pixels"]


def parse_headers(hls_dir):
    """{array name: (type, values)} for every initialized array under firmware/weights/."""
    arrays = {}
    for header in (hls_dir / "firmware" / "weights").glob("*.h"):
        text = header.read_text()
        for ctype, name, size, body in re.findall(r"(\w+) (\w+)\[(\d+)\] = \{([^}]*)\}", text):
            values = np.array([float(v) for v in body.split(",")])
            assert values.size == int(size)
            arrays[name] = (ctype, values)
    return arrays


def parse_calls(top_cpp):
    """{Keras layer name: argument names of its hls4ml call}, from the `// layer` comments."""
    calls = {}
    for line in top_cpp.splitlines():
        match = re.match(r"\s*nnet::\w+<[^;]*>\(([^;]*)\);\s*// (\w+)$", line)
        if match:
            calls[match.group(2)] = [arg.strip() for arg in match.group(1).split(",")]
    return calls


def layer_and_repetitions(spec, layer, calls):
    """The layer itself and the repetitions of it that the generated IP calls."""
    from semifreddo.models.network import describe

    return [layer] + [copy.name for copy in describe(spec).copies(layer) if copy.name in calls]


def call_argument(args, weight):
    """Which argument of an hls4ml call carries a weight: (..., weights, biases) or an alpha array."""
    if weight == "alpha":
        return next(a for a in args if a.startswith("alpha"))
    return args[-2] if weight == "kernel" else args[-1]


@pytest.mark.parametrize("spec_name", SPECS)
def test_frozen_weights_are_constants_and_configurable_ones_are_registers(spec_name, converted_build):
    spec = load_spec(spec_name)
    build = converted_build(spec_name)
    paths = BuildPaths.for_spec(spec, build)
    hls_dir = paths.hls
    core = load_core(paths.core, spec)
    top = (hls_dir / "firmware" / "semifreddo_top.cpp").read_text()
    headers = parse_headers(hls_dir)
    calls = parse_calls(top)
    statics = dict((name, (ctype, int(size or 0))) for ctype, name, size in
                   re.findall(r"^static ([\w<>, ]+?) (\w+)(?:\[(\d+)\])?;$", top, re.M))
    commit = top[top.index("static void commit_bank"):top.index("// ---- AXI-Stream adapters")]

    # Frozen tensors, layer by layer (repetitions of the last block included): the call passes an
    # array whose header initializer holds exactly the trained codes.
    frozen_arrays = set()
    for t in frozen_tensors(spec):
        for layer in layer_and_repetitions(spec, t.layer, calls):
            array = call_argument(calls[layer], t.weight)
            assert array in headers, f"{layer} {t.weight}: {array} is not a constant"
            expected = core.codes[t.name].reshape(-1) * 2.0 ** -t.fmt.frac
            np.testing.assert_array_equal(headers[array][1], expected, err_msg=f"{layer} {t.weight}")
            assert array not in statics
            frozen_arrays.add(array)
    assert sum(headers[a][1].size for a in frozen_arrays) == spec.parameter_counts()["frozen"]
    # ...and nothing else is a constant: every header belongs to a frozen tensor.
    assert set(headers) == frozen_arrays

    # Configurable tensors: the call passes an active register array, declared without an
    # initializer, never in a header, and written only by commit_bank from the shadow bank.
    rmap = register_map(spec)
    active = 0
    for t in configurable_tensors(spec):
        field = rmap.field(t.name)
        if t.weight == "swap":
            name = f"shuffle_b{t.name.split('.')[0][1:]}"
            assert statics[name] == ("ap_uint<1>", 0)
            assert re.search(rf"^    {name} = bank\[{field.word_offset}\]", commit, re.M)
            active += 1
            continue
        arrays = {call_argument(calls[layer], t.weight) for layer in layer_and_repetitions(spec, t.layer, calls)}
        assert len(arrays) == 1, f"{t.name}: repetitions must share the original's registers"
        array = arrays.pop()
        assert array not in headers, f"{t.name} appears as a constant"
        assert not (hls_dir / "firmware" / "weights" / f"{array}.h").exists()
        assert statics[array][1] == field.size, t.name
        # Code i of the field goes to element i of the array, or, for a dense kernel that hls4ml's
        # Resource strategy holds transposed (n_out, n_in), to element (i % n_out) * n_in + i // n_out.
        assert re.search(rf"{array}\[(i|order_{array}\[i\])\]\.range\({field.bits - 1}, 0\) = "
                         rf"bank\[{field.word_offset} \+ i / {32 // field.slot_bits}\]", commit), t.name
        table = re.search(rf"order_{array}\[{field.size}\] = \{{([^}}]*)\}}", commit)
        if table:
            n_in, n_out = field.shape
            assert [int(v) for v in table.group(1).split(",")] == [(i % n_out) * n_in + i // n_out
                                                                    for i in range(field.size)], t.name
        # No assignment to the array outside commit_bank.
        outside = top.replace(commit, "")
        assert not re.search(rf"\b{array}\[[^\]]*\]\s*(\.range\([^)]*\))?\s*=[^=]", outside), t.name
        active += field.size
    assert active == spec.parameter_counts()["configurable"]

    # The register map the project was built with is the spec's, in both places it is recorded.
    assert json.loads((hls_dir / "regmap.json").read_text())["id"] == rmap.id
    assert json.loads((hls_dir / "hls_manifest.json").read_text())["regmap_id"] == rmap.id


@pytest.mark.parametrize("spec_name", SPECS)
def test_csim_is_bit_exact_against_qkeras(spec_name, converted_build):
    spec = load_spec(spec_name)
    build = converted_build(spec_name)
    paths = BuildPaths.for_spec(spec, build)
    tasks = [spec.data.source] + [t.task for t in spec.data.targets]
    assert len(tasks) >= 2
    # digits: 200 images per task; pixels: one whole 512x512 frame (a quarter of a million outputs)
    # for its first target task (the C simulation takes seconds a frame; tests/test_frames.py checks
    # whole frames of another size at every repeat count, in grey and in colour).
    samples = 200 if spec.head_type == "classify" else 1
    for task in tasks if spec.head_type == "classify" else tasks[1:2]:
        result = check(spec, build, paths.weightset(task), samples=samples)
        assert result.n_inputs == samples
        assert sorted(result.mismatches) == list(range(spec.repeat_min, spec.repeat_max + 1))
        assert len(result.mismatches) >= 2
        assert result.mismatches == {r: 0 for r in result.mismatches}, (task, result)


def test_outputs_depend_on_weights_and_repeat(converted_build):
    """The zero-mismatch result above is not vacuous: the IP's output really changes with the
    weight set and with the repeat count."""
    spec = load_spec("digits")
    build = converted_build("digits")
    paths = BuildPaths.for_spec(spec, build)
    sim = CSim(paths.hls)
    from semifreddo.models.datasets import load_task

    x = load_task(spec, "parity").x_test[:32]
    a = sim.run(x, read_weight_set(paths.weightset("parity")), repeat=1)
    b = sim.run(x, read_weight_set(paths.weightset("digits_5_9")), repeat=1)
    c = sim.run(x, read_weight_set(paths.weightset("parity")), repeat=2)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    np.testing.assert_array_equal(sim.run(x, read_weight_set(paths.weightset("parity")), repeat=1), a)


def test_frames_spread_over_cores_give_the_outputs_of_one_core(converted_build):
    """Spreading the frames over private copies of the library (their own active registers and line
    buffers) gives the outputs of one core, bit for bit, at any split and batch size."""
    spec = load_spec("digits")
    paths = BuildPaths.for_spec(spec, converted_build("digits"))
    from semifreddo.models.datasets import load_task

    x = load_task(spec, "parity").x_test[:80]
    sim, ws = CSim(paths.hls), read_weight_set(paths.weightset("parity"))
    one = sim.run(x, ws, repeat=2, workers=1)
    for workers, batch in ((2, 4096), (3, 7)):
        np.testing.assert_array_equal(sim.run(x, ws, repeat=2, workers=workers, batch=batch), one)
    np.testing.assert_array_equal(sim.run(x, ws, repeat=2, workers=1), one)   # the first copy keeps its state right


def test_library_is_built_once_per_core(converted_build):
    spec = load_spec("digits")
    build = converted_build("digits")
    paths = BuildPaths.for_spec(spec, build)
    sim = CSim(paths.hls)
    count, mtime = build_count(paths.hls), sim.library.stat().st_mtime_ns
    assert count == 1
    from semifreddo.models.datasets import load_task

    x = load_task(spec, "parity").x_test[:8]
    for task in ("parity", "digits_5_9"):
        for repeat in (1, 2):
            CSim(paths.hls).run(x, read_weight_set(paths.weightset(task)), repeat)
    assert build_count(paths.hls) == count
    assert sim.library.stat().st_mtime_ns == mtime
    # Re-converting an unchanged core reuses the library too.
    proc = run_cli("convert", "digits", "--build", build)
    assert proc.returncode == 0, proc.stderr
    assert "(reused)" in proc.stdout
    assert build_count(paths.hls) == count


def test_vitis_test_bench_passes_with_gxx(converted_build):
    spec = load_spec("digits")
    proc = run_testbench(BuildPaths.for_spec(spec, converted_build("digits")).hls)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 mismatches against QKeras" in proc.stdout


def test_cli_csim_round_trip(converted_build, tmp_path):
    spec = load_spec("digits")
    build = converted_build("digits")
    paths = BuildPaths.for_spec(spec, build)
    from semifreddo.models.datasets import load_task

    x = load_task(spec, "parity").x_test[:5]
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("csim", "digits", "--weights", paths.weightset("parity"), "--input", tmp_path / "x.npy",
                   "--output", tmp_path / "y.npy", "--repeat", "2", "--build", build)
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(y, CSim(paths.hls).run(x, read_weight_set(paths.weightset("parity")), 2))
    proc = run_cli("check", "digits", "--weights", paths.weightset("parity"), "--build", build)
    assert proc.returncode == 0 and "0 of 1000 outputs differ" in proc.stdout


def test_clear_errors_for_wrong_shape_and_foreign_weights(converted_build, tmp_path):
    digits_build = converted_build("digits")
    pixels_weights = BuildPaths.for_spec(load_spec("pixels"), converted_build("pixels")).weightset("edges")
    digits_weights = BuildPaths.for_spec(load_spec("digits"), digits_build).weightset("parity")
    # A spec whose shape disagrees with the trained core (5x5 kernels instead of 3x3).
    reshaped = tmp_path / "digits.yaml"
    reshaped.write_text((SPEC_DIR / "digits.yaml").read_text().replace("kernel: 3 ", "kernel: 5 "))
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1)))
    commands = {
        "convert": ["convert", reshaped, "--build", digits_build, "--no-compile"],
        "csim": ["csim", reshaped, "--weights", digits_weights, "--input", tmp_path / "x.npy", "--output",
                 tmp_path / "y.npy", "--build", digits_build],
        "check": ["check", reshaped, "--weights", digits_weights, "--build", digits_build],
    }
    for name, command in commands.items():
        proc = run_cli(*command)
        assert proc.returncode == 2, (name, proc.stderr)
        assert "different frozen structure" in one_error_line(proc), name
    for name in ("csim", "check"):
        command = [pixels_weights if arg == digits_weights else arg for arg in commands[name]]
        command[1] = "digits"
        proc = run_cli(*command)
        assert proc.returncode == 2, (name, proc.stderr)
        assert "made for frozen core" in one_error_line(proc), name
    assert not (tmp_path / "y.npy").exists()
