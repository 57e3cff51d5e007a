"""The csynth report reader and table.

The fixture, test_board_helpers.CSYNTH_XML, is written by hand in the layout Vitis HLS uses for
<solution>/syn/report/csynth.xml (element names as in AMD's reports and as hls4ml's report reader
reads them; fields as UG1399 "Synthesis Summary" describes them). Its numbers are made up; the
expected values below are worked out from them by hand.
"""

import pytest

from semifreddo.board_scripts.report import cost_model_estimate, format_table, parse_csynth
from semifreddo.deploy.contract.errors import SemifreddoError

from test_board_helpers import CSYNTH_XML


@pytest.fixture
def report_file(tmp_path):
    path = tmp_path / "csynth.xml"
    path.write_text(CSYNTH_XML)
    return path


def test_parse_reads_latency_interval_and_resources(report_file):
    r = parse_csynth(report_file)
    assert (r.tool_version, r.part, r.top) == ("2023.2", "xc7z020-clg400-1", "semifreddo_top")
    assert (r.target_clock_ns, r.estimated_clock_ns) == (10.0, 7.268)
    assert (r.latency_best, r.latency_worst, r.interval_min, r.interval_max) == (70, 74, 65, 65)
    assert r.used == {"lut": 5320, "ff": 6384, "dsp": 12, "bram_18k": 4, "uram": 0}
    assert r.available == {"lut": 53200, "ff": 106400, "dsp": 220, "bram_18k": 280, "uram": 0}


def test_table_shows_each_figure_with_its_share_of_the_part(report_file):
    table = format_table(parse_csynth(report_file))
    rows = {line.split("  ")[1].strip(): line for line in table.splitlines()[2:]}
    assert "70-74" in rows["latency (cycles)"]
    assert rows["II (cycles)"].split()[-1] == "65"
    # 5320/53200 = 10.0 %, 6384/106400 = 6.0 %, 12/220 = 5.5 %, 4/280 = 1.4 %
    assert rows["LUT"].endswith("5,320 (10.0%)")
    assert rows["FF"].endswith("6,384 (6.0%)")
    assert rows["DSP"].endswith("12 (5.5%)")
    assert rows["BRAM_18K"].endswith("4 (1.4%)")
    assert "URAM" not in rows            # none used, none shown
    assert "Vitis HLS 2023.2" in table.splitlines()[0] and "target 10 ns" in table.splitlines()[0]


def test_run_time_dependent_latency_and_older_dsp_name(tmp_path):
    text = (CSYNTH_XML.replace("<Best-caseLatency>70<", "<Best-caseLatency>undef<")
            .replace("<Worst-caseLatency>74<", "<Worst-caseLatency>undef<")
            .replace("<DSP>12</DSP>", "<DSP48E>12</DSP48E>").replace("<DSP>220</DSP>", "<DSP48E>220</DSP48E>"))
    path = tmp_path / "csynth.xml"
    path.write_text(text)
    r = parse_csynth(path)
    assert (r.latency_best, r.latency_worst) == (None, None)
    assert r.used["dsp"] == 12 and r.available["dsp"] == 220
    table = format_table(r)
    assert "undef" in table and "depends on run-time values" in table


def test_estimate_column_sits_beside_the_report(report_file):
    table = format_table(parse_csynth(report_file),
                         {"lut": 4900, "ff": 6000, "dsp": 12, "bram_18k": 4, "latency_cycles": 66, "ii": 64,
                          "label": "estimate, calibrated against Yosys 0.23"})
    lines = table.splitlines()
    assert lines[1].split() == ["csynth", "estimate"]
    assert lines[[l.split()[0] for l in lines].index("LUT")].split()[-1] == "4,900"
    assert lines[-1] == "  estimate: estimate, calibrated against Yosys 0.23"


def test_broken_reports_get_one_line(tmp_path):
    path = tmp_path / "csynth.xml"
    path.write_text("<profile><PerformanceEstimates>")
    with pytest.raises(SemifreddoError, match="not a readable csynth XML report"):
        parse_csynth(path)
    path.write_text("<EDKSYSTEM/>")
    with pytest.raises(SemifreddoError, match="not a Vitis HLS csynth report"):
        parse_csynth(path)
    with pytest.raises(SemifreddoError, match="no synthesis report"):
        parse_csynth(tmp_path / "missing.xml")


def test_estimate_column_comes_from_the_cost_model(tmp_path):
    """The synth report's estimate column is the real estimator's figure for the IP (the same
    numbers `semifreddo estimate` prints), labelled as an estimate; without a trained core it
    says what is missing."""
    import yaml

    from semifreddo.hls_project.estimate.estimator import estimate
    from semifreddo.models.artifacts import BuildPaths, save_core
    from semifreddo.models.spec import load_spec

    from test_estimate_handcount import CODES, TINY_SPEC

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPEC))
    spec = load_spec(path)
    with pytest.raises(SemifreddoError, match="no frozen core yet"):
        cost_model_estimate(str(path), tmp_path / "build", 100.0)
    save_core(BuildPaths.for_spec(spec, tmp_path / "build").core, spec, CODES, {"accuracy": 0.0})
    figures = cost_model_estimate(str(path), tmp_path / "build", 125.0)
    ip = estimate(spec, CODES, clock_mhz=125.0).designs["semifreddo"]
    assert figures["lut"] == ip.total.rounded()["lut"] > 0
    assert figures["latency_cycles"] == ip.latency_cycles
    assert figures["label"].startswith("ESTIMATE")
