"""The lab executor: one boot of a lab runs a run's instances, with pool.run's signature.

The guest's /init runs the plan and reports each program on the result channel
(protocol.py); each instance is started and finished (on_start, on_finish) as the guest
reports it, with its KTAP in its log file and the kernel splats logged while it ran in its
Outcome, so the runner records it exactly as a host instance. A guest that never booted, or
died, is a lab error: every instance it did not finish is an error or interrupted, never a
pass.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from runner import hostinfo, splats
from runner.evaluate import Outcome
from runner.lab import bochs, boot, build, initramfs, kernel as K, kmod, labs, protocol, pvh, qemu
from runner.lab.kernel import Kernel, kvm_modules, optional_modules
from runner.lab.labs import Lab
from runner.plan import Instance

CONSOLE_TAIL = 40
KASAN_SLOWDOWN = 3     # a KASAN kernel (inline checks on every access) boots ~3x slower
# Debug options of a kernel under test that change what a run can see, for its identity.
DEBUG_OPTIONS = ("KASAN", "X86_DEBUG_FPU", "PROVE_LOCKING", "DEBUG_ATOMIC_SLEEP", "UBSAN")


class LabError(Exception):
    """The lab cannot run at all here (missing tool, kernel, binary, /dev/kvm)."""


@contextlib.contextmanager
def _lab_errors() -> Iterator[None]:
    """A lab that cannot start, whatever the reason, is a LabError (exit 2)."""
    try:
        yield
    except (K.KernelError, labs.LabConfigError, build.BuildError) as e:
        raise LabError(str(e)) from None


@dataclasses.dataclass
class LabInfo:
    """What one boot told about the lab, for the run record (tier, kernel, CPU, errors)."""
    report: protocol.GuestReport = dataclasses.field(default_factory=protocol.GuestReport)
    boot: boot.BootResult | None = None
    error: str | None = None                  # the lab error: the run could not finish
    boot_splats: list[splats.Splat] = dataclasses.field(default_factory=list)
    ignored_splats: list[splats.Splat] = dataclasses.field(default_factory=list)
    console_tail: list[str] = dataclasses.field(default_factory=list)


def console_tail(console: str, n: int = CONSOLE_TAIL) -> list[str]:
    lines = [ln for ln in protocol.clean(console) if ln.strip()]
    return lines[-n:]


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


def _outcome(rec: protocol.TestRecord) -> Outcome:
    rc = rec.rc
    sig = rc - 128 if rc is not None and rc > 128 else None
    return Outcome(returncode=None if sig else rc, signal=sig, timed_out=rec.timed_out,
                   duration=rec.elapsed or 0.0)


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


def _console_lines(runs: list[tuple[str | None, list[str]]], name: str) -> list[str]:
    return [ln for who, lines in runs if who == name for ln in lines]


class _Tracker:
    """Turns the guest's reports, as they grow, into on_start/on_finish calls."""

    def __init__(self, lab: Lab, instances: list[Instance], logs_dir: Path,
                 on_start: Callable[[Instance], None],
                 on_finish: Callable[[Instance, Outcome], None], info: LabInfo):
        self.lab, self.logs_dir, self.info = lab, logs_dir, info
        self.on_start, self.on_finish = on_start, on_finish
        self.by_id = {i.id: i for i in instances}
        self.order = list(instances)
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.booted = False

    def update(self, channel: str, console: str, final: bool = False) -> None:
        if not final and protocol.PREFIX + " test-" not in channel:
            return
        report = protocol.parse(channel)
        runs = splats.attribute_console(protocol.clean(console), protocol.PREFIX)
        if not self.booted and (report.tests or final):
            self._boot_splats(report, runs)
        for n, rec in enumerate(report.tests):
            inst = self.by_id.get(rec.name)
            if inst is None or inst.id in self.finished:
                continue
            if inst.id not in self.started:
                self.started.add(inst.id)
                self.on_start(inst)
            later = n + 1 < len(report.tests) or report.done or final
            if rec.rc is not None and (rec.dmesg_complete or later):
                self._finish(inst, rec, runs)
        self.info.report = report

    def _boot_splats(self, report: protocol.GuestReport,
                     runs: list[tuple[str | None, list[str]]]) -> None:
        """Splats before the first program: they fail the run (unless the lab lists them
        as emulator noise). A guest that never reached /init has none: its panic is the lab
        error, not a verdict on KVM."""
        self.booted = True
        if not report.began:
            return
        lines = (report.boot_dmesg if report.boot_dmesg_complete
                 else _console_lines(runs, protocol.BOOT))
        rxs = [re.compile(rx) for rx in self.lab.ignore_boot_splats]
        for s in splats.find(lines):
            s.test = protocol.BOOT
            if any(rx.search(s.title) for rx in rxs):
                self.info.ignored_splats.append(s)
            else:
                self.info.boot_splats.append(s)

    def _finish(self, inst: Instance, rec: protocol.TestRecord,
                runs: list[tuple[str | None, list[str]]], error: str = "",
                interrupted: bool = False) -> None:
        """The program's KTAP into its log, and the splats logged while it ran (dmesg read
        after it, or the console when the guest could not read that) into its Outcome."""
        text = "\n".join(rec.output) + "\n"
        if error:
            text += f"# kvmfpu-error: msg={error}\n"
        (self.logs_dir / f"{inst.id}.log").write_text(text)
        found = splats.find(rec.dmesg if rec.dmesg_complete
                            else _console_lines(runs, inst.id))
        out = _outcome(rec) if rec.rc is not None else Outcome(
            returncode=None, interrupted=interrupted, duration=rec.elapsed or 0.0)
        out.splats = [s.title for s in found]
        self.finished.add(inst.id)
        self.on_finish(inst, out)

    def abandon(self, report: protocol.GuestReport, console: str, how: str,
                lab_error: str | None) -> str | None:
        """Instances the guest did not finish: an error when it died under one (a failure
        if it splatted), interrupted when it never ran one. Returns the lab error."""
        runs = splats.attribute_console(protocol.clean(console), protocol.PREFIX)
        for inst in self.order:
            if inst.id in self.finished:
                continue
            rec = report.test(inst.id)
            if rec is not None and how == "interrupted":     # the run was stopped
                self._finish(inst, rec, runs, interrupted=True)
                continue
            if rec is not None:
                why = f"guest hung or died while running {inst.id} ({how})"
                lab_error = lab_error or why
                self._finish(inst, rec, runs, why)
                continue
            why = "the lab guest never ran it" + (f" ({lab_error})" if lab_error else "")
            (self.logs_dir / f"{inst.id}.log").write_text(f"# kvmfpu-error: msg={why}\n")
            self.on_start(inst)
            self.finished.add(inst.id)
            self.on_finish(inst, Outcome(returncode=None, interrupted=True))
        return lab_error


def plan_entries(instances: list[Instance]) -> list[initramfs.PlanEntry]:
    return [initramfs.PlanEntry(i.id, i.program, list(i.args), int(i.timeout + 0.999))
            for i in instances]


def preflight(lab: Lab) -> None:
    """Raise LabError when this machine cannot run the lab (tools, /dev/kvm)."""

    problem = qemu.available() if lab.launcher == "qemu" else bochs.available()
    if lab.launcher == "qemu" and lab.accel == "kvm":
        problem = problem or qemu.kvm_preflight()
    if problem:
        raise LabError(f"lab {lab.name}: {problem}")


class Executor:
    """Runs instances in one boot of `lab` with `kernel`; called as pool.run is. What the
    boot told (guest kernel, CPU, lab error, boot splats) is in .info afterwards, the lab
    error also in .error."""

    def __init__(self, lab: Lab, kernel: Kernel, log: Callable[[str], None] = print):
        self.lab, self.kernel, self.log = lab, kernel, log
        self.info = LabInfo()

    def __call__(self, instances: list[Instance], bin_dir: Path, logs_dir: Path, jobs: int,
                 on_start: Callable[[Instance], None],
                 on_finish: Callable[[Instance, Outcome], None], stop: threading.Event,
                 run_token: str = "", on_tick: Callable[[], None] | None = None) -> None:
        # Absolute: the emulator runs in it (cwd) and is given its paths (`lab --results r`).
        lab, workdir = self.lab, logs_dir.parent.resolve()
        tracker = _Tracker(lab, instances, logs_dir, on_start, on_finish, self.info)
        try:
            cmd, cwd, budget = self._prepare(instances, bin_dir, workdir)
        except LabError as e:       # it cannot boot: nothing runs
            self.info.error = str(e)
            tracker.abandon(protocol.GuestReport(), "", "not booted", str(e))
            return

        def poll(channel: str, console: str) -> None:
            tracker.update(channel, console)
            if on_tick is not None:
                on_tick()

        self.log(f"lab {lab.name}: booting {self.kernel.source or self.kernel.image}")
        result = boot.run(cmd, workdir, workdir / "console.log", workdir / "channel.log",
                          lab.boot_timeout, budget, cwd=cwd, on_poll=poll, stop=stop)
        tracker.update(result.channel, result.console, final=True)
        report = self.info.report = protocol.parse(result.channel)
        self.info.boot = result
        if report.modules_skipped:
            self.log(f"lab {lab.name}: the guest could not load the kernel FPU modules "
                     f"{', '.join(report.modules_skipped)} (kernel_fpu stress may skip)")
        error = guest_error(report, result, protocol.clean(result.console), self.kernel)
        error = tracker.abandon(report, result.console, result.how, error)
        if error is None and not report.done:
            error = f"the guest stopped before finishing its plan ({result.how})"
        self.info.error = error
        self.info.console_tail = console_tail(result.console) if error else []
        _write_dmesg(report, workdir)
        if error is None:
            (workdir / "initrd.img").unlink(missing_ok=True)  # large; kept for a closer look
        shutil.rmtree(workdir / "iso", ignore_errors=True)

    @property
    def error(self) -> str | None:
        return self.info.error

    def _test_modules(self, instances: list[Instance]) -> list[Path]:
        """The suite's own test modules, when a program that uses them is planned: the
        stress test's interrupt-context FPU user (kmod.py). Without them it SKIPs irq_fpu."""
        if not any(i.program in kmod.USERS for i in instances):
            return []
        try:
            return kmod.test_modules(self.kernel, self.log)
        except kmod.KmodUnavailable as e:
            self.log(f"lab {self.lab.name}: no test modules ({e}): stress irq_fpu will skip")
            return []

    def _prepare(self, instances: list[Instance], bin_dir: Path,
                 workdir: Path) -> tuple[list[str], Path, float]:
        """The initramfs and the emulator command line; LabError if the lab cannot start."""

        lab = self.lab
        preflight(lab)
        binaries = []
        for name in sorted({i.program for i in instances}):
            p = bin_dir / name
            if not p.is_file():
                raise LabError(f"{p} missing: build the test programs with `make`")
            binaries.append(p)
        module = qemu.kvm_module_for_host() if lab.kvm_module == "auto" else lab.kvm_module
        try:
            mods = kvm_modules(self.kernel, module)
            fpu_mods, fpu_missing = optional_modules(self.kernel, lab.kernel_fpu_modules, mods)
        except Exception as e:  # KernelError and I/O errors alike: the lab cannot start
            raise LabError(str(e)) from e
        if fpu_missing:
            self.log(f"lab {lab.name}: kernel FPU modules this kernel lacks: "
                     f"{', '.join(fpu_missing)} (kernel_fpu stress may skip)")
        test_mods = self._test_modules(instances)
        optional = {initramfs.module_name(p) for p in fpu_mods + test_mods}
        mods = mods + fpu_mods + test_mods
        config = kernel_config(self.kernel)
        setup = initramfs.GuestSetup(lab.name, lab.quirk_names, mods,
                                     optional=optional,
                                     kernel_config=config.read_bytes() if config else None)
        t0 = time.monotonic()
        try:
            initrd = initramfs.write(workdir / "initrd.img", binaries,
                                     plan_entries(instances), setup)
        except ValueError as e:     # a library ldd cannot find, a module it cannot read
            raise LabError(str(e)) from e
        self.log(f"lab {lab.name}: initramfs {initrd.stat().st_size // 1024} KiB in "
                 f"{time.monotonic() - t0:.1f} s; modules: "
                 f"{', '.join(p.name for p in mods) or 'none'}")
        console, channel = workdir / "console.log", workdir / "channel.log"
        budget = lab.boot_timeout + sum(i.timeout for i in instances) * boot.TEST_FACTOR + 60
        if lab.launcher == "qemu":
            elf = pvh.elf_for(self.kernel.image, K.CACHE / "pvh")
            self.log(f"lab {lab.name}: " + (f"kernel entered at PVH, uncompressed: {elf.name}"
                                           if elf else "kernel booted as a bzImage (no PVH "
                                           "entry: CONFIG_PVH unset, or a payload not "
                                           "decompressed here)"))
            cmd = qemu.command(lab, elf or self.kernel.image, initrd, console, channel)
            cwd = workdir
        else:
            cmd, cwd = bochs.prepare(lab, self.kernel.image, initrd, console, channel, workdir)
        (workdir / "command.txt").write_text(" ".join(cmd) + "\n")
        return cmd, cwd, budget


def _write_dmesg(report: protocol.GuestReport, workdir: Path) -> None:
    """The guest's kernel log, per program, next to the console and channel logs."""
    dm = ["# @boot"] + report.boot_dmesg
    for t in report.tests:
        dm += [f"# {t.name}"] + t.dmesg
    (workdir / "dmesg.txt").write_text("\n".join(dm) + "\n")


class Session:
    """A lab run as runner/run.py drives it: the lab (checked usable here), its kernel, the
    executor, and what the boot told, written into the run record. LabError for anything
    that keeps the lab from starting."""

    def __init__(self, name: str, append: str = "", quiet: bool = False,
                 smp: int | None = None):
        self.log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr))
        with _lab_errors():
            self.lab = labs.load(name)
            if append:
                self.lab.cmdline += " " + append
            if smp:
                self.lab.smp = smp
            preflight(self.lab)
        self.executor: Executor | None = None
        self.git: dict[str, Any] = {}

    def host(self) -> dict[str, Any]:
        return host_record(self.lab)

    def set_cpus(self, n: int) -> None:
        """Boot @n CPUs: what a profile asks for (`lab_cpus`) when --smp did not say."""
        self.lab.smp = n

    def get_kernel(self, spec: K.KernelSpec) -> None:
        """Fetch or build the kernel (after planning: a bad profile fails first)."""
        with _lab_errors():
            self.executor = Executor(self.lab, build.kernel_for(spec, self.log), self.log)
        if spec.kasan:      # instrumented memory accesses: boot and tests run ~3x slower
            self.lab.boot_timeout *= KASAN_SLOWDOWN
        self.git = tree_commit(spec.tree) if spec.tree else {}

    def record(self, run: dict[str, Any]) -> None:
        """What the boot told, into the run record; the console's tail after a lab error."""
        assert self.executor is not None
        info = self.executor.info
        record(run, info, self.executor.kernel)
        run["hosts"][f"lab-{self.lab.name}"] = identity(run, info, self.executor.kernel,
                                                        self.git)
        if info.error and info.console_tail:
            print(f"lab {self.lab.name}: lab error; console tail:", file=sys.stderr)
            print("\n".join(f"  | {ln}" for ln in info.console_tail), file=sys.stderr)


def host_record(lab: Lab) -> dict[str, Any]:
    """run.json `host` of a lab run: the lab guest is the host the tests run on (what the
    guest reports fills it in, record())."""
    return {"hostname": f"lab-{lab.name}", "kernel": "", "kernel_version": "",
            "machine": "x86_64", "tier": f"lab-{lab.name}",
            "cpu": {"model": "", "fpu_features": [], "cpus": lab.smp},
            "kvm_supported_xcr0": lab.kvm_xcr0 or None,
            "kvm_supported_xcr0_source": f"configs/labs/{lab.name}.toml (for planning)",
            "kvm_module": lab.kvm_module,
            "lab": {"name": lab.name, "description": lab.description,
                    "quirks": lab.quirk_names, "exercises": lab.exercises}}


def record(run: dict[str, Any], info: LabInfo, kernel: Kernel) -> None:
    """What a boot told: guest kernel and CPU, KVM's XCR0 (as the tests reported it),
    splats before the first program, the lab error (run.json's `error`: exit 2)."""
    r, host = info.report, run["host"]
    host.update(kernel=r.kernel or kernel.version, kernel_version=kernel.source)
    host["cpu"].update(model=r.cpu_model, fpu_features=[
        f for f in hostinfo.FPU_FLAGS if f in r.cpu_flags])
    host["kvm_module"] = ",".join(r.modules) or host["kvm_module"]
    xcr0 = next((e["env"]["kvm_xcr0"] for e in run["instances"]
                 if e.get("env", {}).get("kvm_xcr0")), None)
    if xcr0:
        host.update(kvm_supported_xcr0=xcr0,
                    kvm_supported_xcr0_source="kvmfpu-env lines of the tests in the guest")
    host["lab"].update(emulator_wall_s=info.boot.wall if info.boot else None,
                       boot=info.boot.how if info.boot else None,
                       ignored_boot_splats=[s.title for s in info.ignored_splats],
                       console_tail=info.console_tail)
    run["kernel_log"].update(
        watched=r.began, path="lab guest: its kernel log after each program, and the console",
        error=None if r.began else info.error)
    run["kernel_log"]["splats"] += [{"line": s.title, "time": None,
                                     "instances": [s.test or "@boot"]}
                                    for s in info.boot_splats]
    if info.error:
        run["error"] = f"lab error: {info.error}"


def tree_commit(tree: Path) -> dict[str, Any]:
    """The commit a kernel tree was built at, as the run's record keeps it: git_commit (full
    hash), git_describe, git_dirty (uncommitted changes to tracked files: the kernel is not
    that commit alone); {} when the tree is not a git checkout."""
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(tree), *args], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_describe": git("describe", "--always", "--tags"),
            "git_dirty": None if status is None else bool(status)}


def kernel_config(kernel: Kernel) -> Path | None:
    """The .config a lab kernel was built with, when it is at hand: Debian's package keeps
    boot/config-<release> beside the image, a tree build <build dir>/.config."""
    image = kernel.image
    found = [image.parent / f"config-{kernel.version}"] if kernel.version else []
    if kernel.source.startswith("tree:") and len(image.parents) > 3:
        found.append(image.parents[3] / ".config")          # arch/x86/boot/bzImage
    return next((p for p in found if p.is_file()), None)


def identity(run: dict[str, Any], info: LabInfo, kernel: Kernel,
             git: dict[str, Any]) -> dict[str, Any]:
    """hostinfo.identity() of a lab's kernel under test, from what the lab knows: the
    guest's report (kernel release, CPU model and flags, the KVM module and its `nested`),
    the kernel it booted, KVM's XCR0 as the tests reported it. Anything the guest does not
    report is null, with why."""
    r, host = info.report, run["host"]
    unreported = "the lab guest does not report it"
    config = kernel_config(kernel)
    kern: dict[str, Any] = {"release": r.kernel or kernel.version or None, "version": None,
                            "version_why": unreported, "source": kernel.source or None}
    if config is not None:
        text = config.read_bytes()
        kern.update(config_sha256=hashlib.sha256(text).hexdigest(), config_source=str(config),
                    debug=[o for o in DEBUG_OPTIONS if f"\nCONFIG_{o}=y\n".encode() in text])
    else:
        kern.update(config_sha256=None,
                    config_sha256_why=f"no .config known for {kernel.source or kernel.image}")
    kern.update(git)
    xcr0 = host.get("kvm_supported_xcr0") if "kvmfpu-env" in str(
        host.get("kvm_supported_xcr0_source")) else None
    kvm = {"module": ",".join(r.modules) or "none",
           "params": {f"{m}.nested": v for m, v in r.modules.items() if v != ""},
           "supported_xcr0": xcr0, "supported_xss": None, "supported_xss_why": unreported,
           "cap_xsave2": None, "cap_xsave2_why": unreported}
    if xcr0 is None:
        kvm["supported_xcr0_why"] = "no test reported it (kvmfpu-env kvm_xcr0)"
    flags = r.cpu_flags
    return {"hostname": None, "hostname_why": "a lab guest (the kernel under test)",
            "cpu": {"vendor": None, "family": None, "model": None, "stepping": None,
                    "model_name": r.cpu_model or None, "microcode": None,
                    "cpus": host["cpu"].get("cpus"),
                    "fpu_features": [f for f in hostinfo.FPU_FLAGS if f in flags]},
            "kernel": kern, "kvm": kvm, "tier": host.get("tier")}
