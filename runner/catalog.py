"""The test programs: their fixtures, variants and tests, and the options they accept.

The static list lives in configs/programs.toml. When a program's binary exists, its `-l`
listing (kselftest harness format) replaces the static variants and tests.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import tomllib
from pathlib import Path

# Matrix axes and the command-line option each maps to.
OPTION_FLAGS = {"seed": "--seed", "rounds": "--rounds", "round": "--round",
                "xcr0": "--xcr0", "xfd": "--xfd", "vcpus": "--vcpus", "duration": "--duration"}
PROGRAM_KEYS = {"fixture", "variants", "tests", "options", "xcr0_variant", "xcr0_drivable",
                "timeout"}


@dataclasses.dataclass
class Program:
    name: str
    fixture: str
    variants: list[str]
    tests: list[str]
    options: list[str]
    xcr0_variant: str | None = None
    xcr0_drivable: int = 0x3
    timeout: float = 120.0
    source: str = "static"  # "static" or the path of the binary that listed itself
    fixtures: dict[str, str] = dataclasses.field(default_factory=dict)  # test -> fixture

    def fixture_of(self, test: str) -> str:
        return self.fixtures.get(test, self.fixture)


class CatalogError(Exception):
    pass


def load_static(path: Path) -> dict[str, Program]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogError(f"{path}: {e}") from None
    programs = {}
    errors = []
    for name, entry in data.items():
        if not isinstance(entry, dict):
            errors.append(f"{path}: {name}: expected a table")
            continue
        for key in entry:
            if key not in PROGRAM_KEYS:
                errors.append(f"{path}: {name}: unknown key '{key}'")
        for opt in entry.get("options", []):
            if opt not in OPTION_FLAGS:
                errors.append(f"{path}: {name}: unknown option '{opt}' "
                              f"(known: {', '.join(OPTION_FLAGS)})")
        try:
            drivable = int(str(entry.get("xcr0_drivable", "0x3")), 0)
        except ValueError:
            errors.append(f"{path}: {name}: xcr0_drivable is not a number")
            drivable = 0x3
        programs[name] = Program(
            name=name, fixture=entry.get("fixture", name),
            variants=list(entry.get("variants", [])), tests=list(entry.get("tests", [])),
            options=list(entry.get("options", [])), xcr0_variant=entry.get("xcr0_variant"),
            xcr0_drivable=drivable, timeout=float(entry.get("timeout", 120)))
    if errors:
        raise CatalogError("\n".join(errors))
    return programs


def parse_listing(text: str) -> tuple[list[str], list[str], dict[str, str]]:
    """Variants, tests and test->fixture from a kselftest harness `-l` listing.

    The harness prints '%-20s %-25s %s' rows of fixture, variant, test; the fixture only on
    a fixture's first row, and variants and tests zipped rather than crossed.
    """
    variants: list[str] = []
    tests: list[str] = []
    fixtures: dict[str, str] = {}
    fixture = ""
    in_table = False
    for line in text.splitlines():
        if line.startswith("# FIXTURE"):
            in_table = True
            continue
        if not in_table or not line.strip() or set(line.strip()) == {"-"}:
            continue  # other output (e.g. "Random seed: ..."), blank and separator lines
        cells, pos = [], 0
        for width in (20, 25):
            if pos < len(line) and line[pos] != " ":
                token = line[pos:].split()[0]
                cells.append(token)
                pos += max(width, len(token)) + 1
            else:
                cells.append("")
                pos += width + 1
        cells.append(line[pos:].strip() if pos < len(line) else "")
        if cells[0]:
            fixture = cells[0]
        if cells[1] and cells[1] not in variants:
            variants.append(cells[1])
        if cells[2]:
            if cells[2] not in tests:
                tests.append(cells[2])
            fixtures.setdefault(cells[2], fixture)
    return variants, tests, fixtures


def discover(program: Program, bin_dir: Path, timeout: float = 10.0) -> Program:
    """`program` with variants and tests from its binary's `-l`, if the binary exists."""
    binary = bin_dir / program.name
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return program
    try:
        proc = subprocess.run([str(binary), "-l"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return program
    # The harness lists on stderr; stdout may carry other lines (e.g. "Random seed: ...").
    listing = proc.stderr if "# FIXTURE" in proc.stderr else proc.stdout
    variants, tests, fixtures = parse_listing(listing)
    if not tests:
        return program
    first_fixture = next(iter(fixtures.values()), program.fixture)
    return dataclasses.replace(program, variants=variants, tests=tests, fixtures=fixtures,
                               fixture=first_fixture, source=str(binary))


def load(configs_dir: Path, bin_dir: Path | None) -> dict[str, Program]:
    programs = load_static(configs_dir / "programs.toml")
    if bin_dir is not None:
        programs = {n: discover(p, bin_dir) for n, p in programs.items()}
    return programs
