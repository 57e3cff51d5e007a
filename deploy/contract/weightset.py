"""Weight-set files: one task's configurable parameters, as the registers hold them.

A weight set is what crosses from the host to the board, so reading one needs numpy and the
standard library only and never unpickles anything. The file is a numpy ``.npz`` archive with two
members:

``words``
    ``uint32[n]``: the integer codes packed into 32-bit words in register order (see
    :mod:`semifreddo.deploy.contract.regmap` for the layout rules).
``manifest``
    ``uint8[m]``: UTF-8 JSON with ``format``, ``format_version``, ``core_id``, ``regmap_id``,
    ``task``, ``spec``, ``metrics``, the full register ``layout`` and a ``checksum``.

The checksum is the SHA-256 of the words followed by the canonical JSON of the manifest without
its ``checksum`` entry, so changing either one is detected.

:func:`read_weight_set` refuses, each with its own one-line :class:`WeightSetError`: a file that
is truncated or not an archive, a pickled object array, an unknown format version, a checksum
mismatch, a word count that disagrees with the layout, a code outside its declared bit width, and
(when the caller says what it expects) another core id or register map id.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .interface import WEIGHTSET_FORMAT, ArtifactIds, check_format, stamp
from .errors import SemifreddoError, WeightSetError
from .fileio import atomic_write_bytes, sha256_bytes
from .regmap import RegisterMap, register_map_from_json

FORMAT = WEIGHTSET_FORMAT
SUFFIX = ".npz"


@dataclass(frozen=True)
class WeightSet(ArtifactIds):
    path: Path | None
    manifest: dict
    words: np.ndarray
    regmap: RegisterMap

    @property
    def task(self) -> str:
        return self.manifest["task"]

    def codes(self) -> dict[str, np.ndarray]:
        return self.regmap.unpack(self.words)

    def values(self) -> dict[str, np.ndarray]:
        """The parameters as real numbers (``code * 2**-frac``), float64 so the conversion is exact."""
        return {f.name: self.codes()[f.name].astype(np.float64) * 2.0 ** -f.frac for f in self.regmap.fields}


def _checksum(words: np.ndarray, manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + sha256_bytes(np.ascontiguousarray(words, dtype="<u4").tobytes() + canonical)


def encode_weight_set(regmap: RegisterMap, codes: dict[str, np.ndarray], *, core_id: str, task: str,
                      spec: str, metrics: dict | None = None, extra: dict | None = None) -> bytes:
    """Pack ``codes`` by ``regmap`` and return the bytes of a weight-set file."""
    words = regmap.pack(codes)
    manifest = {
        **stamp(FORMAT),
        "spec": spec,
        "task": task,
        "core_id": core_id,
        "regmap_id": regmap.id,
        "n_words": int(words.size),
        "metrics": metrics or {},
        **(extra or {}),
        "layout": regmap.to_json(),
    }
    manifest["checksum"] = _checksum(words, manifest)
    buffer = io.BytesIO()
    np.savez(buffer, words=words.astype("<u4"),
             manifest=np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), dtype=np.uint8))
    return buffer.getvalue()


def write_weight_set(path: str | Path, regmap: RegisterMap, codes: dict[str, np.ndarray], **manifest_fields) -> Path:
    """Write a weight set atomically. See :func:`encode_weight_set` for the arguments."""
    path = Path(path)
    atomic_write_bytes(path, encode_weight_set(regmap, codes, **manifest_fields))
    return path


def read_weight_set(path: str | Path, *, expect_core_id: str | None = None,
                    expect_regmap: RegisterMap | None = None) -> WeightSet:
    """Read and fully validate a weight set. Raises :class:`WeightSetError` with one line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise WeightSetError(f"{path}: no such weight-set file") from None
    except IsADirectoryError:
        raise WeightSetError(f"{path}: is a folder, not a weight-set file") from None
    return decode_weight_set(raw, source=str(path), path=path, expect_core_id=expect_core_id,
                             expect_regmap=expect_regmap)


def decode_weight_set(raw: bytes, *, source: str = "weight set", path: Path | None = None,
                      expect_core_id: str | None = None, expect_regmap: RegisterMap | None = None) -> WeightSet:
    def fail(problem: str):
        raise WeightSetError(f"{source}: {problem}")

    if raw[:2] != b"PK":
        # numpy would try to unpickle anything that is not an .npy/.npz; never let it get that far.
        if raw[:1] == b"\x80":
            fail("is a Python pickle, not a weight set; weight sets never hold pickles, refusing to load it")
        fail("truncated or not a weight-set file (not an .npz archive)")
    try:
        archive = np.load(io.BytesIO(raw), allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError):
        fail("truncated or not a weight-set file (not a complete .npz archive)")
    except ValueError as exc:
        fail(f"unreadable ({exc})")
    if not isinstance(archive, np.lib.npyio.NpzFile):
        fail("not a weight-set file (a single .npy array, expected an .npz archive)")

    with archive:
        names = set(archive.files)
        if not {"words", "manifest"} <= names:
            fail(f"not a weight-set file (members {sorted(names)}, expected 'words' and 'manifest')")
        try:
            words = archive["words"]
            manifest_bytes = archive["manifest"]
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                fail("contains a pickled object array; weight sets never hold pickles, refusing to load it")
            fail(f"unreadable member ({exc})")
        except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
            fail(f"truncated or damaged archive ({exc.__class__.__name__})")

    if manifest_bytes.dtype != np.uint8 or manifest_bytes.ndim != 1:
        fail(f"manifest has dtype {manifest_bytes.dtype}, expected a uint8 byte array")
    try:
        manifest = json.loads(manifest_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"manifest is not valid JSON ({exc})")
    check_format(manifest, FORMAT, source, WeightSetError)
    if words.dtype != np.dtype("<u4") or words.ndim != 1:
        fail(f"words have dtype {words.dtype} and {words.ndim} dimension(s), expected 1-D uint32")
    if manifest.get("checksum") != _checksum(words, manifest):
        fail("checksum mismatch: the words or the manifest were changed after the file was written")

    try:
        regmap = register_map_from_json(manifest["layout"], source=f"{source} layout")
    except KeyError:
        fail("manifest has no register layout")
    except SemifreddoError as exc:
        raise WeightSetError(str(exc)) from None
    if manifest.get("regmap_id") != regmap.id:
        fail(f"manifest register map id {manifest.get('regmap_id')} disagrees with its layout ({regmap.id})")
    if words.size != regmap.n_words or manifest.get("n_words") != regmap.n_words:
        fail(f"has {words.size} words but its register layout needs {regmap.n_words}")
    try:
        regmap.unpack(words, check=True)
    except SemifreddoError as exc:
        fail(str(exc))

    ws = WeightSet(path=path, manifest=manifest, words=words.astype(np.uint32), regmap=regmap)
    return check_compatible(ws, expect_core_id, expect_regmap, source)


def check_compatible(ws: WeightSet, core_id: str | None, regmap: RegisterMap | None,
                     source: str | None = None) -> WeightSet:
    """Refuse a weight set made for another frozen core or another register map."""
    where = source or (str(ws.path) if ws.path else "weight set")
    if core_id is not None and ws.core_id != core_id:
        raise WeightSetError(f"{where}: made for frozen core {ws.core_id}, but this core is {core_id}; "
                             "train a weight set for this core with `semifreddo train-task`")
    if regmap is not None and ws.regmap_id != regmap.id:
        raise WeightSetError(f"{where}: made for register map {ws.regmap_id}, but the hardware uses {regmap.id}; "
                             "it belongs to another model spec or an older conversion")
    return ws


def describe(ws: WeightSet) -> str:
    """A human-readable summary of a validated weight set (what ``semifreddo weights show`` prints)."""
    m = ws.manifest
    lines = [
        f"weight set     {ws.path if ws.path else '(in memory)'}",
        f"format         {m['format']} v{m['format_version']}",
        f"spec           {m.get('spec')}",
        f"task           {m['task']}",
        f"core id        {m['core_id']}",
        f"register map   {m['regmap_id']}  ({ws.regmap.n_words} words of 32 bits, "
        f"{len(ws.regmap.fields)} fields)",
        f"checksum       {m['checksum']}  (verified)",
    ]
    for key in sorted(set(m) - {"format", "format_version", "spec", "task", "core_id", "regmap_id", "n_words",
                                "metrics", "layout", "checksum"}):
        lines.append(f"{key:<15}{json.dumps(m[key])}" if len(key) < 15 else f"{key} {json.dumps(m[key])}")
    if m.get("metrics"):
        lines.append("metrics        " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m["metrics"].items()))
    lines.append("fields:")
    width = max(len(f.name) for f in ws.regmap.fields)
    for f in ws.regmap.fields:
        kind = "s" if f.signed else "u"
        lines.append(f"  {f.name:<{width}}  {'x'.join(map(str, f.shape)) or 'scalar':>10}  "
                     f"{kind}{f.bits}.{f.frac}  words {f.word_offset}..{f.word_offset + f.n_words - 1}")
    return "\n".join(lines)
