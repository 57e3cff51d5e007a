"""Weight-set files: packing, and every refusal the reader must make (one line each).

The crafted bad files below re-compute the checksum with this test's own implementation of the
documented rule (SHA-256 over the little-endian words, then the canonical JSON of the manifest
without its checksum), so each file is wrong in exactly one way and must hit exactly one refusal.
"""

import hashlib
import io
import json

import numpy as np
import pytest

from semifreddo.deploy.contract.errors import WeightSetError
from semifreddo.deploy.contract.regmap import Field, build_register_map
from semifreddo.deploy.contract.weightset import encode_weight_set, read_weight_set

from conftest import one_error_line, run_cli

CORE_ID = "0123456789abcdef"


@pytest.fixture
def regmap():
    fields = [
        Field("b1.A.kernel", (3, 3, 1, 4), bits=8, signed=True, frac=7),
        Field("b1.A.bias", (4,), bits=10, signed=True, frac=7),
        Field("b2.A.alpha", (4,), bits=9, signed=False, frac=8, lo=0, hi=256),
        Field("b2.shuffle", (), bits=1, signed=False, frac=0),
        Field("head.kernel", (6, 3), bits=6, signed=True, frac=5),
    ]
    return build_register_map(fields, (1, 2))


def random_codes(regmap, seed=0):
    rng = np.random.default_rng(seed)
    return {f.name: rng.integers(f.lo, f.hi + 1, size=f.shape) for f in regmap.fields}


def good_file(tmp_path, regmap, codes=None):
    path = tmp_path / "task.npz"
    path.write_bytes(encode_weight_set(regmap, codes or random_codes(regmap), core_id=CORE_ID, task="parity",
                                       spec="digits", metrics={"accuracy": 0.9}))
    return path


def load_parts(path):
    with np.load(path) as archive:
        return archive["words"].copy(), json.loads(archive["manifest"].tobytes())


def independent_checksum(words, manifest):
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(np.asarray(words, "<u4").tobytes() + canonical).hexdigest()


def write_parts(path, words, manifest, fix_checksum=True):
    if fix_checksum:
        manifest["checksum"] = independent_checksum(words, manifest)
    buffer = io.BytesIO()
    np.savez(buffer, words=words, manifest=np.frombuffer(json.dumps(manifest).encode(), np.uint8))
    path.write_bytes(buffer.getvalue())


# ---- layout -------------------------------------------------------------------------------

def test_layout_rules(regmap):
    # Each field starts on a new word; codes sit in 8/16/32-bit slots. Counted by hand:
    # kernel 36 codes in 8-bit slots -> 9 words; bias 4 codes in 16-bit slots -> 2 words;
    # alpha 4 x 16-bit -> 2 words; shuffle 1 x 8-bit -> 1 word; head 18 x 8-bit -> 5 words.
    assert [(f.word_offset, f.n_words) for f in regmap.fields] == [(0, 9), (9, 2), (11, 2), (13, 1), (14, 5)]
    assert regmap.n_words == 19


def test_pack_unpack_round_trip_including_extremes(regmap):
    codes = random_codes(regmap)
    codes["b1.A.kernel"].flat[0] = -128
    codes["b1.A.kernel"].flat[1] = 127
    codes["b2.A.alpha"][:2] = [0, 256]
    words = regmap.pack(codes)
    assert words.dtype == np.uint32 and words.shape == (19,)
    back = regmap.unpack(words)
    for name, value in codes.items():
        np.testing.assert_array_equal(back[name], value)
    # Slot positions, checked by hand: the first two kernel codes are the low two bytes of word 0.
    assert words[0] & 0xFFFF == (0x80 | (0x7F << 8))


def test_pack_refuses_codes_outside_their_range(regmap):
    codes = random_codes(regmap)
    codes["b2.A.alpha"][0] = 257
    with pytest.raises(Exception, match="outside its range"):
        regmap.pack(codes)


def test_good_file_reads_back(tmp_path, regmap):
    codes = random_codes(regmap, 3)
    ws = read_weight_set(good_file(tmp_path, regmap, codes), expect_core_id=CORE_ID, expect_regmap=regmap)
    assert ws.task == "parity" and ws.core_id == CORE_ID and ws.regmap_id == regmap.id
    for name, value in codes.items():
        np.testing.assert_array_equal(ws.codes()[name], value)


# ---- refusals -------------------------------------------------------------------------------

def refusal(path, **kwargs) -> str:
    with pytest.raises(WeightSetError) as info:
        read_weight_set(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def cli_refusal(path) -> str:
    proc = run_cli("weights", "show", path)
    assert proc.returncode != 0
    return one_error_line(proc)


def test_refuses_wrong_core_id(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    assert "made for frozen core 0123456789abcdef, but this core is ffffffffffffffff" in refusal(
        path, expect_core_id="ffffffffffffffff")


def test_refuses_another_register_map(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    other = build_register_map(list(regmap.fields[:-1]), (1, 2))
    assert "made for register map" in refusal(path, expect_regmap=other)


def test_refuses_unknown_format_version(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    manifest["format_version"] = 99
    write_parts(path, words, manifest)
    assert "unknown format version 99" in refusal(path)
    assert "unknown format version 99" in cli_refusal(path)


def test_refuses_checksum_mismatch(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    words[3] ^= 1
    write_parts(path, words, manifest, fix_checksum=False)
    assert "checksum mismatch" in refusal(path)
    assert "checksum mismatch" in cli_refusal(path)


def test_refuses_edited_manifest(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    manifest["task"] = "something-else"
    write_parts(path, words, manifest, fix_checksum=False)
    assert "checksum mismatch" in refusal(path)


def test_refuses_truncated_file(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "truncated" in refusal(path)
    assert "truncated" in cli_refusal(path)


def test_refuses_wrong_word_count(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    write_parts(path, words[:-1], manifest)
    assert "has 18 words but its register layout needs 19" in refusal(path)
    assert "has 18 words" in cli_refusal(path)


def test_refuses_code_outside_declared_width(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    alpha = regmap.field("b2.A.alpha")
    # alpha codes are 16-bit slots holding 0..256; put 300 in the first slot.
    words[alpha.word_offset] = (words[alpha.word_offset] & 0xFFFF0000) | 300
    write_parts(path, words, manifest)
    message = refusal(path)
    assert "b2.A.alpha[0]: code 300 is outside its declared 9-bit unsigned range [0, 256]" in message
    assert "code 300" in cli_refusal(path)


def test_refuses_signed_code_outside_declared_width(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    head = regmap.field("head.kernel")
    # 6-bit signed codes live in 8-bit slots: 0x40 = 64 does not fit -32..31.
    words[head.word_offset] = (words[head.word_offset] & 0xFFFFFF00) | 0x40
    write_parts(path, words, manifest)
    assert "head.kernel[0]: code 64 is outside its declared 6-bit signed range [-32, 31]" in refusal(path)


def test_refuses_pickled_object_array(tmp_path, regmap):
    path = good_file(tmp_path, regmap)
    words, manifest = load_parts(path)
    buffer = io.BytesIO()
    np.savez(buffer, words=words, manifest=np.array([manifest], dtype=object))
    path.write_bytes(buffer.getvalue())
    assert "pickled object array" in refusal(path)
    assert "pickled object array" in cli_refusal(path)


def test_refuses_file_that_is_not_a_weight_set(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    assert "truncated or not a weight-set file" in refusal(path)
    assert "no such weight-set file" in refusal(tmp_path / "missing.npz")
