"""Fuzzed readers (issue 21, part 5): generated inputs thrown at every reader of outside data.

Readers: the spec YAML, the weight-set .npz, the bundle manifest.json, regmap.json, the emulated
board's PL state and the input images. Each starts from a real artifact and mutates it (a value
anywhere in its tree replaced, a key dropped, bytes flipped, the file cut short), or is fed
arbitrary bytes or arrays. The only outcomes allowed: a clean one-line SemifreddoError, or a
result that passes the reader's own promises (checked here) -- never another exception, a hang
(inputs are small and bounded) or a write (the folder is compared before and after).

Fixed seed (derandomize), bounded cases, no deadline; CASES cases per reader; a RuntimeWarning
(which the command line would print as a second line) fails the case.
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from semifreddo.deploy.contract.interface import BUNDLE_FORMAT, read_bundle_manifest, stamp
from semifreddo.deploy.contract.errors import SemifreddoError

CASES = 400
# A warning printed by numpy would be a second line on the command line's stderr: fail on it too.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
FUZZ = settings(derandomize=True, max_examples=CASES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
SPEC_TEXT = (Path(__file__).resolve().parent.parent / "models" / "specs" / "digits.yaml").read_text()

# Any JSON/YAML value, small.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


def paths_of(tree, prefix=()):
    """Every path to a value inside a nested dict/list."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from paths_of(value, prefix + (i,))


def mutate(data, tree):
    """``tree`` with one to three values replaced by generated ones, or removed."""
    tree = json.loads(json.dumps(tree))
    for _ in range(data.draw(st.integers(1, 3), "changes")):
        paths = [p for p in paths_of(tree) if p]
        if not paths:
            return data.draw(values, "whole")
        path = data.draw(st.sampled_from(paths), "where")
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans(), "drop") and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(values, "value")
    return tree


def write_fuzzed_json(data, path: Path, good: dict) -> None:
    """One case of a JSON artifact at ``path``: arbitrary bytes (one in six), or ``good`` mutated."""
    if data.draw(st.integers(0, 5), "form") == 0:
        path.write_bytes(data.draw(st.binary(max_size=300), "bytes"))
    else:
        path.write_text(json.dumps(mutate(data, good)))


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def only_clean_refusals(call, folder: Path):
    """Call ``call()``; allow its result or a SemifreddoError of one line; nothing written in ``folder``."""
    before = snapshot(folder)
    try:
        result = call()
    except SemifreddoError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
        result = None
    assert snapshot(folder) == before, "a reader wrote"
    return result


# --------------------------------------------------------------------------------------------
# spec YAML
# --------------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_spec_yaml(tmp_path_factory, data):
    from semifreddo.models.spec import Spec, load_spec

    folder = tmp_path_factory.mktemp("spec")
    path = folder / "fuzz.yaml"
    form = data.draw(st.integers(0, 5), "form")
    if form == 0:
        path.write_bytes(data.draw(st.binary(max_size=200), "bytes"))
    elif form == 1:
        path.write_bytes(data.draw(st.text(max_size=200), "text").encode("utf-8", "surrogatepass"))
    else:
        path.write_text(yaml.safe_dump(mutate(data, yaml.safe_load(SPEC_TEXT))))
    spec = only_clean_refusals(lambda: load_spec(path), folder)
    if spec is not None:
        assert isinstance(spec, Spec) and spec.input_bits in range(1, 17) and spec.blocks >= 1
        spec.summary()                               # a spec that loads can be described


# --------------------------------------------------------------------------------------------
# weight set (.npz)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def valid_weight_set(digits_spec):
    from semifreddo.deploy.contract.weightset import encode_weight_set
    from semifreddo.models.layout import register_map

    rmap = register_map(digits_spec)
    rng = np.random.default_rng(0)
    codes = {f.name: rng.integers(f.lo, f.hi + 1, size=f.shape) for f in rmap.fields}
    return rmap, encode_weight_set(rmap, codes, core_id="c" * 64, task="fuzz", spec="digits")


def npz_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
def test_weight_set_npz(tmp_path_factory, valid_weight_set, data):
    from semifreddo.deploy.contract.weightset import _checksum, read_weight_set

    rmap, raw = valid_weight_set
    folder = tmp_path_factory.mktemp("ws")
    form = data.draw(st.integers(0, 3), "form")
    if form == 0:                     # bytes flipped or the file cut short
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4), "flips")):
            at = data.draw(st.integers(0, len(buf) - 1), "at")
            buf[at] ^= data.draw(st.integers(1, 255), "mask")
        raw = bytes(buf[:data.draw(st.integers(0, len(buf)), "cut")])
    else:                             # a well-formed archive with a changed manifest or words
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            manifest, words = json.loads(archive["manifest"].tobytes()), archive["words"].copy()
        if form in (1, 3):
            manifest = mutate(data, manifest)
        if form in (2, 3):
            words = data.draw(hnp.arrays(st.sampled_from([np.uint32, np.int64, np.uint8, np.float32]),
                                         hnp.array_shapes(max_dims=2, max_side=300)), "words")
        if isinstance(manifest, dict) and data.draw(st.booleans(), "re-sign"):
            try:
                with np.errstate(invalid="ignore"):                    # float words cast for the hash
                    manifest["checksum"] = _checksum(words, manifest)  # as a careful forger would
            except (TypeError, ValueError):
                pass
        manifest_bytes = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
        raw = npz_bytes({"words": words, "manifest": manifest_bytes})
    path = folder / "fuzz.npz"
    path.write_bytes(raw)
    ws = only_clean_refusals(lambda: read_weight_set(path, expect_regmap=rmap), folder)
    if ws is not None:                # a weight set that reads is a usable one
        assert ws.words.dtype == np.uint32 and ws.words.size == rmap.n_words and ws.regmap.id == rmap.id
        for f in rmap.fields:
            codes = ws.codes()[f.name]
            assert codes.shape == tuple(f.shape) and codes.min() >= f.lo and codes.max() <= f.hi


# --------------------------------------------------------------------------------------------
# regmap.json
# --------------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_regmap_json(tmp_path_factory, digits_spec, data):
    from semifreddo.deploy.contract.regmap import load_register_map
    from semifreddo.models.layout import register_map

    good = register_map(digits_spec)
    folder = tmp_path_factory.mktemp("regmap")
    path = folder / "regmap.json"
    write_fuzzed_json(data, path, good.to_json())
    rmap = only_clean_refusals(lambda: load_register_map(path), folder)
    if rmap is not None:              # a map that loads packs and unpacks its own words
        codes = {f.name: np.full(f.shape, f.lo, np.int64) for f in rmap.fields}
        words = rmap.pack(codes)
        assert words.size == rmap.n_words
        assert all(np.array_equal(rmap.unpack(words)[f.name], codes[f.name]) for f in rmap.fields)


# --------------------------------------------------------------------------------------------
# bundle manifest.json
# --------------------------------------------------------------------------------------------

GOOD_MANIFEST = {**stamp(BUNDLE_FORMAT), "spec": "digits", "board": "emulated", "emulated": True,
                 "core_id": "c" * 64, "regmap": "regmap.json", "regmap_id": "r" * 16,
                 "ip_instance": "semifreddo_0", "dma_instance": "axi_dma_0",
                 "emulator": {"bitstream": "emulator/semifreddo_digits.so"},
                 "tasks": {"parity": "weightsets/parity.npz"}, "samples": {}, "files": {}, "notebooks": []}


@FUZZ
@given(data=st.data())
def test_bundle_manifest(tmp_path_factory, data):
    from semifreddo.deploy.runtime.driver import Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice

    folder = tmp_path_factory.mktemp("bundle")
    write_fuzzed_json(data, folder / "manifest.json", GOOD_MANIFEST)
    manifest = only_clean_refusals(lambda: read_bundle_manifest(folder), folder)
    if manifest is not None:
        assert isinstance(manifest["tasks"], dict) and all(isinstance(v, str) for v in manifest["tasks"].values())
        assert isinstance(manifest["regmap"], str) and isinstance(manifest["core_id"], str)
    # The driver opening the bundle: the manifest is its first reader (no regmap here: a refusal).
    state = tmp_path_factory.mktemp("pl")
    only_clean_refusals(lambda: Semifreddo(folder, device=EmulatedDevice(state)), folder)


# --------------------------------------------------------------------------------------------
# the emulated board's PL state
# --------------------------------------------------------------------------------------------

GOOD_STATE = {**stamp("semifreddo-emulated-pl"), "bitfile_name": None, "bitfile_hash": None, "timestamp": None,
              "registers": {"16": 3, "24": 1}, "bank": [0, 1, 2, 3],
              "banks": [{"seq": 2, "words": [0, 1, 2, 3]}, {"seq": 0, "words": [0, 0, 0, 0]}]}


@FUZZ
@given(data=st.data())
def test_emulated_pl_state(tmp_path_factory, data):
    from semifreddo.deploy.runtime.emulator import EmulatedDevice

    folder = tmp_path_factory.mktemp("pl")
    write_fuzzed_json(data, folder / "pl.json", GOOD_STATE)

    def open_board():
        device = EmulatedDevice(folder)
        return device, device.global_state
    opened = only_clean_refusals(open_board, folder)
    if opened is not None:
        state = opened[0]._state
        assert all(isinstance(k, str) and isinstance(v, int) for k, v in state["registers"].items())
        assert all(isinstance(w, int) and 0 <= w < 2 ** 32 for w in state["bank"] + sum(
            (b["words"] for b in state["banks"]), []))
        assert all(isinstance(b["seq"], int) and 0 <= b["seq"] < 2 ** 32 for b in state["banks"])
        assert opened[1] is None or isinstance(opened[1].bitfile_name, str)


# --------------------------------------------------------------------------------------------
# input images
# --------------------------------------------------------------------------------------------

IO = {"input_shape": [8, 8, 1], "input_bits": 8}
dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(), hnp.boolean_dtypes(),
                   hnp.complex_number_dtypes(), hnp.byte_string_dtypes(max_len=3), hnp.unicode_string_dtypes(max_len=3),
                   hnp.datetime64_dtypes(), hnp.timedelta64_dtypes())
shapes = st.one_of(st.just((8, 8, 1)), st.tuples(st.integers(0, 3), st.just(8), st.just(8), st.integers(1, 3)),
                   hnp.array_shapes(min_dims=0, max_dims=5, max_side=9))


@FUZZ
@given(images=hnp.arrays(dtypes, shapes), scale=st.one_of(st.none(), st.floats(allow_nan=True)))
def test_input_images(tmp_path_factory, images, scale):
    from semifreddo.deploy.contract.streams import input_codes, load_images

    folder = tmp_path_factory.mktemp("images")
    codes = only_clean_refusals(lambda: input_codes(images, IO, scale), folder)
    if codes is not None:
        assert codes.dtype == np.uint32 and codes.ndim == 4 and codes.shape[1:] == (8, 8, 1)
        assert codes.size == 0 or codes.max() <= 255
        values = np.asarray(images, dtype=np.float64).reshape(codes.shape)
        if scale is not None:
            values = values / scale
        if np.issubdtype(images.dtype, np.floating) or scale is not None:
            np.testing.assert_array_equal(codes, np.round(values * 255))
        else:
            np.testing.assert_array_equal(codes, values)
    # The same array as a file given to `run`/`csim`, written by numpy (objects can't be saved plainly).
    path = folder / "x.npy"
    if images.dtype != object:
        np.save(path, images)
        loaded = only_clean_refusals(lambda: load_images(path), folder)
        assert loaded is not None and loaded.dtype == images.dtype


@FUZZ
@given(raw=st.binary(max_size=400), keep=st.integers(0, 200))
def test_input_image_files(tmp_path_factory, raw, keep):
    from semifreddo.deploy.contract.streams import input_codes, load_images

    folder = tmp_path_factory.mktemp("npy")
    good = io.BytesIO()
    np.save(good, np.zeros((1, 8, 8, 1), np.uint8))
    path = folder / "x.npy"
    path.write_bytes(good.getvalue()[:keep] + raw)          # a real header cut anywhere, then anything

    def read():
        return input_codes(load_images(path), IO)
    only_clean_refusals(read, folder)
