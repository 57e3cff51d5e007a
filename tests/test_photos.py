"""The photos dataset: scikit-image's photographs, training patches, held-out frames, colour.

Expected values here come from the photographs as scikit-image hands them out and from slicing
written in the test, never from the loader's own output.
"""

import numpy as np
import pytest
import yaml

from semifreddo.deploy.contract.errors import SpecError
from semifreddo.models.datasets import cut_frame, load_task
from semifreddo.models.spec import PHOTOGRAPHS, parse_spec

from conftest import SPECS, one_error_line, run_cli

BT601 = np.array([0.299, 0.587, 0.114])      # ITU-R BT.601 luma weights


def pixels_data(**dataset):
    data = yaml.safe_load((SPECS / "pixels.yaml").read_text())
    data["dataset"].update(dataset)
    return data


def skimage_photo(name):
    import warnings

    from skimage import data as skdata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(skdata, name)()


def codes8(values):
    """Floats in [0, 1] as 8-bit codes, to compare images whatever order their arithmetic ran in."""
    return np.round(np.asarray(values, np.float64) * 255).astype(np.uint8)


# ---- spec validation ----------------------------------------------------------------------

def test_a_held_out_photograph_in_training_is_refused_in_one_line(tmp_path):
    spec = tmp_path / "overlap.yaml"
    spec.write_text(yaml.safe_dump(pixels_data(train_images=["camera", "moon"], test_images=["coffee", "moon"])))
    proc = run_cli("spec", spec)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "dataset.test_images" in line and "moon" in line


def test_an_unknown_photograph_is_refused_with_the_list(tmp_path):
    with pytest.raises(SpecError) as info:
        parse_spec(pixels_data(train_images=["camera", "lena"]), source="bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: dataset.train_images:") and "'lena'" in message
    assert "\n" not in message
    for name in ("astronaut", "coffee", "stereo_motorcycle"):
        assert name in message
    # The photographs the spec offers are ones scikit-image really ships (and can load here).
    for name in PHOTOGRAPHS:
        assert np.asarray(skimage_photo(name)[0] if name == "stereo_motorcycle" else skimage_photo(name)).size


@pytest.mark.parametrize("field,value,words", [
    ("train_images", [], "non-empty list"),
    ("test_images", "camera", "non-empty list"),
    ("test_images", ["camera", "camera"], "more than once"),
    ("train_image", "china.jpg", "unknown field"),
])
def test_bad_photograph_lists(field, value, words):
    with pytest.raises(SpecError) as info:
        parse_spec(pixels_data(**{field: value}), source="bad.yaml")
    assert f"dataset.{field}" in str(info.value) and words in str(info.value)


def test_pre_training_tasks_are_checked():
    data = pixels_data()
    data["source"] = {"task": "denoise", "also": ["sharpen", "blur"]}
    with pytest.raises(SpecError) as info:
        parse_spec(data, source="bad.yaml")
    assert "source.also" in str(info.value) and "'blur'" in str(info.value)
    data["source"] = {"task": "denoise", "also": ["denoise"]}
    with pytest.raises(SpecError, match="source.also"):
        parse_spec(data, source="bad.yaml")


# ---- held-out photographs are never trained on --------------------------------------------

def test_no_training_patch_comes_from_a_held_out_photograph():
    """Every training target patch of the denoise task (the clean photograph) is looked for, at
    every offset, in the held-out photographs as scikit-image ships them; as a control, the same
    search finds the patches in the training photographs."""
    spec = parse_spec(pixels_data(train_images=["coins", "page", "text"], test_images=["camera", "clock"]))
    data = load_task(spec, "denoise")
    patch = spec.data.patch
    found = {codes8(p[..., 0]).tobytes() for p in data.y_train}

    def every_patch(grey_uint8):
        windows = np.lib.stride_tricks.sliding_window_view(grey_uint8, (patch, patch))
        return {w.tobytes() for w in windows.reshape(-1, patch, patch)}

    for name in ("camera", "clock"):
        assert not found & every_patch(skimage_photo(name)), name
    in_training = set().union(*(every_patch(skimage_photo(name)) for name in ("coins", "page", "text")))
    assert found <= in_training


# ---- frames ---------------------------------------------------------------------------------

def test_a_larger_image_is_centre_cropped():
    image = np.arange(7 * 10).reshape(7, 10, 1)
    frame = cut_frame(image, 3, 4)
    np.testing.assert_array_equal(frame[..., 0], image[2:5, 3:7, 0])


def test_a_smaller_image_is_padded_by_symmetric_reflection():
    image = np.array([[1, 2, 3],
                      [4, 5, 6]])[..., None]
    # 2 -> 6 rows: 2 reflected rows above and 2 below, the edge row repeated; 3 -> 5 columns: 1 and 1.
    # Rows: [row 1, row 0 | row 0, row 1 | row 1, row 0]; columns: [1 | 1 2 3 | 3].
    expected = np.array([[4, 4, 5, 6, 6],
                         [1, 1, 2, 3, 3],
                         [1, 1, 2, 3, 3],
                         [4, 4, 5, 6, 6],
                         [4, 4, 5, 6, 6],
                         [1, 1, 2, 3, 3]])
    np.testing.assert_array_equal(cut_frame(image, 6, 5)[..., 0], expected)
    # Larger along one side, smaller along the other: crop one, pad the other.
    np.testing.assert_array_equal(cut_frame(image, 1, 5)[..., 0], [[1, 1, 2, 3, 3]])


# ---- colour ------------------------------------------------------------------------------

def colour_spec(**dataset):
    data = pixels_data(**dataset)
    data["input"]["shape"] = [16, 16, 3]
    data["head"]["outputs"] = 3
    return parse_spec(data)


def test_a_colour_spec_gets_rgb_patches_and_frames():
    spec = colour_spec(train_images=["coins", "chelsea"], test_images=["coffee", "camera"])
    data = load_task(spec, "denoise")
    # chelsea is 300x451 colour, coins 303x384 grey; patches of 16 every 32 pixels.
    count = sum(len(range(0, h - 15, 32)) * len(range(0, w - 15, 32)) for h, w in ((300, 451), (303, 384)))
    assert data.x_train.shape == data.y_train.shape == (count, 16, 16, 3)
    assert data.x_test.shape == data.y_test.shape == (2, 16, 16, 3)
    assert data.classes == 3
    # The clean target of the first held-out frame is the centre of coffee (400x600), in colour.
    np.testing.assert_array_equal(codes8(data.y_test[0]), skimage_photo("coffee")[192:208, 292:308])
    # A grey photograph in a colour spec has R = G = B.
    camera = data.y_test[1]
    assert np.array_equal(camera[..., 0], camera[..., 1]) and np.array_equal(camera[..., 1], camera[..., 2])
    np.testing.assert_array_equal(codes8(camera[..., 0]), skimage_photo("camera")[248:264, 248:264])


def test_a_grey_spec_reads_colour_photographs_as_bt601_luma():
    data = pixels_data(train_images=["coins"], test_images=["coffee"])
    data["input"]["shape"] = [16, 16, 1]
    data = load_task(parse_spec(data), "denoise")
    centre = skimage_photo("coffee")[192:208, 292:308].astype(np.float64) @ BT601
    np.testing.assert_array_equal(codes8(data.y_test[0, ..., 0]), np.round(centre).astype(np.uint8))


def test_a_colour_spec_needs_one_output_per_channel():
    data = pixels_data()
    data["input"]["shape"] = [16, 16, 3]
    with pytest.raises(SpecError, match="head.outputs"):
        parse_spec(data)
    data["input"]["shape"] = [16, 16, 2]
    with pytest.raises(SpecError, match="input.shape"):
        parse_spec(data)


@pytest.mark.train
def test_a_colour_spec_trains(tmp_path):
    from semifreddo.models.training import train_core, train_task

    spec = colour_spec(train_images=["coins", "chelsea"], test_images=["coffee"])
    spec = spec.replace(also=("sharpen",))
    core = train_core(spec, tmp_path, epochs=1, subset=64, progress=False)
    assert np.isfinite(core.metrics["psnr_db"])
    result = train_task(spec, "edges", tmp_path, epochs=1, subset=64, progress=False)
    assert result.weightset.exists() and np.isfinite(result.metrics["psnr_db"])


def test_a_target_task_is_never_a_pre_training_task():
    data = pixels_data()
    data["source"] = {"task": "denoise", "also": ["edges"]}
    with pytest.raises(SpecError, match=r"targets\[0\].task: 'edges' is a pre-training task"):
        parse_spec(data, source="bad.yaml")


def test_held_out_frames_at_a_size_no_shipped_spec_uses():
    """96x64 frames: the centre of a larger photograph; a 200-row frame of the 172-row text photograph
    takes 14 mirrored rows above and below it."""
    data = pixels_data(train_images=["coins"], test_images=["camera", "page"])
    data["input"]["shape"] = [96, 64, 1]
    task = load_task(parse_spec(data), "denoise")
    assert task.x_test.shape == task.y_test.shape == (2, 96, 64, 1)
    np.testing.assert_array_equal(codes8(task.y_test[0, ..., 0]), skimage_photo("camera")[208:304, 224:288])
    np.testing.assert_array_equal(codes8(task.y_test[1, ..., 0]), skimage_photo("page")[47:143, 160:224])
    # The inputs are the same frames with noise, on the input grid.
    assert np.abs(task.x_test - task.y_test).mean() > 0.01
    np.testing.assert_array_equal(task.x_test * 256, np.round(task.x_test * 256))

    data = pixels_data(train_images=["coins"], test_images=["text"])
    data["input"]["shape"] = [200, 64, 1]
    frame = load_task(parse_spec(data), "denoise").y_test[0, ..., 0]
    rows = list(range(13, -1, -1)) + list(range(172)) + list(range(171, 157, -1))
    np.testing.assert_array_equal(codes8(frame), skimage_photo("text")[rows][:, 192:256])
