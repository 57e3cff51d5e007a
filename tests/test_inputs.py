"""One input quantization, no silent saturation (issue 21, parts 1 and 2).

Floats in [0, 1] become codes round(v * (2^bits - 1)) everywhere: the shipped datasets, user data,
`semifreddo run`, `csim`, the driver. Out-of-range images are refused at every door with one line
and exit code 2; `--input-scale` divides first. Expected codes are computed here from the rule, not
taken from the code under test.
"""

import numpy as np
import pytest

from conftest import one_error_line, run_cli
from semifreddo.deploy.runtime.driver import Semifreddo
from semifreddo.deploy.runtime.emulator import EmulatedDevice
from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.streams import float_codes, input_codes

from test_deploy_helpers import TASK_A, package_emulated, qkeras_outputs

IO = {"input_shape": [8, 8, 1], "input_bits": 8}


def sklearn_digits(n=12):
    """scikit-learn's digit images as they come: floats 0..16, shape (n, 8, 8, 1)."""
    from sklearn.datasets import load_digits

    return load_digits().images[:n, ..., None].astype(np.float64)


def test_the_rule_is_the_8_bit_image_convention():
    k = np.arange(256)
    np.testing.assert_array_equal(float_codes(k / 255.0, 8), k)          # v = code / 255 gives the code back
    assert float_codes(np.array([0.0, 1.0]), 4).tolist() == [0, 15]       # 0 and 1 are the ends of any width
    assert float_codes(np.array([0.5 / 255, 1.5 / 255]), 8).tolist() == [0, 2]    # halves to even


def test_shipped_datasets_and_user_data_quantize_by_the_same_rule(digits_spec, tmp_path):
    from semifreddo.models.datasets import _digits_split, load_task
    from semifreddo.models.userdata import load_user_task

    images, _, _, idx_test = _digits_split(digits_spec.data.seed)
    x = load_task(digits_spec, "digits_all").x_test
    np.testing.assert_array_equal(x * 256, np.round(images[idx_test] * 255))      # value = code / 256
    floats = images[:400].astype(np.float32)
    labels = np.arange(400) % 3
    np.savez(tmp_path / "floats.npz", x=floats, y=labels)
    data = load_user_task(digits_spec, "mine", tmp_path / "floats.npz", batch_size=8)
    every = np.concatenate([data.x_train.codes, data.x_test.codes])
    assert sorted(every.reshape(len(every), -1).sum(axis=1).tolist()) == \
        sorted(np.round(floats.astype(np.float64) * 255).reshape(400, -1).sum(axis=1).tolist())


@pytest.mark.parametrize("bad, found", [
    (sklearn_digits(2), "floats from 0 to 16"),
    (sklearn_digits(2) / 16 * 1.5, "floats from 0 to 1.5"),
    (sklearn_digits(2) / 16 - 0.25, "floats from -0.25 to 0.75"),
    (np.full((2, 8, 8, 1), 256, np.int64), "codes from 256 to 256"),
    (np.full((2, 8, 8, 1), -1, np.int16), "codes from -1 to -1"),
    (np.zeros((2, 8, 8, 1), bool), "dtype bool"),
    (np.zeros((2, 8, 8, 1), np.complex64), "dtype complex64"),
    (np.full((2, 8, 8, 1), "0.5"), "dtype <U3"),
    (np.zeros((2, 8, 8, 1), object), "dtype object"),
    (np.zeros((2, 8, 8, 3), np.float32), "3 channel(s) per pixel, this IP takes 1"),
    (np.full((2, 8, 8, 1), np.inf), "NaN or infinite"),
])
def test_the_contract_refuses_what_is_not_pixels(bad, found):
    with pytest.raises(SemifreddoError) as info:
        input_codes(bad, IO)
    assert found in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def board(converted_build, tmp_path_factory):
    build = converted_build("digits")
    return build, package_emulated(build, tmp_path_factory.mktemp("emulated"))


def test_a_float_image_gives_what_its_codes_and_the_qkeras_model_give(board, tmp_path):
    build, bundle = board
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    floats = sklearn_digits() / 16.0
    codes = np.round(floats * 255).astype(np.uint8)
    np.save(tmp_path / "floats.npy", floats)
    np.save(tmp_path / "codes.npy", codes)
    np.save(tmp_path / "raw.npy", sklearn_digits())
    assert run_cli("reload", bundle, "--task", TASK_A, env=env).returncode == 0
    outputs = {}
    for name, extra in (("floats", ()), ("codes", ()), ("raw", ("--input-scale", "16"))):
        proc = run_cli("run", bundle, "--input", tmp_path / f"{name}.npy", "--output", tmp_path / f"y_{name}.npy",
                       *extra, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs[name] = np.load(tmp_path / f"y_{name}.npy")
    expected = qkeras_outputs(build, TASK_A, codes)       # the QKeras model on the grid code / 256
    for name, y in outputs.items():
        np.testing.assert_array_equal(y, expected, err_msg=name)
    # The old mapping round(v * 256) would have fed other codes for most of these images.
    assert np.count_nonzero(np.clip(np.round(floats * 256), 0, 255) != codes) > 0


PROBE = {"digits at 0..16": (sklearn_digits(), "--input-scale 16"),
         "images times 1.5": (sklearn_digits() / 16 * 1.5, "--input-scale 1.5"),
         "negative floats": (sklearn_digits() / 16 - 0.5, "negative values are not pixels")}


@pytest.mark.parametrize("case", list(PROBE))
def test_the_probe_gets_one_line_and_exit_2_from_run_and_csim(board, tmp_path, case):
    build, bundle = board
    images, advice = PROBE[case]
    np.save(tmp_path / "x.npy", images)
    env = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    weights = bundle / "weightsets" / f"{TASK_A}.npz"
    for argv in (("run", bundle), ("csim", "digits", "--weights", weights, "--build", build)):
        proc = run_cli(*argv, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", env=env)
        line = one_error_line(proc)
        assert proc.returncode == 2 and "must lie in [0, 1]" in line and advice in line, line
        assert not (tmp_path / "y.npy").exists()


def test_the_driver_refuses_and_scales(board, tmp_path):
    build, bundle = board
    sf = Semifreddo(bundle, device=EmulatedDevice(tmp_path / "pl"))
    sf.switch(TASK_A)
    with pytest.raises(SemifreddoError, match="floats from 0 to 16"):
        sf.run(sklearn_digits())
    with pytest.raises(SemifreddoError, match="input scale 0 must be a positive number"):
        sf.run(sklearn_digits(), scale=0)
    np.testing.assert_array_equal(sf.run(sklearn_digits(), scale=16), sf.run(sklearn_digits() / 16))


def test_photographs_are_read_as_pixels_and_other_image_files_are_named_in_one_line(tmp_path):
    """`--input` takes 8-bit PNG/JPEG photographs (as code / 255) and .npy arrays; a GIF is refused by
    name, not as 'pickled data'."""
    from PIL import Image

    from semifreddo.deploy.contract.streams import load_images

    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(load_images(tmp_path / "grey.png"), pixels[None, :, :, None] / 255.0)
    colour = np.stack([pixels, 255 - pixels, pixels // 2], axis=-1)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    np.testing.assert_array_equal(load_images(tmp_path / "colour.png"), colour[None] / 255.0)
    Image.fromarray(pixels).save(tmp_path / "photo.jpg")
    assert load_images(tmp_path / "photo.jpg").shape == (1, 8, 8, 1)           # JPEG is lossy: shape only
    Image.fromarray(pixels).save(tmp_path / "photo.npy", format="GIF")
    with pytest.raises(SemifreddoError, match=r"is a GIF image; --input takes a PNG or JPEG photograph or a \.npy"):
        load_images(tmp_path / "photo.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(SemifreddoError, match="not a plain .npy array"):
        load_images(tmp_path / "junk.npy")
