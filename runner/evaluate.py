"""One instance's verdict from its exit status and its KTAP output."""
from __future__ import annotations

import dataclasses
import signal
from typing import Any

from runner import ktap, verdicts as V


@dataclasses.dataclass
class Outcome:
    """How a program invocation ended, whoever ran it."""
    returncode: int | None       # None: no exit status (killed before it was reaped)
    signal: int | None = None    # signal that killed the program, if any
    timed_out: bool = False
    interrupted: bool = False    # killed because the run was cut short
    duration: float = 0.0
    host: str = ""               # where it ran ("" = this machine)
    # kernel splats logged while it ran, when its executor reads the kernel log per instance
    # (a lab guest); each fails the instance
    splats: list[str] = dataclasses.field(default_factory=list)


def test_verdict(t: ktap.TestResult) -> str:
    if t.skipped:
        return V.SKIP
    if t.ok or t.directive in ("TODO", "XFAIL"):
        return V.PASS
    if t.kind("error") or not t.complete:
        return V.ERROR
    return V.FAIL


_MARKERS = ("RUN ", "OK ", "FAIL ", "SKIP ", "Starting ", "Totals:", "PASSED:", "FAILED:")


def explain(t: ktap.TestResult) -> list[str]:
    """The test's human-readable comment lines (what it said before its result)."""
    out = []
    for line in t.lines:
        text = line.lstrip("#").strip()
        if not line.startswith("#") or not text or text.startswith(_MARKERS):
            continue
        if ktap.parse_record(line) and "kvmfpu-mismatch" not in line:
            continue
        out.append(text)
    return out[:40]


def test_json(t: ktap.TestResult) -> dict[str, Any]:
    return {
        "name": t.name, "number": t.number, "verdict": test_verdict(t),
        "directive": t.directive, "reason": t.reason, "complete": t.complete,
        "exercised": exercised(t), "explanation": explain(t), "records": t.records,
    }


def exercised(t: ktap.TestResult) -> list[str]:
    out: list[str] = []
    for r in t.kind("exercised"):
        for c in r.get("components", "").split(","):
            if c and c != "none" and c not in out:
                out.append(c)
    return out


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def evaluate(doc: ktap.Document, out: Outcome, timeout: float) -> tuple[str, list[str]]:
    """(verdict, diagnostics) of one instance."""
    diags: list[str] = []
    tests = [test_verdict(t) for t in doc.tests]
    for t, v in zip(doc.tests, tests):
        if v == V.FAIL:
            why = [x for x in explain(t) if not x.startswith("kvmfpu-")]
            diags.append(f"{t.name}: {why[0] if why else 'failed'}")
    for t in doc.tests:
        for e in t.kind("error"):
            diags.append(f"{t.name}: harness/environment error: {e.get('msg', e.get('text', ''))}")
    if out.interrupted:
        return V.INTERRUPTED, ["run was cut short while this instance ran; no verdict"]
    running = next((t.name for t in doc.tests if not t.complete), None)
    if out.timed_out:
        where = f" while '{running}' ran" if running else ""
        diags.append(f"timed out after {timeout:g} s{where}; its processes killed")
        return V.FAIL, diags
    if out.signal is not None:
        diags.append(f"program killed by {_signame(out.signal)}" +
                     (f" while '{running}' ran" if running else ""))
        return V.FAIL, diags
    verdict = V.worst(tests, default=V.SKIP)
    rc = out.returncode
    if rc == V.KSFT_ERROR:
        diags.append("program exited 2: bad arguments or a harness/environment error")
        return (V.FAIL if verdict == V.FAIL else V.ERROR), diags + doc.problems
    if doc.version is None and doc.plan is None and not doc.tests:
        diags.append(f"no KTAP output (exit status {rc})")
        return (V.SKIP if rc == V.KSFT_SKIP else V.ERROR), diags
    if doc.problems:
        diags.extend(f"KTAP: {p}" for p in doc.problems)
        if verdict != V.FAIL:
            return V.ERROR, diags
    if rc == V.KSFT_FAIL and verdict not in (V.FAIL, V.ERROR):
        diags.append("exit status 1 but no failed check in the output")
        return V.ERROR, diags
    if rc == V.KSFT_PASS and verdict == V.FAIL:
        diags.append("exit status 0 although a check failed (the output wins)")
    if rc not in (V.KSFT_PASS, V.KSFT_FAIL, V.KSFT_SKIP, V.KSFT_ERROR):
        diags.append(f"unexpected exit status {rc}")
        return (V.FAIL if verdict == V.FAIL else V.ERROR), diags
    if not doc.tests:
        if rc == V.KSFT_SKIP:
            return V.SKIP, diags
        diags.append("the program ran no tests (did the filter match nothing?)")
        return V.ERROR, diags
    return verdict, diags
