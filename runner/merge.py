"""`kvmfpu merge RUN... --out DIR`: runs from several machines or kernels as one run, and
the host columns (the hosts x tests matrix of report.html, `compare` per host) of any run.

A column is the host key an instance ran on (`InstanceResult.host`, identity in
`Run.hosts`). A run that recorded no `hosts` (kvmfpu-run/2, or a v3 run of a runner before
host identity) has one column for its local instances, keyed and described by `Run.host`
(hostname, kernel, tier, cpu.model): `local_column`. In a merged run the column is the
source's host key, or `<host key>@<kernel release>` when the runs merged hold that host key
with more than one kernel; an instance id becomes `<column>/<id>`, its `key` stays, so that
`compare` matches the same test across hosts (docs/runner.md)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from runner import runstate
from runner.runstate import InstanceResult, Run

FALLBACK_SOURCE = "run.host (the run recorded no per-host identity)"
_STATUS_RANK = ("complete", "interrupted", "aborted")   # a merged run's status: the worst


class MergeError(Exception):
    """Bad input to `merge`: one line, exit 2."""


def local_column(run: Run) -> str:
    """The host key of the instances that name none (they ran where the runner ran)."""
    key = run.host.get("hostname") or "local"
    if key not in run.hosts and len(run.hosts) == 1:
        return next(iter(run.hosts))
    return key


def column_of(run: Run, entry: InstanceResult) -> str:
    return entry.host or local_column(run)


def _fallback_identity(host: dict[str, Any]) -> dict[str, Any]:
    cpu = host.get("cpu") or {}
    return {"hostname": host.get("hostname", ""), "tier": host.get("tier", ""),
            "cpu": {"model_name": cpu.get("model", "")},
            "kernel": {"release": host.get("kernel", "")},
            "kvm": {"module": host.get("kvm_module", ""),
                    "supported_xcr0": host.get("kvm_supported_xcr0")},
            "source": FALLBACK_SOURCE}


def columns(run: Run) -> dict[str, dict[str, Any]]:
    """Host key -> identity of every machine the run's instances ran on, in plan order."""
    out: dict[str, dict[str, Any]] = {}
    local = local_column(run)
    for key in [column_of(run, e) for e in run.instances.values()] or [local]:
        if key in out:
            continue
        if key in run.hosts:
            out[key] = run.hosts[key]
        elif key == local:
            out[key] = _fallback_identity(run.host)
        else:        # a remote host of a run that recorded no identity: its name only
            out[key] = {"hostname": key, "source": "instance host (no identity recorded)"}
    return out


def cpu_name(identity: dict[str, Any]) -> str:
    cpu = identity.get("cpu") or {}
    model = cpu.get("model")
    return str(cpu.get("model_name") or (model if isinstance(model, str) else "") or "")


def kernel_release(identity: dict[str, Any]) -> str:
    kernel = identity.get("kernel")
    return str(kernel.get("release", "") if isinstance(kernel, dict) else kernel or "")


def is_multi_host(run: Run) -> bool:
    """A run whose report shows a hosts x tests matrix."""
    return bool(run.merged_from) or len(columns(run)) > 1


def watched_columns(run: Run) -> dict[str, str]:
    """Column -> the state of its kernel log (a state starting with "watched" is watched)."""
    kl = run.kernel_log
    if run.merged_from:
        return dict(kl.get("remote_hosts", {}))
    local = local_column(run)
    state = (f"watched ({kl.get('path')})" if kl.get("watched")
             else f"not watched{': ' + kl['error'] if kl.get('error') else ''}")
    out = {key: state if key == local else "not watched" for key in columns(run)}
    out.update(kl.get("remote_hosts", {}))
    return out


@dataclasses.dataclass
class Source:
    path: Path
    run: Run
    cols: dict[str, dict[str, Any]]        # its host key -> identity
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)   # -> merged column


def _load(path: Path) -> Run:
    try:
        run = runstate.load(path)
    except (OSError, ValueError, RecursionError) as e:
        raise MergeError(f"{path}: not a kvmfpu run ({' '.join(str(e).split())})") from None
    if run.status == "running":
        if runstate.runner_alive(run):
            raise MergeError(f"{path}: run {run.run_id} is still running (runner pid "
                             f"{run.runner_pid}); merge it once it has finished")
        runstate.mark_runner_died(run)
    return run


def _sources(paths: list[Path]) -> list[Source]:
    sources: list[Source] = []
    seen: dict[Any, Path] = {}
    for path in paths:
        run = _load(path)
        for ident in (path.resolve(), (run.run_id, run.started, run.host.get("hostname"))):
            if ident in seen:
                raise MergeError(f"{path}: the same run as {seen[ident]} (run "
                                 f"{run.run_id}); give each run once")
            seen[ident] = path
        sources.append(Source(path, run, columns(run)))
    kernels: dict[str, set[str]] = {}
    for s in sources:
        for key, ident in s.cols.items():
            kernels.setdefault(key, set()).add(kernel_release(ident))
    for s in sources:
        for key, ident in s.cols.items():
            split = len(kernels[key]) > 1
            s.renamed[key] = f"{key}@{kernel_release(ident)}" if split else key
    return sources


def _unprefixed(run: Run, e: InstanceResult) -> str:
    """The id an instance had before an earlier merge prefixed it with its column."""
    prefix = f"{e.host}/"
    return e.id[len(prefix):] if run.merged_from and e.id.startswith(prefix) else e.id


def _log_dir(column: str) -> str:
    return column.replace("/", "_") or "_"


def _instances(sources: list[Source]) -> tuple[dict[str, InstanceResult], dict[str, Path]]:
    """The merged instances, and where each merged log comes from."""
    out: dict[str, InstanceResult] = {}
    logs: dict[str, Path] = {}
    for s in sources:
        for e in s.run.instances.values():
            col = s.renamed[column_of(s.run, e)]
            new_id = f"{col}/{_unprefixed(s.run, e)}"
            log = f"logs/{_log_dir(col)}/{Path(e.log).name}" if e.log else ""
            if new_id in out or (log and log in logs):
                raise MergeError(f"{s.path}: instance {e.id} on host {col} is in another of "
                                 "the runs too; merge runs of different hosts, kernels or "
                                 "tests")
            out[new_id] = dataclasses.replace(e, id=new_id, host=col, log=log)
            if log:
                logs[log] = s.path / e.log
    return out, logs


def _kernel_log(sources: list[Source]) -> dict[str, Any]:
    """Per column: its kernel log's state (`remote_hosts`), its splats (`host`: column)."""
    states: dict[str, str] = {}
    splats: list[dict[str, Any]] = []
    errors = []
    for s in sources:
        kl = s.run.kernel_log
        if kl.get("error"):
            errors.append(f"{s.run.run_id}: {kl['error']}")
        for key, state in watched_columns(s.run).items():
            if key in s.renamed:
                states[s.renamed[key]] = state
        local = local_column(s.run)
        ids = {e.id: f"{s.renamed[column_of(s.run, e)]}/{_unprefixed(s.run, e)}"
               for e in s.run.instances.values()}
        for sp in kl.get("splats", []):
            sp = dict(sp, host=s.renamed.get(sp.get("host") or local, sp.get("host") or local),
                      instances=[ids.get(i, i) for i in sp.get("instances", [])])
            if sp.get("after_verdict"):
                sp["after_verdict"] = [ids.get(i, i) for i in sp["after_verdict"]]
            splats.append(sp)
    unwatched = sorted(k for k, state in states.items() if not state.startswith("watched"))
    return {"watched": any(st.startswith("watched") for st in states.values()),
            "path": "each host's own (per host below)", "error": "; ".join(errors) or None,
            "splats": splats, "remote_hosts": states, "unwatched_hosts": unwatched}


def _host(hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`Run.host` of a merged run: what its hosts have, listed (report and compare print it)."""
    def joined(values: list[str]) -> str:
        return ", ".join(dict.fromkeys(v for v in values if v))
    kvm = [i.get("kvm") or {} for i in hosts.values()]
    xcr0 = {k.get("supported_xcr0") for k in kvm}
    return {"hostname": joined(list(hosts)), "tier": "merged",
            "kernel": joined([kernel_release(i) for i in hosts.values()]),
            "cpu": {"model": joined([cpu_name(i) for i in hosts.values()])},
            "kvm_module": joined([k.get("module", "") for k in kvm]),
            # the report's "not exercised" list needs one XCR0: only when all hosts agree
            "kvm_supported_xcr0": xcr0.pop() if len(xcr0) == 1 else None,
            "kvm_supported_xcr0_source": "the merged hosts' identity (per host: hosts)"}


def merge(paths: list[Path], out: Path, argv: list[str]) -> Run:
    """The merged run, written to `out` (run.json, logs, the views); MergeError on bad input
    before anything is written."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"--out {out}: exists and is not an empty directory")
    sources = _sources(paths)
    instances, logs = _instances(sources)
    hosts = {s.renamed[k]: ident for s in sources for k, ident in s.cols.items()}
    runs = [s.run for s in sources]
    status = max((r.status for r in runs),
                 key=lambda st: _STATUS_RANK.index(st) if st in _STATUS_RANK else 1)
    cut = [f"{r.run_id}: {r.cut_short_reason or r.status}" for r in runs if r.cut_short]
    programs: dict[str, Any] = {}
    for r in reversed(runs):
        programs.update(r.programs)
    # Its id names what was merged, not where it was written: exports of two merges (KCIDB
    # ids are <origin>:<run id>/...) never collide, and merging the same runs again gives
    # the same id.
    sources_key = json.dumps([(r.run_id, r.started, r.host.get("hostname")) for r in runs])
    run = Run(
        run_id="merge-" + hashlib.sha256(sources_key.encode()).hexdigest()[:12], profile="+".join(dict.fromkeys(r.profile for r in runs)),
        profile_description=f"merge of {len(runs)} run(s): "
                            + ", ".join(r.run_id for r in runs),
        status=status, cut_short=bool(cut), cut_short_reason="; ".join(cut) or None,
        started=min((r.started for r in runs if r.started), default=None),
        finished=max((r.finished for r in runs if r.finished), default=None),
        options={"argv": argv, "via": "merge"}, host=_host(hosts), hosts=hosts,
        merged_from=[{"run_id": s.run.run_id, "path": str(s.path.resolve()),
                      "profile": s.run.profile, "status": s.run.status,
                      "hosts": list(dict.fromkeys(s.renamed.values()))} for s in sources],
        programs=programs, kernel_log=_kernel_log(sources), instances=instances,
        error="; ".join(f"{r.run_id}: {r.error}" for r in runs if r.error) or None)
    out.mkdir(parents=True, exist_ok=True)
    for log, src in logs.items():
        _link(src, out / log)
    return run


def _link(src: Path, dst: Path) -> None:
    """A hard link to a source's log (a copy across file systems); none if it has none."""
    if not src.is_file():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
