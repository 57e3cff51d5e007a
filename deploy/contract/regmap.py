"""The register map: where every configurable parameter lives in the IP's AXI-Lite space.

This is the contract between the model stage (which quantizes parameters into integer codes), the
HLS generator (which unpacks the same words into the active registers), the weight-set files, and
the board driver. One function, :func:`build_register_map`, turns the ordered list of configurable
fields into word offsets; everything else reads the map it returns, so the packer, the C
simulation and the driver cannot drift apart.

Layout rules (kept deliberately simple so that the HLS unpack logic is plain wiring):

* Fields are placed in the order given, each starting on a fresh 32-bit word.
* Inside a field, codes sit in slots of 8, 16 or 32 bits (the smallest that holds the code),
  least significant slot first, so one word carries 4, 2 or 1 codes.
* A code is stored in two's complement (signed fields) or plain binary (unsigned fields) at the
  slot's width. A slot value outside the field's declared code range is invalid; readers refuse it.

Standard library and numpy only: the board reads this module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path

import numpy as np

from .interface import (MAX_BANKS, MIN_BANK_OFFSET, REGMAP_FORMAT, bank_bits, check_format, control_offsets,
                        read_artifact, stamp)
from .errors import SemifreddoError
from .fileio import atomic_write_text



def slot_bits_for(bits: int) -> int:
    for slot in (8, 16, 32):
        if bits <= slot:
            return slot
    raise SemifreddoError(f"a configurable code of {bits} bits does not fit a 32-bit register word")


@dataclass(frozen=True)
class Field:
    """One configurable tensor as the registers hold it.

    ``value = code * 2**-frac``. ``lo``/``hi`` bound the integer code (inclusive); by default
    they are the full range of ``bits``. ``word_offset``/``n_words`` are filled in by
    :func:`build_register_map`.
    """

    name: str
    shape: tuple[int, ...]
    bits: int
    signed: bool
    frac: int
    lo: int | None = None
    hi: int | None = None
    word_offset: int = -1
    n_words: int = 0
    meta: dict = dataclass_field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not 1 <= self.bits <= 32:
            raise SemifreddoError(f"field {self.name}: code width {self.bits} is outside 1..32 bits")
        full_lo = -(1 << (self.bits - 1)) if self.signed else 0
        full_hi = (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "lo", full_lo if self.lo is None else int(self.lo))
        object.__setattr__(self, "hi", full_hi if self.hi is None else int(self.hi))
        if not full_lo <= self.lo <= self.hi <= full_hi:
            raise SemifreddoError(f"field {self.name}: code range [{self.lo}, {self.hi}] does not fit {self.bits} bits")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def slot_bits(self) -> int:
        return slot_bits_for(self.bits)

    @property
    def per_word(self) -> int:
        return 32 // self.slot_bits

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "shape": list(self.shape),
            "bits": self.bits,
            "signed": self.signed,
            "frac": self.frac,
            "lo": self.lo,
            "hi": self.hi,
            "slot_bits": self.slot_bits,
            "word_offset": self.word_offset,
            "n_words": self.n_words,
        }
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "Field":
        return cls(
            name=obj["name"], shape=tuple(obj["shape"]), bits=int(obj["bits"]), signed=bool(obj["signed"]),
            frac=int(obj["frac"]), lo=obj.get("lo"), hi=obj.get("hi"), word_offset=int(obj["word_offset"]),
            n_words=int(obj["n_words"]), meta=dict(obj.get("meta", {})),
        )


@dataclass(frozen=True)
class RegisterMap:
    fields: tuple[Field, ...]
    n_words: int
    bank_offset: int
    control: dict
    repeat_range: tuple[int, int]
    id: str
    io: dict = dataclass_field(default_factory=dict, compare=False, hash=False)
    banks: int = 1           # weight sets the IP holds resident (hardware.banks); each frame names one

    @property
    def bank_bits(self) -> int:
        """Bits of a frame's bank number in the input stream's side-band field (0: one bank)."""
        return bank_bits(self.banks)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def id32(self) -> int:
        """The low 32 bits of the id, as the IP reports them in its ``regmap_id`` register."""
        return int(self.id[-8:], 16)

    def to_json(self) -> dict:
        body = _id_body(self.fields, self.n_words, self.bank_offset, self.control, self.repeat_range, self.banks)
        return {**stamp(REGMAP_FORMAT), "id": self.id, **body, "io": self.io}

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")

    # --- packing -----------------------------------------------------------------------------

    def pack(self, codes: dict[str, np.ndarray]) -> np.ndarray:
        """Pack integer codes (one array per field) into the bank's 32-bit words."""
        missing = [f.name for f in self.fields if f.name not in codes]
        extra = sorted(set(codes) - {f.name for f in self.fields})
        if missing or extra:
            raise SemifreddoError(f"codes do not match the register map: missing {missing}, unexpected {extra}")
        words = np.zeros(self.n_words, dtype=np.uint32)
        for f in self.fields:
            values = np.asarray(codes[f.name])
            if values.shape != f.shape:
                raise SemifreddoError(f"field {f.name}: codes have shape {values.shape}, expected {f.shape}")
            if not np.issubdtype(values.dtype, np.integer):
                raise SemifreddoError(f"field {f.name}: codes must be integers, got {values.dtype}")
            flat = values.astype(np.int64).ravel()
            bad = (flat < f.lo) | (flat > f.hi)
            if bad.any():
                raise SemifreddoError(
                    f"field {f.name}: code {int(flat[bad][0])} is outside its range [{f.lo}, {f.hi}]")
            slots = np.zeros(f.n_words * f.per_word, dtype=np.int64)
            slots[: f.size] = flat
            mask = (1 << f.slot_bits) - 1
            slot_dtype = np.dtype(f"<u{f.slot_bits // 8}")
            raw = (slots & mask).astype(slot_dtype)
            words[f.word_offset: f.word_offset + f.n_words] = raw.view("<u4")
        return words

    def unpack(self, words: np.ndarray, check: bool = True) -> dict[str, np.ndarray]:
        """Unpack the bank's words into integer codes, refusing codes outside a field's range."""
        words = np.asarray(words)
        if words.shape != (self.n_words,):
            raise SemifreddoError(f"expected {self.n_words} words, got {words.size}")
        out = {}
        for f in self.fields:
            chunk = words[f.word_offset: f.word_offset + f.n_words].astype("<u4")
            kind = "i" if f.signed else "u"
            slots = chunk.view(np.dtype(f"<{kind}{f.slot_bits // 8}"))[: f.size].astype(np.int64)
            if check:
                bad = (slots < f.lo) | (slots > f.hi)
                if bad.any():
                    index = int(np.argmax(bad))
                    raise SemifreddoError(
                        f"field {f.name}[{index}]: code {int(slots[index])} is outside its declared "
                        f"{f.bits}-bit {'signed' if f.signed else 'unsigned'} range [{f.lo}, {f.hi}]")
            out[f.name] = slots.reshape(f.shape)
        return out


def _id_body(fields, n_words, bank_offset, control, repeat_range, banks: int) -> dict:
    return {
        "control": dict(control),
        "bank": {"offset": bank_offset, "words": n_words},
        "repeat": {"min": repeat_range[0], "max": repeat_range[1]},
        "fields": [f.to_json() for f in fields],
        "banks": banks,
    }


def _compute_id(body: dict) -> str:
    # The id covers everything a weight set's words depend on, and nothing else: not the number of
    # weight banks (hardware.banks) nor the registers that only an IP of several banks has, so one
    # weight set loads into an IP of any bank count built from the same network.
    single = control_offsets(1)
    canonical = json.dumps(
        {"control": {k: v for k, v in body["control"].items() if k in single}}
        | {k: body[k] for k in ("bank", "repeat")} | {"fields": [
            {k: v for k, v in f.items() if k != "meta"} for f in body["fields"]]},
        sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def build_register_map(fields: list[Field], repeat_range: tuple[int, int], io: dict | None = None,
                       banks: int = 1) -> RegisterMap:
    """Assign word offsets to ``fields`` (in order) and return the register map.

    This is the single place that decides the word layout.
    """
    placed = []
    offset = 0
    seen = set()
    for f in fields:
        if f.name in seen:
            raise SemifreddoError(f"duplicate configurable field {f.name}")
        seen.add(f.name)
        n_words = max(1, -(-f.size // f.per_word))
        placed.append(Field(f.name, f.shape, f.bits, f.signed, f.frac, f.lo, f.hi, offset, n_words, f.meta))
        offset += n_words
    bank_offset = max(MIN_BANK_OFFSET, 1 << max(0, (offset * 4 - 1).bit_length()))
    if not 1 <= banks <= MAX_BANKS:
        raise SemifreddoError(f"{banks} weight banks: an IP holds 1 to {MAX_BANKS}")
    body = _id_body(placed, offset, bank_offset, control_offsets(banks), tuple(repeat_range), banks)
    return RegisterMap(tuple(placed), offset, bank_offset, control_offsets(banks),
                       (int(repeat_range[0]), int(repeat_range[1])), _compute_id(body), io or {}, banks)


def register_map_from_json(obj: dict, source: str = "register map") -> RegisterMap:
    """Rebuild a register map from its JSON form and check that its id matches its content."""
    check_format(obj, REGMAP_FORMAT, source)
    try:
        fields = tuple(Field.from_json(f) for f in obj["fields"])
        rmap = RegisterMap(
            fields=fields, n_words=int(obj["bank"]["words"]), bank_offset=int(obj["bank"]["offset"]),
            control={k: int(v) for k, v in obj["control"].items()},
            repeat_range=(int(obj["repeat"]["min"]), int(obj["repeat"]["max"])), id=str(obj["id"]),
            io=dict(obj.get("io", {})), banks=int(obj.get("banks", 1)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SemifreddoError(f"{source}: malformed register map ({exc.__class__.__name__}: {exc})") from None
    if not 1 <= rmap.banks <= MAX_BANKS:
        raise SemifreddoError(f"{source}: {rmap.banks} weight banks, an IP holds 1 to {MAX_BANKS}; "
                              "regenerate it with `semifreddo convert`")
    expected = _compute_id(_id_body(rmap.fields, rmap.n_words, rmap.bank_offset, rmap.control, rmap.repeat_range,
                                    rmap.banks))
    if expected != rmap.id:
        raise SemifreddoError(f"{source}: its id {rmap.id} does not match its content ({expected}); "
                              "the file was edited or corrupted, regenerate it with `semifreddo convert`")
    return rmap


def load_register_map(path: str | Path) -> RegisterMap:
    """The one reader of ``regmap.json`` files."""
    return register_map_from_json(read_artifact(path, REGMAP_FORMAT, "run `semifreddo convert` first"), str(path))
