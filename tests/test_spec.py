"""Spec validation: every malformed field is reported by its path, in one line, with exit code 2."""


import pytest
import yaml

from semifreddo.deploy.contract.errors import SpecError
from semifreddo.models.spec import load_spec, parse_spec

from conftest import SPECS, one_error_line, run_cli


def digits_data():
    return yaml.safe_load((SPECS / "digits.yaml").read_text())


def test_shipped_specs_validate():
    for name in ("digits", "pixels", "digits-lean"):
        spec = load_spec(name)
        counts = spec.parameter_counts()
        assert counts["frozen"] > 0 and counts["configurable"] > 0
        # The shipped specs are meant to be mostly frozen (the point of a SemifreddoNet).
        assert 0.75 <= spec.frozen_fraction < 1.0
        assert spec.data.source not in [t.task for t in spec.data.targets]
        assert len(spec.data.targets) >= 2


def mutate(path, value):
    """A digits spec with one field changed (value None deletes the field)."""
    data = digits_data()
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


BAD_FIELDS = [
    # (field to change, new value, field path the error must name, words the message must contain)
    ("frozen_core.width", -3, "frozen_core.width", "integer in 0..512"),
    ("frozen_core.width", "wide", "frozen_core.width", "expected an integer"),
    ("blocks", None, "blocks", "required field is missing"),
    ("kernel", [3, 3], "kernel", "2 kernel sizes"),
    ("kernel", 4, "kernel", "odd"),
    ("head.type", "segment", "head.type", "not one of"),
    ("trainable_cores.weights.bits", 40, "trainable_cores.weights.bits", "2..16"),
    ("source.task", "edges", "source.task", "not one of"),
    ("input.shape", [8, 8], "input.shape", "height, width, channels"),
    ("input.shape", [16, 16, 1], "input.shape", "8x8x1"),
    ("repeat", {"min": 2, "max": 1}, "repeat", "min <= default <= max"),
    ("targets.0.task", "digits_0_4", "targets[0].task", "source task"),
    ("targets.0", {"task": "digits_5_9", "shuffle": [1]}, "targets[0].shuffle", "no core-shuffle switch"),
    ("dataset.name", "mnist", "dataset.name", "not one of"),
    ("seed", True, "seed", "expected an integer"),
    ("training.core.learning_rate", 0, "training.core.learning_rate", "number in"),
    # 16-bit weights and activations overflow the 24 bits float32 holds exactly.
    ("trainable_cores.weights", {"bits": 16, "integer": 0}, "trainable_cores.weights", "accumulator"),
]


@pytest.mark.parametrize("field,value,expected_path,words", BAD_FIELDS, ids=[b[0] + "=" + repr(b[1]) for b in BAD_FIELDS])
def test_bad_field_is_named(field, value, expected_path, words):
    with pytest.raises(SpecError) as info:
        parse_spec(mutate(field, value), source="bad.yaml")
    message = str(info.value)
    assert message.startswith(f"bad.yaml: {expected_path}:"), message
    assert words in message
    assert "\n" not in message


def test_unknown_field_suggests_the_right_name():
    data = digits_data()
    data["frozen_core"]["widht"] = data["frozen_core"].pop("width")
    with pytest.raises(SpecError) as info:
        parse_spec(data, source="typo.yaml")
    message = str(info.value)
    # The missing `width` is noticed first; fix that and the typo itself is named.
    assert "frozen_core.width" in message
    data["frozen_core"]["width"] = 16
    with pytest.raises(SpecError) as info:
        parse_spec(data, source="typo.yaml")
    assert "frozen_core.widht: unknown field (did you mean 'width'?)" in str(info.value)


def test_cli_reports_bad_field_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(mutate("frozen_core.width", -3)))
    proc = run_cli("spec", bad)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "frozen_core.width" in line


def test_cli_reports_yaml_syntax_error(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: digits\nblocks: [3\n")
    proc = run_cli("spec", bad)
    assert proc.returncode == 2
    assert "not valid YAML" in one_error_line(proc)


def test_cli_spec_summary():
    proc = run_cli("spec", "digits")
    assert proc.returncode == 0, proc.stderr
    assert "frozen fraction" in proc.stdout


def test_with_frozen_fraction_hits_the_target(digits_spec):
    for fraction in (0.0, 0.5, 0.75, 0.9):
        variant = digits_spec.with_frozen_fraction(fraction)
        assert abs(variant.frozen_fraction - fraction) <= 0.03
        total = variant.parameter_counts()["total"]
        assert 0.6 < total / digits_spec.parameter_counts()["total"] < 1.5
    assert digits_spec.with_frozen_fraction(0.0).frozen_width == 0
