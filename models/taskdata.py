"""One task's data, as every loader returns it (the shipped datasets and a user's own)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from semifreddo.deploy.contract.streams import grid_codes


@dataclass(frozen=True)
class TaskData:
    """One task's images and labels (classify) or target images (pixel), split for training and test.

    The x arrays are numpy float arrays on the input grid, or, for a user's own data
    (:mod:`semifreddo.models.userdata`), :class:`~semifreddo.models.userdata.GridImages` that hold the
    input codes once and hand out float slices. ``source`` describes where user data came from.
    """

    task: str
    kind: str                 # "classify" or "pixel"
    classes: int              # classify: number of classes; pixel: output channels
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: dict | None = None

    def subset(self, n: int | None, seed: int = 0) -> "TaskData":
        """At most ``n`` training and ``n`` test samples (for quick smoke runs)."""
        if n is None:
            return self
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.permutation(len(self.x_train))[:n])
        te = np.sort(rng.permutation(len(self.x_test))[:n])
        return TaskData(self.task, self.kind, self.classes, self.x_train[tr], self.y_train[tr],
                        self.x_test[te], self.y_test[te], self.source)

    def test_codes(self, count: int, bits: int) -> np.ndarray:
        """The first ``count`` test images as input codes (what the IP and the board take)."""
        codes = grid_codes(np.asarray(self.x_test[:count]), bits)
        return codes.astype(np.uint8 if bits <= 8 else np.uint16)

    def held_out_samples(self, count: int, bits: int) -> bytes:
        """The first ``count`` test samples as an .npz (``x``: input codes, ``y``, ``classes``: the
        outputs that count for a classify task), as the bundle ships them for the board notebook."""
        buffer = io.BytesIO()
        np.savez(buffer, x=self.test_codes(count, bits), y=self.y_test[:count], classes=np.int64(self.classes))
        return buffer.getvalue()
