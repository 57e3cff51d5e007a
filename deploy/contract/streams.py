"""The data the IP streams: images in, output codes out (numpy and the standard library only).

Input: one 32-bit AXI-Stream beat per pixel, channel ``c``'s unsigned code in bits
``[c*b, (c+1)*b)`` where ``b`` is the input bit width. Images may be given as integer codes
``0 .. 2**b - 1`` or as floats in [0, 1], which become codes by the one input quantization of the
toolkit, :func:`float_codes`: ``code = round(v * (2**b - 1))``, round half to even (the 8-bit image
convention ``code = v * 255``: 0.0 and 1.0 are the darkest and the brightest code). The QKeras
model computes on the grid value ``code / 2**b`` (:func:`grid_values`); every stage (the shipped
datasets, user data, ``semifreddo run``/``csim``, the driver, the samples in a bundle) maps floats
through :func:`float_codes`, so a float image reaches the IP as the codes its weight set was
trained on. Nothing saturates silently: floats outside [0, 1], codes outside ``0 .. 2**b - 1``,
NaN, dtypes that cannot be pixels (bool, complex, strings, objects) and a wrong channel count are
refused with one line; ``scale=`` (``--input-scale``) divides images first (16 for scikit-learn's
digits at 0..16, 255 for 8-bit images meant as floats).

Output: one beat per value, the two's-complement code of the head's output format, sign-extended
to 32 bits. Values are ``code * 2**-frac`` and are returned shaped like the QKeras model's
outputs: ``(n, outputs)`` for classification, ``(n, height, width, outputs)`` per pixel.

The shapes and formats come from the register map's ``io`` section.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import SemifreddoError
from .fileio import atomic_write_bytes
from .interface import bank_shift


def frame_shape(io: dict) -> tuple[int, ...]:
    return tuple(int(v) for v in io["input_shape"])


def output_shape(io: dict) -> tuple[int, ...]:
    return tuple(int(v) for v in io["output_shape"])


def float_codes(values, bits: int) -> np.ndarray:
    """The input quantization: floats in [0, 1] -> ``bits``-bit codes ``round(v * (2**bits - 1))``
    (round half to even). The caller has checked the range (:func:`input_codes`)."""
    top = (1 << bits) - 1
    return np.round(np.asarray(values, dtype=np.float64) * top).astype(np.uint32)


def grid_values(codes, bits: int) -> np.ndarray:
    """Codes -> the values the QKeras model computes on, ``code / 2**bits`` (exact in float32)."""
    return (np.asarray(codes, dtype=np.float64) / (1 << bits)).astype(np.float32)


def grid_codes(values, bits: int) -> np.ndarray:
    """Grid values ``code / 2**bits`` (the models' training arrays) -> their codes, exactly."""
    return np.round(np.asarray(values, dtype=np.float64) * (1 << bits)).astype(np.uint32)


def checked_codes(array: np.ndarray, bits: int, where: str = "images", scale: float | None = None,
                  first_row: int = 0, scale_option: bool = True) -> np.ndarray:
    """Images (any shape) -> their ``bits``-bit codes (uint32), or one line saying what is wrong.

    Integers are codes and must lie in ``0 .. 2**bits - 1``; floats must lie in [0, 1] and go
    through :func:`float_codes`. ``scale`` divides the images first (then any real dtype is taken
    as values). ``first_row`` numbers the first image in messages (for data read in chunks);
    ``scale_option``: whether the refusals may point to ``--input-scale`` (the caller has it)."""
    top = (1 << bits) - 1
    dtype = array.dtype
    if dtype.kind not in "uif":          # not bool, complex, strings, objects, dates or time spans
        raise SemifreddoError(f"{where} have dtype {dtype}, which cannot be pixels; give floats in [0, 1] or integer "
                              f"{bits}-bit pixel codes 0..{top}")
    if scale is not None:
        scale = float(scale)
        if not np.isfinite(scale) or scale <= 0:
            raise SemifreddoError(f"input scale {scale:g} must be a positive number (the value that means full "
                                  "brightness, e.g. 255 or 16)")
        with np.errstate(over="ignore"):        # a tiny scale overflows to inf, refused below
            array = array.astype(np.float64) / scale
    elif dtype.kind in "ui":
        if array.size and (array.min() < 0 or array.max() > top):
            raise SemifreddoError(f"{where} hold integer pixel codes from {array.min()} to {array.max()}; integer "
                                  f"images are codes of the {bits}-bit input and must lie in 0..{top} (other "
                                  f"integers: {'give --input-scale MAX' if scale_option else 'divide by MAX'}, the "
                                  "value that means full brightness)")
        return array.astype(np.uint32)
    finite = np.isfinite(array)
    if not finite.all():
        image = first_row + int(np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))[0]) if array.ndim else 0
        raise SemifreddoError(f"{where} hold NaN or infinite values (image {image} is the first)")
    if array.size and (array.min() < 0 or array.max() > 1):
        low, high = float(array.min()), float(array.max())
        hint = (f"divide them by their maximum{f' or give --input-scale {high:g}' if scale_option else ''}" if low >= 0
                else "shift and scale them into [0, 1] first (negative values are not pixels)")
        raise SemifreddoError(f"{where} hold floats from {low:.4g} to {high:.4g}"
                              f"{' after dividing by the scale ' + format(scale, 'g') if scale is not None else ''}; "
                              f"float images must lie in [0, 1]: {hint}")
    return float_codes(array, bits)


def input_codes(images, io: dict, scale: float | None = None) -> np.ndarray:
    """Validate a batch (or a single image) and return its pixel codes, shape (n, h, w, c)."""
    shape = frame_shape(io)
    array = np.asarray(images)
    if array.shape == shape:
        array = array[None]
    if array.ndim == 4 and array.shape[1:3] == shape[:2] and array.shape[3] != shape[2]:
        raise SemifreddoError(f"images have shape {array.shape}: {array.shape[3]} channel(s) per pixel, this IP takes "
                              f"{shape[2]}; expected (n, {', '.join(map(str, shape))})")
    if array.ndim != 4 or array.shape[1:] != shape:
        raise SemifreddoError(f"images have shape {array.shape}; expected (n, {', '.join(map(str, shape))}) "
                              f"or a single image {shape}")
    return checked_codes(array, int(io["input_bits"]), scale=scale)


def pack_pixels(codes: np.ndarray, io: dict) -> np.ndarray:
    """Pixel codes (n, h, w, c) -> one uint32 beat per pixel."""
    bits = int(io["input_bits"])
    shifts = (np.arange(codes.shape[-1], dtype=np.uint32) * bits).astype(np.uint32)
    return np.bitwise_or.reduce(codes.astype(np.uint32) << shifts, axis=-1).reshape(-1).astype(np.uint32)


def tag_banks(beats: np.ndarray, frame_banks, banks: int, io: dict) -> np.ndarray:
    """Input beats with each frame's weight bank in the stream's side-band field: the top
    ``bank_bits(banks)`` TDATA bits of every beat of the frame (the IP reads the frame's first)."""
    frame_banks = np.asarray(frame_banks, dtype=np.int64).reshape(-1)
    per_frame = int(io["input_beats"])
    if frame_banks.size * per_frame != np.asarray(beats).size:
        raise SemifreddoError(f"{frame_banks.size} bank number(s) for {np.asarray(beats).size // per_frame} frame(s)")
    bad = (frame_banks < 0) | (frame_banks >= banks)
    if bad.any():
        raise SemifreddoError(f"bank {int(frame_banks[bad][0])} does not exist: this IP has banks 0..{banks - 1}")
    if banks == 1:
        return np.asarray(beats, dtype=np.uint32)
    tags = (np.repeat(frame_banks, per_frame).astype(np.uint32) << np.uint32(bank_shift(banks)))
    return np.asarray(beats, dtype=np.uint32) | tags


def output_values(beats: np.ndarray, n_frames: int, io: dict) -> np.ndarray:
    """Output beats (sign-extended codes) -> real values shaped like the QKeras model's output."""
    codes = np.asarray(beats).astype(np.uint32).view(np.int32).astype(np.int64)
    expected = n_frames * int(io["output_beats"])
    if codes.size != expected:
        raise SemifreddoError(f"got {codes.size} output values, expected {expected} for {n_frames} frame(s)")
    values = codes.astype(np.float64) * 2.0 ** -int(io["output_frac"])
    return values.astype(np.float32).reshape((n_frames,) + output_shape(io))


def add_input_scale_argument(p) -> None:
    """The command-line option ``--input-scale``: the value that means full brightness (for `run` and `csim`)."""
    p.add_argument("--input-scale", type=float, metavar="MAX",
                   help="divide the images by MAX first, the value that means full brightness (e.g. 255 for "
                        "8-bit images stored as floats, 16 for scikit-learn's digits); the result must lie in [0, 1]")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_images(path) -> np.ndarray:
    """Images for the commands that take ``--input``: a plain .npy array (never unpickled), or one
    8-bit PNG or JPEG photograph, returned as floats ``code / 255`` in [0, 1], shape (1, h, w, c)."""
    kind = _image_file_kind(path)
    if kind in ("PNG", "JPEG") or str(path).lower().endswith(IMAGE_SUFFIXES):
        return read_photo(path)
    try:
        images = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SemifreddoError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SemifreddoError(f"{path}: is a folder, not a .npy file") from None
    except Exception as exc:             # numpy's header parser raises many kinds; nothing is unpickled
        kind = _image_file_kind(path)
        if kind:
            raise SemifreddoError(f"{path}: is a {kind} image; --input takes a PNG or JPEG photograph or a .npy "
                                  "array of images (n, h, w, c): convert it to PNG first") from None
        raise SemifreddoError(f"{path}: not a plain .npy array ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(images, np.ndarray):
        raise SemifreddoError(f"{path}: expected one .npy array, got an .npz archive")
    return images


# How common image files begin (PNG, JPEG, GIF, BMP, TIFF), to name them when one is given for a .npy.
_IMAGE_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
                b"MM\x00*": "TIFF"}


def _image_file_kind(path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _IMAGE_MAGIC.items() if head.startswith(magic)), None)


# Photographs in and out go through Pillow, which every PYNQ image ships (imported only when used).
# 8-bit grey (L) and colour (RGB) are pixels as the IP takes them; a palette image is its colours.
_PHOTO_MODES = {"L": 1, "RGB": 3, "P": 3}


def read_photo(path) -> np.ndarray:
    """One 8-bit grey or colour PNG/JPEG as floats ``code / 255``, shape (1, h, w, channels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in _PHOTO_MODES:
                depth = "16-bit" if mode.startswith("I") else f"mode {mode}"
                hint = ("save it with 8 bits per channel" if mode.startswith("I") else
                        "save it without the alpha channel" if "A" in mode else "save it as 8-bit grey or RGB")
                raise SemifreddoError(f"{path}: a {depth} image; the IP takes 8-bit grey or RGB pixels: {hint}")
            pixels = np.asarray(image.convert("RGB") if mode == "P" else image, dtype=np.uint8)
    except FileNotFoundError:
        raise SemifreddoError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SemifreddoError(f"{path}: is a folder, not an image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:   # Pillow's truncated/corrupt file errors
        raise SemifreddoError(f"{path}: not a readable PNG or JPEG image ({exc.__class__.__name__}: {exc})") from None
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    return (pixels.astype(np.float64) / 255.0)[None]


def photo_bytes(frame: np.ndarray) -> bytes:
    """One output frame (h, w, 1 or 3) as an 8-bit PNG: values clipped to [0, 1], code round(v * 255)."""
    from PIL import Image

    codes = np.round(np.clip(np.asarray(frame, np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(codes[..., 0] if codes.shape[-1] == 1 else codes).save(buffer, format="PNG")
    return buffer.getvalue()


def writes_photos(path) -> bool:
    return str(path).lower().endswith(".png")


def check_photo_output(path, io: dict) -> None:
    """Refuse a PNG output for an IP whose outputs are not images, before anything runs."""
    shape = output_shape(io)
    if writes_photos(path) and (len(shape) != 3 or shape[-1] not in (1, 3)):
        raise SemifreddoError(f"{path}: this IP outputs {shape} values per frame, not an image; write a .npy file")


def save_outputs(path, outputs: np.ndarray) -> list:
    """Write outputs atomically: a .npy array, or PNG images (``out.png`` for one frame, ``out_0000.png``,
    ... for several; values clipped to [0, 1]). Returns the paths written."""
    path = Path(path)
    if writes_photos(path):
        names = [path] if len(outputs) == 1 else [path.with_name(f"{path.stem}_{i:04d}.png") for i in range(len(outputs))]
        for name, frame in zip(names, outputs):
            atomic_write_bytes(name, photo_bytes(frame))
        return names
    buffer = io.BytesIO()
    np.save(buffer, outputs)
    atomic_write_bytes(path, buffer.getvalue())
    return [path]
