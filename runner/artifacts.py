"""Writes the files of a results directory from its run record."""
from __future__ import annotations

from pathlib import Path
from runner import junit, ktap_out, report_html, runstate, verdicts as V, xcr0
from runner.runstate import Run


def write_all(run: Run, run_dir: Path) -> None:
    """run.json first (generated from the record), then the views rendered from it."""
    view = runstate.save(run, run_dir)
    runstate.write_atomic(run_dir / "results.ktap", ktap_out.render(view))
    runstate.write_atomic(run_dir / "junit.xml", junit.render(view, run_dir))
    runstate.write_atomic(run_dir / "report.html", report_html.render(view, run))


def _not_exercised(run: Run) -> str:
    kvm = run.host.get("kvm_supported_xcr0")
    if not kvm:
        return ""
    missing = [c for c in xcr0.names(int(kvm, 16)) if c not in run.summary["exercised"]]
    return f" (KVM supports, not exercised: {', '.join(missing)})" if missing else ""


def _skip_reasons(run: Run) -> list[tuple[str, int]]:
    """Skip reasons of tests, most frequent first."""
    counts: dict[str, int] = {}
    for e in run.instances.values():
        for t in e.tests:
            if t.verdict == V.SKIP:
                reason = t.reason or "(no reason given)"
                counts[reason] = counts.get(reason, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


SKIP_REASONS_SHOWN = 10


def summary_text(run: Run) -> str:
    s = run.summary
    counts = ", ".join(f"{v} {n}" for v, n in s["counts"].items() if n) or "nothing"
    tests = ", ".join(f"{v} {n}" for v, n in sorted(s.get("tests", {}).items()) if n)
    lines = [f"kvmfpu run {run.run_id} ({run.profile}, {run.status}): "
             f"{s['instances']} instance(s): {counts}",
             f"tests in those instances: {tests or 'none reported'}",
             f"components exercised: {', '.join(s['exercised']) or 'none'}"
             + _not_exercised(run)]
    reasons = _skip_reasons(run)
    lines += [f"skipped test {n}x: {reason}" for reason, n in reasons[:SKIP_REASONS_SHOWN]]
    if len(reasons) > SKIP_REASONS_SHOWN:
        rest = sum(n for _, n in reasons[SKIP_REASONS_SHOWN:])
        lines.append(f"... {len(reasons) - SKIP_REASONS_SHOWN} more skip reason(s) "
                     f"({rest} skipped test(s)): see report.html")
    if s.get("flaky"):
        lines.append(f"flaky (repeats disagree): {', '.join(s['flaky'])}")
    kl = run.kernel_log
    if kl.get("error"):
        lines.append(kl["error"])
    for host, state in kl.get("remote_hosts", {}).items():
        lines.append(f"remote host {host}: kernel log {state}")
    for sp in kl["splats"]:
        after = sp.get("after_verdict") or []
        running = [i for i in sp["instances"] if i not in after]
        lines.append(f"kernel log: {sp['line']} (while running: {', '.join(running) or 'nothing'}"
                     f"{'; just after ' + ', '.join(after) + ', verdict kept' if after else ''})")
    for e in run.instances.values():
        if e.verdict in (V.FAIL, V.ERROR):
            first = (e.diagnostics or [""])[0]
            failed = [t.name for t in e.tests if t.verdict in (V.FAIL, V.ERROR)]
            text = f"  {e.verdict.upper()} {e.id}: {', '.join(failed)} {first}"
            lines.append(text.rstrip())
    lines.append(s["reason"])
    return "\n".join(lines)
