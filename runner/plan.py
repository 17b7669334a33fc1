"""Planning: expand a profile and its matrices into instances (one program invocation each)."""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from runner import xcr0 as xcr0mod
from runner.catalog import OPTION_FLAGS, Program
from runner.config import Matrix, Profile, RunEntry


class PlanError(Exception):
    pass


@dataclasses.dataclass
class Instance:
    id: str                      # unique in the run; also the log file name
    program: str
    args: list[str]              # arguments after the program name
    variant: str | None
    tests: list[str]             # empty: every test of the variant
    params: dict[str, int]       # matrix point: option -> value
    timeout: float
    repeat: int = 1              # 1-based repeat index
    fixture: str | None = None

    @property
    def key(self) -> str:
        """What identifies the instance across runs and repeats."""
        return self.id.split("~", 1)[0]

    @property
    def seed(self) -> int | None:
        return self.params.get("seed")

    def command(self, bin_dir: str) -> list[str]:
        return [f"{bin_dir}/{self.program}"] + self.args

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _format(option: str, value: int) -> str:
    return f"{value:#x}" if option == "xcr0" else str(value)


def _xcr0_values(spec: list[Any], prog: Program, kvm_xcr0: int | None) -> list[int]:
    if spec and isinstance(spec[0], str):
        if kvm_xcr0 is None:
            raise PlanError(f"matrix xcr0 '{spec[0]}' needs KVM's supported XCR0, which could "
                            "not be read from /dev/kvm; pass --kvm-xcr0 MASK")
        usable = kvm_xcr0 & prog.xcr0_drivable
        if spec[0] == "kvm-supported":
            return [usable]
        return xcr0mod.valid_subsets(usable)
    return list(spec)


def _points(m: Matrix | None, prog: Program, variant: str | None,
            kvm_xcr0: int | None) -> list[dict[str, int]]:
    """Every combination of the matrix axes that apply to this variant."""
    if m is None:
        return [{}]
    axes = []
    for option, values in m.axes.items():
        if option == "xcr0":
            if variant != prog.xcr0_variant:
                continue
            values = _xcr0_values(values, prog, kvm_xcr0)
        axes.append([(option, v) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)]


@dataclasses.dataclass
class Selection:
    """What one invocation runs: a label for its id and the harness arguments."""
    label: str
    fixture: str
    variant: str | None
    tests: list[str]             # empty: every test of the fixture (and variant)
    args: list[str]


def _selections(run: RunEntry, prog: Program) -> list[Selection]:
    """The invocations a run entry splits into: per (fixture, variant) group, or per test.

    A group that is a whole variant of one fixture is selected with `-v VARIANT`, a whole
    fixture without variants with `-f FIXTURE`; anything narrower with one `-r` per test
    (the harness ORs its filters, so `-v a -t b` would run more than asked).
    """
    if not prog.filters:   # every invocation runs every test; the xcr0 axis still applies
        return [Selection("all", "", prog.xcr0_variant, [], [])]
    if not prog.listed:
        raise PlanError(f"{prog.name}: {prog.source}: its fixtures, variants and tests come "
                        "from its -l listing (build it with `make`, or pass --bin DIR)")
    out = []
    for fx in prog.fixtures:
        if run.fixtures and fx.name not in run.fixtures:
            continue
        tests = [t for t in fx.tests if not run.tests or t in run.tests]
        if not tests:
            continue
        if fx.variants:
            variants: list[str | None] = [v for v in (run.variants or fx.variants)
                                          if v in fx.variants]   # in the profile's order
        elif run.variants:
            continue                  # naming variants selects fixtures that have them
        else:
            variants = [None]
        for v in variants:
            unique = v is not None and prog.variant_is_unique(v)
            label = v if unique else f"{fx.name}.{v}" if v else fx.name
            if run.split == "test":
                out += [Selection(f"{label}.{t}", fx.name, v, [t], ["-r", fx.case(v, t)])
                        for t in tests]
            elif tests != fx.tests:
                args = [a for t in tests for a in ("-r", fx.case(v, t))]
                out.append(Selection(f"{label}.{'+'.join(tests)}", fx.name, v, tests, args))
            elif unique:
                out.append(Selection(label, fx.name, v, [], ["-v", str(v)]))
            elif v is None:
                out.append(Selection(label, fx.name, None, [], ["-f", fx.name]))
            else:
                args = [a for t in tests for a in ("-r", fx.case(v, t))]
                out.append(Selection(label, fx.name, v, [], args))
    return out


def instance_id(prog: str, label: str, params: dict[str, int]) -> str:
    """PROGRAM.LABEL.option=value...: the id of an instance (also `kvmfpu lab --test` items)."""
    parts = [prog, label]
    for option in OPTION_FLAGS:
        if option in params:
            parts.append(f"{option}={_format(option, params[option])}")
    return ".".join(parts)


def expand(profile: Profile, matrices: dict[str, Matrix], programs: dict[str, Program],
           kvm_xcr0: int | None = None, repeat: int | None = None) -> list[Instance]:
    """All instances of a profile, in run order (repeats of the whole plan come last)."""
    once: list[Instance] = []
    seen: set[str] = set()
    for run in profile.runs:
        prog = programs[run.program]
        m = matrices.get(run.matrix or profile.matrix or "")
        timeout = run.timeout or profile.timeout or prog.timeout
        for sel in _selections(run, prog):
            for params in _points(m, prog, sel.variant, kvm_xcr0):
                iid = instance_id(prog.name, sel.label, params)
                if iid in seen:
                    continue
                seen.add(iid)
                args = []
                for option in OPTION_FLAGS:
                    if option in params:
                        args += [OPTION_FLAGS[option], _format(option, params[option])]
                once.append(Instance(id=iid, program=prog.name, args=args + sel.args,
                                     variant=sel.variant, tests=sel.tests, params=params,
                                     timeout=timeout, fixture=sel.fixture))
    n = repeat if repeat is not None else profile.repeat
    if n <= 1:
        return once
    return [dataclasses.replace(i, id=f"{i.id}~{r}", repeat=r)
            for r in range(1, n + 1) for i in once]
