"""Verdicts and exit codes, defined once.

An instance (one program invocation) gets one verdict; a run's exit code follows from the
verdicts of its instances, the kernel log, and whether anything ran at all.
"""
from __future__ import annotations

from typing import Iterable

PASS = "pass"
FAIL = "fail"
SKIP = "skip"
ERROR = "error"
INTERRUPTED = "interrupted"  # killed because the run was cut short: no verdict

VERDICTS = (PASS, FAIL, SKIP, ERROR, INTERRUPTED)

# Run exit codes (ARCHITECTURE.md): 0 pass, 1 a check failed, 2 harness/environment error.
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_ERROR = 2

# kselftest exit codes of a test program.
KSFT_PASS = 0
KSFT_FAIL = 1
KSFT_ERROR = 2  # our programs: bad arguments or a harness/environment error
KSFT_SKIP = 4

# How bad a verdict is, for combining several into one (worst wins).
# A failed check outranks an error: it is a KVM verdict that stands even when other
# instances could not run (bisect treats it as "bad").
_RANK = {SKIP: 0, PASS: 1, INTERRUPTED: 2, ERROR: 3, FAIL: 4}


def worst(verdicts: Iterable[str], default: str = SKIP) -> str:
    """The worst of several verdicts; `default` when there are none."""
    result = None
    for v in verdicts:
        if result is None or _RANK[v] > _RANK[result]:
            result = v
    return default if result is None else result


def run_exit_code(verdicts: Iterable[str], kernel_splats: int = 0,
                  cut_short: bool = False) -> int:
    """Exit code of a whole run.

    1 if any check failed or the kernel logged a splat; otherwise 2 if anything was an
    error, the run was cut short, or nothing ran (all skipped or empty); otherwise 0.
    """
    vs = list(verdicts)
    if FAIL in vs or kernel_splats:
        return EXIT_FAIL
    if ERROR in vs or INTERRUPTED in vs or cut_short:
        return EXIT_ERROR
    if PASS not in vs:
        return EXIT_ERROR  # nothing ran: never report that as a pass
    return EXIT_PASS


def exit_reason(verdicts: Iterable[str], kernel_splats: int = 0,
                cut_short: bool = False) -> str:
    """One line saying why run_exit_code() returned what it did."""
    vs = list(verdicts)
    code = run_exit_code(vs, kernel_splats, cut_short)
    if code == EXIT_FAIL:
        parts = []
        if FAIL in vs:
            parts.append(f"{vs.count(FAIL)} instance(s) failed")
        if kernel_splats:
            parts.append(f"{kernel_splats} kernel log splat(s)")
        return "FAIL: " + ", ".join(parts)
    if code == EXIT_ERROR:
        if ERROR in vs:
            return f"ERROR: {vs.count(ERROR)} instance(s) could not give a verdict"
        if cut_short or INTERRUPTED in vs:
            return "ERROR: run was cut short"
        return "ERROR: nothing ran (every instance skipped or none planned)"
    return "PASS"
