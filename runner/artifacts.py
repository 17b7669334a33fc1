"""Writes the files of a results directory from its run record."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from runner import junit, ktap_out, report_html, runstate


def write_all(run: dict[str, Any], run_dir: Path) -> None:
    """run.json first (the record of truth), then the views derived from it."""
    runstate.save(run, run_dir)
    runstate.write_atomic(run_dir / "results.ktap", ktap_out.render(run))
    runstate.write_atomic(run_dir / "junit.xml", junit.render(run, run_dir))
    runstate.write_atomic(run_dir / "report.html", report_html.render(run))


def summary_text(run: dict[str, Any]) -> str:
    s = run["summary"]
    counts = ", ".join(f"{v} {n}" for v, n in s["counts"].items() if n) or "nothing"
    lines = [f"kvmfpu run {run['run_id']} ({run['profile']}, {run['status']}): {counts}",
             f"components exercised: {', '.join(s['exercised']) or 'none'}"]
    if s.get("flaky"):
        lines.append(f"flaky (repeats disagree): {', '.join(s['flaky'])}")
    kl = run["kernel_log"]
    if kl.get("error"):
        lines.append(kl["error"])
    for sp in kl["splats"]:
        lines.append(f"kernel log: {sp['line']} (while running: "
                     f"{', '.join(sp['instances']) or 'nothing'})")
    for e in run["instances"]:
        if e.get("verdict") in ("fail", "error"):
            first = (e.get("diagnostics") or [""])[0]
            failed = [t["name"] for t in e.get("tests", []) if t["verdict"] in ("fail", "error")]
            text = f"  {e['verdict'].upper()} {e['id']}: {', '.join(failed)} {first}"
            lines.append(text.rstrip())
    lines.append(s["reason"])
    return "\n".join(lines)
