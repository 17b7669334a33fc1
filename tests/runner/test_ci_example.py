"""docs/examples/github-nightly.yml: its gate steps, run as the CI runs them, on canned runs.
A gate that lets a new failure through, or makes a failing run the baseline, fails here."""
from __future__ import annotations

import json
import re
import subprocess
import unittest
from pathlib import Path

from tests.runner import merge_data as D
from tests.runner.helpers import REPO, TempTree

try:
    import yaml     # Debian: python3-yaml
except ImportError:
    yaml = None

EXAMPLE = REPO / "docs" / "examples" / "github-nightly.yml"


def step(job: str, name: str) -> str:
    """A step's shell script, with GitHub's ${{ ... }} expressions replaced by a word."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for s in doc["jobs"][job]["steps"]:
        if s.get("name", "").startswith(name):
            return re.sub(r"\$\{\{[^}]*\}\}", "expr", s["run"])
    raise KeyError(name)


@unittest.skipIf(yaml is None, "python3-yaml is not installed (apt-get install python3-yaml)")
class Gate(TempTree):
    def gate(self, run: Path, rc: int, good: Path, job: str = "host") -> int:
        summary = self.root / "summary.md"
        env = dict(self.env, RUN=str(run), RC=str(rc), GOOD=str(good),
                   GITHUB_STEP_SUMMARY=str(summary))
        work = self.root / "checkout"     # the job's working directory: files it writes
        if not work.exists():              # (compare.txt) stay out of this repository
            work.mkdir()
            (work / "runner").symlink_to(REPO / "runner")
        proc = subprocess.run(["bash", "-e", "-c", step(job, "Gate")], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)
        self.last = proc.stdout + proc.stderr
        return proc.returncode

    def good_id(self, good: Path) -> str:
        return json.loads((good / "run.json").read_text())["run_id"]

    def test_host_gate(self) -> None:
        good = self.root / "state" / "amx-spr" / "last-good"
        bad = D.host_run(self.root / "bad", pkru_fails=True)
        self.assertEqual(self.gate(bad, 1, good), 1, self.last)   # no baseline, failing
        self.assertFalse(good.exists(), "a failing run became the baseline")
        first = D.host_run(self.root / "n1")
        self.assertEqual(self.gate(first, 0, good), 0, self.last)
        self.assertEqual(self.good_id(good), "n1")
        self.assertEqual(self.gate(bad, 1, good), 1, self.last)   # a new failure
        self.assertIn("new failures", self.last)
        self.assertEqual(self.good_id(good), "n1")
        second = D.host_run(self.root / "n2")
        self.assertEqual(self.gate(second, 0, good), 0, self.last)
        self.assertEqual(self.good_id(good), "n2")
        broken = D.host_run(self.root / "n3")
        run = json.loads((broken / "run.json").read_text())
        (broken / "run.json").write_text(json.dumps(dict(run, error="lab: boot hung")))
        self.assertEqual(self.gate(broken, 2, good), 2, self.last)
        self.assertEqual(self.good_id(good), "n2")
        self.assertEqual(self.gate(self.root / "none", 2, good), 2, self.last)

    def test_known_failure_is_not_new(self) -> None:
        """A host whose kernel has a known failure exits 1 every night; the gate is compare,
        so only a new failure stops it, once a reviewed failing run is the baseline."""
        good = self.root / "good"
        D.host_run(good, pkru_fails=True)
        again = D.host_run(self.root / "again", pkru_fails=True)
        self.assertEqual(self.gate(again, 1, good), 0, self.last)

    def test_fleet_gate(self) -> None:
        good = self.root / "state" / "fleet" / "last-good"
        runs = []
        for name, fails in (("f0", False), ("f1", False), ("f2", True)):
            out = self.root / name
            proc = self.kvmfpu("merge", str(D.host_run(self.root / f"h{name}", pkru_fails=fails)),
                               str(D.tcg_run(self.root / f"t{name}")), "--out", str(out))
            self.assertEqual(proc.returncode, 1, proc.stderr)     # tcg's PKRU bug, always
            runs.append(out)
        ids = [json.loads((r / "run.json").read_text())["run_id"] for r in runs]
        self.assertEqual(len(set(ids)), 3, ids)
        self.assertEqual(self.gate(runs[0], 1, good, "fleet"), 1, self.last)  # no baseline
        self.assertFalse(good.exists())
        good.parent.mkdir(parents=True)
        runs[0].rename(good)
        self.assertEqual(self.gate(runs[1], 1, good, "fleet"), 0, self.last)
        self.assertEqual(self.good_id(good), ids[1])
        self.assertEqual(self.gate(runs[2], 1, good, "fleet"), 1, self.last)  # new on a host
        self.assertIn("amx-host-1 (Intel(R) Xeon(R) Platinum 8480+, kernel 6.13.0-kvm, host): 1",
                      (self.root / "summary.md").read_text())
        self.assertEqual(self.good_id(good), ids[1])
