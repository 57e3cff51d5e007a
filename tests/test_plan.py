"""The hardware plan: made once by `semifreddo convert`, written as plan.json, and read by every
later step. The fit check before synth prices the project as converted, not as the YAML says."""

import json

from conftest import one_error_line, run_cli


def test_the_fit_check_prices_the_multipliers_the_project_was_converted_with(fresh_build):
    """digits on a PYNQ-Z2 fits with its configurable multipliers in DSP48s (the spec's `auto`).
    Converted with `--multipliers lut`, the same IP needs LUT multipliers, so the fit check before
    synth must refuse it, where pricing the YAML's policy would have passed it on to Vitis."""
    from semifreddo.hls_project.estimate.estimator import estimate_spec
    from semifreddo.hls_project.estimate.report import fit_verdict
    from semifreddo.models.spec import load_spec

    build = fresh_build("digits")
    proc = run_cli("convert", "digits", "--build", build, "--board", "pynq-z2", "--multipliers", "lut")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((build / "digits" / "hls" / "plan.json").read_text())
    assert plan["target"]["multipliers"] == "lut" and plan["target"]["board"] == "pynq-z2"
    placed = {layer["name"]: layer.get("multiplier") for layer in plan["layers"]}
    assert set(placed.values()) == {None, "lut"}          # every configurable multiplier in LUTs

    # The two verdicts, priced independently from the spec with each policy (not from the plan).
    spec = load_spec("digits").replace(board="pynq-z2")
    assert fit_verdict(estimate_spec(spec.replace(multipliers="auto"), build, cache_graphs=False), "pynq-z2")[0]
    lut_fits, lut_line = fit_verdict(estimate_spec(spec.replace(multipliers="lut"), build, cache_graphs=False),
                                     "pynq-z2")
    assert not lut_fits

    proc = run_cli("synth", "digits", "--board", "pynq-z2", "--build", build, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc)
    assert "does NOT fit pynq-z2" in line and lut_line.split(":")[1] in line

    # estimate --converted prices the same thing and says so in its exit code.
    proc = run_cli("estimate", "digits", "--build", build, "--converted", "--board", "pynq-z2", "--brief")
    assert proc.returncode == 1 and "does NOT fit pynq-z2" in proc.stdout.splitlines()[-1]


def test_a_plan_reads_back_as_written_and_refuses_damage(tmp_path, digits_spec):
    import pytest

    from semifreddo.deploy.contract.errors import SemifreddoError
    from semifreddo.hls_project.plan import make_plan, read_plan

    plan = make_plan(digits_spec, "0123456789abcdef")
    plan.write(tmp_path)
    assert read_plan(tmp_path) == plan
    # Every configurable conv reads its kernel and bias fields; the frozen ones read none.
    for layer in plan.layers:
        if layer.kind == "conv":
            assert bool(layer.fields) == (layer.implementation == "registers"), layer
    obj = json.loads((tmp_path / "plan.json").read_text())
    del obj["layers"][0]["name"]
    (tmp_path / "plan.json").write_text(json.dumps(obj))
    with pytest.raises(SemifreddoError, match="malformed hardware plan"):
        read_plan(tmp_path)
    proc = run_cli("estimate", "digits", "--build", tmp_path / "nothing", "--converted")
    assert proc.returncode == 2 and "semifreddo convert digits" in one_error_line(proc)
