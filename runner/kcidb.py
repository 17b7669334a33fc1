"""`kvmfpu export --kcidb RUN`: a run as a KCIDB I/O JSON document (kernelci/kcidb-io schema
v5.3), for `kcidb-submit`. Standard library only; tests/runner/test_kcidb.py validates what
it writes against tests/kcidb/kcidb-io-v5.schema.json.

What the document holds (docs/runner.md has the status table):
- tests: one per test an instance reported (path program.fixture.variant.test), and one for
  the instance itself (path program[.fixture][.variant]) when nothing else shows its
  verdict: it reported no test, or it is worse than its tests (a timeout, a crash, a kernel
  splat). Planned instances that never ran are MISS.
- builds: one per lab kernel that the lab built from a source tree (kernel.source "tree:").
- checkouts: one per such kernel whose tree's commit is known (kernel.git_commit).
The schema requires a build_id on every test and a checkout_id on every build, and allows
them to name objects the document does not hold. A kernel this runner did not build (a
host's, Debian's package in a lab) gets no build or checkout here: its tests name the build
`<origin>:<run id>/build/<host key>` and nothing about its source is invented.
IDs are `<origin>:<run id>/...` and the instance id: the same run exports the same IDs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from runner import ktap, verdicts as V
from runner.runstate import InstanceResult, Run

SCHEMA = {"major": 5, "minor": 3}
ORIGIN = re.compile(r"[a-z0-9_]+")               # kcidb-io origin_pattern
DEFAULT_ORIGIN = "kvmfpu"
LOG_EXCERPT = 16384                              # the schema's maxLength of log_excerpt

# Our verdicts as KCIDB statuses (its definitions in the schema's `status`):
#  FAIL  "completed and reported the tested code as faulty": a failed check, a timeout, a
#        crash, a kernel splat while it ran
#  ERROR "didn't complete due to a failure in its code": our harness/environment errors
#  MISS  "didn't run due to a failure in the test harness": interrupted (the run was cut
#        short, or the runner died, while it ran) and planned but never run
#  SKIP  "not applicable"; PASS as it says. DONE is never used.
STATUS = {V.PASS: "PASS", V.FAIL: "FAIL", V.ERROR: "ERROR", V.SKIP: "SKIP",
          V.INTERRUPTED: "MISS"}


class ExportError(Exception):
    """The document cannot be made (bad origin): one line, exit 2."""


def _path(*parts: str | None) -> str:
    """A KCIDB test path: dot-separated parts of [a-zA-Z0-9_-], anything else as '_'."""
    out = []
    for part in parts:
        for word in (part or "").split("."):
            word = re.sub(r"[^a-zA-Z0-9_-]", "_", word)
            if word:
                out.append(word)
    return ".".join(out)


def _no_nulls(value: Any) -> Any:
    """KCIDB properties are never null: drop null members (their *_why says why)."""
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value if v is not None]
    return value


def _excerpt(lines: list[str]) -> str | None:
    text = "\n".join(lines).replace("\0", "")
    if not text.strip():
        return None
    return text if len(text) <= LOG_EXCERPT else text[-LOG_EXCERPT:]


def _status(verdict: str | None) -> str:
    return STATUS.get(verdict or "", "MISS")


class _Exporter:
    def __init__(self, run: Run, run_dir: Path, origin: str):
        self.run, self.run_dir, self.origin = run, run_dir, origin
        self.prefix = f"{origin}:{run.run_id}"
        self.only_host = next(iter(run.hosts)) if len(run.hosts) == 1 else None

    def build_id(self, host: str | None) -> str:
        host = host or self.only_host
        return f"{self.prefix}/build/{host or 'unassigned'}"

    def environment(self, host: str | None) -> dict[str, Any] | None:
        if not host:
            return None
        ident = self.run.hosts.get(host) or {}
        model = (ident.get("cpu") or {}).get("model_name") or ident.get("error") or "?"
        return {"comment": f"{host} {model}", "misc": _no_nulls(ident)}

    def test(self, e: InstanceResult, suffix: str, path: str, status: str, comment: str,
             excerpt: str | None, duration: float | None, misc: dict[str, Any]
             ) -> dict[str, Any]:
        t: dict[str, Any] = {"id": f"{self.prefix}/{e.id}{suffix}", "origin": self.origin,
                             "build_id": self.build_id(e.host), "path": path,
                             "status": status}
        env = self.environment(e.host)
        if env:
            t["environment"] = env
        if comment:
            t["comment"] = comment
        if excerpt:
            t["log_excerpt"] = excerpt
        if e.started:
            t["start_time"] = e.started
        if duration is not None:
            t["duration"] = duration
        t["misc"] = _no_nulls({"instance": e.id, "command": " ".join(e.command), **misc})
        return t

    def tests(self, e: InstanceResult) -> list[dict[str, Any]]:
        try:
            log = (self.run_dir / e.log).read_text(errors="replace") if e.log else ""
        except OSError:
            log = ""
        lines = {t.name: t.lines for t in ktap.parse(log).tests} if log else {}
        out = []
        for t in e.tests:
            out.append(self.test(
                e, f"/{t.name}", _path(e.program, t.name), _status(t.verdict),
                t.reason, _excerpt(lines.get(t.name, [])),
                e.duration if len(e.tests) == 1 else None,
                {"kvmfpu_verdict": t.verdict,
                 "instance_duration": e.duration if len(e.tests) > 1 else None}))
        worst = V.worst([t.verdict for t in e.tests])
        if not e.tests or (e.verdict != worst and e.verdict != V.PASS):
            # what no test shows: a timeout, a crash, a splat; or an instance never run
            why = "; ".join(e.diagnostics) or ("planned, not run (run cut short)"
                                                 if e.status != "done" else "")
            skip = re.search(r"^1\.\.0 # SKIP (.*)$", log, re.M)
            if not why and skip:                 # the program skipped as a whole
                why = skip.group(1).strip()
            tail = log.splitlines()[-200:] if log else []
            out.append(self.test(
                e, "", _path(e.program, e.fixture, e.variant), _status(e.verdict),
                why.replace("\0", ""), _excerpt(e.diagnostics + tail), e.duration,
                {"kvmfpu_verdict": e.verdict, "kvmfpu_status": e.status}))
        return out

    def builds_and_checkouts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        builds, checkouts = [], []
        for key, ident in self.run.hosts.items():
            kernel = ident.get("kernel") or {}
            source = kernel.get("source") or ""
            if not source.startswith("tree:"):
                continue                    # not built by this runner: nothing to say
            checkout_id = f"{self.prefix}/checkout/{key}"
            builds.append(_no_nulls({
                "id": self.build_id(key), "origin": self.origin, "checkout_id": checkout_id,
                "architecture": "x86_64", "status": "PASS",
                "config_name": "x86_64_defconfig+configs/labs/kernel.config",
                "comment": f"{kernel.get('release') or '?'} built by kvmfpu's lab from "
                           f"{source[len('tree:'):]}",
                "misc": {"config_sha256": kernel.get("config_sha256"),
                         "release": kernel.get("release"), "host": key}}))
            commit = kernel.get("git_commit")
            if commit and re.fullmatch(r"[0-9a-f]{40}", commit):
                dirty = kernel.get("git_dirty")
                checkouts.append(_no_nulls({
                    "id": checkout_id, "origin": self.origin, "git_commit_hash": commit,
                    "git_commit_name": kernel.get("git_describe"), "valid": True,
                    "comment": source[len("tree:"):] +
                               (" with uncommitted changes" if dirty else ""),
                    "misc": {"git_dirty": dirty}}))
        return builds, checkouts


def export(run: Run, run_dir: Path, origin: str = DEFAULT_ORIGIN) -> dict[str, Any]:
    """The KCIDB I/O document of `run` (its logs under run_dir)."""
    if not ORIGIN.fullmatch(origin):
        raise ExportError(f"--origin {origin!r}: a KCIDB origin is lower-case letters, digits "
                          "and '_' only")
    ex = _Exporter(run, run_dir, origin)
    builds, checkouts = ex.builds_and_checkouts()
    tests = [t for e in run.instances.values() for t in ex.tests(e)]
    return {"version": dict(SCHEMA), "checkouts": checkouts, "builds": builds,
            "tests": tests}


def render(run: Run, run_dir: Path, origin: str = DEFAULT_ORIGIN) -> str:
    return json.dumps(export(run, run_dir, origin), indent=1) + "\n"
