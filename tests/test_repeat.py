"""Repeatable blocks: a group of blocks built once in hardware and run `repeat` times per frame.

The QKeras reference runs the repeated blocks again with shared weights (the function the
network computes); the reused hardware passes each frame through one copy of the blocks, held
between passes in a frame buffer. Both must agree bit for bit at every repeat count.
"""

import re

import numpy as np
import pytest
import yaml

from conftest import SPECS, TINY, one_error_line, run_cli
from semifreddo.deploy.contract.errors import SpecError
from semifreddo.models.spec import load_spec, parse_spec


def spec_file(tmp_path, name: str, **repeat) -> str:
    data = yaml.safe_load((SPECS / "digits.yaml").read_text())
    data["name"] = name
    data["repeat"] = repeat
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def group_of_two(tmp_path_factory):
    """digits with its last two blocks repeated 1..4 times, trained tiny and converted (reuse)."""
    from semifreddo.hls_project.convert import convert
    from semifreddo.models.training import train_core, train_task

    root = tmp_path_factory.mktemp("group")
    spec = load_spec(spec_file(root, "group2", min=1, max=4, default=2, blocks=2))
    build = root / "build"
    train_core(spec, build, **TINY)
    train_task(spec, "parity", build, **TINY)
    convert(spec, build)
    return spec, build


@pytest.mark.train
@pytest.mark.compile
def test_a_repeated_group_of_two_blocks_is_bit_exact_at_every_repeat_count(group_of_two):
    from semifreddo.hls_project.check import check
    from semifreddo.models.artifacts import BuildPaths

    spec, build = group_of_two
    paths = BuildPaths.for_spec(spec, build)
    for task in ("digits_0_4", "parity"):
        result = check(spec, build, paths.weightset(task), samples=40)
        assert result.mismatches == {1: 0, 2: 0, 3: 0, 4: 0}, (task, result)
    # The group exists once in the IP: one call of each of its layers, inside the repeat stage,
    # and no repetition of them anywhere.
    top = (paths.hls / "firmware" / "semifreddo_top.cpp").read_text()
    for layer in ("b2_A_conv", "b3_frozen_conv", "b3_B_blend"):
        assert len(re.findall(rf"\blayer_{layer}\(", top)) == 2        # its definition and one call
    assert "b2r" not in top and "b3r" not in top and "repeat_gate" not in top
    group = top[top.index("static void group_pass("):top.index("static void repeat_pass(")]
    assert "layer_b2_A_conv(" in group and "layer_b1_A_conv(" not in group and "layer_head_dense(" not in group


@pytest.mark.train
@pytest.mark.compile
def test_the_repeat_count_changes_the_output_and_the_ip_keeps_it_in_range(group_of_two):
    """Not vacuous: each repeat count computes something else. And the IP, like the driver,
    never runs the group fewer than min or more than max times, whatever the register says."""
    from semifreddo.deploy.contract.streams import input_codes, pack_pixels
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.hls_project.csim import CSim
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.datasets import load_task

    spec, build = group_of_two
    paths = BuildPaths.for_spec(spec, build)
    sim = CSim(paths.hls)
    ws = read_weight_set(paths.weightset("parity"))
    x = load_task(spec, "parity").x_test[:16]
    outputs = {r: sim.run(x, ws, r) for r in range(1, 5)}
    assert len({o.tobytes() for o in outputs.values()}) == 4
    with pytest.raises(Exception, match="outside this IP's range 1..4"):
        sim.run(x, ws, 5)
    beats = pack_pixels(input_codes(x, sim.io), sim.io)

    def start(repeat, seq):
        return sim.start(ws.words, seq, repeat, len(x), beats)[0]

    np.testing.assert_array_equal(start(0, 101), start(1, 102))
    np.testing.assert_array_equal(start(9, 103), start(4, 104))
    np.testing.assert_array_equal(start(3, 105), start(3, 106))
    assert not np.array_equal(start(4, 107), start(1, 108))


@pytest.mark.train
@pytest.mark.compile
def test_emulated_board_runs_the_group_at_any_repeat_without_a_reload(group_of_two, tmp_path):
    from semifreddo.board_scripts.bundle import build_bundle
    from semifreddo.board_scripts.layout import BoardBuild
    from semifreddo.deploy.contract.boards import get_board
    from semifreddo.deploy.runtime.driver import Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.datasets import load_task
    from semifreddo.models.training import load_reference_model, predict
    from semifreddo.deploy.contract.streams import grid_codes
    from semifreddo.deploy.contract.weightset import read_weight_set

    spec, build = group_of_two
    layout = BoardBuild.of(build, spec.name, "emulated")
    build_bundle(layout, get_board("emulated"))
    sf = Semifreddo(layout.bundle, device=EmulatedDevice(tmp_path / "pl"))
    sf.switch("parity")
    model = load_reference_model(spec, build, read_weight_set(layout.bundle / "weightsets" / "parity.npz"))
    x = load_task(spec, "parity").x_test[:10]                 # on the input grid: the board takes its codes
    for repeat in (4, 1, 3):                       # the repeat count changes between runs, no reload
        sf.repeat = repeat
        set_repeat(model, spec, repeat)
        np.testing.assert_array_equal(sf.run(grid_codes(x, spec.input_bits)), predict(model, x))
    assert sf.active_task == "parity" and sf.active_seq == 1
    with pytest.raises(Exception, match="repeat 5 is outside this IP's range 1..4"):
        sf.repeat = 5
    assert sf.repeat == 3


def test_where_the_frame_buffer_goes(tmp_path):
    """repeat.buffer: auto keeps a small frame buffer on chip and puts a large one in DDR; `chip` that
    does not fit the board's block RAM, or `ddr` whose pixel does not fit one AXI master word, is
    refused in one line that names the field and what to do."""
    from semifreddo.hls_project.plan import hardware_layout

    data = yaml.safe_load((SPECS / "pixels.yaml").read_text())
    data["hardware"] = {"board": "pynq-z2"}
    data["dataset"]["patch"] = 16
    data["input"]["shape"] = [128, 128, 1]
    data["kernel"] = 1
    data["frozen_core"]["width"] = 24                    # 2 frames x 128 x 128 x (24 + 2 x 4) x 8 bits = 8 Mbit
    data["repeat"] = {"min": 1, "max": 2, "hardware": "reuse"}
    assert hardware_layout(parse_spec(data)).frame_buffer == "ddr"        # 8 Mbit > 5,040 kbit of block RAM
    data["hardware"] = {"board": "zcu104"}               # 11,232 kbit: it would fit, but takes more than a quarter
    assert hardware_layout(parse_spec(data)).frame_buffer == "ddr"
    data["input"]["shape"] = [32, 32, 1]                 # 512 kbit: a small share of the block RAM
    assert hardware_layout(parse_spec(data)).frame_buffer == "chip"
    data["repeat"]["buffer"] = "ddr"                     # asked for: in DDR whatever its size
    assert hardware_layout(parse_spec(data)).frame_buffer == "ddr"

    data["input"]["shape"] = [128, 128, 1]
    data["hardware"] = {"board": "pynq-z2"}
    data["repeat"]["buffer"] = "chip"
    with pytest.raises(SpecError, match=r"repeat\.buffer: .*on chip it needs a frame buffer of 8,192 kbit, more than "
                                        r"the 5,040 kbit of block RAM on pynq-z2; use `repeat.buffer: ddr`"):
        parse_spec(data)
    data["repeat"]["hardware"] = "unrolled"               # no frame buffer at all
    assert parse_spec(data).hardware.repeat_hardware == "unrolled"
    data["repeat"]["hardware"] = "reuse"
    data["repeat"]["buffer"] = "ddr"
    data["frozen_core"]["width"] = 130                   # (130 + 8) channels x 8 bits = 1,104 bits a pixel
    with pytest.raises(SpecError, match=r"repeat\.buffer: .*in DDR it passes 1104 bits a pixel between passes, "
                                        r"more than one 1024-bit AXI master word"):
        parse_spec(data)
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = run_cli("spec", path)
    assert proc.returncode == 2 and "use `repeat.buffer: chip`, `repeat.hardware: unrolled`" in one_error_line(proc)

    data["repeat"]["buffer"] = "auto"                    # neither place can hold it
    data["input"]["shape"] = [512, 512, 1]
    data["dataset"]["patch"] = 16
    with pytest.raises(SpecError, match=r"repeat\.hardware: .*on chip it needs .*; in DDR it passes 1104 bits"):
        parse_spec(data)


def test_reuse_costs_no_area_per_repeat_and_saves_the_copies(tmp_path):
    """The estimate of the digits IP: with reuse its area does not grow with repeat.max, and it is
    well below the unrolled IP that lays every run out."""
    from semifreddo.hls_project.estimate.estimator import estimate
    from semifreddo.models.layout import frozen_tensors

    def area(**repeat):
        spec = load_spec(spec_file(tmp_path, "area", min=1, default=1, **repeat))
        rng = np.random.default_rng(0)
        codes = {t.name: rng.integers(t.fmt.code_min, t.fmt.code_max + 1, t.shape) for t in frozen_tensors(spec)}
        return estimate(spec, codes).designs["semifreddo"].total.area

    reuse2, reuse4 = area(max=2, hardware="reuse"), area(max=4, hardware="reuse")
    unrolled2 = area(max=2, hardware="unrolled")
    assert abs(reuse4 - reuse2) <= 0.05 * reuse2
    assert reuse2 <= 0.75 * unrolled2


def test_repeat_spec_fields_are_checked(tmp_path):
    with pytest.raises(SpecError, match="repeat.blocks: the repeated group must leave the first block out"):
        load_spec(spec_file(tmp_path, "bad", min=1, max=2, blocks=3))
    with pytest.raises(SpecError, match="repeat.hardware: 'reused' is not one of reuse, unrolled"):
        load_spec(spec_file(tmp_path, "bad", min=1, max=2, hardware="reused"))
