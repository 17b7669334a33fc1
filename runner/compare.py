"""`kvmfpu compare RUN_A RUN_B`: what changed between a baseline run and a candidate."""
from __future__ import annotations

import json
from typing import Any

from runner import verdicts as V
from runner.runstate import InstanceResult, Run

# Exit codes: 0 no new failures in a complete comparison, 1 new failures (V.EXIT_FAIL), 2 a
# run can't be read (V.EXIT_ERROR), 3 no new failures seen but the comparison is incomplete:
# the candidate was cut short (planned instances never finished), or the runs share nothing.
EXIT_INCOMPLETE = 3
BAD = (V.FAIL, V.ERROR)
CATEGORIES = ("new_failures", "fixed", "still_failing", "flaky", "newly_skipped",
              "not_run_in_a", "not_run_in_b", "only_in_a", "only_in_b")


def outcomes(run: Run) -> dict[str, list[str]]:
    """'instance-key :: test' -> verdicts over the run's repeats of that instance."""
    out: dict[str, list[str]] = {}
    for e in run.instances.values():
        if e.status != "done" or e.verdict in (None, V.INTERRUPTED):
            continue
        for name, verdict in instance_tests(e):
            out.setdefault(f"{e.key} :: {name}", []).append(verdict)
    kl = run.kernel_log
    if kl.get("watched"):
        out["kernel-log :: splats"] = [V.FAIL if kl.get("splats") else V.PASS]
    return out


def instance_tests(e: InstanceResult) -> list[tuple[str, str]]:
    """(test, verdict) of a finished instance; "(instance)" when it reported no test. A test
    that passed or skipped in an instance that failed as a whole (splat, timeout, crash, with
    no failed test to blame) fails."""
    tests = [(t.name, t.verdict) for t in e.tests] or [("(instance)", e.verdict or V.ERROR)]
    if e.verdict == V.FAIL and not any(v in BAD for _, v in tests):
        return [(name, V.FAIL if v in (V.PASS, V.SKIP) else v) for name, v in tests]
    return tests


def not_run(run: Run) -> set[str]:
    """Instance keys the run planned but never finished (cut short or interrupted)."""
    done = {e.key for e in run.instances.values()
            if e.status == "done" and e.verdict != V.INTERRUPTED}
    return {e.key for e in run.instances.values()} - done


def _state(vs: list[str]) -> str:
    """pass, fail, skip, error, or flaky when repeats disagree on pass vs fail."""
    kinds = set(vs)
    if len(kinds) > 1 and kinds & set(BAD) and V.PASS in kinds:
        return "flaky"
    return V.worst(vs)


def compare(a: Run, b: Run) -> dict[str, Any]:
    oa, ob = outcomes(a), outcomes(b)
    skipped_a, skipped_b = not_run(a), not_run(b)
    result: dict[str, Any] = {c: [] for c in CATEGORIES}
    for key in sorted(set(oa) | set(ob)):
        instance = key.split(" :: ", 1)[0]
        if key not in ob:
            result["not_run_in_b" if instance in skipped_b else "only_in_a"].append(key)
            continue
        if key not in oa:   # a failure here still counts as new: A never showed it passing
            result["not_run_in_a" if instance in skipped_a else "only_in_b"].append(key)
        sb = _state(ob[key])
        sa = _state(oa[key]) if key in oa else None
        item = {"key": key, "a": sa, "b": sb}
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
                        "profile": r.profile, "status": r.status}
    shared = {k for k in set(oa) & set(ob) if not k.startswith("kernel-log ::")}
    incomplete = []
    if b.cut_short or b.status != "complete":
        why = f", {b.cut_short_reason}" if b.cut_short_reason else ""
        incomplete.append(f"B was cut short (status {b.status}{why}): {len(skipped_b)} "
                          "planned instance(s) never finished")
    elif skipped_b:
        incomplete.append(f"B has {len(skipped_b)} planned instance(s) that never finished")
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
                lines.append(f"  {it['key']}: {it['a'] or '-'} -> {it['b']}")
            else:
                lines.append(f"  {it}")
        if len(items) > 50:
            lines.append(f"  ... {len(items) - 50} more")
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
