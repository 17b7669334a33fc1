"""KTAP parsing for one program's output, tolerant of malformed and truncated text.

Lines from `#  RUN name` (or from the previous result) up to a result line belong to that
result. `# kvmfpu-KIND: key=value ...` comments are collected as records per test.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

_RESULT = re.compile(r"^(not ok|ok)(?:\s+(\d+))?(?:\s+-)?(?:\s+([^#]*?))?\s*(?:#\s*(.*))?$")
_VERSION = re.compile(r"^(K?TAP) version (\d+)$")
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#.*)?$")
_RUN = re.compile(r"^#\s+RUN\s+(\S+)")
_RECORD = re.compile(r"kvmfpu-([a-z_]+):\s?(.*)$")
_TOTALS = re.compile(r"^# Totals: (.*)$")
_REST_OF_LINE_KEYS = ("msg", "args")


@dataclasses.dataclass
class TestResult:
    number: int | None
    name: str
    ok: bool
    directive: str = ""          # SKIP, TODO, XFAIL, ... (upper case)
    reason: str = ""             # text after the directive
    lines: list[str] = dataclasses.field(default_factory=list)
    records: list[dict[str, str]] = dataclasses.field(default_factory=list)
    complete: bool = True        # False: output ended inside this test

    def kind(self, kind: str) -> list[dict[str, str]]:
        return [r for r in self.records if r["kind"] == kind]

    @property
    def skipped(self) -> bool:
        return self.directive == "SKIP"


@dataclasses.dataclass
class Document:
    version: str | None = None
    plan: int | None = None
    tests: list[TestResult] = dataclasses.field(default_factory=list)
    totals: str | None = None
    bail_out: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    records: list[dict[str, str]] = dataclasses.field(default_factory=list)  # outside tests
    other_lines: int = 0         # lines that are neither KTAP nor comments

    @property
    def truncated(self) -> bool:
        return any(not t.complete for t in self.tests) or (
            self.plan is not None and len(self.tests) < self.plan) or self.plan is None


def parse_record(text: str) -> dict[str, str] | None:
    """`kvmfpu-KIND: k=v k=v msg=rest of line` -> {'kind': KIND, 'k': 'v', ...}."""
    m = _RECORD.search(text)
    if not m:
        return None
    rec: dict[str, str] = {"kind": m.group(1)}
    rest = m.group(2).strip()
    if rec["kind"] == "kmsg":      # a kernel log line, verbatim
        rec["text"] = rest
        return rec
    while rest:
        key, eq, value = rest.partition("=")
        if not eq or " " in key:
            rec.setdefault("text", rest)
            break
        if key in _REST_OF_LINE_KEYS:
            rec[key] = value
            break
        value, _, rest = value.partition(" ")
        rec[key] = value
        rest = rest.lstrip()
    return rec


def _result(m: re.Match[str], lines: list[str], records: list[dict[str, str]]) -> TestResult:
    directive, reason = "", ""
    if m.group(4):
        word, _, reason = m.group(4).strip().partition(" ")
        directive = word.upper()
        reason = reason.strip()
    return TestResult(number=int(m.group(2)) if m.group(2) else None,
                      name=(m.group(3) or "").strip(), ok=m.group(1) == "ok",
                      directive=directive, reason=reason, lines=lines, records=records)


def parse(text: str) -> Document:
    doc = Document()
    block: list[str] = []
    block_records: list[dict[str, str]] = []
    running: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if line[:1] in (" ", "\t"):        # nested (sub)test output: keep with the block
            block.append(line)
            continue
        if m := _VERSION.match(line):
            if doc.version is not None or doc.tests:
                doc.problems.append(f"line {lineno}: unexpected second header '{line}'")
            else:
                doc.version = line
            continue
        if m := _PLAN.match(line):
            if doc.plan is not None:
                doc.problems.append(f"line {lineno}: second plan line '{line}'")
            else:
                doc.plan = int(m.group(1))
            continue
        if line.startswith("ok") or line.startswith("not ok"):
            m = _RESULT.match(line)
            if not m:
                doc.problems.append(f"line {lineno}: malformed result line '{line[:120]}'")
                block.append(line)
                continue
            t = _result(m, block + [line], block_records)
            expected = len(doc.tests) + 1
            if t.number is not None and t.number != expected:
                doc.problems.append(f"line {lineno}: result number {t.number}, "
                                    f"expected {expected}")
            if running and t.name and t.name != running:
                doc.problems.append(f"line {lineno}: result for '{t.name}' while "
                                    f"'{running}' was running")
            doc.tests.append(t)
            block, block_records, running = [], [], None
            continue
        if line.startswith("Bail out!"):
            doc.bail_out = line[len("Bail out!"):].strip()
            block.append(line)
            continue
        if line.startswith("#"):
            if m := _TOTALS.match(line):
                doc.totals = m.group(1)
                continue
            if m := _RUN.match(line):
                if running:
                    doc.problems.append(f"line {lineno}: '{m.group(1)}' started before "
                                        f"'{running}' reported a result")
                running = m.group(1)
            rec = parse_record(line)
            if rec is not None:
                block_records.append(rec)
            block.append(line)
            continue
        if line.strip():
            doc.other_lines += 1
            block.append(line)
    if running:
        doc.tests.append(TestResult(number=None, name=running, ok=False, lines=block,
                                    records=block_records, complete=False))
        doc.problems.append(f"output ends inside test '{running}' (crashed or killed?)")
    else:
        doc.records.extend(block_records)
    if doc.version is None:
        doc.problems.append("no KTAP/TAP version header")
    if doc.plan is None:
        doc.problems.append("no plan line (1..N): output truncated or not KTAP")
    else:
        complete = sum(1 for t in doc.tests if t.complete)
        if complete < doc.plan:
            doc.problems.append(f"plan 1..{doc.plan} but only {complete} result(s): "
                                "output truncated")
        elif complete > doc.plan:
            doc.problems.append(f"plan 1..{doc.plan} but {complete} results")
    return doc


def summary(doc: Document) -> dict[str, Any]:
    return {"version": doc.version, "plan": doc.plan, "results": len(doc.tests),
            "totals": doc.totals, "bail_out": doc.bail_out, "problems": doc.problems}
