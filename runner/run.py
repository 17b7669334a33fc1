"""`kvmfpu run`: plan a profile, execute it, and write results as it goes.

A RunRequest says what to run and where; execute(request) plans it, runs it with an executor
(pool.run on this host, gnuparallel.Executor through GNU parallel, a lab's Executor in an
emulated guest: all called the same way) and writes results/<run-id>/ as instances finish.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import hashlib
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from runner import (artifacts, catalog, config, gnuparallel, hostinfo, kmsg, plan, pool,
                    proctree, runstate, verdicts as V, xcr0)
from runner.catalog import OPTION_FLAGS
from runner.evaluate import Outcome
from runner.lab import binaries, run as labrun
from runner.lab.kernel import KernelSpec
from runner.plan import Instance

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class RunRequest:
    """One `kvmfpu run` (or `kvmfpu lab`, or a bisect step): what to run, where, how."""
    profile: str | None = "smoke"
    tests: list[str] = dataclasses.field(default_factory=list)  # 'PROG ARGS', no profile
    timeout: float = 120.0                      # of each `tests` item
    configs: Path = REPO / "configs"
    bin_dir: Path = REPO / "out" / "bin"
    results: Path = REPO / "results"
    run_id: str | None = None
    repeat: int | None = None
    jobs: int | None = None
    filter: list[str] = dataclasses.field(default_factory=list)
    kvm_xcr0: int | None = None
    require_exercised: bool = False
    ktap: bool = False
    quiet: bool = False
    # host runs
    via: str = "local"
    sshloginfile: str | None = None
    tier: str = "host"
    kmsg: str = "/dev/kmsg"
    kvm_dev: str = "/dev/kvm"
    # lab runs
    lab: str | None = None
    kernel: KernelSpec = dataclasses.field(default_factory=KernelSpec)
    append: str = ""
    smp: int | None = None          # CPUs of a lab's kernel under test (None: the lab's own)
    bin_given: bool = False         # bin_dir came from --bin (a lab then never picks others)


SAVE_EVERY = 2.0          # seconds between rewrites of run.json and the files rendered from it
SMALL_JSON = 512 << 10    # a run.json this small is rewritten at every start and finish


class Saver:
    """Keeps a run directory current: every start and finish of an instance is appended to
    its journal (runstate.record_start/record_finish); run.json and the files rendered from
    it are rewritten every SAVE_EVERY s, and when that gets expensive (a soak run.json is
    ~17 MB) no more often than every ten write-times. A small run.json (up to a few hundred
    instances) is also rewritten at every start and finish, for whoever watches it."""

    def __init__(self, run: runstate.Run, run_dir: Path):
        self.run, self.run_dir = run, run_dir
        self.last_all = self.all_cost = 0.0
        self.json_size = 0
        runstate.open_journal(run, run_dir)

    def changed(self) -> None:
        now = time.monotonic()
        if now - self.last_all > max(SAVE_EVERY, 10 * self.all_cost):
            artifacts.write_all(self.run, self.run_dir)
            self.all_cost = time.monotonic() - now
            self.last_all = time.monotonic()
        elif self.json_size < SMALL_JSON:
            runstate.save(self.run, self.run_dir)
        else:
            return
        self.json_size = (self.run_dir / "run.json").stat().st_size


SPLAT_SLACK = 0.5         # a splat read this soon after an instance ended is still its


class Progress:
    """Tracks running instances (for splat attribution) and prints one status line: when an
    instance ends, and while instances run, their elapsed time and timeout every TICK_TTY s
    on a terminal (every TICK_LOG s otherwise), so a long instance is never silence."""

    TICK_TTY = 1.0
    TICK_LOG = 10.0

    def __init__(self, total: int, stream: Any):
        self.total = total
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.lock = threading.Lock()
        self.running: dict[str, float] = {}
        self.timeouts: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.shown = time.monotonic()

    def start(self, inst_id: str, timeout: float = 0.0) -> None:
        with self.lock:
            self.running[inst_id] = time.time()
            self.timeouts[inst_id] = timeout

    def tick(self) -> None:
        """Called often while the run goes on; shows what is running now and then."""
        now = time.monotonic()
        if now - self.shown < (self.TICK_TTY if self.tty else self.TICK_LOG):
            return
        with self.lock:
            running = sorted(self.running.items(), key=lambda kv: kv[1])
        if not running:
            return
        wall = time.time()
        inst_id, since = running[0]          # the longest-running one
        more = f" (+{len(running) - 1} more)" if len(running) > 1 else ""
        self.show(f"running {inst_id} {wall - since:.0f} s of {self.timeouts[inst_id]:g} s"
                  f"{more}")

    def finish(self, inst_id: str, verdict: str) -> None:
        with self.lock:
            self.running.pop(inst_id, None)
            self.ended[inst_id] = time.time()
            self.counts[verdict] = self.counts.get(verdict, 0) + 1
        self.show(f"{verdict:5} {inst_id}")

    def active(self) -> list[str]:
        now = time.time()
        with self.lock:
            return list(self.running) + [i for i, t in self.ended.items()
                                         if now - t < SPLAT_SLACK]

    def show(self, last: str) -> None:
        done = sum(self.counts.values())
        counts = " ".join(f"{v} {n}" for v, n in sorted(self.counts.items()))
        line = f"[{done}/{self.total} instances] {counts} | {last}"
        self.shown = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[K" + line[:160])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def unused_name(root: Path, base: str) -> str:
    """base, or base-2, base-3, ...: the first that names nothing in root."""
    rid, n = base, 1
    while (root / rid).exists() or (root / rid).is_symlink():
        n += 1
        rid = f"{base}-{n}"
    return rid


def _run_id(profile: str, lab: str | None) -> str:
    """<date>-<time>-<profile>, and -<lab> for a lab run (make check starts a run per lab in
    the same second). _new_run_dir() numbers it if the name is taken."""
    when = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{when}-{profile}" + (f"-{lab}" if lab else "")


def _link_latest(root: Path, run_id: str) -> None:
    link = root / "latest"
    tmp = root / ".latest.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(run_id)
        os.replace(tmp, link)
    except OSError:
        pass


def _missing_binaries(instances: list[Instance], bin_dir: Path) -> list[str]:
    names = sorted({i.program for i in instances})
    return [n for n in names if not os.access(bin_dir / n, os.X_OK)]


def err(msg: str) -> None:
    print(f"kvmfpu: {msg}", file=sys.stderr)


class SetupError(Exception):
    """A reason the run can't start (one line per problem)."""


def item_id(words: list[str]) -> str:
    """A `--test 'PROGRAM ARGS'` item's instance id: the plan's (PROGRAM.VARIANT.seed=1) when
    the arguments are a variant or fixture and option flags, else PROGRAM.arg.arg, file-name
    safe, long ones ending in a hash of the whole command."""
    flags = {f: o for o, f in OPTION_FLAGS.items()}
    label, params, args = "", {}, words[1:]
    try:
        for flag, value in zip(args[::2], args[1::2], strict=True):
            if flag in ("-v", "-f") and not label:
                label = value
            elif flags.get(flag) not in (None, *params):
                params[flags[flag]] = int(value, 0)
            else:
                raise ValueError(flag)
        if label and "." not in label:
            return plan.instance_id(words[0], label, params)
    except ValueError:
        pass
    iid = ".".join([words[0]] + [re.sub(r"[^A-Za-z0-9_+=.-]", "_", w.lstrip("-"))
                                 for w in args if w.strip("-")])
    if len(iid) > 80:
        iid = iid[:70] + "." + hashlib.sha1(" ".join(words).encode()).hexdigest()[:8]
    return iid


def instances_from_tests(tests: list[str], timeout: float) -> list[Instance]:
    """One instance per `--test 'PROGRAM ARGS'` item."""
    out, seen = [], set()
    for t in tests:
        try:
            words = shlex.split(t)
        except ValueError as e:
            raise SetupError(f"--test {t!r}: {e}") from None
        if not words:
            raise SetupError("--test '': expected a program and its arguments")
        iid = item_id(words)
        if iid in seen:
            raise SetupError(f"--test {t!r} given twice")
        seen.add(iid)
        out.append(Instance(id=iid, program=words[0], args=words[1:], variant=None, tests=[],
                            params={}, timeout=timeout))
    return out


def _plan(req: RunRequest, bin_dir: Path, kvm_xcr0: int | None,
          ) -> tuple[config.Profile, dict[str, catalog.Program], list[Instance]]:
    try:
        programs = catalog.load(req.configs, bin_dir)
        if req.tests or req.profile is None:
            profile = config.Profile(name="tests", description="--test items", runs=[])
            matrices: dict[str, Any] = {}
        else:
            profile, matrices = config.load_profile(req.configs, req.profile, programs)
    except (catalog.CatalogError, config.ConfigError) as e:
        raise SetupError(str(e)) from None
    try:
        if req.tests:
            instances = instances_from_tests(req.tests, req.timeout)
        else:
            instances = plan.expand(profile, matrices, programs, kvm_xcr0, req.repeat)
        pats = [re.compile(f) for f in req.filter]
    except plan.PlanError as e:
        raise SetupError(str(e)) from None
    except re.error as e:
        raise SetupError(f"--filter: bad regular expression: {e}") from None
    if pats:
        instances = [i for i in instances if any(p.search(i.id) for p in pats)]
    if not instances:
        raise SetupError(f"profile {profile.name} plans no instances"
                         f"{' matching --filter' if pats else ''}: nothing would run")
    missing = _missing_binaries(instances, bin_dir)
    if missing:
        raise SetupError(f"test program(s) not found or not executable in {bin_dir}: "
                         f"{', '.join(missing)} (build them with `make`, or pass --bin DIR)")
    return profile, programs, instances


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_run_id(run_id: str) -> None:
    """A run id is a plain directory name under the results root."""
    if not RUN_ID.fullmatch(run_id) or run_id == "latest":
        raise SetupError(f"--run-id {run_id!r}: expected a plain name (letters, digits, "
                         "'.', '_', '+', '-'; starting with a letter or digit; not 'latest')")


def check_results_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise SetupError(f"results root {root} exists and is not a directory")
    here = root
    while not here.exists():        # the nearest directory that exists must let us write
        here = here.parent
    if not here.is_dir() or not os.access(here, os.W_OK | os.X_OK):
        raise SetupError(f"results root {root}: {here} is not writable by this user")


def check_kvm_dev(dev: str) -> None:
    """The programs need read/write access to /dev/kvm; say so before anything runs."""
    try:
        os.close(os.open(dev, os.O_RDWR | os.O_CLOEXEC))
    except FileNotFoundError:
        raise SetupError(f"{dev} does not exist: this host cannot run KVM (no hardware "
                         "virtualization, or no kvm module loaded); the labs run the tests "
                         "in an emulator: runner/kvmfpu lab --lab tcg") from None
    except PermissionError:
        raise SetupError(f"no read/write access to {dev} for this user (add it to the "
                         f"group that owns {dev}, usually 'kvm')") from None
    except OSError as e:
        raise SetupError(f"cannot open {dev} read/write: {e.strerror}") from None


def _preflight(req: RunRequest, root: Path, via: str) -> None:
    """Reasons the run cannot start that are not in the plan (before a directory is made)."""
    if req.run_id is not None:
        check_run_id(req.run_id)
    check_results_root(root)
    if via == "parallel" and shutil.which("parallel") is None:
        raise SetupError("--via parallel: GNU parallel is not installed (Debian package "
                         "'parallel')")
    if not req.sshloginfile and not req.lab:  # remote hosts and labs: /dev/kvm is theirs
        check_kvm_dev(req.kvm_dev)


def _new_run_dir(root: Path, run_id: str, numbered: bool) -> tuple[Path, str]:
    """Make root/run_id (and its logs/) and return it with its id. A name the user chose
    must be new; a generated one (numbered) becomes run_id-2, -3, ... when taken, decided
    by mkdir itself, so two runs starting at once never share a directory."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SetupError(f"cannot create {root}: {e.strerror}") from None
    n = 1
    while True:
        rid = run_id if n == 1 else f"{run_id}-{n}"
        run_dir = root / rid
        try:
            run_dir.mkdir()
            (run_dir / "logs").mkdir()
            return run_dir, rid
        except FileExistsError:
            if not numbered:
                raise SetupError(f"{run_dir} already exists: choose another --run-id") from None
            n += 1
        except OSError as e:
            raise SetupError(f"cannot create {run_dir}: {e.strerror}") from None


def record_finish(run: runstate.Run, logs_dir: Path, inst: Instance, out: Outcome,
                  host_splats: Iterable[kmsg.Splat] = (), host_key: str | None = None) -> str:
    """Record a finished instance from its log and Outcome, final: with the splats of this
    host's kernel log read so far, and those its executor saw in a lab guest's kernel log
    while it ran (Outcome.splats); its host is out.host (a remote one), else host_key.
    Returns its verdict."""
    try:
        text = (logs_dir / f"{inst.id}.log").read_text(errors="replace")
    except OSError:
        text = ""
    guest = [kmsg.Splat(line=line, time=time.time(), instances=[inst.id]) for line in out.splats]
    entry = runstate.record_finish(run, inst, out, text, [*host_splats, *guest],
                                   host_key)
    runstate.record_splats(run, guest)
    return entry.verdict or V.ERROR


def execute(req: RunRequest) -> int:
    # resolved once: out/bin is a symlink another build may move while this run goes on
    bin_dir, root = req.bin_dir.resolve(), req.results
    via = "parallel" if req.sshloginfile else req.via
    lab = None
    try:
        _preflight(req, root, via)
        if req.lab:
            lab = labrun.Session(req.lab, req.append, req.quiet, req.smp)
            host = lab.host()
            bin_dir = binaries.pick(bin_dir, req.bin_given, req.kernel, lab.log)
        else:
            host = hostinfo.describe(req.tier)
        kvm_xcr0 = req.kvm_xcr0
        if kvm_xcr0 is None and host["kvm_supported_xcr0"]:
            kvm_xcr0 = int(host["kvm_supported_xcr0"], 16)
        profile, programs, instances = _plan(req, bin_dir, kvm_xcr0)
        if lab is not None and req.smp is None and profile.lab_cpus:
            lab.set_cpus(profile.lab_cpus)      # the profile's CPUs, unless --smp said
            host = lab.host()
        if lab is not None:
            lab.get_kernel(req.kernel)
            via = f"lab-{lab.lab.name}"
        run_dir, run_id = _new_run_dir(root, req.run_id or _run_id(profile.name, req.lab),
                                       numbered=not req.run_id)
    except (labrun.LabError, binaries.BinariesError) as e:
        err(f"lab error: {e}")
        return V.EXIT_ERROR
    except SetupError as e:
        for line in str(e).splitlines():
            err(line)
        return V.EXIT_ERROR
    for name in sorted({i.program for i in instances}):
        if name in programs and not programs[name].filters:
            err(f"note: {name}'s kselftest harness has no test filters (6.1 and older): each "
                "of its instances runs every test, and its variants and tests can't be chosen")
    jobs = 1 if lab else req.jobs if req.jobs is not None else (profile.jobs or os.cpu_count()
                                                                 or 1)
    options = {"argv": sys.argv, "via": via, "jobs": jobs, "repeat": req.repeat or
               profile.repeat, "sshloginfile": req.sshloginfile, "kvm_xcr0_for_plan":
               None if kvm_xcr0 is None else f"{kvm_xcr0:#x}",
               "require_exercised": req.require_exercised}
    progs_json = {n: {"source": p.source, "filters": p.filters,
                      "fixtures": [{"name": f.name, "variants": f.variants, "tests": f.tests}
                                   for f in p.fixtures]}
                  for n, p in programs.items()}
    run = runstate.new_run(run_id, profile.name, profile.description, host, instances,
                           str(bin_dir), options, progs_json)
    if lab is None:
        host_key, hosts = machines(req)
        run.hosts.update(hosts)
        for key, ident in hosts.items():
            if ident.get("error"):
                err(f"host {key}: {ident['error']} (its identity is unknown; the run goes on)")
    else:
        host_key = f"lab-{lab.lab.name}"        # the guest's identity: lab.record()
    if via == "parallel" and req.sshloginfile:
        hosts = _remote_hosts(Path(req.sshloginfile))
        run["kernel_log"]["remote_hosts"] = {h: "not reached yet" for h in hosts}
        run["kernel_log"]["unwatched_hosts"] = hosts
    _link_latest(root, run_id)
    artifacts.write_all(run, run_dir)
    print(f"kvmfpu: run {run_id}: {len(instances)} instance(s) of profile {profile.name} "
          f"via {via}, {jobs} at a time; results in {run_dir}", file=sys.stderr)
    return _execute(req, run, run_dir, instances, bin_dir, via, jobs, lab, host_key)


def require_exercised(run: dict[str, Any]) -> None:
    """--require-exercised: a run that did not exercise every component its tier can test (a
    lab's configs/labs/ `exercises`; on a host, those of the XCR0 it was planned for) is an
    error, exit 2, with the reason in run.json: decided before its last write."""
    lab, kvm = run["host"].get("lab"), run["options"].get("kvm_xcr0_for_plan")
    want = lab.get("exercises", []) if lab else xcr0.names(int(kvm, 16)) if kvm else []
    done = {c for e in run["instances"] if e.get("status") == "done"
            for c in e.get("exercised", [])}
    missing = [c for c in want if c not in done]
    if missing and not run.get("error"):
        run["error"] = (f"not exercised although the tier can: {','.join(missing)} "
                        "(--require-exercised)")


def _sshlogins(sshloginfile: Path) -> list[str]:
    try:
        lines = sshloginfile.read_text().splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _remote_hosts(sshloginfile: Path) -> list[str]:
    hosts = [gnuparallel.short_host(ln) for ln in _sshlogins(sshloginfile)]
    return [h for h in hosts if h]


def machines(req: RunRequest) -> tuple[str, dict[str, dict[str, Any]]]:
    """The host key of instances that run here (this machine's hostname), and the identity
    of each machine the run starts instances on, by host key: this one, or under
    --sshloginfile each ssh login (gnuparallel.short_host: user@host:port, as the joblog
    names it), probed once, at the same time, before the jobs."""
    local = hostinfo.identity(tier=req.tier, kvm_dev=req.kvm_dev)
    key = local["hostname"] or "localhost"
    if not req.sshloginfile:
        return key, {key: local}
    logins = _sshlogins(Path(req.sshloginfile))
    hosts = {key: local} if any(not gnuparallel.short_host(ln) for ln in logins) else {}
    remote = {gnuparallel.short_host(ln): ln for ln in logins if gnuparallel.short_host(ln)}
    if remote:
        with concurrent.futures.ThreadPoolExecutor(min(16, len(remote))) as pool:
            found = pool.map(lambda ln: hostinfo.probe(ln, REPO), remote.values())
            hosts.update(zip(remote, found))
    return key, hosts


def _execute(req: RunRequest, run: dict[str, Any], run_dir: Path, instances: list[Instance],
             bin_dir: Path, via: str, jobs: int, lab: labrun.Session | None,
             host_key: str) -> int:
    stop = threading.Event()
    progress = Progress(len(instances), sys.stderr)
    saver = Saver(run, run_dir)

    def on_signal(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            run["cut_short"] = True
            run["cut_short_reason"] = signal.Signals(signum).name
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    # a lab reads its guest's kernel log per instance (Outcome.splats), not this host's
    watcher = kmsg.Watcher(req.kmsg if lab is None else "", progress.active)
    if lab is None:
        watcher.start()
        run["kernel_log"].update(watched=watcher.error is None, path=req.kmsg,
                                 error=watcher.error)
    started = time.monotonic()

    def on_start(inst: Instance) -> None:
        progress.start(inst.id, inst.timeout)
        runstate.record_start(run, inst.id)
        saver.changed()               # run.json shows what is running right now

    def on_finish(inst: Instance, out: Outcome) -> None:
        if lab is None:
            watcher.poll()  # this host's kernel log up to now: the verdict is final when recorded
        progress.finish(inst.id, record_finish(run, run_dir / "logs", inst, out,
                                               watcher.splats, host_key))
        saver.changed()

    token = proctree.run_token(run["run_id"])
    run["options"]["instance_mark"] = f"{proctree.MARK}={token}/"   # + instance id
    try:
        if lab is not None:
            executor: Any = lab.executor
        elif via == "parallel":
            executor = gnuparallel.Executor(Path(req.sshloginfile) if req.sshloginfile
                                            else None)
        else:
            executor = pool.run
        executor(instances, bin_dir, run_dir / "logs", jobs, on_start, on_finish, stop, token,
                 progress.tick)
        if lab is not None:
            lab.record(run)       # the guest's kernel and CPU; a lab error is run["error"]
        elif getattr(executor, "error", None):
            run["error"] = executor.error
        if run.get("error"):
            err(run["error"])
        run["status"] = "interrupted" if run["cut_short"] else "complete"
    except BaseException as e:  # a crash of the runner itself: keep what finished
        run["status"] = "aborted"
        run["cut_short"] = True
        run["cut_short_reason"] = run["cut_short_reason"] or f"runner error: {e!r}"
        raise
    finally:
        left = proctree.kill_descendants()   # orphans that lost their mark, if any
        if left:
            err(f"processes {' '.join(map(str, left))} survived SIGKILL (uninterruptible?)")
        if lab is None:
            watcher.stop()
        progress.close()
        for s, h in old.items():
            signal.signal(s, h)
        kl = run["kernel_log"]
        kl["error"] = kl["error"] or watcher.error
        if watcher.lines:
            (run_dir / "dmesg.txt").write_text("\n".join(watcher.lines) + "\n")
        runstate.record_splats(run, watcher.splats)
        runstate.interrupt_running(run, "started but no result came back")
        if req.require_exercised and run["status"] == "complete":
            require_exercised(run)
        run["finished"] = runstate.now_iso()
        run["duration"] = round(time.monotonic() - started, 3)
        artifacts.write_all(run, run_dir)
    if req.ktap:
        sys.stdout.write((run_dir / "results.ktap").read_text())
    text = artifacts.summary_text(run)
    if run.get("error") and run["summary"]["exit_code"] == V.EXIT_ERROR:
        text += f": {run['error']}"    # the reason for exit 2 in run.json
    print(text, file=sys.stderr)
    print(f"results: {run_dir}/report.html", file=sys.stderr)
    return int(run["summary"]["exit_code"])
