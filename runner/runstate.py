"""The run record: typed (Run > InstanceResult > TestResult), journalled as instances
start and finish (instances.jsonl, one line each, appended), and written as run.json, the
document users read, which is generated from it. An interrupted or crashed run still leaves
valid results: run.json plus the journal (`load` reads both)."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any, Iterable, Protocol

from runner import evaluate, ktap, verdicts as V
from runner.plan import Instance

# The schema version of run.json and of instances.jsonl (results/README.md). Version 1 had
# the same fields except that a pending instance's `tests` held its test filter; version 2
# had no `hosts` (the identity of each machine that ran instances) and no `merged_from`.
FORMAT = "kvmfpu-run/3"
OLD_FORMATS = ("kvmfpu-run/1", "kvmfpu-run/2")
JOURNAL = "instances.jsonl"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _ByKey:
    """Item access by run.json key (run["status"], entry.update(verdict=...)) for code that
    was written against the JSON record: runner/run.py, runner/cli.py, runner/lab/."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:       # type: ignore[attr-defined]
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self.__dataclass_fields__:       # type: ignore[attr-defined]
            raise KeyError(f"{type(self).__name__} has no field {key!r}")
        setattr(self, key, value)

    def __contains__(self, key: str) -> bool:
        return key in self.__dataclass_fields__       # type: ignore[attr-defined]

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self else None
        return default if value is None else value

    def setdefault(self, key: str, default: Any) -> Any:
        if self.get(key) is None:
            self[key] = default
        return self[key]

    def update(self, **fields: Any) -> None:
        for key, value in fields.items():
            self[key] = value


@dataclasses.dataclass
class TestResult:
    """One kselftest test of an instance (evaluate.test_json)."""
    name: str
    verdict: str
    number: int = 0
    directive: str | None = None
    reason: str = ""
    complete: bool = True
    exercised: list[str] = dataclasses.field(default_factory=list)
    explanation: list[str] = dataclasses.field(default_factory=list)
    records: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclasses.dataclass
class InstanceResult(_ByKey):
    """One program invocation: its plan, then how it ran and its verdict."""
    id: str
    key: str
    status: str = "pending"              # pending | running | done
    verdict: str | None = None           # V.VERDICTS once done
    program: str = ""
    args: list[str] = dataclasses.field(default_factory=list)
    command: list[str] = dataclasses.field(default_factory=list)
    variant: str | None = None
    test_filter: list[str] = dataclasses.field(default_factory=list)   # empty: every test
    fixture: str | None = None
    params: dict[str, int] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    repeat: int = 1
    timeout: float = 0.0
    log: str = ""
    started: str | None = None
    finished: str | None = None
    duration: float | None = None
    host: str | None = None
    exit: dict[str, Any] | None = None
    exercised: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    diagnostics: list[str] = dataclasses.field(default_factory=list)
    replay: list[str] = dataclasses.field(default_factory=list)
    ktap: dict[str, Any] | None = None
    tests: list[TestResult] = dataclasses.field(default_factory=list)

    @classmethod
    def planned(cls, inst: Instance, bin_dir: str) -> InstanceResult:
        return cls(id=inst.id, key=inst.key, program=inst.program, args=inst.args,
                   command=inst.command(bin_dir), variant=inst.variant,
                   test_filter=inst.tests, fixture=inst.fixture, params=inst.params,
                   seed=inst.seed, repeat=inst.repeat, timeout=inst.timeout,
                   log=f"logs/{inst.id}.log")

    def to_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["tests"] = [t.to_json() for t in self.tests]
        return out

    @classmethod
    def from_json(cls, e: Any, where: str) -> InstanceResult:
        """ValueError (one line, naming `where`) unless `e` is a well-formed instance."""
        bad = [k for k, kind in (("id", str), ("key", str), ("status", str))
               if not isinstance(e, dict) or not isinstance(e.get(k), kind)]
        if not bad and e["status"] == "done" and e.get("verdict") not in V.VERDICTS:
            bad = ["verdict"]
        if not bad and not isinstance(e.get("tests", []), list):
            bad = ["tests"]
        if bad:
            raise ValueError(f"{where} has no valid '{bad[0]}'")
        e = dict(e)
        tests = e.pop("tests", None) or []
        if tests and all(isinstance(t, str) for t in tests) and e["status"] != "done":
            e.setdefault("test_filter", tests)      # kvmfpu-run/1: a pending one's filter
            tests = []
        results = []
        for t in tests:
            if not isinstance(t, dict) or t.get("verdict") not in V.VERDICTS \
                    or not isinstance(t.get("name"), str):
                raise ValueError(f"{where} has a test without a valid name and verdict")
            results.append(TestResult(**{k: v for k, v in t.items()
                                         if k in TestResult.__dataclass_fields__}))
        fields = {k: v for k, v in e.items() if k in cls.__dataclass_fields__}
        return cls(**fields, tests=results)


@dataclasses.dataclass
class Run(_ByKey):
    """A run: what was planned, how it went, and its instances by id (in plan order)."""
    run_id: str
    profile: str
    status: str = "running"              # running | complete | interrupted | aborted
    profile_description: str = ""
    cut_short: bool = False
    cut_short_reason: str | None = None
    runner_pid: int | None = None
    started: str | None = None
    finished: str | None = None
    duration: float | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    bin_dir: str = ""
    host: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Identity of every machine that ran instances (hostinfo.identity()), by host key; an
    # instance's `host` names its key. A merged run (`kvmfpu merge`) lists its sources.
    hosts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    merged_from: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    programs: dict[str, Any] = dataclasses.field(default_factory=dict)
    kernel_log: dict[str, Any] = dataclasses.field(default_factory=dict)
    instances: dict[str, InstanceResult] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None             # why the run could not go on (GNU parallel failed)
    journal: Path | None = dataclasses.field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:
        if key == "instances":               # the JSON view's list, in plan order
            return list(self.instances.values())
        return super().__getitem__(key)

    def to_json(self) -> dict[str, Any]:
        """run.json: the document users read."""
        out = {"format": FORMAT}
        out.update((k, v) for k, v in vars(self).items()
                   if k not in ("instances", "summary", "error", "journal"))
        out["instances"] = [e.to_json() for e in self.instances.values()]
        out["summary"] = self.summary
        if self.error:
            out["error"] = self.error
        return out


def new_run(run_id: str, profile: str, description: str, host: dict[str, Any],
            instances: list[Instance], bin_dir: str, options: dict[str, Any],
            programs: dict[str, Any]) -> Run:
    return Run(run_id=run_id, profile=profile, profile_description=description,
               runner_pid=os.getpid(), started=now_iso(), options=options, bin_dir=bin_dir,
               host=host, programs=programs,
               kernel_log={"watched": False, "path": None, "error": None, "splats": [],
                           "unwatched_hosts": []},
               instances={i.id: InstanceResult.planned(i, bin_dir) for i in instances})


def open_journal(run: Run, run_dir: Path) -> None:
    """From now on every start and finish of an instance is appended to run_dir/JOURNAL."""
    run.journal = run_dir / JOURNAL
    run.journal.touch()


def _journal(run: Run, entry: InstanceResult) -> None:
    """One line, appended and flushed (it survives a SIGKILL of the runner, not a crash of
    the machine): the instance as it is now."""
    if run.journal is not None:
        with open(run.journal, "a") as f:
            f.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")


def record_start(run: Run, inst_id: str) -> None:
    entry = find(run, inst_id)
    entry.status = "running"
    entry.started = now_iso()
    _journal(run, entry)


def find(run: Run, inst_id: str) -> InstanceResult:
    return run.instances[inst_id]


def _env(doc: ktap.Document) -> dict[str, str]:
    env: dict[str, str] = {}
    for t in doc.tests:
        for r in t.kind("env"):
            env.update({k: v for k, v in r.items() if k != "kind"})
    for r in doc.records:
        if r["kind"] == "env":
            env.update({k: v for k, v in r.items() if k != "kind"})
    return env


def _unfinished(test: TestResult, out: evaluate.Outcome) -> TestResult:
    """A test the program never finished shares the fate of its instance."""
    if test.complete:
        return test
    if out.interrupted:
        test.verdict, test.reason = V.INTERRUPTED, "run cut short while it ran"
    elif out.timed_out:
        test.verdict, test.reason = V.FAIL, "timed out while it ran"
    elif out.signal is not None:
        test.verdict, test.reason = V.FAIL, f"program killed by signal {out.signal} while it ran"
    return test


class Splat(Protocol):
    """A kernel log splat as the host's watcher saw it (runner/kmsg.py Splat)."""
    line: str
    instances: list[str]         # ids of the instances running (or just ended) then


def record_finish(run: Run, inst: Instance, out: evaluate.Outcome, log_text: str,
                  splats: Iterable[Splat] = (), host_key: str | None = None) -> InstanceResult:
    """The instance's verdict, final: `splats` are the kernel log splats read so far (the
    caller reads the log up to now first); those logged while it ran fail it. Its host is
    the remote host that ran it (out.host), else `host_key` (this host's, or a lab's)."""
    doc = ktap.parse(log_text)
    verdict, diags = evaluate.evaluate(doc, out, inst.timeout)
    for r in doc.records:
        if r["kind"] == "error":
            diags.append(f"harness/environment error: {r.get('msg', r.get('text', ''))}")
    entry = find(run, inst.id)
    exercised: list[str] = []
    for t in doc.tests:
        for c in evaluate.exercised(t):
            if c not in exercised:
                exercised.append(c)
    entry.update(
        status="done", verdict=verdict, duration=round(out.duration, 3),
        finished=now_iso(), host=out.host or host_key,
        exit={"returncode": out.returncode, "signal": out.signal,
              "timed_out": out.timed_out, "interrupted": out.interrupted},
        exercised=exercised, env=_env(doc), diagnostics=diags,
        tests=[_unfinished(TestResult(**evaluate.test_json(t)), out) for t in doc.tests],
        replay=[r.get("args", "") for t in doc.tests for r in t.kind("replay")],
        ktap=ktap.summary(doc))
    lines = [s.line for s in splats if inst.id in s.instances]
    if out.host:
        lines += _remote_kernel_log(run, inst.id, out.host, doc)
    for line in lines:
        _fail_for_splat(entry, line)
    _journal(run, entry)
    return entry


def _fail_for_splat(entry: InstanceResult, line: str) -> None:
    """A kernel splat logged while an instance ran fails it (an interruption stays one)."""
    note = f"kernel log while running: {line}"
    if note not in entry.diagnostics:
        entry.diagnostics.append(note)
    if entry.verdict in (V.PASS, V.SKIP, V.ERROR, None):
        entry.verdict = V.FAIL


def _remote_kernel_log(run: Run, inst_id: str, host: str, doc: ktap.Document) -> list[str]:
    """Splat lines a remote job reported about its host's kernel log (gnuparallel.job_line);
    they go in the run's kernel log, and are returned."""
    records = doc.records + [r for t in doc.tests for r in t.records]
    kl = run.kernel_log
    lines = [r.get("text", "") for r in records if r["kind"] == "kmsg"]
    kl["splats"] += [{"line": line, "time": None, "instances": [inst_id], "host": host}
                     for line in lines]
    hosts = kl.setdefault("remote_hosts", {})
    if any(r["kind"] == "kmsg_unreadable" for r in records):
        hosts[host] = "unreadable (dmesg failed there)"
    elif hosts.get(host) != "unreadable (dmesg failed there)":
        hosts[host] = "watched (dmesg before and after each job)"
    kl["unwatched_hosts"] = sorted(h for h, state in hosts.items()
                                   if not state.startswith("watched"))
    return lines


def record_splats(run: Run, splats: Iterable[Any]) -> None:
    """The host's kernel log splats (runner/kmsg.py Splat), at the end of the run: each
    counts for the run (exit 1). The verdicts they changed were changed when recorded; a
    splat read after an instance's verdict was recorded (the watcher names instances that
    ended SPLAT_SLACK ago) lists it under `after_verdict` and leaves its verdict alone."""
    for s in splats:
        named = list(s.instances)
        late = [i for i in named if i in run.instances
                and f"kernel log while running: {s.line}" not in run.instances[i].diagnostics
                and run.instances[i].status == "done"
                and run.instances[i].verdict != V.INTERRUPTED]
        sp = {"line": s.line, "time": s.time, "instances": named}
        if late:
            sp["after_verdict"] = late
        run.kernel_log["splats"].append(sp)


def summarize(run: Run) -> dict[str, Any]:
    done = [e for e in run.instances.values() if e.status == "done"]
    vs = [e.verdict for e in done if e.verdict]
    counts = {v: vs.count(v) for v in V.VERDICTS}
    counts["not_run"] = sum(1 for e in run.instances.values() if e.status == "pending")
    # still running (or, after the runner died, never finished: mark_runner_died())
    counts["running"] = sum(1 for e in run.instances.values() if e.status == "running")
    exercised: list[str] = []
    for e in done:
        for c in e.exercised:
            if c not in exercised:
                exercised.append(c)
    splats = len(run.kernel_log["splats"])
    cut = run.cut_short or bool(run.error)  # e.g. GNU parallel itself failed
    return {"counts": counts, "instances": len(run.instances), "flaky": flaky(done),
            "exit_code": V.run_exit_code(vs, splats, cut),
            "reason": V.exit_reason(vs, splats, cut), "exercised": exercised,
            "tests": _test_counts(done)}


def flaky(done: list[InstanceResult]) -> list[str]:
    """Keys of instances whose repeats on one host disagree: some passed, some failed or
    errored (`<host>/<key>` when the instances ran on more than one host). The same test
    passing on one host and failing on another is a difference between hosts, not
    flakiness."""
    several = len({e.host for e in done}) > 1
    seen: dict[str, set[str | None]] = {}
    for e in done:
        seen.setdefault(f"{e.host}/{e.key}" if several else e.key, set()).add(e.verdict)
    return sorted(k for k, vs in seen.items()
                  if V.PASS in vs and vs & {V.FAIL, V.ERROR})


def _test_counts(done: list[InstanceResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in done:
        for t in e.tests:
            counts[t.verdict] = counts.get(t.verdict, 0) + 1
    return counts


def save(run: Run, run_dir: Path) -> dict[str, Any]:
    """run.json, generated from the record; returns what it wrote (the JSON view)."""
    run.summary = summarize(run)
    view = run.to_json()
    write_atomic(run_dir / "run.json", json.dumps(view, indent=1) + "\n")
    return view


# What report and compare read, and the JSON type each must have.
_RUN_SHAPE = {"run_id": str, "profile": str, "status": str, "host": dict,
              "kernel_log": dict, "instances": list}


def from_json(data: Any, path: Path | str) -> Run:
    """The typed record of a run.json's content; ValueError (one line, naming `path`)
    unless it is a run.json this runner wrote (this schema or an older one)."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a kvmfpu run.json (a JSON {type(data).__name__})")
    if data.get("format") != FORMAT and data.get("format") not in OLD_FORMATS:
        raise ValueError(f"{path}: not a kvmfpu run.json (format {data.get('format')!r}, "
                         f"expected {FORMAT!r})")
    for key, kind in _RUN_SHAPE.items():
        if not isinstance(data.get(key), kind):
            raise ValueError(f"{path}: corrupt run.json: '{key}' is missing or not a "
                             f"{kind.__name__}")
    if not isinstance(data["kernel_log"].get("splats", []), list):
        raise ValueError(f"{path}: corrupt run.json: 'kernel_log.splats' is not a list")
    instances: dict[str, InstanceResult] = {}
    for i, e in enumerate(data["instances"]):
        try:
            entry = InstanceResult.from_json(e, f"instances[{i}]")
        except ValueError as err:
            raise ValueError(f"{path}: corrupt run.json: {err}") from None
        if entry.id in instances:
            raise ValueError(f"{path}: corrupt run.json: instances[{i}]: id {entry.id!r} "
                             "appears twice")
        instances[entry.id] = entry
    fields = {k: v for k, v in data.items()
              if k in Run.__dataclass_fields__ and k not in ("instances", "journal")}
    kernel_log = dict(data["kernel_log"])
    kernel_log.setdefault("splats", [])
    fields["kernel_log"] = kernel_log
    return Run(**fields, instances=instances)


def check_shape(run: Any, path: Path) -> None:
    """ValueError (one line) unless `run` looks like a run.json this runner wrote."""
    from_json(run, path)


def _replay_journal(run: Run, path: Path) -> None:
    """Brings a run.json written while the run went on up to date from its journal: the
    last line of an instance is its latest state. A last line cut short (the runner was
    killed while writing it) is ignored; anything else malformed is a ValueError."""
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", errors="replace").split("\n")
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            entry = InstanceResult.from_json(json.loads(line), f"line {n}")
        except json.JSONDecodeError:
            if n == len(lines):        # no newline after it: cut short
                continue
            raise ValueError(f"{path}: corrupt journal: line {n} is not JSON") from None
        except ValueError as e:
            raise ValueError(f"{path}: corrupt journal: {e}") from None
        if entry.id not in run.instances:
            raise ValueError(f"{path}: corrupt journal: line {n}: instance {entry.id!r} is "
                             "not in run.json")
        run.instances[entry.id] = entry


def load(run_dir: Path) -> Run:
    """A run.json (or a run directory's), with its journal if the run had not finished
    writing it; OSError if unreadable, ValueError (one line) if it is not JSON or not a
    well-formed kvmfpu run."""
    path = run_dir / "run.json" if run_dir.is_dir() else run_dir
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a kvmfpu run.json (not valid JSON: "
                         f"{str(e).splitlines()[0]})") from None
    run = from_json(data, path)
    journal = path.with_name(JOURNAL)
    if run.status == "running" and journal.exists():
        _replay_journal(run, journal)
    return run


def interrupt_running(run: Run, why: str) -> None:
    """Instances that started but never finished: verdict interrupted (no verdict)."""
    for entry in run.instances.values():
        if entry.status == "running":
            entry.update(status="done", verdict=V.INTERRUPTED, diagnostics=[why])
            _journal(run, entry)


def mark_runner_died(run: Run) -> None:
    """A run whose runner is gone without finishing it (SIGKILL, a crash of the machine)."""
    run.status = "aborted"
    run.cut_short = True
    run.cut_short_reason = run.cut_short_reason or "runner died (killed?)"
    interrupt_running(run, "the runner died while this instance ran; no verdict")


def runner_alive(run: Run) -> bool:
    try:
        os.kill(int(run.runner_pid or 0), 0)
        return True
    except (OSError, ValueError):
        return False
