"""The deploy bundle (DESIGN §3.5): one folder that is copied to the board as it is.

::

    bundle-<board>/
      manifest.json                 what is here: spec, board, ids, tasks, and every file's SHA-256
      semifreddo_<spec>.bit/.hwh    the overlay; same basename, as PYNQ requires (not for `emulated`)
      regmap.json                   the register map the IP was built with
      weightsets/<task>.npz         every task's weight set, each checked against core and register map
      semifreddo/deploy/**/*.py     the board side (contract/ and runtime/): put the bundle folder on
                                    sys.path and `import semifreddo.deploy.runtime.driver`
      notebooks/*.ipynb             the board notebooks
      emulator/<overlay>.so/.json   only for ``emulated``: the IP's C simulation and the emulated
                                    block design, which the emulated board serves as its bitstream
      samples/<task>.npz            held-out images and labels per task (from the spec's data, or
                                    kept by `train-task --data`), so the notebook measures quality
                                    on the board itself

For a real board the bitstream, .hwh and register map come from the synth and bitstream steps of
that board; for ``emulated`` the register map comes from the converted HLS project and there is
no bitstream (the emulated board of semifreddo.deploy serves it). The bundle is built in a
staging folder and renamed into place. ``add_to_bundle`` adds a task to a finished bundle.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timezone
from pathlib import Path

from semifreddo.deploy.contract.interface import (BUNDLE_FORMAT, BUNDLE_MANIFEST as MANIFEST, DMA_INSTANCE, DMA_VLNV, FRAME_BUFFER_WORDS,
                                                  EMULATED_HARDWARE_FORMAT,
                                        IP_INSTANCE, ports, read_bundle_manifest, stamp)
from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.fileio import (atomic_write_bytes, clean_stale_temps, is_temp_file, replace_dir, sha256_bytes,
                                      sha256_file, start_staging_dir)
from semifreddo.deploy.contract.weightset import read_weight_set

from . import hlsproject
from semifreddo.deploy.contract.boards import Board
from .flow import BITSTREAM_RECORD, SYNTH_RECORD, read_record
from .layout import BoardBuild, write_json
from semifreddo.hls_project.plan import HardwarePlan

DRIVER_DIR = Path("semifreddo") / "deploy"


def deploy_source() -> Path:
    """The board-side package (the ``deploy/`` folder), wherever semifreddo is installed from."""
    import semifreddo.deploy
    return Path(semifreddo.deploy.__file__).resolve().parent


def check_hwh(path: Path, board: Board, ip_vlnv: str) -> None:
    """The .hwh must describe this board's PS, the IP under its contract name and VLNV, and the DMA
    in simple mode, or the driver on the board would bind to the wrong thing."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise SemifreddoError(f"{path}: not a readable .hwh ({exc})") from None
    modules = {m.get("INSTANCE"): m for m in root.iter("MODULE")}
    ip = modules.get(IP_INSTANCE)
    if ip is None or ip.get("VLNV") != ip_vlnv:
        found = ip.get("VLNV") if ip is not None else "no such instance"
        raise SemifreddoError(f"{path}: expected IP {IP_INSTANCE} of type {ip_vlnv}, found {found}")
    dma = modules.get(DMA_INSTANCE)
    if dma is None:
        raise SemifreddoError(f"{path}: has no {DMA_INSTANCE}")
    sg = dma.find("./PARAMETERS/PARAMETER[@NAME='C_INCLUDE_SG']")
    if sg is not None and sg.get("VALUE") != "0":
        raise SemifreddoError(f"{path}: {DMA_INSTANCE} has scatter-gather enabled; the driver needs simple mode")
    if not any(m.get("MODTYPE") == board.ps_ip for m in modules.values()):
        raise SemifreddoError(f"{path}: has no {board.ps_ip}, so it was not built for {board.name}")


def _hardware(layout: BoardBuild, board: Board) -> tuple[dict, HardwarePlan, Path, dict | None]:
    """(HLS manifest, hardware plan, register-map file, bitstream record) of what the bundle will describe."""
    if board.emulated:
        project = hlsproject.load_hls_project(layout.hls_source, layout.spec)
        return (project.manifest, hlsproject.matching_plan(project.manifest, project.root),
                project.root / hlsproject.REGMAP, None)
    step = f"semifreddo bitstream {layout.spec} --board {board.name}"
    record = read_record(layout.vivado / BITSTREAM_RECORD, step)
    synth = read_record(layout.hls / SYNTH_RECORD, f"semifreddo synth {layout.spec} --board {board.name}")
    if (record.get("core_id"), record.get("regmap_id")) != (synth.get("core_id"), synth.get("regmap_id")):
        raise SemifreddoError(f"the bitstream in {layout.vivado} was built from an older IP than {layout.hls}: "
                              f"run `{step}` again")
    for path in (layout.bitstream, layout.hwh):
        if not path.exists():
            raise SemifreddoError(f"{path} not found: run `{step}` again")
    manifest = hlsproject.read_manifest(layout.hls, layout.spec)
    check_hwh(layout.hwh, board, synth["ip_vlnv"])
    return manifest, hlsproject.matching_plan(manifest, layout.hls), layout.hls / hlsproject.REGMAP, record


# The emulated block design (read by semifreddo.deploy.runtime.emulator in place of a .hwh).
IP_ADDRESS = 0x4000_0000        # where PYNQ-Z2 designs usually put the first GP0 slave
DMA_ADDRESS = 0x4040_0000


def emulated_hardware(plan: HardwarePlan, ip_vlnv: str) -> dict:
    """The emulated block design, in the form PYNQ's ``ip_dict`` takes for a real .hwh: the register
    offsets are those the hardware plan gave the IP's ``s_axilite`` pragmas (its register map)."""
    regmap = plan.regmap
    outputs = ports("out", regmap.banks)
    bank_offset, bank_words = regmap.bank_offset, regmap.n_words
    offsets = {name: regmap.control[name] for name in ports("in", regmap.banks) + outputs}
    registers = {"CTRL": (0x00, "read-write", "Control signals"),
                 "GIER": (0x04, "read-write", "Global Interrupt Enable Register"),
                 "IP_IER": (0x08, "read-write", "IP Interrupt Enable Register"),
                 "IP_ISR": (0x0C, "read-write", "IP Interrupt Status Register")}
    for name, offset in offsets.items():
        if name in outputs:
            registers[name] = (offset, "read-only", f"Data signal of {name}")
            registers[f"{name}_ctrl"] = (offset + 4, "read-only", f"Control signal of {name}")
        else:
            registers[name] = (offset, "read-write", f"Data signal of {name}")
    if "frame_buffer" in regmap.control:        # a 64-bit AXI master address: two words, as Vitis HLS names them
        offset = regmap.control["frame_buffer"]
        for word, (name, half) in enumerate(zip(FRAME_BUFFER_WORDS, ("low", "high"))):
            registers[name] = (offset + 4 * word, "read-write", f"Data signal of frame_buffer ({half} word)")
    addr_range = max(0x10000, 1 << (bank_offset + 4 * bank_words - 1).bit_length())

    def ip(vlnv, address, size, regs, parameters):
        return {"type": vlnv, "phys_addr": address, "addr_range": size, "parameters": parameters,
                "registers": {name: {"address_offset": off, "size": 32, "access": access, "description": text,
                                     "fields": {}} for name, (off, access, text) in regs.items()}}

    dma_parameters = {"c_include_sg": "0", "c_sg_length_width": "26", "c_micro_dma": "0",
                      "c_include_mm2s": "1", "c_include_s2mm": "1", "c_include_mm2s_dre": "0",
                      "c_include_s2mm_dre": "0", "c_m_axi_mm2s_data_width": "64", "c_m_axi_s2mm_data_width": "64",
                      "c_m_axis_mm2s_tdata_width": "32", "c_s_axis_s2mm_tdata_width": "32"}
    return {**stamp(EMULATED_HARDWARE_FORMAT),
            "ip": {IP_INSTANCE: ip(ip_vlnv, IP_ADDRESS, addr_range, registers, {}),
                   DMA_INSTANCE: ip(DMA_VLNV, DMA_ADDRESS, 0x10000, {}, dma_parameters)},
            "ip_instance": IP_INSTANCE, "dma_instance": DMA_INSTANCE, "bank": {"offset": bank_offset,
                                                                              "words": bank_words}}


def _emulator(layout: BoardBuild, hls_manifest: dict, plan: HardwarePlan, stage: Path) -> dict | None:
    """What the emulated board serves in place of a bitstream: the IP's compiled C simulation
    (``emulator/<overlay>.so``) and, beside it as a .hwh beside a .bit, the emulated block design
    (``emulator/<overlay>.json``, see semifreddo.deploy.runtime.emulator). None for an HLS project that has
    no C simulation bridge (only hand-made projects lack it)."""
    from semifreddo.deploy.contract.simulated_ip import SimulatedIP
    from semifreddo.hls_project.csim import build_library

    hls_dir = layout.hls_source
    if not (hls_dir / "semifreddo_bridge.cpp").exists():
        return None
    library = build_library(hls_dir)
    if SimulatedIP.load(library).bank_words != plan.regmap.n_words:
        raise SemifreddoError(f"{library}: C simulation does not match {hls_dir / hlsproject.REGMAP}; "
                              f"run `semifreddo convert {layout.spec}` again")
    names = {"bitstream": f"emulator/{layout.overlay}.so", "hardware": f"emulator/{layout.overlay}.json"}
    (stage / "emulator").mkdir()
    shutil.copyfile(library, stage / names["bitstream"])
    hardware = emulated_hardware(plan, hls_manifest["ip_vlnv"])
    write_json(stage / names["hardware"], hardware)
    return names


def _samples(layout: BoardBuild, spec, tasks: dict, stage: Path) -> dict:
    """Held-out images with their labels (classify) or target images (pixel) for each task, so the
    notebook can measure quality where the training data is not at hand: ``samples/<task>.npz``
    with ``x``, ``y`` and ``classes`` (outputs that count for a classify task). A spec's own tasks
    get them from its data; a task trained from the user's data from ``BUILD/<spec>/samples/``,
    which `train-task --data` writes; a task with neither gets none. Returns task -> file."""
    from semifreddo.models.artifacts import BuildPaths
    from semifreddo.models.datasets import SAMPLES, load_task
    from semifreddo.models.spec import load_spec

    if spec is None:
        try:
            spec = load_spec(layout.spec)          # only a shipped spec can be found from its name
        except SemifreddoError:
            spec = None
    names = {}
    for task in tasks:
        kept = BuildPaths(layout.spec_root).sample(task)
        if kept.exists():
            content = kept.read_bytes()
        elif spec is not None and task in spec.task_names:
            content = load_task(spec, task).held_out_samples(SAMPLES, spec.input_bits)
        else:
            continue
        names[task] = f"samples/{task}.npz"
        (stage / "samples").mkdir(exist_ok=True)
        (stage / names[task]).write_bytes(content)
    return names


def build_bundle(layout: BoardBuild, board: Board, spec=None) -> dict:
    """Build ``layout.bundle`` and return its manifest. ``spec`` (a loaded Spec) lets a spec given
    by its file supply held-out samples too; a task without samples is in ``tasks`` but not in
    ``samples``."""
    hls_manifest, plan, regmap_path, record = _hardware(layout, board)
    regmap = hlsproject.matching_regmap(hls_manifest, regmap_path)
    weightsets = sorted(layout.weightsets.glob("*.npz"))
    if not weightsets:
        raise SemifreddoError(f"no weight sets in {layout.weightsets}: train them first "
                              f"(`semifreddo train-task {layout.spec} --task all`)")
    tasks = {}
    for path in weightsets:
        ws = read_weight_set(path, expect_core_id=hls_manifest["core_id"], expect_regmap=regmap)
        if ws.task in tasks:
            raise SemifreddoError(f"{path}: task {ws.task} is already in {tasks[ws.task]}")
        tasks[ws.task] = f"weightsets/{path.name}"

    stage = start_staging_dir(layout.bundle)
    copies = {regmap_path: "regmap.json"}
    copies.update({path: f"weightsets/{path.name}" for path in weightsets})
    if record:
        copies[layout.bitstream] = layout.bitstream.name
        copies[layout.hwh] = layout.hwh.name
    driver = deploy_source()
    copies.update({path: (DRIVER_DIR / path.relative_to(driver)).as_posix() for path in sorted(driver.rglob("*.py"))})
    notebooks = sorted((driver / "runtime" / "notebooks").glob("*.ipynb"))
    copies.update({path: f"notebooks/{path.name}" for path in notebooks})
    for source, name in copies.items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, stage / name)
    emulator = _emulator(layout, hls_manifest, plan, stage) if board.emulated else None
    samples = _samples(layout, spec, tasks, stage)
    written = [*copies.values(), *(emulator or {}).values(), *samples.values()]

    manifest = {
        **stamp(BUNDLE_FORMAT),
        "spec": layout.spec, "board": board.name, "part": board.part, "emulated": board.emulated,
        "overlay": layout.overlay,
        "bitstream": layout.bitstream.name if record else None,
        "hwh": layout.hwh.name if record else None,
        "clock_mhz": record["clock_mhz"] if record else None,
        "ip_vlnv": hls_manifest["ip_vlnv"],
        "ip_instance": IP_INSTANCE, "dma_instance": DMA_INSTANCE,
        "core_id": hls_manifest["core_id"], "regmap_id": regmap.id, "regmap": "regmap.json",
        "tasks": tasks, "driver": str(DRIVER_DIR), "notebooks": [f"notebooks/{p.name}" for p in notebooks],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "emulator": emulator, "samples": samples,
        "files": {name: sha256_file(stage / name) for name in sorted(written)},
    }
    if board.emulated:
        manifest["note"] = "no bitstream: the emulated board (semifreddo.deploy) serves this bundle"
    write_json(stage / MANIFEST, manifest)
    replace_dir(stage, layout.bundle)
    return manifest


def files_of(folder: Path) -> set[str]:
    """Every file under ``folder`` as a POSIX path relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not is_temp_file(p.name)}


def compare_checksums(manifest: dict, found: dict[str, str], where: str) -> None:
    """``found`` (path -> SHA-256, the manifest itself excluded) must match the manifest exactly."""
    listed = manifest["files"]
    missing = sorted(set(listed) - set(found))
    extra = sorted(set(found) - set(listed))
    changed = sorted(name for name in set(listed) & set(found) if listed[name] != found[name])
    if missing or extra or changed:
        problems = [f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                    for label, names in (("missing", missing), ("not in the manifest", extra),
                                         ("checksum differs for", changed)) if names]
        raise SemifreddoError(f"{where}: bundle does not match its manifest: {'; '.join(problems)}")


def verify_bundle(folder: Path, ignore: set[str] = frozenset()) -> dict:
    """Check every file of a bundle against its manifest; return the manifest. Files named in
    ``ignore`` are left out on both sides (they are about to be rewritten)."""
    folder = Path(folder)
    manifest = read_bundle_manifest(folder)
    found = {name: sha256_file(folder / name) for name in files_of(folder) - {MANIFEST} - set(ignore)}
    listed = {name: digest for name, digest in manifest["files"].items() if name not in ignore}
    compare_checksums({**manifest, "files": listed}, found, str(folder))
    return manifest


def task_samples(weights: Path, task: str) -> Path | None:
    """The held-out samples `train-task --data` wrote beside a weight set in a build folder
    (``BUILD/<spec>/samples/<task>.npz`` for ``BUILD/<spec>/weightsets/<task>.npz``), if any."""
    path = weights.resolve().parent.parent / "samples" / f"{task}.npz"
    return path if weights.resolve().parent.name == "weightsets" and path.is_file() else None


def _checked_samples(path: Path, regmap) -> bytes:
    """A samples file's bytes, once it reads as numbers (never a pickle) shaped for this IP."""
    import io

    import numpy as np

    content = path.read_bytes()
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            shape = data["x"].shape
            ok = {"x", "y", "classes"} <= set(data.files) and len(data["y"]) == shape[0]
    except (ValueError, KeyError, OSError, EOFError) as exc:
        raise SemifreddoError(f"{path}: not a samples file ({exc.__class__.__name__})") from None
    expected = regmap.io.get("input_shape", shape[1:])
    if not ok or list(shape[1:]) != list(expected):
        raise SemifreddoError(f"{path}: not samples for this IP (images {shape[1:]}, the IP takes {tuple(expected)})")
    return content


def add_to_bundle(bundle: Path, weights: Path, *, task: str | None = None, replace: bool = False,
                  samples: Path | None = None) -> tuple[str, dict]:
    """Add a weight set to an existing bundle as task ``task`` (default: the weight set's own task):
    checked against the bundle's core id and register map, copied in, and the manifest rewritten
    with its checksum. Held-out samples come along when given or when `train-task --data` wrote
    them beside the weight set. Each file is written atomically, the manifest last, so the
    manifest never names a file that is not complete; the bundle is verified before and after.
    Returns the task's name and the new manifest."""
    from semifreddo.deploy.contract.regmap import load_register_map
    from semifreddo.deploy.contract.weightset import decode_weight_set
    from semifreddo.models.spec import NAME_RULE, is_valid_name

    bundle, weights = Path(bundle), Path(weights)
    manifest = read_bundle_manifest(bundle)
    clean_stale_temps(bundle)                          # what an earlier `bundle add` killed mid-write left
    regmap = load_register_map(bundle / manifest["regmap"])
    if regmap.id != manifest["regmap_id"]:
        raise SemifreddoError(f"{bundle}: regmap.json ({regmap.id}) is not the bundle's register map "
                              f"({manifest['regmap_id']}); package it again")
    try:
        raw = weights.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise SemifreddoError(f"{weights}: no such weight-set file") from None
    ws = decode_weight_set(raw, source=str(weights), path=weights, expect_core_id=manifest["core_id"],
                           expect_regmap=regmap)
    name = task or ws.task
    if not is_valid_name(name):
        raise SemifreddoError(f"task name {name!r}: {NAME_RULE}")
    if name in manifest["tasks"] and not replace:
        raise SemifreddoError(f"{bundle} already has a task {name!r}; pass --replace to replace it, or --task to "
                              "give the new one another name")
    samples = Path(samples) if samples else task_samples(weights, ws.task)
    sample_bytes = _checked_samples(samples, regmap) if samples else None

    weights_name, samples_name = f"weightsets/{name}.npz", f"samples/{name}.npz"
    old_files = {manifest["tasks"].get(name), manifest.get("samples", {}).get(name)} - {None}
    verify_bundle(bundle, ignore={weights_name, samples_name} | old_files)

    files = {k: v for k, v in manifest["files"].items() if k not in old_files}
    tasks, sample_files = dict(manifest["tasks"]), {k: v for k, v in manifest.get("samples", {}).items() if k != name}
    atomic_write_bytes(bundle / weights_name, raw)
    files[weights_name], tasks[name] = sha256_bytes(raw), weights_name
    if sample_bytes is not None:
        atomic_write_bytes(bundle / samples_name, sample_bytes)
        files[samples_name], sample_files[name] = sha256_bytes(sample_bytes), samples_name
    added = {**manifest.get("added", {}),
             name: {"from": str(weights), "checksum": ws.manifest["checksum"],
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    new = {**manifest, "tasks": tasks, "samples": sample_files, "added": added, "files": dict(sorted(files.items()))}
    write_json(bundle / MANIFEST, new)
    for stale in old_files - set(files):
        (bundle / stale).unlink(missing_ok=True)
    return name, verify_bundle(bundle)
