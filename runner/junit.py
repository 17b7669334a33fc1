"""junit.xml for CI systems: a testsuite per instance, a testcase per test."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from runner import verdicts as V

MAX_OUTPUT = 64 * 1024
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    """Drop characters XML 1.0 can't hold (escape codes from a program's output)."""
    return _NOT_XML.sub("?", text)


def _log_tail(run_dir: Path, rel: str) -> str:
    try:
        data = (run_dir / rel).read_bytes()
    except OSError:
        return ""
    return _clean(data[-MAX_OUTPUT:].decode(errors="replace"))


def _mark(case: ET.Element, verdict: str | None, message: str, text: str = "") -> None:
    if verdict == V.FAIL:
        ET.SubElement(case, "failure", message=_clean(message)).text = _clean(text)
    elif verdict in (V.ERROR, V.INTERRUPTED):
        ET.SubElement(case, "error", message=_clean(message)).text = _clean(text)
    elif verdict == V.SKIP or verdict is None:
        ET.SubElement(case, "skipped", message=_clean(message) or "not run")


def _count(root: ET.Element) -> None:
    """tests, failures, errors and skipped of each suite and of the whole, from the test
    cases they hold (what CI systems display)."""
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        n = {"tests": len(cases),
             "failures": sum(c.find("failure") is not None for c in cases),
             "errors": sum(c.find("error") is not None for c in cases),
             "skipped": sum(c.find("skipped") is not None for c in cases)}
        for k, v in n.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))


def identity_fields(key: str, ident: dict[str, Any]) -> dict[str, str | None]:
    """What junit.xml and results.ktap say of the machine an instance ran on (run.json
    `hosts[key]`): None where its identity does not know (or could not be probed)."""
    cpu, kernel = ident.get("cpu") or {}, ident.get("kernel") or {}
    return {"host": key, "cpu_model": cpu.get("model_name"), "kernel": kernel.get("release"),
            "tier": ident.get("tier"), "microcode": cpu.get("microcode")}


def render(run: dict[str, Any], run_dir: Path) -> str:
    root = ET.Element("testsuites", name=f"kvmfpu {run['run_id']}")
    for e in run["instances"]:
        tests = e.get("tests", [])
        suite = ET.SubElement(root, "testsuite", name=e["id"],
                              time=str(e.get("duration") or 0),
                              hostname=e.get("host") or run["host"].get("hostname", ""))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="command", value=" ".join(e["command"]))
        ET.SubElement(props, "property", name="exercised",
                      value=",".join(e.get("exercised", [])))
        if e.get("host"):                   # it ran: the identity of the machine that ran it
            ident = run.get("hosts", {}).get(e["host"], {})
            for name, value in identity_fields(e["host"], ident).items():
                ET.SubElement(props, "property", name=name, value=_clean(value or ""))
        diag = "\n".join(e.get("diagnostics", []))
        for t in tests:
            case = ET.SubElement(suite, "testcase", name=t["name"], classname=e["id"])
            detail = "\n".join(r.get("msg", "") or " ".join(f"{k}={v}" for k, v in r.items())
                               for r in t.get("records", []) if r["kind"] in
                               ("mismatch", "error", "replay"))
            _mark(case, t["verdict"], t.get("reason") or t["verdict"], detail)
        worst_test = V.worst([t["verdict"] for t in tests])
        if not tests or (e.get("verdict") != worst_test and e.get("verdict") != V.PASS):
            # what no test line shows: a timeout, a crash, a kernel splat, bad output
            case = ET.SubElement(suite, "testcase", name="(instance)", classname=e["id"])
            _mark(case, e.get("verdict"), diag.splitlines()[0] if diag else "", diag)
        ET.SubElement(suite, "system-out").text = _log_tail(run_dir, e["log"])
    kl = run["kernel_log"]
    suite = ET.SubElement(root, "testsuite", name="kernel-log")
    case = ET.SubElement(suite, "testcase", name="no splats", classname="kernel-log")
    if kl["splats"]:
        _mark(case, V.FAIL, f"{len(kl['splats'])} kernel log splat(s)",
              "\n".join(s["line"] for s in kl["splats"]))
    elif kl.get("error"):
        _mark(case, V.SKIP, kl["error"])
    _count(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
