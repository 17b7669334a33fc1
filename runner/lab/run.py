"""Run planned instances inside a lab guest and turn what came back into verdicts.

Each instance gets the same verdict it would get on the host (runner.evaluate on its KTAP and
exit status); on top of that a kernel splat while it ran fails it, and a guest that never got
to run it, or died under it without a splat, is a lab error (exit 2), never a pass.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from runner import evaluate as evaluate_mod, ktap, verdicts as V
from runner.evaluate import Outcome, evaluate
from runner.lab import boot, initramfs, protocol, qemu, splats
from runner.lab.kernel import Kernel, kvm_modules
from runner.lab.labs import Lab
from runner.plan import Instance

CONSOLE_TAIL = 40
_XCR0 = re.compile(r"kvmfpu-env:.*\bkvm_xcr0=(0x[0-9a-fA-F]+)")


class LabError(Exception):
    """The lab cannot run at all here (missing tool, kernel, binary, /dev/kvm)."""


@dataclasses.dataclass
class InstanceRun:
    instance: Instance
    verdict: str
    diagnostics: list[str]
    output: str = ""
    outcome: Outcome | None = None
    splats: list[splats.Splat] = dataclasses.field(default_factory=list)
    exercised: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        return {"id": self.instance.id, "program": self.instance.program,
                "args": self.instance.args, "verdict": self.verdict,
                "diagnostics": self.diagnostics, "exercised": self.exercised,
                "returncode": o.returncode if o else None, "signal": o.signal if o else None,
                "timed_out": o.timed_out if o else False,
                "duration": o.duration if o else None,
                "splats": [s.to_json() for s in self.splats]}


@dataclasses.dataclass
class LabRun:
    lab: Lab
    kernel: Kernel
    result: boot.BootResult
    report: protocol.GuestReport
    instances: list[InstanceRun]
    boot_splats: list[splats.Splat]
    lab_error: str | None
    console_tail: list[str]
    ignored_splats: list[splats.Splat] = dataclasses.field(default_factory=list)

    @property
    def splat_count(self) -> int:
        return len(self.boot_splats) + sum(len(i.splats) for i in self.instances)

    @property
    def exit_code(self) -> int:
        return V.run_exit_code([i.verdict for i in self.instances], self.splat_count,
                               cut_short=self.lab_error is not None)

    @property
    def exit_reason(self) -> str:
        r = V.exit_reason([i.verdict for i in self.instances], self.splat_count,
                          cut_short=self.lab_error is not None)
        return f"{r} (lab error: {self.lab_error})" if self.lab_error else r

    @property
    def kvm_xcr0(self) -> str | None:
        for i in self.instances:
            m = _XCR0.search(i.output)
            if m:
                return m.group(1).lower()
        return None

    @property
    def exercised(self) -> list[str]:
        out: list[str] = []
        for i in self.instances:
            out += [c for c in i.exercised if c not in out]
        return out

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "lab": self.lab.name, "tier": f"lab-{self.lab.name}",
            "quirks": self.lab.quirk_names,
            "kernel": {"release": r.kernel or self.kernel.version, "source": self.kernel.source,
                       "image": str(self.kernel.image)},
            "cpu_model": r.cpu_model, "cpu_flags": r.cpu_flags, "kvm_modules": r.modules,
            "kvm_xcr0": self.kvm_xcr0, "exercised": self.exercised,
            "boot": {"how": self.result.how, "wall_s": self.result.wall,
                     "guest_uptime_at_init_s": r.boot_uptime,
                     "emulator_returncode": self.result.returncode},
            "lab_error": self.lab_error, "console_tail": self.console_tail if self.lab_error
            else [],
            "boot_splats": [s.to_json() for s in self.boot_splats],
            "ignored_boot_splats": [s.title for s in self.ignored_splats],
            "instances": [i.to_json() for i in self.instances],
            "exit_code": self.exit_code, "exit_reason": self.exit_reason,
        }


def console_tail(console: str, n: int = CONSOLE_TAIL) -> list[str]:
    lines = [ln for ln in protocol.clean(console) if ln.strip()]
    return lines[-n:]


def _outcome(rec: protocol.TestRecord) -> Outcome:
    rc = rec.rc
    sig = rc - 128 if rc is not None and rc > 128 else None
    return Outcome(returncode=None if sig else rc, signal=sig, timed_out=rec.timed_out,
                   duration=rec.elapsed or 0.0)


def boot_failure(result: boot.BootResult, found: list[splats.Splat]) -> str:
    """Why the guest never reached /init, in one line."""
    panic = next((s for s in found if s.kind == "panic" or "Kernel panic" in s.title), None)
    first = found[0] if found else None
    if panic is not None or result.how == "panic":
        what = (panic or first).title if (panic or first) else "Kernel panic"
        cause = f" after {first.title!r}" if first is not None and first is not panic else ""
        return f"the kernel panicked before /init ran: {what}{cause}"
    if result.how == "boot-timeout":
        return "boot hang: the kernel did not reach /init in time"
    if result.how == "exited":
        return (f"the emulator exited (status {result.returncode}) before /init ran" +
                (f"; emulator says: {result.emulator_log.strip().splitlines()[-1]}"
                 if result.emulator_log.strip() else ""))
    return f"the guest never reached /init ({result.how})"


def _console_splats(console_runs: list[tuple[str | None, list[str]]], name: str,
                    ignore: list[re.Pattern]) -> list[splats.Splat]:
    lines = [ln for who, run in console_runs if who == name for ln in run]
    return splats.find(lines, ignore)


def judge_instance(inst: Instance, rec: protocol.TestRecord,
                   console_runs: list[tuple[str | None, list[str]]], how: str) -> InstanceRun:
    """One program's verdict: as on the host, failed by any splat while it ran (these are
    never ignored), an error when the guest hung under it without a splat."""
    text = "\n".join(rec.output) + "\n"
    doc = ktap.parse(text)
    exercised: list[str] = []
    for t in doc.tests:
        exercised += [c for c in evaluate_mod.exercised(t) if c not in exercised]
    if rec.dmesg_complete:
        found = splats.find(rec.dmesg)
    else:
        found = _console_splats(console_runs, inst.id, [])
    for s in found:
        s.test = inst.id
    outcome = None
    if rec.rc is not None:
        outcome = _outcome(rec)
        verdict, diags = evaluate(doc, outcome, inst.timeout)
    elif found:
        verdict, diags = V.FAIL, ["the guest kernel died while this ran"]
    else:
        verdict, diags = V.ERROR, [f"the guest stopped responding while this ran ({how}); "
                                   "no kernel splat on the console"]
    if found:
        verdict = V.FAIL
        diags = diags + [f"kernel {s.kind} while this ran: {s.title}" for s in found]
    return InstanceRun(inst, verdict, diags, text, outcome, found, exercised)


def guest_error(report: protocol.GuestReport, result: boot.BootResult, console: list[str],
                kernel: Kernel) -> str | None:
    """Why the guest could not run tests at all, or None."""
    if not report.began:
        return boot_failure(result, splats.find(console))
    if report.lab_error:
        hint = ""
        if "/dev/kvm" in report.lab_error and kernel.modules_dir is None:
            hint = (" (no KVM modules were given: build KVM in, or pass --modules DIR with "
                    "the kernel's lib/modules/<release>)")
        return f"guest: {report.lab_error}{hint}"
    if report.module_errors:
        return f"guest could not load KVM modules: {', '.join(report.module_errors)}"
    return None


def boot_splats(lab: Lab, report: protocol.GuestReport,
                console_runs: list[tuple[str | None, list[str]]]
                ) -> tuple[list[splats.Splat], list[splats.Splat]]:
    """(counted, ignored) splats from before the first test. A guest that never reached /init
    has none: its panic is the lab error, not a verdict on KVM."""
    if not report.began:
        return [], []
    if report.boot_dmesg_complete:
        found = splats.find(report.boot_dmesg)
    else:
        found = _console_splats(console_runs, protocol.BOOT, [])
    rxs = [re.compile(rx) for rx in lab.ignore_boot_splats]
    ignored = [s for s in found if any(rx.search(s.title) for rx in rxs)]
    counted = [s for s in found if s not in ignored]
    for s in counted:
        s.test = protocol.BOOT
    return counted, ignored


def judge(lab: Lab, kernel: Kernel, instances: list[Instance],
          result: boot.BootResult) -> LabRun:
    """Verdicts from what the guest reported and what the console showed."""
    report = protocol.parse(result.channel)
    console = protocol.clean(result.console)
    runs = splats.attribute_console(console, protocol.PREFIX)
    lab_error = guest_error(report, result, console, kernel)
    counted, ignored = boot_splats(lab, report, runs)

    out: list[InstanceRun] = []
    for inst in instances:
        rec = report.test(inst.id)
        if rec is None:
            why = "the lab guest never ran it" + (f" ({lab_error})" if lab_error else "")
            out.append(InstanceRun(inst, V.INTERRUPTED, [why]))
            continue
        ir = judge_instance(inst, rec, runs, result.how)
        if ir.verdict == V.ERROR and rec.rc is None:
            lab_error = lab_error or f"guest hung or died while running {inst.id}"
        out.append(ir)

    if lab_error is None and not report.done:
        lab_error = f"the guest stopped before finishing its plan ({result.how})"
    tail = console_tail(result.console)
    return LabRun(lab, kernel, result, report, out, counted, lab_error, tail, ignored)


def plan_entries(instances: list[Instance]) -> list[initramfs.PlanEntry]:
    return [initramfs.PlanEntry(i.id, i.program, list(i.args), int(i.timeout + 0.999))
            for i in instances]


def preflight(lab: Lab) -> None:
    """Raise LabError when this machine cannot run the lab (tools, /dev/kvm)."""
    from runner.lab import bochs

    problem = qemu.available() if lab.launcher == "qemu" else bochs.available()
    if lab.launcher == "qemu" and lab.accel == "kvm":
        problem = problem or qemu.kvm_preflight()
    if problem:
        raise LabError(f"lab {lab.name}: {problem}")


def run(lab: Lab, kernel: Kernel, instances: list[Instance], bin_dir: Path, workdir: Path,
        log: Callable[[str], None] = print) -> LabRun:
    """Boot `kernel` in `lab`, run `instances` from `bin_dir` inside it, judge the results."""
    from runner.lab import bochs

    preflight(lab)
    workdir.mkdir(parents=True, exist_ok=True)
    binaries = []
    for name in sorted({i.program for i in instances}):
        p = bin_dir / name
        if not p.is_file():
            raise LabError(f"{p} missing: build the static test programs with `make static`")
        binaries.append(p)
    module = qemu.kvm_module_for_host() if lab.kvm_module == "auto" else lab.kvm_module
    try:
        mods = kvm_modules(kernel, module)
    except Exception as e:  # KernelError and I/O errors alike: the lab cannot start
        raise LabError(str(e)) from e
    setup = initramfs.GuestSetup(lab.name, lab.quirk_names, mods)
    t0 = time.monotonic()
    initrd = initramfs.write(workdir / "initrd.img", binaries, plan_entries(instances), setup)
    log(f"lab {lab.name}: initramfs {initrd.stat().st_size // 1024} KiB in "
        f"{time.monotonic() - t0:.1f} s; modules: {', '.join(p.name for p in mods) or 'none'}")
    console, channel = workdir / "console.log", workdir / "channel.log"
    budget = lab.boot_timeout + sum(i.timeout for i in instances) * boot.TEST_FACTOR + 60
    if lab.launcher == "qemu":
        cmd = qemu.command(lab, kernel.image, initrd, console, channel)
        cwd = workdir
    else:
        cmd, cwd = bochs.prepare(lab, kernel.image, initrd, console, channel, workdir)
    (workdir / "command.txt").write_text(" ".join(cmd) + "\n")
    log(f"lab {lab.name}: booting {kernel.source or kernel.image}")
    result = boot.run(cmd, workdir, console, channel, lab.boot_timeout, budget, cwd=cwd)
    return judge(lab, kernel, instances, result)


def copy_logs(lr: LabRun, workdir: Path) -> None:
    """Per-instance output and kernel log next to the run's console and channel logs."""
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    for i in lr.instances:
        (logs / f"{i.instance.id}.log").write_text(i.output)
    rep = lr.report
    dm = ["# @boot"] + rep.boot_dmesg
    for t in rep.tests:
        dm += [f"# {t.name}"] + t.dmesg
    (workdir / "dmesg.txt").write_text("\n".join(dm) + "\n")
    initrd = workdir / "initrd.img"
    if initrd.exists() and lr.exit_code == 0:
        initrd.unlink()  # large and rebuilt every run; kept when a run needs a closer look
    shutil.rmtree(workdir / "iso", ignore_errors=True)
