"""The C simulation's integer body of an adder graph (``adder_graph.csim_body``) against da4ml's own
``ap_fixed`` body, which is what Vitis HLS synthesizes: the same function compiled both ways must
give the same bits on every input, including inputs that the graph's input conversion truncates and
wraps, and graphs whose values da4ml truncates and wraps on purpose."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from semifreddo.hls_project import adder_graph as ag

pytestmark = pytest.mark.compile

HARNESS = """#include <cstdio>
#include "ap_fixed.h"
#include "nnet_utils/nnet_function_stubs.h"
namespace nnet {
%(code)s
}
typedef ap_fixed<16, 6> inp_t;      // finer and wider than the graph's inputs: their conversion truncates and wraps
typedef ap_fixed<48, 24> out_t;
int main() {
    int n;
    if (std::scanf("%%d", &n) != 1) return 1;
    for (int r = 0; r < n; r++) {
        inp_t x[%(n_in)d];
        out_t y[%(n_out)d];
        for (int i = 0; i < %(n_in)d; i++) { double v; if (std::scanf("%%lf", &v) != 1) return 1; x[i] = v; }
        nnet::dense_da_test<inp_t, out_t>(x, y);
        for (int o = 0; o < %(n_out)d; o++) std::printf("%%.17g ", y[o].to_double());
        std::printf("\\n");
    }
    return 0;
}
"""


def _hls4ml_includes() -> list[str]:
    import hls4ml

    root = Path(hls4ml.__file__).parent / "templates" / "vivado"
    return [f"-I{root}", f"-I{root / 'ap_types'}"]


def _run(comb, inputs: np.ndarray, tmp_path: Path, *defines: str) -> np.ndarray:
    n_in, n_out = comb.shape
    source = tmp_path / "harness.cpp"
    source.write_text(HARNESS % {"code": ag.hls_function(comb, "dense_da_test"), "n_in": n_in, "n_out": n_out})
    exe = tmp_path / ("apfixed" if defines else "integer")
    subprocess.run(["g++", "-O1", "-std=c++17", *defines, *_hls4ml_includes(), str(source), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    text = f"{len(inputs)}\n" + "\n".join(" ".join(repr(float(v)) for v in row) for row in inputs) + "\n"
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return np.array([[float(v) for v in line.split()] for line in proc.stdout.splitlines()])


def _inputs(n_in: int, rows: int, seed: int) -> np.ndarray:
    """Values of ap_fixed<16,6> (step 2^-10 in [-32, 32)): on and off the graph's input grid, in and
    out of its range, plus the extremes."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-(1 << 15), 1 << 15, size=(rows, n_in))
    codes[:4] = [[-(1 << 15)] * n_in, [(1 << 15) - 1] * n_in, [0] * n_in, [1 << 10] * n_in]
    return codes * 2.0 ** -10


def _traced(k, i, f, build):
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    inp = FixedVariableArray.from_kif(np.array(k), np.array(i), np.array(f), HWConfig(*ag.HW_CONFIG))
    return comb_trace(inp, build(inp))


def test_integer_body_matches_apfixed_body_on_a_solved_layer(tmp_path):
    """A frozen conv as the converter solves it: signed and unsigned inputs of several formats,
    kernel and bias with fractions and both signs. Both bodies also equal the exact product on inputs
    that are already on the graph's grid."""
    rng = np.random.default_rng(3)
    n_in, n_out = 12, 5
    kernel = rng.integers(-40, 40, size=(n_in, n_out)) * 2.0 ** -4
    bias = rng.integers(-64, 64, size=n_out) * 2.0 ** -5
    k = np.array([1, 0] * (n_in // 2))
    i = rng.integers(0, 3, size=n_in)
    f = rng.integers(1, 5, size=n_in)
    comb = ag.solve(ag.Job("layer", kernel, bias, k, i, f))
    assert ag.csim_body(comb) is not None
    x = _inputs(n_in, 400, seed=4)
    integer = _run(comb, x, tmp_path)
    assert np.array_equal(integer, _run(comb, x, tmp_path, "-DSEMIFREDDO_DA_APFIXED"))
    # On the grid (truncate to each input's f, wrap into its range): the exact x @ kernel + bias.
    step = 2.0 ** -f
    on_grid = np.floor(x / step) * step
    span = 2.0 ** i                 # i integer bits besides the sign: [-span, span) or [0, span)
    on_grid = np.where(k == 1, (on_grid + span) % (2 * span) - span, on_grid % span)
    assert np.array_equal(integer, on_grid @ kernel + bias)


def test_integer_body_matches_apfixed_body_with_truncation_wrap_and_negation(tmp_path):
    """A graph whose outputs da4ml itself truncates, rounds and wraps (quantize ops, a negation and
    constant additions): the cases the converter's layers never reach, but csim_body models."""

    def build(inp):
        y = inp @ np.array([[1.5, -0.25, 0.75], [3.0, -2.75, 1.0], [0.125, 1.0, -4.0]]) + np.array([0.375, -1.5, 2.25])
        z = (-y).quantize(1, 1, 2, "WRAP", "TRN")
        w = y.quantize(0, 2, 1, "WRAP", "RND")
        u = z @ np.array([[2.5, -1.0], [0.75, 3.0], [-1.25, 0.5]]) + w[:2]      # computes on wrapped values
        return np.stack([z[0], z[1], z[2], w[0], w[1], w[2], y[0], u[0], u[1]])

    comb = _traced([1, 1, 0], [2, 1, 3], [3, 4, 2], build)
    opcodes = {op.opcode for op in comb.ops}
    assert {3, -3, 4} <= opcodes, opcodes
    assert ag.csim_body(comb) is not None
    x = _inputs(3, 600, seed=5)
    assert np.array_equal(_run(comb, x, tmp_path), _run(comb, x, tmp_path, "-DSEMIFREDDO_DA_APFIXED"))
