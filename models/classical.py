"""The classical filter for each photos task: the baseline a learned pixel network must beat.

==========  =========================================================  ==========================
task        filter                                                     its one parameter
==========  =========================================================  ==========================
denoise     Gaussian blur                                              sigma
deblur      Wiener deconvolution with the task's Gaussian blur         balance (noise-to-signal)
            (sigma 1.5) as the point spread function
edges       Sobel gradient magnitude / 4 after a Gaussian blur         sigma (0: plain Sobel)
sharpen     unsharp mask (the task's own) after a Gaussian blur        sigma (0: plain unsharp)
detail      the task's local standard deviation after a Gaussian blur  sigma (0: none)
emboss      the task's emboss after a Gaussian blur                    sigma (0: none)
==========  =========================================================  ==========================

Each filter's parameter is chosen from a small grid by its PSNR on the *training* photographs
(:func:`tune`), never on the held-out ones, so the baseline is tuned as fairly as the network.
The filters read an image as the input codes it arrived as, ``code / (2**bits - 1)``.
"""

from __future__ import annotations

import numpy as np

from .datasets import (BLUR_SIGMA, degrade_and_target, detail_map, edge_magnitude, emboss, gaussian_blur, load_photo,
                       psnr, quantize_input, unsharp_mask)

FILTERS = {
    "denoise": ("Gaussian blur", "sigma", (0.5, 0.75, 1.0, 1.5, 2.0)),
    "deblur": ("Wiener deconvolution", "balance", (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)),
    "edges": ("Sobel after a Gaussian blur", "sigma", (0.0, 0.5, 1.0, 1.5, 2.0)),
    "sharpen": ("unsharp mask after a Gaussian blur", "sigma", (0.0, 0.5, 1.0, 1.5)),
    "detail": ("local standard deviation after a Gaussian blur", "sigma", (0.0, 0.5, 1.0, 1.5)),
    "emboss": ("emboss after a Gaussian blur", "sigma", (0.0, 0.5, 1.0, 1.5)),
}
BORDER = 16               # Wiener deconvolution works on the image extended by this much reflection


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_blur(image, sigma) if sigma > 0 else image


def _gaussian_psf(sigma: float) -> np.ndarray:
    radius = int(np.ceil(4 * sigma))
    axis = np.arange(-radius, radius + 1)
    kernel = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * sigma ** 2))
    return kernel / kernel.sum()


def _wiener(image: np.ndarray, balance: float) -> np.ndarray:
    from skimage.restoration import wiener

    psf = _gaussian_psf(BLUR_SIGMA)
    out = np.empty_like(image)
    for ch in range(image.shape[-1]):       # the FFT wraps around: extend by reflection, then crop
        padded = np.pad(image[..., ch], BORDER, mode="symmetric")
        out[..., ch] = wiener(padded, psf, balance)[BORDER:-BORDER, BORDER:-BORDER]
    return np.clip(out, 0, 1)


def classical_filter(task: str, image: np.ndarray, parameter: float) -> np.ndarray:
    """The classical filter of ``task`` on one (h, w, c) image in [0, 1]."""
    if task == "denoise":
        return _smooth(image, parameter)
    if task == "deblur":
        return _wiener(image, parameter)
    if task == "edges":
        return edge_magnitude(_smooth(image, parameter))
    if task == "sharpen":
        return unsharp_mask(_smooth(image, parameter))
    if task == "detail":
        return detail_map(_smooth(image, parameter))
    if task == "emboss":
        return emboss(_smooth(image, parameter))
    raise KeyError(task)


def as_read(x: np.ndarray, bits: int) -> np.ndarray:
    """Network inputs (on the input grid, ``code / 2**bits``) as the image they encode, ``code / (2**bits - 1)``."""
    return np.asarray(x, np.float64) * (2 ** bits / (2 ** bits - 1))


def tune(task: str, photos, channels: int, noise: float, seed: int, bits: int) -> float:
    """The grid value of ``task``'s filter with the best PSNR over the given (training) photographs,
    each degraded as the task degrades it and quantized to the input's codes."""
    rng = np.random.default_rng([seed, 3])
    pairs = []
    for name in photos:
        for image in load_photo(name, channels):
            x, y = degrade_and_target(image, task, noise, rng)
            pairs.append((as_read(quantize_input(x, bits), bits), y))
    grid = FILTERS[task][2]
    scores = [np.mean([psnr(classical_filter(task, x, p), y) for x, y in pairs]) for p in grid]
    return grid[int(np.argmax(scores))]
