"""The C simulation's ring-buffer ``ap_shift_reg`` (hls_project/templates/ap_shift_reg.h, written
over the project's firmware/ap_types/) against Xilinx's model as hls4ml ships it: the same values
from every shift and read, at random addresses, with and without Enable, for a depth that is a
power of two and one that is not."""

import subprocess
from pathlib import Path

import pytest

from semifreddo.hls_project.project import TEMPLATES

pytestmark = pytest.mark.compile

HARNESS = r"""#include <cstdio>
#include <cstdlib>
#include "ap_shift_reg.h"
template <unsigned D> void run(unsigned seed) {
    static ap_shift_reg<int, D> reg;      // static, as hls4ml's line buffers are
    std::srand(seed);
    for (int step = 0; step < 5000; step++) {
        unsigned addr = std::rand() % D;
        if (std::rand() % 4 == 0) std::printf("r%d ", reg.read(addr));
        else std::printf("s%d ", reg.shift(step, addr, std::rand() % 8 != 0));
    }
    std::printf("\n");
}
int main() { run<512>(1); run<10>(2); run<1>(3); return 0; }
"""


def _outputs(include: Path, tmp_path: Path, name: str) -> str:
    source = tmp_path / "harness.cpp"
    source.write_text(HARNESS)
    exe = tmp_path / f"{name}.exe"
    subprocess.run(["g++", "-O1", "-std=c++17", f"-I{include}", str(source), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


def test_ring_buffer_shift_register_returns_what_xilinx_model_returns(tmp_path):
    import hls4ml

    xilinx = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "ap_shift_reg.h").write_text((TEMPLATES / "ap_shift_reg.h").read_text())
    expected = _outputs(xilinx, tmp_path, "xilinx")
    assert expected.count("s") > 10000 and len(set(expected.split())) > 1000
    assert _outputs(ours, tmp_path, "ours") == expected
