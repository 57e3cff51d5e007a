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

``photos``: the photographs scikit-image ships inside its package (``spec.PHOTOGRAPHS``: camera,
astronaut, coffee, ...; ``stereo_motorcycle`` is two images, its left and right views), nothing
downloaded. Grey scale (ITU-R BT.601 luma) for a 1-channel input, RGB for a 3-channel one (a grey
photograph then has R = G = B). The spec names its training photographs (``dataset.train_images``)
and its held-out ones (``dataset.test_images``); no held-out photograph is used by any training.

* training: each training photograph is degraded whole, then cut into ``dataset.patch`` square
  patches every ``dataset.stride`` pixels (input and target alike);
* test: each held-out image becomes one frame at the input's height x width (:func:`cut_frame`:
  centre crop, or symmetric reflection where the photograph is smaller), degraded as a frame.

A task maps what a camera delivers (the scene plus Gaussian sensor noise of ``dataset.noise``) to
a per-pixel target computed on the clean scene; every task acts on each channel alone.

==========  =========================================  ==========================================
task        input                                      target
==========  =========================================  ==========================================
denoise     photo + noise                              photo
deblur      photo blurred (Gaussian, sigma 1.5) + noise  photo
edges       photo + noise                              Sobel gradient magnitude / 4, clipped to 1
sharpen     photo + noise                              photo + (photo - blur(photo, 1)), clipped
detail      photo + noise                              2 x local standard deviation (Gaussian
                                                       window, sigma 1), clipped to 1
emboss      photo + noise                              0.5 + (Sobel x + Sobel y) / 8, clipped
==========  =========================================  ==========================================

Multi-task pre-training (``source.also``) uses the same patches for every task.

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

@lru_cache(maxsize=64)
def _photo_views(name: str) -> tuple[np.ndarray, ...]:
    """The photograph(s) scikit-image ships under ``name`` (``stereo_motorcycle``: its two views),
    uint8, (h, w) for grey photographs and (h, w, 3) for colour ones. Read from the installed
    package, never downloaded."""
    import warnings

    from skimage import data as skdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = getattr(skdata, name)()
    return tuple(loaded[:2]) if name == "stereo_motorcycle" else (loaded,)


def photo_labels(name: str) -> tuple[str, ...]:
    """One label per image of a photograph: its name, or ``stereo_motorcycle-left``/``-right``."""
    return (f"{name}-left", f"{name}-right") if name == "stereo_motorcycle" else (name,)


def load_photo(name: str, channels: int) -> tuple[np.ndarray, ...]:
    """A photograph (``spec.PHOTOGRAPHS``) as images (h, w, channels), float64 in [0, 1]: grey scale
    as ITU-R BT.601 luma for ``channels == 1``, RGB for ``channels == 3`` (a grey photograph gives
    R = G = B). A name can hold more than one image (:func:`photo_labels`)."""
    images = []
    for view in _photo_views(name):
        view = np.asarray(view, np.float64) / 255.0
        if view.ndim == 2:
            view = view[..., None]
        if channels == 1 and view.shape[-1] == 3:
            view = (view @ LUMA)[..., None]
        elif channels == 3 and view.shape[-1] == 1:
            view = np.repeat(view, 3, axis=-1)
        images.append(view)
    return tuple(images)


LUMA = np.array([0.299, 0.587, 0.114])      # ITU-R BT.601


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel of an (h, w, c) image (reflected at the borders)."""
    from scipy import ndimage

    return ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="reflect")


def _sobel(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel derivatives (along x, along y) of each channel of an (h, w, c) image (channel by
    channel: on a 3-D array ``ndimage.sobel`` would also smooth across the channels)."""
    from scipy import ndimage

    gx, gy = np.empty_like(image, dtype=np.float64), np.empty_like(image, dtype=np.float64)
    for ch in range(image.shape[-1]):
        gx[..., ch] = ndimage.sobel(image[..., ch], axis=1, mode="reflect")
        gy[..., ch] = ndimage.sobel(image[..., ch], axis=0, mode="reflect")
    return gx, gy


def _sobel_magnitude(image: np.ndarray) -> np.ndarray:
    return np.hypot(*_sobel(image))


BLUR_SIGMA = 1.5          # deblur's blur
SHARPEN_SIGMA = 1.0       # sharpen's unsharp mask
DETAIL_SIGMA = 1.0        # detail's window


def degrade_and_target(photo: np.ndarray, task: str, noise: float, rng: np.random.Generator):
    """(input, target) for one (h, w, c) image, both float64 in [0, 1]. The input is what a camera
    delivers: the scene (blurred, for deblur) plus Gaussian sensor noise of ``noise``; the target is
    computed from the clean photograph. Every task acts on each channel alone."""
    def sensor(scene):
        return np.clip(scene + rng.normal(0.0, noise, scene.shape), 0, 1)

    if task == "denoise":
        return sensor(photo), photo
    if task == "deblur":
        return sensor(gaussian_blur(photo, BLUR_SIGMA)), photo
    if task == "edges":
        return sensor(photo), edge_magnitude(photo)
    if task == "sharpen":
        return sensor(photo), unsharp_mask(photo)
    if task == "detail":
        return sensor(photo), detail_map(photo)
    if task == "emboss":
        return sensor(photo), emboss(photo)
    raise KeyError(task)


def edge_magnitude(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude / 4 of each channel, clipped to [0, 1] (the edges task's target)."""
    return np.clip(_sobel_magnitude(image) / 4.0, 0, 1)


def detail_map(image: np.ndarray) -> np.ndarray:
    """2 x the local standard deviation of each channel in a Gaussian window (sigma DETAIL_SIGMA),
    clipped to [0, 1] (the detail task's target: the texture map that adaptive noise reduction and
    sharpening in a camera pipeline steer by)."""
    mean = gaussian_blur(image, DETAIL_SIGMA)
    return np.clip(2 * np.sqrt(np.maximum(gaussian_blur(image * image, DETAIL_SIGMA) - mean * mean, 0)), 0, 1)


def emboss(image: np.ndarray) -> np.ndarray:
    """0.5 + (Sobel x + Sobel y) / 8 of each channel, clipped to [0, 1] (the emboss task's target: the
    relief filter, a signed derivative along the diagonal)."""
    gx, gy = _sobel(image)
    return np.clip(0.5 + (gx + gy) / 8.0, 0, 1)


def unsharp_mask(image: np.ndarray) -> np.ndarray:
    """image + (image - blur(image, SHARPEN_SIGMA)), clipped to [0, 1] (the sharpen task's target)."""
    return np.clip(2 * image - gaussian_blur(image, SHARPEN_SIGMA), 0, 1)


def cut_patches(image: np.ndarray, patch: int, stride: int) -> np.ndarray:
    h, w = image.shape[:2]
    rows = range(0, h - patch + 1, stride)
    cols = range(0, w - patch + 1, stride)
    return np.stack([image[r:r + patch, c:c + patch] for r in rows for c in cols])


def cut_frame(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``height`` x ``width`` frame at the centre of ``image``: a centre crop along a side that
    is longer than the frame; along a shorter side the image is first extended on both sides by
    symmetric reflection (the edge pixel repeated, ``numpy.pad(mode="symmetric")``), half each way
    (the odd pixel after the image)."""
    h, w = image.shape[:2]
    grow = [(max(0, height - h) // 2, max(0, height - h) - max(0, height - h) // 2),
            (max(0, width - w) // 2, max(0, width - w) - max(0, width - w) // 2)]
    image = np.pad(image, grow + [(0, 0)] * (image.ndim - 2), mode="symmetric")
    h, w = image.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    return image[top:top + height, left:left + width]


def photo_frames(spec: Spec, names) -> list[tuple[str, np.ndarray]]:
    """(label, frame) for every image of the named photographs (:func:`photo_labels`), cut at the
    spec's input height x width with :func:`cut_frame`."""
    h, w, c = spec.input_shape
    return [(label, cut_frame(image, h, w)) for name in names
            for label, image in zip(photo_labels(name), load_photo(name, c))]


def _photos_task(spec: Spec, task: str) -> TaskData:
    """Training: patches of ``dataset.patch`` cut at ``dataset.stride`` from every training
    photograph, each degraded whole. Test: one frame at the input's height x width per held-out
    image (:func:`cut_frame`), degraded as a frame (the camera delivers nothing beyond it)."""
    # Different noise for training and test photographs, both fixed by the spec's seed.
    rng_train = np.random.default_rng([spec.data.seed, 1])
    rng_test = np.random.default_rng([spec.data.seed, 2])
    bits, c = spec.input_bits, spec.input_shape[2]
    xs, ys = [], []
    for name in spec.data.train_images:
        for image in load_photo(name, c):
            source, target = degrade_and_target(image, task, spec.data.noise, rng_train)
            xs.append(quantize_input(cut_patches(source, spec.data.patch, spec.data.stride), bits))
            ys.append(cut_patches(target, spec.data.patch, spec.data.stride).astype(np.float32))
    frames = [degrade_and_target(frame, task, spec.data.noise, rng_test)
              for _, frame in photo_frames(spec, spec.data.test_images)]
    x_test = quantize_input(np.stack([f[0] for f in frames]), bits)
    y_test = np.stack([f[1] for f in frames]).astype(np.float32)
    return TaskData(task, "pixel", c, np.concatenate(xs), np.concatenate(ys), x_test, y_test)


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(prediction, np.float64) - np.asarray(target, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
