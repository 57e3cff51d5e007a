"""Whole frames: a pixel network trained on patches runs on frames of the size its IP is built for.

The frame here, 64 rows x 96 columns, is a size no shipped spec uses, in grey (photos, trained on
16x16 patches) and in colour (a spec's own frames from scikit-image's colour photographs). Each is
trained tiny, converted, compiled and packaged for the emulated board; at every repeat count the
C simulation and the emulated board must give, bit for bit, what the QKeras model gives on the
same whole frames. The grey spec's reused group keeps its frame on chip (the plan's choice at this
size); the colour spec's keeps it in DDR (``repeat.buffer: ddr``), so the passes go through a
buffer the driver allocates in the emulated board's memory. Then `semifreddo run` takes a PNG
photograph and writes a PNG, and refuses photographs it cannot take in one line.
"""

import numpy as np
import pytest
import yaml

from conftest import SPECS, TINY, one_error_line, run_cli

pytestmark = [pytest.mark.train, pytest.mark.compile]

HEIGHT, WIDTH = 64, 96


def frame_spec(folder, name: str, channels: int, dataset: dict, buffer: str) -> "Path":
    """pixels.yaml made small and fast, at the test frame, with the reused group run 1..3 times and
    its frame buffer where ``buffer`` says."""
    data = yaml.safe_load((SPECS / "pixels.yaml").read_text())
    data.update(name=name, blocks=2, repeat={"min": 1, "max": 3, "default": 1, "hardware": "reuse", "buffer": buffer})
    data["input"]["shape"] = [HEIGHT, WIDTH, channels]
    data["frozen_core"]["width"] = 4
    data["trainable_cores"]["width"] = 2
    data["dataset"] = dataset
    for stage in ("core", "task"):
        data["training"][stage]["batch_size"] = 16
    if dataset["name"] == "custom":
        data["source"] = {"task": "luma"}
        data.pop("targets")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def colour_frames(n: int, seed: int) -> np.ndarray:
    """``n`` 64x96 RGB crops of scikit-image's colour photographs, uint8."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        photo = photos[i % len(photos)]
        r, c = rng.integers(0, photo.shape[0] - HEIGHT), rng.integers(0, photo.shape[1] - WIDTH)
        crops.append(photo[r:r + HEIGHT, c:c + WIDTH])
    return np.stack(crops)


def luma(frames: np.ndarray) -> np.ndarray:
    return (frames.astype(np.float64) / 255 @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.float32)


@pytest.fixture(scope="module", params=["grey", "colour"])
def framed(request, tmp_path_factory):
    """(spec, build, task, frames, bundle) for a spec at the test frame: trained tiny, converted,
    compiled, and packaged for the emulated board; ``frames`` are two frames' 8-bit pixel codes."""
    from semifreddo.board_scripts.bundle import build_bundle
    from semifreddo.board_scripts.layout import BoardBuild
    from semifreddo.deploy.contract.boards import get_board
    from semifreddo.hls_project.convert import convert
    from semifreddo.models.spec import load_spec
    from semifreddo.models.training import train_core, train_task

    root = tmp_path_factory.mktemp(request.param)
    if request.param == "grey":
        path = frame_spec(root, "grey96", 1, {"name": "photos", "patch": 16, "stride": 16,
                                             "train_images": ["coins", "page"], "test_images": ["camera", "coffee"]},
                          "auto")
        spec = load_spec(path)
        train_core(spec, root / "build", **TINY)
        train_task(spec, "edges", root / "build", **TINY)
        task = "edges"
        from semifreddo.deploy.contract.streams import grid_codes
        from semifreddo.models.datasets import load_task
        held_out = load_task(spec, task).x_test
        assert held_out.shape[1:] == (HEIGHT, WIDTH, 1)      # whole frames of the held-out photographs
        frames = grid_codes(held_out[:2], spec.input_bits).astype(np.uint8)
    else:
        x = colour_frames(48, seed=1)
        np.savez(root / "frames.npz", x=x, y=luma(x))
        spec = load_spec(frame_spec(root, "colour96", 3, {"name": "custom", "path": "frames.npz"}, "ddr"))
        train_core(spec, root / "build", **TINY)
        task = "luma"
        frames = colour_frames(2, seed=2)                     # frames no training step saw
    convert(spec, root / "build")
    layout = BoardBuild.of(root / "build", spec.name, "emulated")
    build_bundle(layout, get_board("emulated"))
    return spec, root / "build", task, frames, layout.bundle


def test_whole_frames_are_bit_exact_in_c_simulation_and_on_the_emulated_board(framed, tmp_path):
    from semifreddo.deploy.contract.streams import grid_values
    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.deploy.runtime.driver import Semifreddo
    from semifreddo.deploy.runtime.emulator import EmulatedDevice
    from semifreddo.hls_project.csim import CSim
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.builder import set_repeat
    from semifreddo.models.training import load_reference_model, predict

    from semifreddo.hls_project.plan import read_plan

    spec, build, task, frames, bundle = framed
    paths = BuildPaths.for_spec(spec, build)
    place = read_plan(paths.hls).frame_buffer
    assert place == ("ddr" if spec.input_shape[2] == 3 else "chip")
    ws = read_weight_set(paths.weightset(task))
    model = load_reference_model(spec, build, ws)
    sim = CSim(paths.hls)
    board = Semifreddo(bundle, device=EmulatedDevice(tmp_path / "pl"))
    board.switch(task)
    outputs = set()
    for repeat in range(spec.repeat_min, spec.repeat_max + 1):
        set_repeat(model, spec, repeat)
        expected = predict(model, grid_values(frames, spec.input_bits))
        assert expected.shape == (len(frames), HEIGHT, WIDTH, 1)
        np.testing.assert_array_equal(sim.run(frames, ws, repeat), expected, err_msg=f"C simulation, repeat {repeat}")
        board.repeat = repeat
        np.testing.assert_array_equal(board.run(frames), expected, err_msg=f"emulated board, repeat {repeat}")
        outputs.add(expected.tobytes())
    assert len(outputs) == spec.repeat_max - spec.repeat_min + 1       # each repeat count computes something else
    if place == "ddr":
        # The passes went through the buffer the driver allocated: its second half holds the frame
        # the second of three passes wrote, packed one word a pixel.
        held = np.asarray(board._frame_buffer)
        assert held.size == 2 * HEIGHT * WIDTH * 8 and held[held.size // 2:].any()   # 8 channels x 8 bits a pixel
        # An IP pointed at memory nobody allocated stops with one error (an AXI error on a board)...
        import pynq

        from semifreddo.deploy.contract.errors import SemifreddoError
        from semifreddo.deploy.contract.streams import pack_pixels

        n_in, n_out = int(board.io["input_beats"]), int(board.io["output_beats"])
        inbuf = pynq.allocate((n_in,), dtype=np.uint32, target=board.device)
        outbuf = pynq.allocate((n_out,), dtype=np.uint32, target=board.device)
        inbuf[:] = pack_pixels(frames[:1], board.io)
        board.ip.write(0x80, 0x40)
        board.ip.write(0x84, 0)
        board.dma.sendchannel.transfer(inbuf)
        board.dma.recvchannel.transfer(outbuf)
        with pytest.raises(SemifreddoError, match="frame buffer register holds 0x40"):
            board.ip.start_and_wait(0, 1)
        # ...and after the DMA's soft reset (PG021, DMACR bit 2), as after any AXI error, the board
        # serves again: the driver points the IP at its own buffer before each start.
        for channel, offset in ((board.dma.sendchannel, 0x00), (board.dma.recvchannel, 0x30)):
            board.dma.write(offset, 0x4)
            channel.start()
        np.testing.assert_array_equal(board.run(frames), expected)


def test_run_takes_a_png_photograph_and_writes_a_png(framed, tmp_path):
    from PIL import Image

    from semifreddo.deploy.contract.weightset import read_weight_set
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.training import load_reference_model, predict

    spec, build, task, frames, bundle = framed
    state = {"SEMIFREDDO_EMULATOR_STATE": str(tmp_path / "pl")}
    assert run_cli("reload", bundle, "--task", task, env=state).returncode == 0
    channels = spec.input_shape[2]
    photo = frames[0]
    Image.fromarray(photo[..., 0] if channels == 1 else photo).save(tmp_path / "photo.png")
    proc = run_cli("run", bundle, "--input", tmp_path / "photo.png", "--output", tmp_path / "out.png", env=state)
    assert proc.returncode == 0, proc.stderr
    written = np.asarray(Image.open(tmp_path / "out.png"))
    # The PNG is the QKeras output on the photograph's pixels (8-bit code p is p / 255), clipped to
    # [0, 1] and rounded to 8 bits.
    model = load_reference_model(spec, build, read_weight_set(BuildPaths.for_spec(spec, build).weightset(task)))
    expected = predict(model, (photo.reshape(1, HEIGHT, WIDTH, channels) / 256.0).astype(np.float32))
    np.testing.assert_array_equal(written, np.round(np.clip(expected[0, ..., 0], 0, 1) * 255).astype(np.uint8))

    other = 3 if channels == 1 else 1
    wrong = {"size.png": np.zeros((HEIGHT + 2, WIDTH) + ((3,) if channels == 3 else ()), np.uint8),
             "channels.png": np.zeros((HEIGHT, WIDTH) + ((3,) if other == 3 else ()), np.uint8),
             "deep.png": np.zeros((HEIGHT, WIDTH), np.uint16)}
    for name, pixels in wrong.items():
        Image.fromarray(pixels).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    for name, words in (("size.png", f"expected (n, {HEIGHT}, {WIDTH}, {channels})"),
                        ("channels.png", f"this IP takes {channels}"),
                        ("deep.png", "a 16-bit image"), ("broken.png", "not a readable PNG or JPEG image")):
        proc = run_cli("run", bundle, "--input", tmp_path / name, "--output", tmp_path / "refused.png", env=state)
        assert proc.returncode == 2 and words in one_error_line(proc), (name, proc.stderr)
    assert not (tmp_path / "refused.png").exists()
