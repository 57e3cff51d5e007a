"""The data the IP streams: images in, output codes out (numpy and the standard library only).

Input: one 32-bit AXI-Stream beat per pixel, channel ``c``'s unsigned code in bits
``[c*b, (c+1)*b)`` where ``b`` is the input bit width. Images may be given as floats in [0, 1]
(quantized here exactly as the QKeras model's input quantizer does: round half to even, clip to
``0 .. 2**b - 1``, value ``code / 2**b``) or as integer codes.

Output: one beat per value, the two's-complement code of the head's output format, sign-extended
to 32 bits. Values are ``code * 2**-frac`` and are returned shaped like the QKeras model's
outputs: ``(n, outputs)`` for classification, ``(n, height, width, outputs)`` per pixel.

The shapes and formats come from the register map's ``io`` section.
"""

from __future__ import annotations

import io

import numpy as np

from .errors import SemifreddoError
from .fileio import atomic_write_bytes


def frame_shape(io: dict) -> tuple[int, ...]:
    return tuple(int(v) for v in io["input_shape"])


def output_shape(io: dict) -> tuple[int, ...]:
    return tuple(int(v) for v in io["output_shape"])


def input_codes(images, io: dict) -> np.ndarray:
    """Validate a batch (or a single image) and return its pixel codes, shape (n, h, w, c)."""
    shape = frame_shape(io)
    bits = int(io["input_bits"])
    array = np.asarray(images)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise SemifreddoError(f"images have dtype {array.dtype}; expected floats in [0, 1] or integer "
                              f"{bits}-bit pixel codes")
    if array.shape == shape:
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != shape:
        raise SemifreddoError(f"images have shape {array.shape}; expected (n, {', '.join(map(str, shape))}) "
                              f"or a single image {shape}")
    top = (1 << bits) - 1
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > top):
            raise SemifreddoError(f"integer images are pixel codes and must lie in 0..{top} "
                                  f"({bits}-bit input), got {array.min()}..{array.max()}")
        return array.astype(np.uint32)
    if not np.isfinite(array).all():
        raise SemifreddoError("images contain NaN or infinite values")
    return np.clip(np.round(array.astype(np.float64) * (1 << bits)), 0, top).astype(np.uint32)


def pack_pixels(codes: np.ndarray, io: dict) -> np.ndarray:
    """Pixel codes (n, h, w, c) -> one uint32 beat per pixel."""
    bits = int(io["input_bits"])
    shifts = (np.arange(codes.shape[-1], dtype=np.uint32) * bits).astype(np.uint32)
    return np.bitwise_or.reduce(codes.astype(np.uint32) << shifts, axis=-1).reshape(-1).astype(np.uint32)


def output_values(beats: np.ndarray, n_frames: int, io: dict) -> np.ndarray:
    """Output beats (sign-extended codes) -> real values shaped like the QKeras model's output."""
    codes = np.asarray(beats).astype(np.uint32).view(np.int32).astype(np.int64)
    expected = n_frames * int(io["output_beats"])
    if codes.size != expected:
        raise SemifreddoError(f"got {codes.size} output values, expected {expected} for {n_frames} frame(s)")
    values = codes.astype(np.float64) * 2.0 ** -int(io["output_frac"])
    return values.astype(np.float32).reshape((n_frames,) + output_shape(io))


def load_images(path) -> np.ndarray:
    """Images from a plain .npy file (never unpickled), for the commands that take ``--input``."""
    try:
        images = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SemifreddoError(f"{path}: no such file") from None
    except ValueError as exc:
        raise SemifreddoError(f"{path}: not a plain .npy array ({exc})") from None
    if not isinstance(images, np.ndarray):
        raise SemifreddoError(f"{path}: expected one .npy array, got an .npz archive")
    return images


def save_outputs(path, outputs: np.ndarray) -> None:
    """Write outputs as a .npy file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, outputs)
    atomic_write_bytes(path, buffer.getvalue())
