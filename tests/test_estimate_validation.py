"""The estimator against Yosys synthesis of real layer slices (issue 6, item 3), and po2 costs.

The frozen cores are trained here (a few epochs of the real training code on the real data), so
the slices carry real trained constants: fixed-point ones, and FLightNN-style sums of two powers of
two. Each slice's Verilog is synthesized with Debian's Yosys (about a minute in all); the
estimator prices the same slice from the committed unit-cost table, which was characterized on
small blocks with random constants and has never seen these weights.
"""

import pytest

from semifreddo.hls_project.estimate import datapath
from semifreddo.hls_project.estimate.csd import nonzero_digits
from semifreddo.hls_project.estimate.validate import LUT_TOLERANCE, compare, error_table, layer_slices
from semifreddo.models.spec import FrozenWeights, load_spec

pytestmark = pytest.mark.train      # both tests estimate cores trained here

EPOCHS = 4


def _trained_codes(spec, build):
    from semifreddo.models.training import train_core

    return train_core(spec, build, epochs=EPOCHS, progress=False).core.codes


@pytest.fixture(scope="module")
def cores(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    fixed = load_spec("digits")
    po2 = fixed.replace(name="digits-po2k2", frozen_weights=FrozenWeights("po2", terms=2, min_exponent=-7))
    return {"fixed": (fixed, _trained_codes(fixed, build)), "po2": (po2, _trained_codes(po2, build))}


def test_estimator_within_tolerance_of_yosys_on_trained_slices(cores):
    fixed, fixed_codes = cores["fixed"]
    po2, po2_codes = cores["po2"]
    slices = (layer_slices(fixed, fixed_codes, block=2, channels=4, twin_channels=1, kernel="1x1")
              + layer_slices(fixed, fixed_codes, block=1, channels=16, kernel="3x3")[:1]
              + layer_slices(fixed, fixed_codes, block=2, channels=1, kernel="3x3")[:1]
              + layer_slices(po2, po2_codes, block=2, channels=4, kernel="1x1")[:1]
              + layer_slices(po2, po2_codes, block=2, channels=1, kernel="3x3")[:1])
    rows = compare(slices, jobs=2)
    table = error_table(rows)
    print("\n" + table)
    for row in rows:
        assert abs(row.lut_error) <= LUT_TOLERANCE, f"{row.name}: LUT error {row.lut_error:+.1%}\n{table}"
        assert abs(row.ff_error) <= 0.10, f"{row.name}: FF error {row.ff_error:+.1%}\n{table}"

    # What freezing buys, measured: per output channel, the 1x1x16 slice with trained constants
    # against its configurable twin (the trial run saw 3-5x for 4- and 8-bit constants).
    constant_per_channel, twin_per_channel = rows[0].measured["lut"] / 4, rows[1].measured["lut"] / 1
    assert twin_per_channel > 2 * constant_per_channel


def test_po2_weights_cost_shifts_and_few_adders(cores):
    """The trained k=2 power-of-two codes have at most two canonical signed digits each (a shift and
    one adder per weight). With k = 1 every product is wiring: a dot product needs one adder per
    non-zero weight after the first, plus one for a non-zero bias."""
    _, codes = cores["po2"]
    assert nonzero_digits(codes["b2.frozen.kernel"]).max() <= 2
    weights = [64, -16, 0, 1, -128, 0]            # 2**-1, -2**-3, 0, 2**-7, -1 in s9.7 codes
    cost = datapath.tree_cost(datapath.constant_dot_product(8, weights, bias=5))
    assert len(cost.adder_bits) == 4 - 1 + 1
