"""The test programs: their fixtures (each with variants, maybe none, and tests) and the
options they accept.

configs/programs.toml names the programs and holds what a binary cannot tell: the options
(matrix axes) each takes, its timeout, which variant --xcr0 applies to. Fixtures, variants
and tests come only from the binary's `-l` listing (kselftest harness format; every program
lists on every harness version, lib/kvmfpu_harness.h): a program that is not built has none,
and says so, and a test no binary lists cannot be planned.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

# Matrix axes and the command-line option each maps to.
OPTION_FLAGS = {"seed": "--seed", "rounds": "--rounds", "round": "--round",
                "xcr0": "--xcr0", "vcpus": "--vcpus", "duration": "--duration"}
PROGRAM_KEYS = {"options", "xcr0_variant", "xcr0_drivable", "timeout"}
LISTED_KEYS = {"fixture", "fixtures", "variants", "tests"}   # what `-l` tells


@dataclasses.dataclass
class Fixture:
    name: str
    variants: list[str]          # empty: the fixture has no variants
    tests: list[str]

    def case(self, variant: str | None, test: str) -> str:
        """The harness's full test name (what `-r` takes and `ok N` prints)."""
        return f"{self.name}.{variant}.{test}" if variant else f"{self.name}.{test}"


@dataclasses.dataclass
class Program:
    name: str
    fixtures: list[Fixture]      # from the binary's -l; empty when it could not tell
    options: list[str]
    xcr0_variant: str | None = None
    xcr0_drivable: int = 0x3
    timeout: float = 120.0
    source: str = "not built"    # the binary that listed itself, or why nothing was listed
    filters: bool = True         # False: the binary's harness ignores -l/-v/-f/-r (6.1)

    @property
    def listed(self) -> bool:
        """Whether the fixtures come from the binary (else names can't be checked)."""
        return bool(self.fixtures)

    @property
    def variants(self) -> list[str]:
        return _union(f.variants for f in self.fixtures)

    @property
    def tests(self) -> list[str]:
        return _union(f.tests for f in self.fixtures)

    @property
    def fixture_names(self) -> list[str]:
        return [f.name for f in self.fixtures]

    def variant_is_unique(self, variant: str) -> bool:
        """Whether `-v variant` selects one fixture's variant only."""
        return sum(variant in f.variants for f in self.fixtures) == 1


def _union(lists: Any) -> list[str]:
    out: list[str] = []
    for items in lists:
        out.extend(x for x in items if x not in out)
    return out


class CatalogError(Exception):
    pass


def _names(where: str, value: Any, errors: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: expected a list of strings, got {value!r}")
        return []
    return list(value)


def load_static(path: Path) -> dict[str, Program]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogError(f"{path}: {e}") from None
    programs = {}
    errors: list[str] = []
    for name, entry in data.items():
        if not isinstance(entry, dict):
            errors.append(f"{path}: {name}: expected a table")
            continue
        for key in entry:
            if key in LISTED_KEYS:
                errors.append(f"{path}: {name}.{key}: fixtures, variants and tests come from "
                              "the binary's -l, not from programs.toml")
            elif key not in PROGRAM_KEYS:
                errors.append(f"{path}: {name}: unknown key '{key}'")
        options = _names(f"{path}: {name}.options", entry.get("options", []), errors)
        for opt in options:
            if opt not in OPTION_FLAGS:
                errors.append(f"{path}: {name}: unknown option '{opt}' "
                              f"(known: {', '.join(OPTION_FLAGS)})")
        try:
            drivable = int(str(entry.get("xcr0_drivable", "0x3")), 0)
        except ValueError:
            errors.append(f"{path}: {name}.xcr0_drivable: expected a number, got "
                          f"{entry.get('xcr0_drivable')!r}")
            drivable = 0x3
        xcr0_variant = entry.get("xcr0_variant")
        if xcr0_variant is not None and not isinstance(xcr0_variant, str):
            errors.append(f"{path}: {name}.xcr0_variant: expected a variant name, got "
                          f"{xcr0_variant!r}")
            xcr0_variant = None
        timeout = entry.get("timeout", 120)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            errors.append(f"{path}: {name}.timeout: expected a positive number of seconds, "
                          f"got {timeout!r}")
            timeout = 120
        programs[name] = Program(
            name=name, fixtures=[], options=options,
            xcr0_variant=xcr0_variant, xcr0_drivable=drivable, timeout=float(timeout))
    if errors:
        raise CatalogError("\n".join(errors))
    return programs


def _cells(line: str) -> list[str]:
    """Fixture, variant and test cells of a '%-20s %-25s %s' row (long names push right)."""
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
    return cells


def parse_listing(text: str) -> list[Fixture]:
    """Fixtures from a kselftest harness `-l` listing.

    The harness prints a header, then per fixture rows of fixture (first row only), variant
    and test, with variants and tests zipped rather than crossed, fixtures separated by
    dashes. Fixtures without tests (e.g. an empty 'global') are left out.
    """
    fixtures: list[Fixture] = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("# FIXTURE"):
            in_table = True
            continue
        if not in_table or not line.strip() or set(line.strip()) == {"-"}:
            continue  # other output (e.g. "Random seed: ..."), blank and separator lines
        fixture, variant, test = _cells(line)
        if fixture:
            fixtures.append(Fixture(fixture, [], []))
        if not fixtures:
            continue
        if variant and variant not in fixtures[-1].variants:
            fixtures[-1].variants.append(variant)
        if test and test not in fixtures[-1].tests:
            fixtures[-1].tests.append(test)
    return [f for f in fixtures if f.tests]


# Usage texts of a program that selects tests (-l, -v, -f, -t, -r): kvmfpu's own selection
# (lib/kvmfpu_harness.h, on every harness version), or the kselftest harness's from 6.2 on.
# A binary with neither (a 6.1 harness alone) ignores those options and runs every test, even
# for -l.
HARNESS_FILTER_MARKS = (b"run the test named fixture.variant.test", b"include variant")


def has_filters(binary: Path) -> bool:
    try:
        with open(binary, "rb") as f:
            data = f.read()
    except OSError:
        return True
    return any(m in data for m in HARNESS_FILTER_MARKS)


def discover(program: Program, bin_dir: Path, timeout: float = 10.0) -> Program:
    """`program` with fixtures from its binary's `-l`; without them, `source` says why."""
    binary = bin_dir / program.name
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return dataclasses.replace(program,
                                   source=f"not built ({binary} not found or not executable)")
    if not has_filters(binary):   # `-l` would run every test
        return dataclasses.replace(program, filters=False,
                                   source=f"{binary}: harness without test filters")
    try:
        proc = subprocess.run([str(binary), "-l"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return dataclasses.replace(program, source=f"{binary} -l failed: {e}")
    # The harness lists on stderr; stdout may carry other lines (e.g. "Random seed: ...").
    listing = proc.stderr if "# FIXTURE" in proc.stderr else proc.stdout
    fixtures = parse_listing(listing)
    if not fixtures:
        return dataclasses.replace(program, source=f"{binary} -l listed no tests "
                                                   f"(exit {proc.returncode})")
    return dataclasses.replace(program, fixtures=fixtures, source=str(binary))


def load(configs_dir: Path, bin_dir: Path | None) -> dict[str, Program]:
    path = configs_dir / "programs.toml"
    programs = load_static(path)
    if bin_dir is None:
        return {n: dataclasses.replace(p, source="not built (no bin directory)")
                for n, p in programs.items()}
    programs = {n: discover(p, bin_dir) for n, p in programs.items()}
    errors = [f"{path}: {n}.xcr0_variant: {p.xcr0_variant!r} is not a variant {p.source} "
              f"lists (known: {', '.join(p.variants)})"
              for n, p in programs.items()
              if p.listed and p.xcr0_variant is not None and p.xcr0_variant not in p.variants]
    if errors:
        raise CatalogError("\n".join(errors))
    return programs
