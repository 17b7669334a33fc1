"""Lab definitions and emulator quirks, loaded from configs/labs/*.toml."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs" / "labs"
LAUNCHERS = ("qemu", "bochs")


class LabConfigError(ValueError):
    """A lab definition in configs/labs/ is missing or wrong."""


@dataclass
class Quirk:
    name: str
    lab: str
    what: str
    tests_do: str


@dataclass
class Lab:
    name: str
    description: str
    launcher: str                   # qemu or bochs
    cmdline: str
    kvm_module: str                 # kvm-amd, kvm-intel, or auto (after the host's vendor)
    boot_timeout: int = 90
    accel: str = "tcg"
    cpu: str = "max"
    memory: str = "2G"
    smp: int = 1
    ips: int = 100000000
    kvm_xcr0: str = ""              # KVM's XCR0 there, for planning xcr0 matrices only
    exercises: list[str] = field(default_factory=list)
    # Modules that give the kernel under test its own FPU users for the stress test's
    # kernel_fpu stimulus: AF_ALG and the x86 SIMD drivers behind it. Loaded after KVM where
    # the kernel has them as modules; one the kernel lacks is named in the lab log, and the
    # stress test then skips kernel_fpu saying what /proc/crypto lacks.
    kernel_fpu_modules: list[str] = field(default_factory=list)
    # Regexes for splat titles that the emulator itself causes while the kernel boots (before
    # any test runs). Matching boot splats are recorded as ignored, not counted. Never KVM's.
    ignore_boot_splats: list[str] = field(default_factory=list)
    quirks: list[Quirk] = field(default_factory=list)

    @property
    def quirk_names(self) -> list[str]:
        return [q.name for q in self.quirks]


def load_quirks(config_dir: Path = CONFIG_DIR) -> dict[str, Quirk]:
    with open(config_dir / "quirks.toml", "rb") as f:
        data = tomllib.load(f)
    out = {}
    for name, q in data.items():
        if not name.replace("_", "").isalnum():
            raise LabConfigError(f"quirks.toml: bad quirk name {name!r} (letters, digits, _)")
        out[name] = Quirk(name, q.get("lab", ""), q.get("what", ""), q.get("tests_do", ""))
    return out


def names(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in config_dir.glob("*.toml") if p.stem != "quirks")


def load(name: str, config_dir: Path = CONFIG_DIR) -> Lab:
    path = config_dir / f"{name}.toml"
    if not path.is_file():
        raise LabConfigError(f"unknown lab {name!r}; labs: {', '.join(names(config_dir))}")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    known = load_quirks(config_dir)
    quirk_names = data.pop("quirks", [])
    unknown = [q for q in quirk_names if q not in known]
    if unknown:
        raise LabConfigError(f"{path}: quirks not defined in quirks.toml: {', '.join(unknown)}")
    fields = set(Lab.__dataclass_fields__) - {"quirks"}
    extra = set(data) - fields
    if extra:
        raise LabConfigError(f"{path}: unknown keys: {', '.join(sorted(extra))}")
    lab = Lab(**data, quirks=[known[q] for q in quirk_names])
    if lab.name != name:
        raise LabConfigError(f"{path}: name = {lab.name!r}, expected {name!r}")
    for rx in lab.ignore_boot_splats:
        try:
            re.compile(rx)
        except re.error as e:
            raise LabConfigError(f"{path}: ignore_boot_splats: {rx!r}: {e}") from e
    if lab.launcher not in LAUNCHERS:
        raise LabConfigError(f"{path}: launcher must be one of {LAUNCHERS}")
    return lab
