"""Your own data (`train-task --data`, a custom dataset in the spec): every bad-data case is one line,
exit code 2 and nothing written; the reader holds the images once; a spec's core from its own data."""

import dataclasses
import hashlib
import pickle
import tracemalloc

import numpy as np
import pytest
import yaml

from conftest import SPECS, one_error_line, run_cli


def digits_images_and_labels():
    """scikit-learn's digits as 8-bit pixel codes (n, 8, 8, 1) and the digit of each image."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None], digits.target


def write_png_classes(folder, images, labels, names):
    """A class-per-folder image set: images[i] as folder/names[labels[i]]/i.png."""
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / names[label] / f"{i}.png")
    return folder


def snapshot(folder):
    """Every file under ``folder`` with its SHA-256 (to prove nothing was written)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# bad data: one case each
# --------------------------------------------------------------------------------------------

X, DIGIT = digits_images_and_labels()
GOOD_Y = DIGIT % 3


def npz(**arrays):
    return lambda path: np.savez(path / "data.npz", **arrays) or path / "data.npz"


def with_nan(path):
    x = X[:200].astype(np.float32) / 256
    x[17, 3, 3, 0] = np.nan
    return npz(x=x, y=GOOD_Y[:200])(path)


def with_inf(path):
    x = X[:200].astype(np.float64) / 256
    x[5, 0, 0, 0] = np.inf
    return npz(x=x, y=GOOD_Y[:200])(path)


def pickled_member(path):
    y = np.empty(len(X), dtype=object)
    y[:] = [int(v) for v in GOOD_Y]
    np.savez(path / "data.npz", x=X, y=y)            # an object array is stored as a pickle inside the .npz
    return path / "data.npz"


def pickle_file(path):
    (path / "data.npz").write_bytes(pickle.dumps({"x": X, "y": GOOD_Y}))
    return path / "data.npz"


def folder_with_empty_class(path):
    folder = write_png_classes(path / "images", X[:90], GOOD_Y[:90], ["a", "b", "c"])
    (folder / "d").mkdir()
    return folder


def folder_with_broken_image(path):
    folder = write_png_classes(path / "images", X[:90], GOOD_Y[:90], ["a", "b", "c"])
    (folder / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return folder


def folder_with_one_class(path):
    return write_png_classes(path / "images", X[:90], np.zeros(90, int), ["only"])


BAD_DATA = [
    # (case, how to make the data under a folder, words the one error line must contain)
    ("image size", npz(x=np.zeros((100, 16, 16, 1), np.uint8), y=GOOD_Y[:100]), "16x16 images; spec digits takes 8x8"),
    ("channels", npz(x=np.repeat(X, 3, axis=-1), y=GOOD_Y), "3 channel(s) per pixel; spec digits takes 1"),
    ("labels out of range", npz(x=X, y=DIGIT), "labels from 0 to 9; the head of spec digits has 5 outputs"),
    ("negative labels", npz(x=X, y=GOOD_Y - 1), "labels from -1 to 1"),
    ("one class", npz(x=X, y=np.zeros(len(X), int)), "a single class"),
    ("float labels", npz(x=X, y=GOOD_Y.astype(np.float32)), "classify labels must be integers"),
    ("NaN", with_nan, "NaN or infinite values (image 17 is the first)"),
    ("inf", with_inf, "NaN or infinite values (image 5 is the first)"),
    ("floats outside [0, 1]", npz(x=X.astype(np.float32), y=GOOD_Y), "float images must lie in [0, 1]"),
    ("codes too wide", npz(x=X.astype(np.uint16) * 4, y=GOOD_Y), "must lie in 0..255"),
    ("fewer samples than a batch", npz(x=X[:40], y=GOOD_Y[:40]), "fewer than one batch (32)"),
    ("empty class in an .npz", npz(x=X, y=np.where(GOOD_Y == 1, 2, GOOD_Y)), "class 1 has no training samples"),
    ("x and y disagree", npz(x=X, y=GOOD_Y[:-1]), "y has 1796 samples but x has 1797"),
    ("x_test without y_test", npz(x=X, y=GOOD_Y, x_test=X[:10]), "x_test without y_test"),
    ("no y", npz(x=X), "has no 'y' array"),
    ("pickled array", pickled_member, "y is a pickled object array"),
    ("a pickle file", pickle_file, "is a Python pickle, not an .npz"),
    ("not there", lambda path: path / "missing.npz", "no such file or folder"),
    ("empty class folder", folder_with_empty_class, "class folder 'd' holds no images"),
    ("unreadable image", folder_with_broken_image, "broken.png: not a readable image"),
    ("one class folder", folder_with_one_class, "a classify task needs at least 2 sub-folders"),
]


@pytest.mark.parametrize("make,words", [case[1:] for case in BAD_DATA], ids=[case[0] for case in BAD_DATA])
def test_bad_data_is_one_line_exit_2_and_nothing_written(make, words, fresh_build, tmp_path):
    build = fresh_build("digits")
    before = snapshot(build)
    data = make(tmp_path)
    proc = run_cli("train-task", "digits", "--task", "mine", "--data", data, "--build", build, "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in one_error_line(proc)
    assert snapshot(build) == before


def test_task_names_for_user_data(fresh_build, tmp_path):
    build = fresh_build("digits")
    before = snapshot(build)
    data = npz(x=X, y=GOOD_Y)(tmp_path)
    for task, words in [("Bad Name", "must start with a lower-case letter"),
                        ("digits_0_4", "is the source task"),
                        ("parity", "pass --replace to retrain it")]:
        proc = run_cli("train-task", "digits", "--task", task, "--data", data, "--build", build)
        assert proc.returncode == 2 and words in one_error_line(proc), proc.stderr
    proc = run_cli("train-task", "digits", "--task", "a", "--task", "b", "--data", data, "--build", build)
    assert proc.returncode == 2 and "exactly one --task" in one_error_line(proc)
    assert snapshot(build) == before


# --------------------------------------------------------------------------------------------
# what the reader returns
# --------------------------------------------------------------------------------------------

def test_npz_forms_give_the_same_codes_and_a_seeded_stratified_split(digits_spec, tmp_path):
    from semifreddo.models.userdata import load_user_task

    np.savez(tmp_path / "codes.npz", x=X, y=GOOD_Y)
    np.savez_compressed(tmp_path / "floats.npz", x=X.astype(np.float64) / 255, y=GOOD_Y)   # code = v * 255; compressed too
    a = load_user_task(digits_spec, "mine", tmp_path / "codes.npz", batch_size=32)
    b = load_user_task(digits_spec, "mine", tmp_path / "floats.npz", batch_size=32)
    assert (a.kind, a.classes, len(a.x_train), len(a.x_test)) == ("classify", 3, 1347, 450)
    assert a.source["split"] == "seeded stratified 25 %" and a.source["n_test"] == 450
    np.testing.assert_array_equal(a.x_train[:], b.x_train[:])
    np.testing.assert_array_equal(a.y_test, b.y_test)
    # The images are the input grid code / 256 and each row is an original image with its label.
    rows = {X[i].tobytes(): GOOD_Y[i] for i in range(len(X))}
    first = a.x_test[:5]
    for image, label in zip(first, a.y_test[:5]):
        assert rows[np.round(image * 256).astype(np.uint8).tobytes()] == label
    # Stratified: every class keeps about its share in the held-out part.
    assert np.allclose(np.bincount(a.y_test) / 450, np.bincount(GOOD_Y) / len(X), atol=0.01)
    with pytest.raises(TypeError):
        np.asarray(a.x_train)               # the whole set is never turned into a second, float copy

    np.savez(tmp_path / "given.npz", x=X[:1000], y=GOOD_Y[:1000], x_test=X[1000:], y_test=GOOD_Y[1000:])
    c = load_user_task(digits_spec, "mine", tmp_path / "given.npz", batch_size=32)
    assert c.source["split"] == "given" and (len(c.x_train), len(c.x_test)) == (1000, 797)
    np.testing.assert_array_equal(c.x_test[:], X[1000:].astype(np.float32) / 256)


def test_image_folder_is_resized_and_converted_once(digits_spec, tmp_path):
    """RGB PNGs of twice the size: read as grey 8x8 images, classes in folder-name order."""
    from PIL import Image

    from semifreddo.models.userdata import load_user_task

    names = ["alpha", "beta"]
    for i in range(80):
        grey = np.kron(X[i, ..., 0], np.ones((2, 2), np.uint8))              # 16x16, each pixel doubled
        (tmp_path / names[i % 2]).mkdir(exist_ok=True)
        Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / names[i % 2] / f"{i:03d}.png")
    data = load_user_task(digits_spec, "mine", tmp_path, batch_size=32)
    assert data.source["prepared"] == "resized to 8x8, converted to grey scale"
    assert data.source["classes"] == names and data.classes == 2 and data.source["images"] == 80
    assert data.x_train.shape == (60, 8, 8, 1) and sorted(np.bincount(data.y_test)) == [10, 10]
    codes = np.round(np.concatenate([data.x_train[:], data.x_test[:]]) * 256)
    originals = X[:80].astype(np.float64)
    # Bilinear halving of doubled pixels returns each original pixel (grey of equal R, G, B is itself).
    assert sorted(map(bytes, codes.astype(np.uint8))) == sorted(map(bytes, originals.astype(np.uint8)))


def test_pixel_task_from_an_npz(pixels_spec, tmp_path):
    """A pixel head: y holds target images within the head's output format; a seeded split that
    cannot be stratified; a folder of class folders makes no sense for it."""
    from semifreddo.deploy.contract.errors import DataError
    from semifreddo.models.userdata import load_user_task

    pixels_spec = pixels_spec.replace(input_shape=(16, 16, 1))      # user data comes at the spec's frame

    rng = np.random.default_rng(1)
    x = rng.random((120, 16, 16, 1))
    y = (1 - x).astype(np.float32)                                   # an "invert" task
    np.savez(tmp_path / "invert.npz", x=x, y=y)
    data = load_user_task(pixels_spec, "invert", tmp_path / "invert.npz", batch_size=32)
    assert (data.kind, data.classes, data.source["split"]) == ("pixel", 1, "seeded 25 %")
    assert (len(data.x_train), len(data.x_test)) == (90, 30) and data.y_test.dtype == np.float32
    # each target still belongs to its image: 1 - target is the image, up to the input grid
    # (code = round(v * 255) is off by half a code at most, value code / 256 by v / 256 more)
    np.testing.assert_allclose(1 - data.y_test, data.x_test[:], atol=1.5 * 2.0 ** -pixels_spec.input_bits)

    np.savez(tmp_path / "far.npz", x=x, y=y * 1000)
    with pytest.raises(DataError, match=r"targets from .* the head's output format s12\.10 covers -2\.\.1\.99"):
        load_user_task(pixels_spec, "invert", tmp_path / "far.npz", batch_size=32)
    np.savez(tmp_path / "labels.npz", x=x, y=np.zeros(120, np.int64))
    with pytest.raises(DataError, match=r"a pixel head needs target images \(n, 16, 16, 1\)"):
        load_user_task(pixels_spec, "invert", tmp_path / "labels.npz", batch_size=32)
    (tmp_path / "folder" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="pixel head; give target images in an .npz"):
        load_user_task(pixels_spec, "invert", tmp_path / "folder", batch_size=32)


# --------------------------------------------------------------------------------------------
# memory: the images are held once, as input codes
# --------------------------------------------------------------------------------------------

def peak_bytes(load):
    tracemalloc.start()
    try:
        result = load()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_loading_holds_less_than_two_copies(digits_spec, tmp_path):
    """Peak memory of the loader (numpy reports its buffers to tracemalloc) against the size of x:
    about one copy for 8-bit codes, a quarter for float32 images. Reading the archive naively and
    converting to float32 (what most loaders do) measures at five copies here, so the bound can fail."""
    from semifreddo.models.userdata import load_user_task

    spec = dataclasses.replace(digits_spec, input_shape=(32, 32, 1))     # the reader needs only the fields
    rng = np.random.default_rng(0)
    n = 40_000
    x = rng.integers(0, 256, size=(n, 32, 32, 1), dtype=np.uint8)
    y = rng.integers(0, 5, size=n).astype(np.uint8)
    np.savez(tmp_path / "codes.npz", x=x, y=y)
    np.savez(tmp_path / "floats.npz", x=(x[: n // 4].astype(np.float32) / 256), y=y[: n // 4])
    size = x.nbytes                                   # 41 MB; the float32 set is as large
    del x

    peak, data = peak_bytes(lambda: load_user_task(spec, "big", tmp_path / "codes.npz", batch_size=32))
    assert len(data.x_train) + len(data.x_test) == n
    assert peak < 1.25 * size, f"uint8 images: peak {peak / 1e6:.1f} MB for {size / 1e6:.1f} MB of x"
    del data
    peak_float, data = peak_bytes(lambda: load_user_task(spec, "big", tmp_path / "floats.npz", batch_size=32))
    assert peak_float < 0.4 * size, f"float32 images: peak {peak_float / 1e6:.1f} MB for {size / 1e6:.1f} MB of x"
    del data
    naive, _ = peak_bytes(lambda: np.load(tmp_path / "codes.npz")["x"].astype(np.float32))
    assert naive > 2 * size
    print(f"x {size / 1e6:.1f} MB: loader peak {peak / 1e6:.1f} MB (uint8), {peak_float / 1e6:.1f} MB (float32); "
          f"naive load + float32 {naive / 1e6:.1f} MB")


# --------------------------------------------------------------------------------------------
# a spec's own data for the frozen core
# --------------------------------------------------------------------------------------------

def custom_spec(tmp_path, **dataset):
    data = yaml.safe_load((SPECS / "digits.yaml").read_text())
    data["name"] = "mydigits"
    data["dataset"] = {"name": "custom", **dataset}
    data["source"] = {"task": "thirds"}
    data.pop("targets")
    path = tmp_path / "spec" / "mydigits.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_custom_dataset_in_the_spec(tmp_path):
    from semifreddo.deploy.contract.errors import SpecError
    from semifreddo.models.spec import load_spec

    (tmp_path / "spec").mkdir()
    np.savez(tmp_path / "spec" / "core.npz", x=X, y=GOOD_Y)
    spec = load_spec(custom_spec(tmp_path, path="core.npz"))                 # relative to the spec's folder
    assert spec.data.dataset == "custom" and spec.data.data_path == str(tmp_path / "spec" / "core.npz")
    assert spec.task_names == ("thirds",) and spec.task_kind("thirds") == ("classify", 5)

    for dataset, words in [({"path": "missing.npz"}, "dataset.path: " + str(tmp_path / "spec" / "missing.npz")),
                           ({"path": "core.csv"}, "dataset.path: 'core.csv' is neither an .npz"),
                           ({}, "dataset.path: required field is missing"),
                           ({"path": "core.npz", "patch": 8}, "dataset.patch: unknown field")]:
        with pytest.raises(SpecError, match=words.replace(".", r"\.").replace("(", r"\(")):
            load_spec(custom_spec(tmp_path, **dataset))
    data = yaml.safe_load(custom_spec(tmp_path, path="core.npz").read_text())
    data["targets"] = [{"task": "parity"}]
    (tmp_path / "spec" / "t.yaml").write_text(yaml.safe_dump(data))
    proc = run_cli("spec", tmp_path / "spec" / "t.yaml")
    assert proc.returncode == 2 and "targets: a custom dataset provides only the source task" in one_error_line(proc)


@pytest.mark.train
def test_core_pretrained_on_the_specs_own_image_folder(tmp_path):
    """train-core on a custom dataset (a folder of PNGs): the core's source task is the folder's."""
    from semifreddo.deploy.contract.weightset import read_weight_set

    spec_path = custom_spec(tmp_path, path="images")
    write_png_classes(tmp_path / "spec" / "images", X[:400], DIGIT[:400] // 4, ["low", "mid", "high"])
    build = tmp_path / "build"
    proc = run_cli("train-core", spec_path, "--build", build, "--epochs", "1", "--subset", "64", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "source task thirds: accuracy" in proc.stdout
    ws = read_weight_set(build / "mydigits" / "weightsets" / "thirds.npz")
    assert ws.manifest["role"] == "source" and ws.manifest["classes"] == 3
    assert ws.manifest["data"]["classes"] == ["high", "low", "mid"] and ws.manifest["data"]["n_test"] == 100
    assert ws.manifest["data"]["split"] == "seeded stratified 25 %"
