"""The state of a run and run.json: created at the start, rewritten (atomically) as
instances finish, so an interrupted or crashed run still leaves valid results."""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from runner import evaluate, ktap, verdicts as V
from runner.plan import Instance

FORMAT = "kvmfpu-run/1"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def new_run(run_id: str, profile: str, description: str, host: dict[str, Any],
            instances: list[Instance], bin_dir: str, options: dict[str, Any],
            programs: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT, "run_id": run_id, "profile": profile,
        "profile_description": description, "status": "running", "cut_short": False,
        "cut_short_reason": None, "runner_pid": os.getpid(), "started": now_iso(),
        "finished": None, "duration": None, "options": options, "bin_dir": bin_dir,
        "host": host, "programs": programs,
        "kernel_log": {"watched": False, "path": None, "error": None, "splats": [],
                       "unwatched_hosts": []},
        "instances": [dict(inst.to_json(), key=inst.key, seed=inst.seed,
                           command=inst.command(bin_dir), status="pending", verdict=None,
                           log=f"logs/{inst.id}.log") for inst in instances],
        "summary": {},
    }


def record_start(run: dict[str, Any], inst_id: str) -> None:
    entry = find(run, inst_id)
    entry["status"] = "running"
    entry["started"] = now_iso()


def find(run: dict[str, Any], inst_id: str) -> dict[str, Any]:
    for entry in run["instances"]:
        if entry["id"] == inst_id:
            return entry
    raise KeyError(inst_id)


def _env(doc: ktap.Document) -> dict[str, str]:
    env: dict[str, str] = {}
    for t in doc.tests:
        for r in t.kind("env"):
            env.update({k: v for k, v in r.items() if k != "kind"})
    for r in doc.records:
        if r["kind"] == "env":
            env.update({k: v for k, v in r.items() if k != "kind"})
    return env


def _unfinished(test: dict[str, Any], out: evaluate.Outcome) -> dict[str, Any]:
    """A test the program never finished shares the fate of its instance."""
    if test["complete"]:
        return test
    if out.interrupted:
        test.update(verdict=V.INTERRUPTED, reason="run cut short while it ran")
    elif out.timed_out:
        test.update(verdict=V.FAIL, reason="timed out while it ran")
    elif out.signal is not None:
        test.update(verdict=V.FAIL, reason=f"program killed by signal {out.signal} while it ran")
    return test


def record_finish(run: dict[str, Any], inst: Instance, out: evaluate.Outcome,
                  log_text: str) -> None:
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
    entry.update({
        "status": "done", "verdict": verdict, "duration": round(out.duration, 3),
        "finished": now_iso(), "host": out.host,
        "exit": {"returncode": out.returncode, "signal": out.signal,
                 "timed_out": out.timed_out, "interrupted": out.interrupted},
        "exercised": exercised, "env": _env(doc), "diagnostics": diags,
        "tests": [_unfinished(evaluate.test_json(t), out) for t in doc.tests],
        "replay": [r.get("args", "") for t in doc.tests for r in t.kind("replay")],
        "ktap": ktap.summary(doc),
    })
    if out.host:
        _remote_kernel_log(run, inst.id, out.host, doc)
        attribute_splats(run)


def _remote_kernel_log(run: dict[str, Any], inst_id: str, host: str,
                       doc: ktap.Document) -> None:
    """Splat lines a remote job reported about its host's kernel log (gnuparallel.job_line)."""
    records = doc.records + [r for t in doc.tests for r in t.records]
    kl = run["kernel_log"]
    for r in records:
        if r["kind"] == "kmsg":
            kl["splats"].append({"line": r.get("text", ""), "time": None,
                                 "instances": [inst_id], "host": host})
    hosts = kl.setdefault("remote_hosts", {})
    if any(r["kind"] == "kmsg_unreadable" for r in records):
        hosts[host] = "unreadable (dmesg failed there)"
    elif hosts.get(host) != "unreadable (dmesg failed there)":
        hosts[host] = "watched (dmesg before and after each job)"
    kl["unwatched_hosts"] = sorted(h for h, state in hosts.items()
                                   if not state.startswith("watched"))


def attribute_splats(run: dict[str, Any]) -> None:
    """A kernel splat fails every instance that was running when it was logged."""
    for splat in run["kernel_log"]["splats"]:
        for inst_id in splat["instances"]:
            try:
                entry = find(run, inst_id)
            except KeyError:
                continue
            note = f"kernel log while running: {splat['line']}"
            diags = entry.setdefault("diagnostics", [])
            if note not in diags:
                diags.append(note)
            if entry.get("verdict") in (V.PASS, V.SKIP, V.ERROR, None):
                entry["verdict"] = V.FAIL


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    done = [e for e in run["instances"] if e["status"] == "done"]
    vs = [e["verdict"] for e in done]
    counts = {v: vs.count(v) for v in V.VERDICTS}
    counts["not_run"] = sum(1 for e in run["instances"] if e["status"] == "pending")
    # still running (or, after the runner died, never finished: mark_runner_died())
    counts["running"] = sum(1 for e in run["instances"] if e["status"] == "running")
    exercised: list[str] = []
    for e in done:
        for c in e.get("exercised", []):
            if c not in exercised:
                exercised.append(c)
    splats = len(run["kernel_log"]["splats"])
    cut = run["cut_short"] or bool(run.get("error"))  # e.g. GNU parallel itself failed
    return {"counts": counts, "instances": len(run["instances"]), "flaky": flaky(done),
            "exit_code": V.run_exit_code(vs, splats, cut),
            "reason": V.exit_reason(vs, splats, cut), "exercised": exercised,
            "tests": _test_counts(done)}


def flaky(done: list[dict[str, Any]]) -> list[str]:
    """Keys of instances whose repeats disagree: some passed, some failed or errored."""
    seen: dict[str, set[str]] = {}
    for e in done:
        seen.setdefault(e["key"], set()).add(e["verdict"])
    return sorted(k for k, vs in seen.items()
                  if V.PASS in vs and vs & {V.FAIL, V.ERROR})


def _test_counts(done: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in done:
        for t in e.get("tests", []):
            counts[t["verdict"]] = counts.get(t["verdict"], 0) + 1
    return counts


def save(run: dict[str, Any], run_dir: Path) -> None:
    run["summary"] = summarize(run)
    write_atomic(run_dir / "run.json", json.dumps(run, indent=1) + "\n")


# What report and compare read, and the JSON type each must have.
_RUN_SHAPE = {"run_id": str, "profile": str, "status": str, "host": dict,
              "kernel_log": dict, "instances": list}
_INSTANCE_SHAPE = {"id": str, "key": str, "status": str}


def check_shape(run: Any, path: Path) -> None:
    """ValueError (one line) unless `run` looks like a run.json this runner wrote."""
    if not isinstance(run, dict):
        raise ValueError(f"{path}: not a kvmfpu run.json (a JSON {type(run).__name__})")
    if run.get("format") != FORMAT:
        raise ValueError(f"{path}: not a kvmfpu run.json (format {run.get('format')!r}, "
                         f"expected {FORMAT!r})")
    for key, kind in _RUN_SHAPE.items():
        if not isinstance(run.get(key), kind):
            raise ValueError(f"{path}: corrupt run.json: '{key}' is missing or not a "
                             f"{kind.__name__}")
    for i, e in enumerate(run["instances"]):
        bad = [k for k, kind in _INSTANCE_SHAPE.items()
               if not isinstance(e, dict) or not isinstance(e.get(k), kind)]
        if not bad and e["status"] == "done" and e.get("verdict") not in V.VERDICTS:
            bad = ["verdict"]
        if not bad and not isinstance(e.get("tests", []), list):
            bad = ["tests"]
        if bad:
            raise ValueError(f"{path}: corrupt run.json: instances[{i}] has no valid "
                             f"'{bad[0]}'")
        for t in e.get("tests", []):
            if not isinstance(t, dict) or t.get("verdict") not in V.VERDICTS \
                    or not isinstance(t.get("name"), str):
                raise ValueError(f"{path}: corrupt run.json: instances[{i}] has a test "
                                 "without a valid name and verdict")
    if not isinstance(run["kernel_log"].get("splats", []), list):
        raise ValueError(f"{path}: corrupt run.json: 'kernel_log.splats' is not a list")


def load(run_dir: Path) -> dict[str, Any]:
    """A run.json (or a run directory's); OSError if unreadable, ValueError (one line) if it
    is not JSON or not a well-formed kvmfpu run."""
    path = run_dir / "run.json" if run_dir.is_dir() else run_dir
    try:
        with open(path, "rb") as f:
            run = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a kvmfpu run.json (not valid JSON: "
                         f"{str(e).splitlines()[0]})") from None
    check_shape(run, path)
    return run


def interrupt_running(run: dict[str, Any], why: str) -> None:
    """Instances that started but never finished: verdict interrupted (no verdict)."""
    for entry in run["instances"]:
        if entry["status"] == "running":
            entry.update(status="done", verdict=V.INTERRUPTED, diagnostics=[why])


def mark_runner_died(run: dict[str, Any]) -> None:
    """A run whose runner is gone without finishing it (SIGKILL, a crash of the machine)."""
    run["status"] = "aborted"
    run["cut_short"] = True
    run["cut_short_reason"] = run.get("cut_short_reason") or "runner died (killed?)"
    interrupt_running(run, "the runner died while this instance ran; no verdict")


def runner_alive(run: dict[str, Any]) -> bool:
    try:
        os.kill(int(run.get("runner_pid", 0)), 0)
        return True
    except (OSError, ValueError):
        return False
