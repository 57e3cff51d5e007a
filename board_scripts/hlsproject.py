"""Reading the HLS project that `semifreddo convert` writes (contract: hls_project/README.md).

Only ``hls_manifest.json`` and ``regmap.json`` are read here; the C++ sources are handed to Vitis
HLS as they are. Relative paths in the manifest (sources, test bench, ``-I`` flags) are relative
to the project folder; they are made absolute because Vitis HLS compiles elsewhere.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from semifreddo.deploy.contract.errors import SemifreddoError
from semifreddo.deploy.contract.interface import ArtifactIds
from semifreddo.deploy.contract.regmap import RegisterMap, load_register_map
from semifreddo.hls_project.plan import PLAN_FILE, HardwarePlan, read_plan
from semifreddo.hls_project.project import MANIFEST, REGMAP, read_manifest


@dataclass(frozen=True)
class HlsProject(ArtifactIds):
    root: Path          # absolute
    manifest: dict

    @property
    def top(self) -> str:
        return self.manifest["top"]

    @property
    def ip_vlnv(self) -> str:
        return self.manifest["ip_vlnv"]

    @property
    def sources(self) -> list[Path]:
        return [self.root / p for p in self.manifest["sources"]]

    @property
    def testbench(self) -> list[Path]:
        return [self.root / p for p in self.manifest["testbench"]]

    @property
    def tb_data(self) -> Path:
        return self.root / self.manifest["tb_data"]

    @property
    def cflags(self) -> str:
        return absolute_include_flags(self.manifest["cflags"], self.root)


def absolute_include_flags(cflags: str, root: Path) -> str:
    """``cflags`` with every relative ``-I`` directory made absolute against ``root``."""
    out, words = [], shlex.split(cflags)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-I" and i + 1 < len(words):
            out.append("-I" + str(root / words[i + 1]))
            i += 2
            continue
        if word.startswith("-I"):
            word = "-I" + str(root / word[2:])     # an absolute path stays as it is
        out.append(word)
        i += 1
    return " ".join(out)


def load_hls_project(root: Path, spec: str) -> HlsProject:
    """The converted HLS project of ``spec`` at ``root``, checked against the contract."""
    root = Path(root).resolve()
    project = HlsProject(root, read_manifest(root, spec))
    if project.manifest["spec"] != spec:
        raise SemifreddoError(f"{root / MANIFEST}: made for spec {project.manifest['spec']!r}, not {spec!r}")
    for path in [*project.sources, *project.testbench, project.tb_data, root / REGMAP]:
        if not path.exists():
            raise SemifreddoError(f"{root / MANIFEST}: lists {path}, which does not exist; "
                                  f"run `semifreddo convert {spec}` again")
    matching_regmap(project.manifest, root / REGMAP)
    return project


def matching_regmap(manifest: dict, path: Path) -> RegisterMap:
    """The register map at ``path``, which must be the one the manifest's IP was generated with."""
    regmap = load_register_map(path)
    if regmap.id != manifest["regmap_id"]:
        raise SemifreddoError(f"{path}: register map {regmap.id} does not belong to this HLS project "
                              f"(its manifest says {manifest['regmap_id']}); run `semifreddo convert` again")
    return regmap


def matching_plan(manifest: dict, folder: Path) -> HardwarePlan:
    """The hardware plan in ``folder``, which must be the one the manifest's IP was generated with."""
    plan = read_plan(folder, manifest["spec"])
    if (plan.core_id, plan.regmap.id) != (manifest["core_id"], manifest["regmap_id"]):
        raise SemifreddoError(f"{Path(folder) / PLAN_FILE}: made for core {plan.core_id} and register map "
                              f"{plan.regmap.id}, but the project's manifest says {manifest['core_id']} and "
                              f"{manifest['regmap_id']}; run `semifreddo convert {manifest['spec']}` again")
    return plan
