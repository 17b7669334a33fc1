"""A lab run's results directory and its one-screen summary.

results/<run-id>/: lab.json (everything, machine-readable), results.ktap (one KTAP document,
each program's output as a subtest), logs/<instance>.log, dmesg.txt (kernel log per test),
console.log (ttyS0), channel.log (ttyS1), emulator.log, command.txt.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from runner import verdicts as V
from runner.lab.labs import REPO
from runner.lab.run import LabRun, copy_logs


def new_dir(lab: str) -> Path:
    base = REPO / "results"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    d = base / f"lab-{lab}-{stamp}"
    n = 1
    while d.exists():
        n += 1
        d = base / f"lab-{lab}-{stamp}-{n}"
    return d


def ktap(lr: LabRun) -> str:
    lines = ["KTAP version 1", f"1..{len(lr.instances)}"]
    for n, i in enumerate(lr.instances, 1):
        lines += ["    " + ln if ln else "" for ln in i.output.rstrip("\n").split("\n")
                  if i.output]
        for d in i.diagnostics:
            lines.append(f"# {i.instance.id}: {d}")
        for s in i.splats:
            lines += [f"# {ln}" for ln in s.lines]
        ok = "ok" if i.verdict in (V.PASS, V.SKIP) else "not ok"
        directive = " # SKIP" if i.verdict == V.SKIP else ""
        lines.append(f"{ok} {n} {i.instance.id}{directive}")
    return "\n".join(lines) + "\n"


def write(lr: LabRun, workdir: Path, wall: float) -> None:
    data = lr.to_json()
    data["wall_s"] = round(wall, 1)
    (workdir / "lab.json").write_text(json.dumps(data, indent=2) + "\n")
    (workdir / "results.ktap").write_text(ktap(lr))
    copy_logs(lr, workdir)


def summary(lr: LabRun, workdir: Path, wall: float) -> str:
    r = lr.report
    rel = workdir.relative_to(REPO) if workdir.is_relative_to(REPO) else workdir
    out = [f"lab {lr.lab.name}: kernel {r.kernel or lr.kernel.version or '?'}; "
           f"CPU {r.cpu_model or '?'}; KVM XCR0 {lr.kvm_xcr0 or '?'}; "
           f"quirks {','.join(lr.lab.quirk_names) or 'none'}"]
    for s in lr.boot_splats:
        out.append(f"  SPLAT during boot: {s.title}")
    for s in lr.ignored_splats:
        out.append(f"  (ignored boot splat, known {lr.lab.name} noise: {s.title})")
    for i in lr.instances:
        dur = f" ({i.outcome.duration:.1f} s)" if i.outcome else ""
        out.append(f"  {i.verdict.upper():11} {i.instance.id}{dur}")
        out += [f"      {d}" for d in i.diagnostics]
    if lr.lab_error:
        out.append(f"LAB ERROR: {lr.lab_error}; console tail:")
        out += [f"  | {ln}" for ln in lr.console_tail]
    vs = [i.verdict for i in lr.instances]
    out.append(f"exercised: {','.join(lr.exercised) or 'none reported'}; results in {rel}/")
    out.append(f"lab {lr.lab.name}: {vs.count(V.PASS)} passed, {vs.count(V.FAIL)} failed, "
               f"{vs.count(V.SKIP)} skipped, {vs.count(V.ERROR) + vs.count(V.INTERRUPTED)} "
               f"errors; {wall:.1f} s wall (boot+run {lr.result.wall:.1f} s); "
               f"{lr.exit_reason}")
    return "\n".join(out)
