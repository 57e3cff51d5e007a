"""Where the model stage writes its results, and the frozen-core artifact.

Everything for spec ``NAME`` goes under ``BUILD/NAME/`` (``BUILD`` is ``--build``, default
``build/``)::

    BUILD/NAME/core.npz                 frozen-core artifact (its core id is in the manifest)
    BUILD/NAME/weightsets/TASK.npz      one weight set per task (source task included)
    BUILD/NAME/samples/TASK.npz         held-out samples of a task trained from the user's data
    BUILD/NAME/adder_graphs/            solved adder graphs of the frozen core (written by `semifreddo convert`)
    BUILD/NAME/hls/                     HLS project and its regmap.json (written by `semifreddo convert`)

The frozen-core artifact is an ``.npz`` with one int32 array of integer codes per frozen tensor
(``b1.frozen.kernel``, ``b1.frozen.bias``, ...) and a ``manifest`` (UTF-8 JSON bytes) holding the
core id, the format of every tensor, the source task and its metrics. The core id is a content
hash of the frozen structure and codes: two cores with the same id build the same hardware.
It is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semifreddo.deploy.contract.interface import CORE_FORMAT, check_format, stamp
from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import atomic_write_bytes

from .spec import Spec

DEFAULT_BUILD = Path("build")


@dataclass(frozen=True)
class BuildPaths:
    """Where one spec's artifacts go: the layout in this module's docstring."""

    root: Path

    @classmethod
    def for_spec(cls, spec: Spec, build: str | Path | None = None) -> "BuildPaths":
        return cls(Path(build or DEFAULT_BUILD) / spec.name)

    core = property(lambda self: self.root / "core.npz")
    weightsets = property(lambda self: self.root / "weightsets")
    hls = property(lambda self: self.root / "hls")
    # Solved adder graphs of the frozen core, outside hls/ (which every conversion replaces).
    adder_graphs = property(lambda self: self.root / "adder_graphs")

    def weightset(self, task: str) -> Path:
        return self.weightsets / f"{task}.npz"

    def sample(self, task: str) -> Path:
        """Held-out samples of a task trained from the user's data (for the bundle's notebook)."""
        return self.root / "samples" / f"{task}.npz"


@dataclass(frozen=True)
class FrozenCore:
    core_id: str
    codes: dict[str, np.ndarray]
    manifest: dict
    path: Path | None = None


def frozen_structure(spec: Spec) -> dict:
    """Everything about the frozen core's hardware except its values."""
    from .layout import frozen_tensors          # here, so that paths and checks need no TensorFlow
    return {
        "input_shape": list(spec.input_shape), "input_bits": spec.input_bits, "blocks": spec.blocks,
        "kernels": list(spec.kernels), "width": spec.frozen_width,
        "activations": [spec.activations.bits, spec.activations.integer],
        "tensors": [{"name": t.name, "shape": list(t.shape), "bits": t.fmt.bits, "frac": t.fmt.frac}
                    for t in frozen_tensors(spec)],
    }


def compute_core_id(spec: Spec, codes: dict[str, np.ndarray]) -> str:
    from .layout import frozen_tensors
    digest = hashlib.sha256(json.dumps(frozen_structure(spec), sort_keys=True).encode())
    for t in frozen_tensors(spec):
        digest.update(np.ascontiguousarray(codes[t.name], dtype="<i4").tobytes())
    return digest.hexdigest()[:16]


def save_core(path: Path, spec: Spec, codes: dict[str, np.ndarray], metrics: dict) -> FrozenCore:
    core_id = compute_core_id(spec, codes)
    manifest = {
        **stamp(CORE_FORMAT), "core_id": core_id, "spec": spec.name,
        "source_task": spec.data.source, "metrics": metrics, "structure": frozen_structure(spec),
    }
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value, dtype=np.int32) for name, value in codes.items()}
    np.savez(buffer, manifest=np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), np.uint8), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return FrozenCore(core_id, codes, manifest, path)


def require_core(path: Path, spec: Spec) -> Path:
    """``path`` if a frozen core is there, else the one-line error saying to train it first."""
    path = Path(path)
    if not path.exists():
        raise SemifreddoError(f"{path}: no frozen core yet; run `semifreddo train-core {spec.path or spec.name}` first")
    return path


def load_core(path: Path, spec: Spec) -> FrozenCore:
    """Read a frozen-core artifact and check it belongs to ``spec`` and is intact."""
    path = require_core(path, spec)
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise SemifreddoError(f"{path}: damaged frozen-core artifact ({exc.__class__.__name__}); "
                              "re-run `semifreddo train-core`") from None
    try:
        manifest = json.loads(data.pop("manifest").tobytes().decode())
    except (KeyError, ValueError):
        raise SemifreddoError(f"{path}: not a frozen-core artifact (no manifest)") from None
    check_format(manifest, CORE_FORMAT, str(path))
    if manifest.get("structure") != frozen_structure(spec):
        raise SemifreddoError(f"{path}: this frozen core was built for a different frozen structure than spec "
                              f"{spec.name} describes; re-run `semifreddo train-core`")
    codes = {name: value.astype(np.int64) for name, value in data.items()}
    core_id = compute_core_id(spec, codes)
    if core_id != manifest.get("core_id"):
        raise SemifreddoError(f"{path}: its codes do not match its core id (damaged or edited)")
    return FrozenCore(core_id, codes, manifest, path)
