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
    return f"{value:#x}" if option in ("xcr0", "xfd") else str(value)


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


def _selections(run: RunEntry, prog: Program) -> list[tuple[str | None, list[str], list[str]]]:
    """(variant, tests, harness args) for each invocation the run entry splits into."""
    out = []
    variants = run.variants or [None]
    tests = run.tests or prog.tests
    for v in variants:
        if run.split == "test":
            for t in tests:
                name = f"{prog.fixture_of(t)}.{v}.{t}" if v else f"{prog.fixture_of(t)}.{t}"
                out.append((v, [t], ["-r", name]))
        elif run.tests:
            args = []
            for t in run.tests:
                args += ["-r", f"{prog.fixture_of(t)}.{v}.{t}" if v else
                         f"{prog.fixture_of(t)}.{t}"]
            out.append((v, list(run.tests), args))
        else:
            out.append((v, [], ["-v", v] if v else []))
    return out


def _instance_id(prog: str, variant: str | None, tests: list[str], params: dict[str, int],
                 whole_variant: bool) -> str:
    parts = [prog, variant or "all"]
    if not whole_variant:
        parts.append("+".join(tests))
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
        for variant, tests, sel_args in _selections(run, prog):
            for params in _points(m, prog, variant, kvm_xcr0):
                iid = _instance_id(prog.name, variant, tests, params, not tests)
                if iid in seen:
                    continue
                seen.add(iid)
                args = []
                for option in OPTION_FLAGS:
                    if option in params:
                        args += [OPTION_FLAGS[option], _format(option, params[option])]
                once.append(Instance(id=iid, program=prog.name, args=args + sel_args,
                                     variant=variant, tests=tests, params=params,
                                     timeout=timeout))
    n = repeat if repeat is not None else profile.repeat
    if n <= 1:
        return once
    return [dataclasses.replace(i, id=f"{i.id}~{r}", repeat=r)
            for r in range(1, n + 1) for i in once]
