"""Your own data for a task: an ``.npz`` archive, or a folder of images with one sub-folder per class.

Two readers, one per form, both returning a :class:`~semifreddo.models.datasets.TaskData`:

:func:`read_npz`
    ``x``: images ``(n, H, W, C)`` shaped like the spec's input, integer pixel codes of the spec's
    ``input.bits`` (uint8, uint16, ...) or floats in [0, 1]; ``y``: classify, integer labels in
    ``0 .. head.outputs - 1``; pixel, target images ``(n, H, W, head.outputs)``, floats within the
    head's output format. Optionally ``x_test`` and ``y_test``; otherwise a seeded split holds out
    25 % (stratified by label for classify tasks).
:func:`read_image_folder`
    One sub-folder per class (classes numbered in sorted folder-name order), read once with
    ``keras.utils.image_dataset_from_directory``: resized to the spec's H x W (bilinear), converted
    to grey scale (1 input channel; 3: RGB, 4: RGBA). An 8-bit pixel ``p`` stands for ``p / 255``.

Pixel values become input codes by the board-side contract's one input quantization
(:func:`semifreddo.deploy.contract.streams.checked_codes`: integers are codes; a float ``v`` in [0, 1]
becomes ``round(v * (2**bits - 1))``; anything else is refused), so ``semifreddo run`` on the same
images computes what training saw.

**Nothing is unpickled**: an object array is refused from its header. **Memory**: the images are
held once, as input codes (uint8 for inputs of up to 8 bits, uint16 above) in one array whose
rows are ordered training part first, test part second, so both parts are views of it. Each
``.npy`` member is streamed out of the archive (stored or compressed) in chunks of about 1 MB
that are checked and converted on the way in; a chunk's rows are written straight to their
place. Training reads :class:`GridImages` a batch at a time as float32 (``code / 2**bits``). So
loading and training hold one code per pixel plus a chunk: for uint8 images about one copy of
``x``, for float images a quarter of it or less; pixel targets are held once as float32.
``tests/test_userdata.py`` measures it.

Every problem is a :class:`~semifreddo.deploy.contract.errors.DataError`: one line naming the file and
what is wrong, raised before training starts and before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract.errors import DataError, SemifreddoError
from semifreddo.deploy.contract.streams import checked_codes, float_codes

from .taskdata import TaskData
from .spec import Spec

NPZ_MEMBERS = ("x", "y", "x_test", "y_test")
CHUNK_BYTES = 1 << 20          # rows streamed per chunk: about this many bytes of the source array
TEST_FRACTION = 0.25
IMAGE_BATCH = 256
COLOR_MODES = {1: ("grayscale", "converted to grey scale"), 3: ("rgb", "kept as RGB"), 4: ("rgba", "kept as RGBA")}


class GridImages:
    """Images held as input codes, read as float32 values ``code / 2**bits`` a slice at a time.

    Indexing (an int, a slice, an index array) returns a new float32 array of just those images.
    Turning the whole thing into one array is refused: it would be the second copy this class
    exists to avoid."""

    def __init__(self, codes: np.ndarray, bits: int):
        self.codes, self.bits = codes, bits
        self.scale = np.float32(2.0 ** -bits)         # exact: codes have at most 16 bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    @property
    def ndim(self) -> int:
        return self.codes.ndim

    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key) -> np.ndarray:
        return self.codes[key].astype(np.float32) * self.scale

    def __array__(self, dtype=None):
        raise TypeError("GridImages hands out slices; converting all images at once would copy them")


def load_user_task(spec: Spec, task: str, path: str | os.PathLike, *, batch_size: int, seed: int | None = None) -> TaskData:
    """A task from the user's data at ``path`` (an .npz or a folder of class folders)."""
    given = str(path)
    path = Path(path)
    seed = spec.data.seed if seed is None else seed
    if path.is_dir():
        return read_image_folder(path, spec, task, batch_size=batch_size, seed=seed, given=given)
    if not path.exists():
        raise DataError(f"{given}: no such file or folder (expected an .npz or a folder with one sub-folder per class)")
    return read_npz(path, spec, task, batch_size=batch_size, seed=seed, given=given)


# --------------------------------------------------------------------------------------------
# what the two forms share: input codes, labels, the split
# --------------------------------------------------------------------------------------------

def _code_dtype(bits: int) -> np.dtype:
    return np.dtype(np.uint8 if bits <= 8 else np.uint16)


def _input_codes(chunk: np.ndarray, bits: int, where: str, first_row: int) -> np.ndarray:
    """Check a chunk of images and return its input codes."""
    try:
        return checked_codes(chunk, bits, where, first_row=first_row, scale_option=False).astype(_code_dtype(bits))
    except SemifreddoError as exc:
        raise DataError(str(exc)) from None


def _check_labels(y_train: np.ndarray, y_test: np.ndarray | None, spec: Spec, where: str) -> int:
    """Classify labels: integers in 0..head.outputs-1, at least 2 classes, none without training
    samples. Returns the number of classes (largest label + 1)."""
    outputs = spec.head_outputs
    every = y_train if y_test is None else np.concatenate([y_train, y_test])
    if every.min() < 0 or every.max() >= outputs:
        raise DataError(f"{where} holds labels from {every.min()} to {every.max()}; the head of spec {spec.name} has "
                        f"{outputs} outputs, so labels must lie in 0..{outputs - 1}")
    classes = int(every.max()) + 1
    counts = np.bincount(y_train, minlength=classes)
    if classes < 2 or np.count_nonzero(counts) < 2:
        raise DataError(f"{where} holds a single class ({int(every.max())}); a classify task needs at least 2")
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise DataError(f"{where}: class {int(empty[0])} has no training samples (labels run 0..{classes - 1}); "
                        "number the classes 0..k-1 without gaps")
    return classes


def _seeded_split(n: int, labels: np.ndarray | None, seed: int, where: str) -> tuple[np.ndarray, int, str]:
    """(source row of every destination row, training rows, how) for a seeded split holding out
    25 %, stratified by ``labels`` when given. Each part keeps the source order."""
    from sklearn.model_selection import train_test_split

    if labels is not None:
        counts = np.bincount(labels)
        rare = np.flatnonzero((counts > 0) & (counts < 2))
        if rare.size:
            raise DataError(f"{where}: class {int(rare[0])} has a single sample; a stratified split needs at least 2 "
                            "per class (or give x_test and y_test)")
    try:
        train, test = train_test_split(np.arange(n), test_size=TEST_FRACTION, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise DataError(f"{where}: too few samples to hold out 25 % ({exc})") from None
    how = f"seeded{' stratified' if labels is not None else ''} {round(TEST_FRACTION * 100)} %"
    return np.concatenate([np.sort(train), np.sort(test)]), len(train), how


def _check_sizes(n_train: int, n_test: int, batch_size: int, where: str) -> None:
    if n_train < batch_size:
        raise DataError(f"{where}: {n_train} training samples, fewer than one batch ({batch_size}); "
                        "give more samples or a spec with a smaller training batch_size")
    if n_test < 1:
        raise DataError(f"{where}: no test samples to measure quality on")


def _task_data(spec: Spec, task: str, classes: int, codes: np.ndarray, y: np.ndarray, n_train: int,
               source: dict) -> TaskData:
    source.update(n_train=int(n_train), n_test=int(len(codes) - n_train))
    return TaskData(task, spec.head_type, classes, GridImages(codes[:n_train], spec.input_bits), y[:n_train],
                    GridImages(codes[n_train:], spec.input_bits), y[n_train:], source)


def _sha256_files(paths, root: Path | None = None) -> str:
    """SHA-256 over the files' contents (and, under ``root``, their relative names), read in chunks."""
    digest = hashlib.sha256()
    for path in paths:
        if root is not None:
            digest.update(os.path.relpath(path, root).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# .npz
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Member:
    name: str                  # x, y, x_test, y_test
    entry: str                 # its name in the archive
    shape: tuple[int, ...]
    dtype: np.dtype


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _open_member(archive: zipfile.ZipFile, entry: str):
    """The member's stream positioned at its data, and its (shape, fortran order, dtype)."""
    stream = archive.open(entry)
    version = np.lib.format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version}")
    return stream, _HEADER_READERS[version](stream)


def _members(archive: zipfile.ZipFile, where: str) -> dict[str, _Member]:
    found = {}
    for entry in archive.namelist():
        name = entry[:-4] if entry.endswith(".npy") else entry
        if name not in NPZ_MEMBERS:
            raise DataError(f"{where}: unexpected member {name!r} (an .npz for a task holds x, y and optionally "
                            "x_test, y_test)")
        try:
            stream, (shape, fortran, dtype) = _open_member(archive, entry)
            stream.close()
        except ValueError as exc:
            raise DataError(f"{where}: {name} is not a readable .npy array ({exc})") from None
        if dtype.hasobject:
            raise DataError(f"{where}: {name} is a pickled object array; give plain numeric arrays "
                            "(user data is read without pickle)")
        if fortran and len(shape) > 1:
            raise DataError(f"{where}: {name} is stored in Fortran order; save np.ascontiguousarray({name})")
        found[name] = _Member(name, entry, tuple(shape), dtype)
    for name in ("x", "y"):
        if name not in found:
            raise DataError(f"{where}: has no {name!r} array (an .npz for a task holds x, y and optionally "
                            "x_test, y_test)")
    if ("x_test" in found) != ("y_test" in found):
        raise DataError(f"{where}: has {'x_test' if 'x_test' in found else 'y_test'} without "
                        f"{'y_test' if 'x_test' in found else 'x_test'}; give both or neither")
    return found


def _read_chunks(archive: zipfile.ZipFile, member: _Member, where: str):
    """(first row, rows) chunks of a member, read from the archive a few MB at a time."""
    row_shape = member.shape[1:]
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * member.dtype.itemsize)
    per_chunk = max(1, CHUNK_BYTES // row_bytes)
    n = member.shape[0] if member.shape else 0
    try:
        stream, _ = _open_member(archive, member.entry)
        with stream:
            for first in range(0, n, per_chunk):
                rows = min(per_chunk, n - first)
                raw = stream.read(rows * row_bytes)
                if len(raw) != rows * row_bytes:
                    raise DataError(f"{where}: {member.name} is truncated (expected {n} rows)")
                yield first, np.frombuffer(raw, dtype=member.dtype).reshape((rows,) + row_shape)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataError(f"{where}: damaged archive, {member.name} cannot be read ({exc})") from None


def _read_whole(archive: zipfile.ZipFile, member: _Member, where: str) -> np.ndarray:
    return np.concatenate([rows for _, rows in _read_chunks(archive, member, where)] or
                          [np.zeros((0,) + member.shape[1:], member.dtype)])


def _check_images(member: _Member, spec: Spec, where: str) -> None:
    h, w, c = spec.input_shape
    shape = member.shape
    if len(shape) != 4:
        raise DataError(f"{where}: {member.name} has shape {shape}; expected (n, {h}, {w}, {c}) images "
                        f"(input.shape of spec {spec.name})")
    if shape[3] != c:
        raise DataError(f"{where}: {member.name} has {shape[3]} channel(s) per pixel; spec {spec.name} takes {c} "
                        f"(input.shape {[h, w, c]})")
    if shape[1:3] != (h, w):
        raise DataError(f"{where}: {member.name} holds {shape[1]}x{shape[2]} images; spec {spec.name} takes {h}x{w}")
    if member.dtype.kind not in "uif":
        raise DataError(f"{where}: {member.name} has dtype {member.dtype}; expected integer pixel codes "
                        "(uint8, uint16) or floats in [0, 1]")


def _check_targets(member: _Member, n: int, spec: Spec, where: str) -> None:
    """y's shape and dtype (before any value is read); its values are checked as they stream in."""
    if spec.head_type == "classify":
        if member.dtype.kind not in "ui":
            raise DataError(f"{where}: {member.name} has dtype {member.dtype}; classify labels must be integers")
        if len(member.shape) not in (1, 2) or (len(member.shape) == 2 and member.shape[1] != 1):
            raise DataError(f"{where}: {member.name} has shape {member.shape}; expected ({n},) integer labels")
    else:
        h, w, _ = spec.input_shape
        expected = (h, w, spec.head_outputs)
        if len(member.shape) != 4 or member.shape[1:] != expected:
            raise DataError(f"{where}: {member.name} has shape {member.shape}; a pixel head needs target images "
                            f"(n, {', '.join(map(str, expected))})")
        if member.dtype.kind != "f":
            raise DataError(f"{where}: {member.name} has dtype {member.dtype}; pixel targets must be floats")
    if member.shape[0] != n:
        x_name = "x" if member.name == "y" else "x_test"
        raise DataError(f"{where}: {member.name} has {member.shape[0]} samples but {x_name} has {n}")


def _pixel_targets(chunk: np.ndarray, spec: Spec, where: str, first_row: int) -> np.ndarray:
    fmt = spec.head_output
    lo, hi = fmt.code_min * fmt.lsb, fmt.code_max * fmt.lsb
    finite = np.isfinite(chunk)
    if not finite.all():
        image = first_row + int(np.flatnonzero(~finite.reshape(len(chunk), -1).all(axis=1))[0])
        raise DataError(f"{where} holds NaN or infinite values (image {image} is the first)")
    if chunk.size and (chunk.min() < lo or chunk.max() > hi):
        raise DataError(f"{where} holds targets from {chunk.min():.4g} to {chunk.max():.4g}; the head's output "
                        f"format {fmt.describe()} covers {lo:g}..{hi:g}")
    return chunk.astype(np.float32)


def read_npz(path: Path, spec: Spec, task: str, *, batch_size: int, seed: int, given: str | None = None) -> TaskData:
    where = given or str(path)
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:1] == b"\x80":
        raise DataError(f"{where}: is a Python pickle, not an .npz; user data is never unpickled")
    if magic == b"\x93NUMPY":
        raise DataError(f"{where}: is a single .npy array; save x and y together with np.savez")
    if magic[:2] != b"PK":
        raise DataError(f"{where}: not an .npz archive")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{where}: not a complete .npz archive ({exc})") from None
    with archive:
        members = _members(archive, where)
        pairs = [("x", "y")] + ([("x_test", "y_test")] if "x_test" in members else [])
        for x_name, y_name in pairs:
            _check_images(members[x_name], spec, where)
            _check_targets(members[y_name], members[x_name].shape[0], spec, where)
        n_given = [members[x].shape[0] for x, _ in pairs]
        n = sum(n_given)
        classify = spec.head_type == "classify"

        # Labels are small: read them first, so the split is known before any image is read.
        labels = None
        if classify:
            parts = [_read_whole(archive, members[y], where).reshape(-1).astype(np.int64) for _, y in pairs]
            classes = _check_labels(parts[0], parts[1] if len(parts) > 1 else None, spec, f"{where}: y")
            labels = np.concatenate(parts)
        else:
            classes = spec.head_outputs
        if len(pairs) == 2:
            order, n_train, how = np.arange(n), n_given[0], "given"
        else:
            order, n_train, how = _seeded_split(n, labels, seed, where)
        _check_sizes(n_train, n - n_train, batch_size, where)
        destination = np.empty(n, np.int64)
        destination[order] = np.arange(n)

        codes = np.empty((n,) + tuple(spec.input_shape), _code_dtype(spec.input_bits))
        y = labels[order] if classify else np.empty((n,) + members["y"].shape[1:], np.float32)
        offset = 0
        for x_name, y_name in pairs:
            for first, rows in _read_chunks(archive, members[x_name], where):
                place = destination[offset + first: offset + first + len(rows)]
                codes[place] = _input_codes(rows, spec.input_bits, f"{where}: {x_name}", first)
            if not classify:
                for first, rows in _read_chunks(archive, members[y_name], where):
                    place = destination[offset + first: offset + first + len(rows)]
                    y[place] = _pixel_targets(rows, spec, f"{where}: {y_name}", first)
            offset += members[x_name].shape[0]
    source = {"source": where, "format": "npz", "sha256": _sha256_files([path]), "split": how,
              "x_dtype": str(members["x"].dtype)}
    return _task_data(spec, task, classes, codes, y, n_train, source)


# --------------------------------------------------------------------------------------------
# a folder of images, one sub-folder per class
# --------------------------------------------------------------------------------------------

def _first_unreadable(files: list[str], channels: int) -> tuple[str, str]:
    import tensorflow as tf

    for name in files:
        try:
            tf.io.decode_image(tf.io.read_file(name), channels=channels, expand_animations=False)
        except (tf.errors.OpError, ValueError) as exc:
            return name, (getattr(exc, "message", None) or str(exc)).split("\n")[0]
    return files[0] if files else "?", "unreadable"


def read_image_folder(path: Path, spec: Spec, task: str, *, batch_size: int, seed: int,
                      given: str | None = None) -> TaskData:
    where = given or str(path)
    h, w, c = spec.input_shape
    if spec.head_type != "classify":
        raise DataError(f"{where}: a folder of class folders gives class labels, but spec {spec.name} has a "
                        "pixel head; give target images in an .npz (x, y)")
    if c not in COLOR_MODES:
        raise DataError(f"{where}: images give 1 (grey), 3 (RGB) or 4 (RGBA) channels; spec {spec.name} takes {c}")
    color_mode, conversion = COLOR_MODES[c]
    import tensorflow as tf

    try:
        with contextlib.redirect_stdout(io.StringIO()):          # keras prints "Found N files ..."
            dataset = tf.keras.utils.image_dataset_from_directory(
                str(path), labels="inferred", label_mode="int", color_mode=color_mode, batch_size=IMAGE_BATCH,
                image_size=(h, w), shuffle=False, interpolation="bilinear")
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    files, class_names = list(dataset.file_paths), list(dataset.class_names)
    if len(class_names) < 2:
        raise DataError(f"{where}: {len(class_names)} class folder(s); a classify task needs at least 2 sub-folders")
    if len(class_names) > spec.head_outputs:
        raise DataError(f"{where}: {len(class_names)} class folders, but the head of spec {spec.name} has "
                        f"{spec.head_outputs} outputs")
    labels = np.array([class_names.index(Path(os.path.relpath(f, path)).parts[0]) for f in files], np.int64)
    counts = np.bincount(labels, minlength=len(class_names))
    if (counts == 0).any():
        empty = class_names[int(np.flatnonzero(counts == 0)[0])]
        raise DataError(f"{where}: class folder {empty!r} holds no images (.bmp, .gif, .jpeg, .jpg, .png)")
    order, n_train, how = _seeded_split(len(files), labels, seed, where)
    _check_sizes(n_train, len(files) - n_train, batch_size, where)
    destination = np.empty(len(files), np.int64)
    destination[order] = np.arange(len(files))

    # Resize and colour conversion happen here, once; 8-bit pixels p stand for p / 255.
    codes = np.empty((len(files), h, w, c), _code_dtype(spec.input_bits))
    batches = iter(dataset)
    for first in range(0, len(files), IMAGE_BATCH):
        try:
            images, _ = next(batches)
        except tf.errors.OpError:
            name, problem = _first_unreadable(files[first:first + IMAGE_BATCH], c)
            raise DataError(f"{name}: not a readable image ({problem})") from None
        values = np.clip(images.numpy().astype(np.float64) / 255.0, 0, 1)     # bilinear resizing stays in 0..255
        codes[destination[first:first + len(values)]] = float_codes(values, spec.input_bits).astype(codes.dtype)
    prepared = f"resized to {h}x{w}, {conversion}"
    source = {"source": where, "format": "image folder", "sha256": _sha256_files(files, path), "split": how,
              "classes": class_names, "images": len(files), "prepared": prepared}
    return _task_data(spec, task, len(class_names), codes, labels[order], n_train, source)


def describe_source(data: TaskData) -> str:
    """One line saying what was read, for the command line."""
    s = data.source
    what = f"{s['images']} images in {len(s['classes'])} class folders ({', '.join(s['classes'])}), {s['prepared']}" \
        if s["format"] == "image folder" else f"x {s['x_dtype']}"
    return (f"data {s['source']}: {what}; {s['n_train']} for training, {s['n_test']} held out "
            f"({s['split']} split)")
