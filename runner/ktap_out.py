"""results.ktap: the run as KTAP, nested program > instance > test."""
from __future__ import annotations

from typing import Any

from runner import junit, verdicts as V


def _line(indent: str, n: int, ok: bool, name: str, directive: str = "") -> str:
    text = f"{indent}{'ok' if ok else 'not ok'} {n} {name}"
    return text + (f" # {directive}" if directive else "")


def _result(indent: str, n: int, name: str, verdict: str | None, reason: str = "") -> str:
    if verdict == V.SKIP:
        return _line(indent, n, True, name, f"SKIP {reason}".strip())
    if verdict in (V.PASS,):
        return _line(indent, n, True, name)
    if verdict is None:
        return _line(indent, n, True, name, "SKIP not run (run cut short)")
    return _line(indent, n, False, name, "" if verdict == V.FAIL else verdict.upper())


def host_lines(hosts: dict[str, dict[str, Any]]) -> list[str]:
    """One `# kvmfpu-host:` line per machine that ran instances: key, tier, kernel release,
    microcode, then the CPU model (the rest of the line: it has spaces); `?` where its
    identity does not know, `error=` (rest of line) for a host that could not be probed."""
    out = []
    for key, ident in hosts.items():
        if ident.get("error"):
            out.append(f"# kvmfpu-host: key={key} error={ident['error']}")
            continue
        f = {k: "?" if v in (None, "") else str(v)
             for k, v in junit.identity_fields(key, ident).items()}
        out.append(f"# kvmfpu-host: key={f['host']} tier={f['tier']} kernel={f['kernel']} "
                   f"microcode={f['microcode']} cpu={f['cpu_model']}")
    return out


def render(run: dict[str, Any]) -> str:
    programs: dict[str, list[dict[str, Any]]] = {}
    for e in run["instances"]:
        programs.setdefault(e["program"], []).append(e)
    out = ["KTAP version 1", f"# kvmfpu run {run['run_id']} profile {run['profile']} "
           f"kernel {run['host'].get('kernel', '?')} status {run['status']}"]
    out += host_lines(run.get("hosts", {}))
    out.append(f"1..{len(programs)}")
    for pn, (prog, entries) in enumerate(programs.items(), 1):
        out += ["  KTAP version 1", f"  1..{len(entries)}"]
        for n, e in enumerate(entries, 1):
            tests = e.get("tests", [])
            out += ["    KTAP version 1", f"    1..{len(tests)}"]
            for tn, t in enumerate(tests, 1):
                out.append(_result("    ", tn, t["name"], t["verdict"], t.get("reason", "")))
            for d in e.get("diagnostics", []):
                out.append(f"  # {d}")
            reason = "; ".join(dict.fromkeys(t["reason"] for t in tests if t.get("reason")))
            out.append(_result("  ", n, e["id"], e.get("verdict"), reason))
        verdict = V.worst([e["verdict"] for e in entries if e.get("verdict")])
        out.append(_result("", pn, prog, verdict))
    s = run.get("summary", {})
    out.append(f"# {s.get('reason', '')}")
    return "\n".join(out) + "\n"
