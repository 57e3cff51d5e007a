"""Tasks on data that ships inside scikit-learn (nothing is downloaded).

``digits``: the 1,797 8x8 handwritten digits of ``sklearn.datasets.load_digits``. One fixed,
seeded split (75 % train, 25 % test, stratified by digit) serves every task, so a target task
never trains on an image that another task tests on.

==============  =====================================  =======
task            label                                  classes
==============  =====================================  =======
digits_0_4      the digit, images of 0-4 only          5
digits_5_9      the digit minus 5, images of 5-9 only  5
parity          digit % 2, all images                  2
loops           1 for digits with a closed loop        2
                (0, 6, 8, 9), all images
digits_all      the digit                              10
==============  =====================================  =======

``photos``: the two sample photographs of ``sklearn.datasets.load_sample_images`` (china.jpg,
flower.jpg), in grey scale. A task maps a degraded or raw image to a per-pixel target computed on
the whole photograph; patches are cut afterwards. The spec names the training photograph; the
other one is only ever used for evaluation.

==========  ====================================  ==========================================
task        input                                 target
==========  ====================================  ==========================================
denoise     photo + Gaussian noise (dataset.noise)  photo
deblur      photo blurred (Gaussian, sigma 1.5)   photo
edges       photo                                 Sobel gradient magnitude / 4, clipped to 1
sharpen     photo                                 photo + (photo - blur(photo, 1)), clipped
==========  ====================================  ==========================================

Every input is quantized to the network's input grid here, ``code / 2**input.bits`` with
``code = round(v * (2**input.bits - 1))`` (the board-side contract's one input quantization,
:mod:`semifreddo.deploy.contract.streams`), so the QKeras model, the C simulation and the board all see
identical numbers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from semifreddo.deploy.contract.streams import checked_codes, grid_values

from .spec import CUSTOM_DATASET, Spec
from .taskdata import TaskData
from .userdata import load_user_task


SAMPLES = 200            # held-out samples a bundle ships per task


def quantize_input(values: np.ndarray, bits: int) -> np.ndarray:
    """Map floats in [0, 1] to the input grid ``code / 2**bits`` by the board-side contract's one
    input quantization (:func:`semifreddo.deploy.contract.streams.float_codes`)."""
    return grid_values(checked_codes(np.asarray(values), bits), bits)


def load_task(spec: Spec, task: str) -> TaskData:
    if spec.data.dataset == CUSTOM_DATASET:           # the spec's own data: its source task
        return load_user_task(spec, task, spec.data.data_path, batch_size=spec.data.train_core.batch_size)
    if spec.data.dataset == "digits":
        return _digits_task(task, spec.data.seed, spec.input_bits)
    return _photos_task(spec, task)


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------

_DIGIT_TASKS = {
    "digits_0_4": (lambda d: d <= 4, lambda d: d, 5),
    "digits_5_9": (lambda d: d >= 5, lambda d: d - 5, 5),
    "parity": (lambda d: np.ones_like(d, bool), lambda d: d % 2, 2),
    "loops": (lambda d: np.ones_like(d, bool), lambda d: np.isin(d, (0, 6, 8, 9)).astype(int), 2),
    "digits_all": (lambda d: np.ones_like(d, bool), lambda d: d, 10),
}


@lru_cache(maxsize=4)
def _digits_split(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0)[..., None]          # pixel values 0..16 -> [0, 1]
    idx_train, idx_test = train_test_split(np.arange(len(images)), test_size=0.25, random_state=seed,
                                           stratify=digits.target)
    return images, digits.target, np.sort(idx_train), np.sort(idx_test)


def _digits_task(task: str, seed: int, bits: int) -> TaskData:
    select, label, classes = _DIGIT_TASKS[task]
    images, digits, idx_train, idx_test = _digits_split(seed)
    x = quantize_input(images, bits)

    def part(idx):
        keep = idx[select(digits[idx])]
        return x[keep], label(digits[keep]).astype(np.int64)

    x_train, y_train = part(idx_train)
    x_test, y_test = part(idx_test)
    return TaskData(task, "classify", classes, x_train, y_train, x_test, y_test)


# --------------------------------------------------------------------------------------------
# photos
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=2)
def load_photo(name: str) -> np.ndarray:
    """A sample photograph in grey scale, float64 in [0, 1], shape (427, 640)."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image(name).astype(np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])     # ITU-R BT.601 luma


def degrade_and_target(photo: np.ndarray, task: str, noise: float, rng: np.random.Generator):
    """(input, target) for one photograph, both float64 images in [0, 1]."""
    from scipy import ndimage

    if task == "denoise":
        return np.clip(photo + rng.normal(0.0, noise, photo.shape), 0, 1), photo
    if task == "deblur":
        return ndimage.gaussian_filter(photo, 1.5, mode="reflect"), photo
    if task == "edges":
        gx = ndimage.sobel(photo, axis=1, mode="reflect")
        gy = ndimage.sobel(photo, axis=0, mode="reflect")
        return photo, np.clip(np.hypot(gx, gy) / 4.0, 0, 1)
    if task == "sharpen":
        blurred = ndimage.gaussian_filter(photo, 1.0, mode="reflect")
        return photo, np.clip(2 * photo - blurred, 0, 1)
    raise KeyError(task)


def cut_patches(image: np.ndarray, patch: int, stride: int) -> np.ndarray:
    return cut_frames(image, (patch, patch), (stride, stride))


def cut_frames(image: np.ndarray, size: tuple[int, int], stride: tuple[int, int] | None = None) -> np.ndarray:
    """Every ``size`` (height, width) window at ``stride`` (default: tiles that do not overlap). A
    photograph smaller than one window is first extended by symmetric reflection at its far edges."""
    (fh, fw), (sh, sw) = size, stride or size
    h, w = image.shape[:2]
    if h < fh or w < fw:
        pad = [(0, max(0, fh - h)), (0, max(0, fw - w))] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, pad, mode="symmetric")
        h, w = image.shape[:2]
    return np.stack([image[r:r + fh, c:c + fw] for r in range(0, h - fh + 1, sh) for c in range(0, w - fw + 1, sw)])


def _photos_task(spec: Spec, task: str) -> TaskData:
    # Different noise for training and test photographs, both fixed by the spec's seed.
    rng_train = np.random.default_rng([spec.data.seed, 1])
    rng_test = np.random.default_rng([spec.data.seed, 2])
    # Training: overlapping patches. Test: whole frames of the size the IP is built for (input.shape).
    frame = tuple(spec.input_shape[:2])
    parts = []
    for photo_name, rng, cut in ((spec.data.train_image, rng_train,
                                  lambda im: cut_patches(im, spec.data.patch, spec.data.stride)),
                                 (spec.data.test_image, rng_test, lambda im: cut_frames(im, frame))):
        source, target = degrade_and_target(load_photo(photo_name), task, spec.data.noise, rng)
        x = quantize_input(cut(source)[..., None], spec.input_bits)
        y = cut(target)[..., None].astype(np.float32)
        parts.append((x, y))
    (x_train, y_train), (x_test, y_test) = parts
    return TaskData(task, "pixel", 1, x_train, y_train, x_test, y_test)


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(prediction, np.float64) - np.asarray(target, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
