"""Profiles and matrices from configs/*.toml, validated with one one-line error per problem.

A profile names what to run (programs, variants, tests) and how (timeouts, repeat, jobs);
a matrix names the argument values to cross it with (seeds, rounds, XCR0 values, ...). A
matrix is written inline where it is used (`matrix = { seed = [1, 2] }` in the profile or
its [[run]]), or, when profiles share it, in configs/matrices/NAME.toml and named.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from runner import xcr0
from runner.catalog import OPTION_FLAGS, Program

PROFILE_KEYS = {"description", "matrix", "timeout", "repeat", "jobs", "lab_cpus", "run"}
RUN_KEYS = {"program", "fixtures", "variants", "tests", "split", "timeout", "matrix"}
MATRIX_KEYS = {"description"} | set(OPTION_FLAGS)
XCR0_SPECIAL = ("kvm-supported", "kvm-valid-subsets")
SPLITS = ("variant", "test")


class ConfigError(Exception):
    """Holds every problem found, one per line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclasses.dataclass
class Matrix:
    name: str
    description: str = ""
    axes: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # option -> values


@dataclasses.dataclass
class RunEntry:
    program: str
    variants: list[str]       # empty: every variant, and fixtures without variants
    tests: list[str]          # empty: every test
    fixtures: list[str] = dataclasses.field(default_factory=list)  # empty: every fixture
    split: str = "variant"
    timeout: float | None = None
    matrix: str | None = None  # a shared matrix's name, or "run[N] matrix" for an inline one


@dataclasses.dataclass
class Profile:
    name: str
    description: str = ""
    matrix: str | None = None
    timeout: float | None = None
    repeat: int = 1
    jobs: int = 0             # 0: one per CPU
    lab_cpus: int | None = None   # CPUs a lab boots for it (None: the lab's `smp`; --smp wins)
    runs: list[RunEntry] = dataclasses.field(default_factory=list)


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        problems.append(f"{path}: no such file")
    except tomllib.TOMLDecodeError as e:
        problems.append(f"{path}: TOML syntax error: {e}")
    return None


def _unknown_keys(where: str, table: dict[str, Any], known: set[str],
                  problems: list[str]) -> None:
    for key in table:
        if key not in known:
            problems.append(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})")


def _positive_number(where: str, value: Any, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        problems.append(f"{where}: expected a positive number, got {value!r}")
        return None
    return float(value)


def _int_list(where: str, value: Any, problems: list[str], minimum: int) -> list[int]:
    if isinstance(value, dict):  # {first = N, count = M}
        _unknown_keys(where, value, {"first", "count"}, problems)
        first, count = value.get("first", 1), value.get("count")
        if not isinstance(first, int) or not isinstance(count, int) or count < 1:
            problems.append(f"{where}: expected {{first = N, count = M}} with M >= 1")
            return []
        value = list(range(first, first + count))
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: expected a non-empty list of integers")
        return []
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            problems.append(f"{where}: {v!r} is not an integer >= {minimum}")
        else:
            out.append(v)
    return out


def _xcr0_axis(where: str, value: Any, problems: list[str]) -> list[Any]:
    """XCR0 values: a list of masks, or one of XCR0_SPECIAL (resolved at planning)."""
    if isinstance(value, str) and value in XCR0_SPECIAL:
        return [value]
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: expected a list of XCR0 masks or one of "
                        f"{', '.join(repr(s) for s in XCR0_SPECIAL)}")
        return []
    out = []
    for v in value:
        try:
            mask = xcr0.parse_mask(v)
        except ValueError as e:
            problems.append(f"{where}: {e}")
            continue
        found = xcr0.problems(mask)
        problems.extend(f"{where}: {p}" for p in found)
        if not found:
            out.append(mask)
    return out


def _string(where: str, table: dict[str, Any], key: str, problems: list[str]) -> None:
    if key in table and not isinstance(table[key], str):
        problems.append(f"{where}: {key}: expected a string, got {table[key]!r}")


def parse_matrix(name: str, data: dict[str, Any], where: str) -> tuple[Matrix, list[str]]:
    problems: list[str] = []
    _unknown_keys(where, data, MATRIX_KEYS, problems)
    _string(where, data, "description", problems)
    m = Matrix(name=name, description=str(data.get("description", "")))
    for axis in OPTION_FLAGS:
        if axis not in data:
            continue
        if axis == "xcr0":
            m.axes[axis] = _xcr0_axis(f"{where}: xcr0", data[axis], problems)
        else:
            minimum = 0 if axis == "round" else 1
            m.axes[axis] = _int_list(f"{where}: {axis}", data[axis], problems, minimum)
    return m, problems


def load_matrix(configs_dir: Path, name: str) -> Matrix:
    problems: list[str] = []
    path = configs_dir / "matrices" / f"{name}.toml"
    data = _read_toml(path, problems)
    if data is None:
        raise ConfigError(problems)
    m, problems = parse_matrix(name, data, str(path))
    if problems:
        raise ConfigError(problems)
    return m


def _str_list(where: str, value: Any, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: expected a list of strings")
        return []
    return list(value)


def _parse_run(where: str, entry: Any, programs: dict[str, Program],
               problems: list[str]) -> RunEntry | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a table")
        return None
    _unknown_keys(where, entry, RUN_KEYS, problems)
    name = entry.get("program")
    if not isinstance(name, str):
        problems.append(f"{where}.program: expected a program name, got {name!r}")
        return None
    if name not in programs:
        problems.append(f"{where}: unknown program {name!r} "
                        f"(known: {', '.join(sorted(programs))})")
        return None
    prog = programs[name]
    # Names are checked against the binary's -l; without one the planner refuses the run.
    listed = prog.listed
    fixtures = _str_list(f"{where}.fixtures", entry.get("fixtures", []), problems)
    for f in fixtures:
        if listed and f not in prog.fixture_names:
            problems.append(f"{where}.fixtures: unknown fixture '{f}' of {name} "
                            f"(known: {', '.join(prog.fixture_names)}; from {prog.source})")
    variants = _str_list(f"{where}.variants", entry.get("variants", []), problems)
    for v in variants:
        if listed and v not in prog.variants:
            problems.append(f"{where}.variants: unknown variant '{v}' of {name} "
                            f"(known: {', '.join(prog.variants)}; from {prog.source})")
    tests = _str_list(f"{where}.tests", entry.get("tests", []), problems)
    for t in tests:
        if listed and t not in prog.tests:
            problems.append(f"{where}.tests: unknown test '{t}' of {name} "
                            f"(known: {', '.join(prog.tests)}; from {prog.source})")
    split = entry.get("split", "variant")
    if split not in SPLITS:
        problems.append(f"{where}.split: expected one of {', '.join(SPLITS)}, got {split!r}")
    timeout = None
    if "timeout" in entry:
        timeout = _positive_number(f"{where}.timeout", entry["timeout"], problems)
    matrix = entry.get("matrix")
    if isinstance(matrix, dict):
        matrix = None                 # inline: parse_profile names it, load_profile parses it
    elif matrix is not None and not isinstance(matrix, str):
        problems.append(f"{where}.matrix: expected a matrix name or a table of axes, "
                        f"got {matrix!r}")
        matrix = None
    return RunEntry(program=name, variants=variants, tests=tests, split=str(split),
                    timeout=timeout, matrix=matrix, fixtures=fixtures)


def parse_profile(name: str, data: dict[str, Any], where: str,
                  programs: dict[str, Program]) -> tuple[Profile, list[str]]:
    problems: list[str] = []
    _unknown_keys(where, data, PROFILE_KEYS, problems)
    _string(where, data, "description", problems)
    matrix = data.get("matrix")
    if isinstance(matrix, dict):
        matrix = "profile matrix"     # inline: load_profile parses it
    elif matrix is not None and not isinstance(matrix, str):
        problems.append(f"{where}: matrix: expected a matrix name or a table of axes, "
                        f"got {matrix!r}")
        matrix = None
    p = Profile(name=name, description=str(data.get("description", "")), matrix=matrix)
    if "timeout" in data:
        p.timeout = _positive_number(f"{where}: timeout", data["timeout"], problems)
    for key in ("repeat", "jobs", "lab_cpus"):
        if key in data:
            v = data[key]
            low = 0 if key == "jobs" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                problems.append(f"{where}: {key}: expected an integer >= {low}, got {v!r}")
            else:
                setattr(p, key, v)
    runs = data.get("run")
    if not isinstance(runs, list) or not runs:
        problems.append(f"{where}: expected at least one [[run]] table")
        runs = []
    for i, entry in enumerate(runs):
        r = _parse_run(f"{where}: run[{i}]", entry, programs, problems)
        if r is not None and isinstance(entry.get("matrix"), dict):
            r.matrix = f"run[{i}] matrix"
        if r is not None:
            p.runs.append(r)
    return p, problems


def _check_matrix_fits(where: str, m: Matrix, prog: Program, run: RunEntry,
                       problems: list[str]) -> None:
    """A matrix axis must be an option of the program, and xcr0 needs the xcr0 variant."""
    for axis in m.axes:
        if axis not in prog.options:
            problems.append(f"{where}: matrix '{m.name}' axis '{axis}': {prog.name} has no "
                            f"{OPTION_FLAGS[axis]} option")
    if prog.xcr0_variant is None and "xcr0" in m.axes:
        problems.append(f"{where}: matrix '{m.name}' sets xcr0, which no variant of "
                        f"{prog.name} takes (programs.toml has no xcr0_variant)")
    elif "xcr0" in m.axes and (run.variants or prog.listed) and \
            prog.xcr0_variant not in (run.variants or prog.variants):
        problems.append(f"{where}: matrix '{m.name}' sets xcr0, which only affects variant "
                        f"'{prog.xcr0_variant}' of {prog.name}, not selected here")


def load_profile(configs_dir: Path, name: str,
                 programs: dict[str, Program]) -> tuple[Profile, dict[str, Matrix]]:
    """The profile and every matrix it uses; raises ConfigError listing all problems."""
    problems: list[str] = []
    path = configs_dir / "profiles" / f"{name}.toml"
    data = _read_toml(path, problems)
    if data is None:
        raise ConfigError(problems)
    profile, problems = parse_profile(name, data, str(path), programs)
    matrices: dict[str, Matrix] = {}
    # Inline matrices, named after where they are written ("profile matrix", "run[2] matrix").
    runs = data.get("run") if isinstance(data.get("run"), list) else []
    inline = [("profile matrix", "matrix", data.get("matrix"))] + [
        (f"run[{i}] matrix", f"run[{i}].matrix", r.get("matrix"))
        for i, r in enumerate(runs) if isinstance(r, dict)]
    for mname, key, table in inline:
        if isinstance(table, dict):
            matrices[mname], found = parse_matrix(mname, table, f"{path}: {key}")
            problems.extend(found)
    for i, run in enumerate(profile.runs):
        mname = run.matrix or profile.matrix
        if mname is None:
            continue
        if mname not in matrices:
            try:
                matrices[mname] = load_matrix(configs_dir, mname)
            except ConfigError as e:
                problems.extend(e.problems)
                continue
        _check_matrix_fits(f"{path}: run[{i}]", matrices[mname], programs[run.program], run,
                           problems)
    if problems:
        raise ConfigError(problems)
    return profile, matrices


def names(configs_dir: Path, kind: str) -> list[str]:
    return sorted(p.stem for p in (configs_dir / kind).glob("*.toml"))


def validate_all(configs_dir: Path, programs: dict[str, Program]) -> list[str]:
    """Problems in every profile and matrix under configs_dir (empty when all are valid)."""
    problems: list[str] = []
    for m in names(configs_dir, "matrices"):
        try:
            load_matrix(configs_dir, m)
        except ConfigError as e:
            problems.extend(e.problems)
    for p in names(configs_dir, "profiles"):
        try:
            load_profile(configs_dir, p, programs)
        except ConfigError as e:
            problems.extend(x for x in e.problems if x not in problems)
    return problems
