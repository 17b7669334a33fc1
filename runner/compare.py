"""`kvmfpu compare RUN_A RUN_B`: what changed between a baseline run and a candidate."""
from __future__ import annotations

import json
from typing import Any

from runner import merge, verdicts as V
from runner.runstate import InstanceResult, Run

# Exit codes: 0 no new failures in a complete comparison, 1 new failures (V.EXIT_FAIL), 2 a
# run can't be read (V.EXIT_ERROR), 3 no new failures seen but the comparison is incomplete:
# the candidate was cut short (planned instances never finished), or the runs share nothing.
EXIT_INCOMPLETE = 3
BAD = (V.FAIL, V.ERROR)
CATEGORIES = ("new_failures", "fixed", "still_failing", "flaky", "newly_skipped",
              "not_run_in_a", "not_run_in_b", "only_in_a", "only_in_b")


def outcomes(run: Run) -> dict[str, dict[str, list[str]]]:
    """Host column (merge.columns) -> 'instance-key :: test' -> verdicts over the run's
    repeats of that instance there; a column whose kernel log was watched has
    'kernel-log :: splats'."""
    out: dict[str, dict[str, list[str]]] = {}
    for e in run.instances.values():
        if e.status != "done" or e.verdict in (None, V.INTERRUPTED):
            continue
        col = out.setdefault(merge.column_of(run, e), {})
        for name, verdict in instance_tests(e):
            col.setdefault(f"{e.key} :: {name}", []).append(verdict)
    local = merge.local_column(run)
    splat_cols = [sp.get("host") or local for sp in run.kernel_log.get("splats", [])]
    watched = [c for c, state in merge.watched_columns(run).items()
               if state.startswith("watched")]
    for c in dict.fromkeys(watched + splat_cols):
        out.setdefault(c, {})["kernel-log :: splats"] = [V.FAIL if c in splat_cols else V.PASS]
    return out


def instance_tests(e: InstanceResult) -> list[tuple[str, str]]:
    """(test, verdict) of a finished instance; "(instance)" when it reported no test. A test
    that passed or skipped in an instance that failed as a whole (splat, timeout, crash, with
    no failed test to blame) fails."""
    tests = [(t.name, t.verdict) for t in e.tests] or [("(instance)", e.verdict or V.ERROR)]
    if e.verdict == V.FAIL and not any(v in BAD for _, v in tests):
        return [(name, V.FAIL if v in (V.PASS, V.SKIP) else v) for name, v in tests]
    return tests


def not_run(run: Run) -> dict[str, set[str]]:
    """Per host column, the instance keys the run planned but never finished (cut short or
    interrupted)."""
    out: dict[str, set[str]] = {}
    for e in run.instances.values():
        if e.status != "done" or e.verdict == V.INTERRUPTED:
            out.setdefault(merge.column_of(run, e), set()).add(e.key)
    return out


def pairs(a: Run, b: Run) -> list[tuple[str | None, str | None]]:
    """Which host column of A is the baseline of which of B (docs/runner.md): two
    one-host runs match whatever their hosts; a one-host A is the baseline of every column
    of B; a one-host B matches A's column of the same name, else the one column of A with
    its hostname and tier; two runs with several hosts match columns by name. A column
    left without a partner is paired with None: its tests are only in one run."""
    ca, cb = merge.columns(a), merge.columns(b)
    if len(ca) == 1:
        return [(next(iter(ca)), c) for c in cb]
    if len(cb) == 1:
        b0, ident = next(iter(cb.items()))
        same = [c for c, i in ca.items() if (i.get("hostname"), i.get("tier"))
                == (ident.get("hostname"), ident.get("tier"))]
        match = b0 if b0 in ca else same[0] if len(same) == 1 else None
        return [(match, b0)] + [(c, None) for c in ca if c != match]
    return [(c if c in ca else None, c) for c in cb] + [(c, None) for c in ca if c not in cb]


def _state(vs: list[str]) -> str:
    """pass, fail, skip, error, or flaky when repeats disagree on pass vs fail."""
    kinds = set(vs)
    if len(kinds) > 1 and kinds & set(BAD) and V.PASS in kinds:
        return "flaky"
    return V.worst(vs)


def _where(run: Run, col: str | None) -> dict[str, Any]:
    ident = merge.columns(run).get(col or "", {})
    return {"host": col, "cpu_model": merge.cpu_name(ident),
            "kernel": merge.kernel_release(ident), "tier": ident.get("tier", "")}


def compare(a: Run, b: Run) -> dict[str, Any]:
    oa, ob = outcomes(a), outcomes(b)
    skipped_a, skipped_b = not_run(a), not_run(b)
    result: dict[str, Any] = {c: [] for c in CATEGORIES}
    paired = pairs(a, b)
    per_host = len(paired) > 1
    shared = False
    for col_a, col_b in paired:
        ra, rb = oa.get(col_a or "", {}), ob.get(col_b or "", {})
        na, nb = skipped_a.get(col_a or "", set()), skipped_b.get(col_b or "", set())
        host = col_b or col_a
        where = _where(b, col_b) if col_b else dict(_where(a, col_a), host=col_a)
        prefix = f"{host}/" if per_host else ""
        shared = shared or any(not k.startswith("kernel-log ::") for k in set(ra) & set(rb))
        for key in sorted(set(ra) | set(rb)):
            instance = key.split(" :: ", 1)[0]
            if key not in rb:
                result["not_run_in_b" if instance in nb else "only_in_a"].append(prefix + key)
                continue
            if key not in ra:   # a failure here still counts as new: A never showed it passing
                result["not_run_in_a" if instance in na else "only_in_b"].append(prefix + key)
            sb = _state(rb[key])
            sa = _state(ra[key]) if key in ra else None
            item = {"key": key, "a": sa, "b": sb, **where}
            if "flaky" in (sa, sb):
                result["flaky"].append(item)
            elif sb in BAD and sa in BAD:
                result["still_failing"].append(item)
            elif sb in BAD:
                result["new_failures"].append(item)
            elif sa in BAD and sb == V.PASS:
                result["fixed"].append(item)
            elif sb == V.SKIP and sa in (V.PASS, V.FAIL, V.ERROR):
                result["newly_skipped"].append(item)
    for name, r in (("a", a), ("b", b)):
        result[name] = {"run_id": r.run_id, "kernel": r.host.get("kernel"),
                        "profile": r.profile, "status": r.status,
                        "hosts": list(merge.columns(r))}
    result["paired_hosts"] = [{"a": ca, "b": cb} for ca, cb in paired]
    result["per_host"] = per_host
    by_host: dict[str, dict[str, Any]] = {}
    for it in result["new_failures"]:
        h = by_host.setdefault(it["host"], {k: it[k] for k in ("cpu_model", "kernel", "tier")})
        h.setdefault("tests", []).append(it["key"])
    result["new_failures_by_host"] = by_host
    by_cpu: dict[str, list[str]] = {}
    for host, h in by_host.items():
        by_cpu.setdefault(h["cpu_model"] or "(unknown)", []).append(host)
    result["new_failures_by_cpu_model"] = by_cpu
    not_run_b = sum(len(keys) for keys in skipped_b.values())
    incomplete = []
    if b.cut_short or b.status != "complete":
        why = f", {b.cut_short_reason}" if b.cut_short_reason else ""
        incomplete.append(f"B was cut short (status {b.status}{why}): {not_run_b} "
                          "planned instance(s) never finished")
    elif not_run_b:
        incomplete.append(f"B has {not_run_b} planned instance(s) that never finished")
    if not shared:
        incomplete.append("the runs share no test: nothing was compared")
    result["incomplete"] = incomplete
    if result["new_failures"]:
        result["exit_code"] = V.EXIT_FAIL
    elif incomplete:
        result["exit_code"] = EXIT_INCOMPLETE
    else:
        result["exit_code"] = V.EXIT_PASS
    return result


def text(result: dict[str, Any]) -> str:
    a, b = result["a"], result["b"]
    lines = [f"A: {a['run_id']} kernel {a['kernel']} ({a['profile']}, {a['status']})",
             f"B: {b['run_id']} kernel {b['kernel']} ({b['profile']}, {b['status']})"]
    for cat in CATEGORIES:
        items = result[cat]
        lines.append(f"{cat.replace('_', ' ')}: {len(items)}")
        for it in items[:50]:
            if isinstance(it, dict):
                where = f"{it['host']}/" if result["per_host"] else ""
                lines.append(f"  {where}{it['key']}: {it['a'] or '-'} -> {it['b']}")
            else:
                lines.append(f"  {it}")
        if len(items) > 50:
            lines.append(f"  ... {len(items) - 50} more")
    if result["per_host"]:
        lines += [f"host {p['b'] or '-'} compared with A's {p['a'] or '(none: only in A)'}"
                  if p["b"] else f"host {p['a']}: only in A" for p in result["paired_hosts"]]
    if result["new_failures"]:
        lines.append("new failures by host:")
        lines += [f"  {host} ({h['cpu_model'] or 'CPU unknown'}, kernel {h['kernel'] or '?'}, "
                  f"{h['tier'] or '?'}): {len(h['tests'])}"
                  for host, h in result["new_failures_by_host"].items()]
        lines += [f"  on CPU model {cpu}: {', '.join(hosts)}"
                  for cpu, hosts in result["new_failures_by_cpu_model"].items()]
    lines += [f"incomplete: {why}" for why in result["incomplete"]]
    if result["new_failures"]:
        lines.append("NEW FAILURES")
    elif result["incomplete"]:
        lines.append("INCOMPLETE: no new failures among what both runs finished; that is "
                     "not a pass (exit 3)")
    else:
        lines.append("no new failures")
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1)
