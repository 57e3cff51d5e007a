"""The QKeras SemifreddoNet: structure, repeat and shuffle semantics, quantizers, code round trips."""

import numpy as np
import pytest

from semifreddo.models.builder import build_model, set_repeat, set_shuffle
from semifreddo.models.layout import (apply_codes, configurable_tensors, extract_codes, frozen_tensors,
                                      register_map)
from semifreddo.models.quantizers import PowerOfTwoTerms


def randomize(model, seed=0):
    """Give every trainable weight a random value so that every path through the model matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for var in layer.trainable_weights:
            var.assign(rng.normal(0, 0.4, var.shape).astype(np.float32))


def test_parameter_counts_match_the_spec(digits_spec, pixels_spec):
    for spec in (digits_spec, pixels_spec):
        model = build_model(spec)
        frozen = sum(int(np.prod(w.shape)) for layer in model.layers if "_frozen_conv" in layer.name
                     for w in layer.weights)
        configurable = sum(f.size for f in register_map(spec).fields)
        counts = spec.parameter_counts()
        assert frozen == counts["frozen"]
        assert configurable == counts["configurable"]
        # Every trainable Keras variable is accounted for, as frozen or configurable:
        # (swap switches are held once per block in the registers, once per core blend in Keras)
        keras_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert keras_trainable == counts["frozen"] + counts["configurable"] - len(spec.shuffle_blocks)


def test_repeat_runs_the_last_block_again(digits_spec):
    shared = build_model(digits_spec)
    randomize(shared)
    x = np.random.default_rng(1).integers(0, 256, (16, 8, 8, 1)).astype(np.float32) / 256
    outputs = {}
    for repeat in (1, 2):
        set_repeat(shared, digits_spec, repeat)
        outputs[repeat] = shared.predict(x, verbose=0)
        unrolled = build_model(digits_spec, shared_repeats=False, repeat=repeat)   # the form hls4ml converts
        tensors = frozen_tensors(digits_spec) + configurable_tensors(digits_spec)
        apply_codes(unrolled, tensors, extract_codes(shared, tensors))
        np.testing.assert_array_equal(unrolled.predict(x, verbose=0), outputs[repeat])
    assert not np.array_equal(outputs[1], outputs[2])
    with pytest.raises(Exception, match="outside the spec's range"):
        set_repeat(shared, digits_spec, 3)


def quantize_relu(x, bits, integer):
    """Independent numpy version of quantized ReLU: round half to even, clip to the unsigned range."""
    scale = 2.0 ** (bits - integer)
    return np.clip(np.round(x * scale), 0, 2 ** bits - 1) / scale


def test_alpha_blend_and_core_shuffle(digits_spec):
    from tensorflow import keras

    model = build_model(digits_spec)
    randomize(model, 2)
    x = np.random.default_rng(3).integers(0, 256, (8, 8, 8, 1)).astype(np.float32) / 256
    probe = keras.Model(model.input, [model.get_layer(n).output for n in
                                      ("b1_frozen_relu", "b1_A_relu", "b1_B_relu", "b2_A_blend")])
    blend = model.get_layer("b2_A_blend")
    alpha = blend.alpha().numpy()
    assert np.array_equal(alpha * 256, np.round(alpha * 256))          # alpha sits on the 8-bit grid
    act = digits_spec.activations
    for shuffle_on in (False, True):
        set_shuffle(model, digits_spec, [2] if shuffle_on else [])
        frozen, a, b, blended = probe.predict(x, verbose=0)
        own = b if shuffle_on else a
        expected = quantize_relu(alpha * frozen[..., blend.frozen_channels] + (1 - alpha) * own,
                                 act.bits, act.integer)
        np.testing.assert_array_equal(blended, expected)
    # Core A blends with the first `width` frozen channels, core B with the next `width`.
    width = digits_spec.trainable_width
    assert list(model.get_layer("b2_A_blend").frozen_channels) == list(range(width))
    assert list(model.get_layer("b2_B_blend").frozen_channels) == list(range(width, 2 * width))


def test_codes_round_trip_into_a_fresh_model(digits_spec):
    model = build_model(digits_spec)
    randomize(model, 4)
    set_shuffle(model, digits_spec, [3])
    tensors = frozen_tensors(digits_spec) + configurable_tensors(digits_spec)
    codes = extract_codes(model, tensors)
    assert int(codes["b3.shuffle"]) == 1 and int(codes["b2.shuffle"]) == 0
    fresh = build_model(digits_spec)
    apply_codes(fresh, tensors, codes)
    x = np.random.default_rng(5).integers(0, 256, (16, 8, 8, 1)).astype(np.float32) / 256
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    again = extract_codes(fresh, tensors)
    for name in codes:
        np.testing.assert_array_equal(again[name], codes[name])


def po2_candidates(min_exponent):
    powers = [2.0 ** e for e in range(min_exponent, 1)]
    return np.array(sorted({0.0, *powers, *(-p for p in powers)}))


def test_power_of_two_quantizer():
    w = np.random.default_rng(6).uniform(-1.2, 1.2, 2000).astype(np.float32)
    one = PowerOfTwoTerms(1, -6)(w).numpy()
    two = PowerOfTwoTerms(2, -6)(w).numpy()
    single = po2_candidates(-6)
    clipped = np.clip(w, -1, 1)
    # One term: the value is a power of two (or zero) and as close to w as any candidate
    # (ties between two candidates may go either way).
    assert np.isin(one, single).all()
    best = np.min(np.abs(clipped[:, None] - single[None, :]), axis=1)
    np.testing.assert_allclose(np.abs(clipped - one), best, atol=1e-7)
    # Two terms: a sum of two such values, never further from w than one term.
    pairs = np.unique((single[:, None] + single[None, :]).ravel())
    assert np.isin(two, pairs).all()
    assert (np.abs(clipped - two) <= np.abs(clipped - one) + 1e-7).all()
    assert np.abs(two).max() <= 1.0


def test_po2_frozen_core_builds_and_stores_exact_codes(digits_spec):
    from semifreddo.models.spec import FrozenWeights

    spec = digits_spec.replace(frozen_weights=FrozenWeights("po2", terms=2, min_exponent=-6))
    model = build_model(spec)
    randomize(model, 7)
    codes = extract_codes(model, frozen_tensors(spec))
    kernel = codes["b2.frozen.kernel"] * 2.0 ** -spec.frozen_weights.storage.frac
    assert np.isin(kernel, np.unique((po2_candidates(-6)[:, None] + po2_candidates(-6)[None, :]))).all()
