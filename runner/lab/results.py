"""A lab run's results directory and its one-screen summary.

results/<run-id>/: lab.json (the lab's view: kernel, CPU, boot, splats, verdicts), the runner's
run.json, results.ktap, junit.xml and report.html (same format as a host run),
logs/<instance>.log, dmesg.txt (kernel log per test), console.log (ttyS0), channel.log (ttyS1),
emulator.log, command.txt.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

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


def host_record(lr: LabRun) -> dict[str, Any]:
    """The run.json `host` of a lab run: the lab guest is the host the tests ran on."""
    from runner import hostinfo
    r = lr.report
    return {
        "hostname": f"lab-{lr.lab.name}", "kernel": r.kernel or lr.kernel.version,
        "kernel_version": lr.kernel.source, "machine": "x86_64", "tier": f"lab-{lr.lab.name}",
        "cpu": {"model": r.cpu_model,
                "fpu_features": [f for f in hostinfo.FPU_FLAGS if f in r.cpu_flags],
                "cpus": lr.lab.smp},
        "kvm_supported_xcr0": lr.kvm_xcr0,
        "kvm_supported_xcr0_source": "kvmfpu-env lines of the tests in the lab guest",
        "kvm_module": ",".join(r.modules) or "kvm (built in)",
        "lab": {"name": lr.lab.name, "description": lr.lab.description,
                "quirks": lr.lab.quirk_names, "emulator_wall_s": lr.result.wall},
    }


def run_record(lr: LabRun, run_id: str, profile: str, workdir: Path,
               wall: float) -> dict[str, Any]:
    """A runner run.json record (runner/runstate.py format) for a lab run, so the runner's
    report.html, junit.xml, results.ktap and `kvmfpu compare` work on lab runs too."""
    from runner import runstate
    insts = [i.instance for i in lr.instances]
    run = runstate.new_run(run_id, profile, f"lab {lr.lab.name}: {lr.lab.description}",
                           host_record(lr), insts, "/tests", {"argv": sys.argv}, {})
    for i in lr.instances:
        if i.outcome is not None:
            runstate.record_finish(run, i.instance, i.outcome, i.output)
        entry = runstate.find(run, i.instance.id)
        entry.update(status="done", verdict=i.verdict, diagnostics=i.diagnostics)
    splats = lr.boot_splats + [s for i in lr.instances for s in i.splats]
    run["kernel_log"].update(
        watched=lr.report.began, path="lab guest: dmesg -c after each test, and the console",
        error=None if lr.report.began else lr.lab_error,
        splats=[{"line": s.title, "time": None, "instances": [s.test or "@boot"]}
                for s in splats])
    run.update(status="interrupted" if lr.lab_error else "complete",
               cut_short=lr.lab_error is not None, cut_short_reason=lr.lab_error,
               finished=runstate.now_iso(), duration=round(wall, 3))
    return run


def write(lr: LabRun, workdir: Path, wall: float, profile: str = "lab") -> None:
    data = lr.to_json()
    data["wall_s"] = round(wall, 1)
    (workdir / "lab.json").write_text(json.dumps(data, indent=2) + "\n")
    copy_logs(lr, workdir)
    try:
        from runner import artifacts
        artifacts.write_all(run_record(lr, workdir.name, profile, workdir, wall), workdir)
    except Exception as e:  # the lab's own lab.json and logs stand without the runner's views
        print(f"lab: could not write the runner's run.json/report.html: {e!r}",
              file=sys.stderr)


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
