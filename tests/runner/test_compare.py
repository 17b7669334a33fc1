"""compare RUN_A RUN_B: new failures, fixed, still failing, flaky, newly skipped."""
from __future__ import annotations

import json
from typing import Any

from runner import compare, runstate
from tests.runner.helpers import TempTree


def instance(key: str, tests: dict[str, str], repeat: int = 1,
             verdict: str | None = None) -> dict[str, Any]:
    ts = [{"name": n, "verdict": v} for n, v in tests.items()]
    worst = "fail" if "fail" in tests.values() else "pass"
    return {"id": f"{key}~{repeat}", "key": key, "status": "done",
            "verdict": verdict or worst, "tests": ts}


def run(run_id: str, kernel: str, instances: list[dict[str, Any]],
        splats: int = 0) -> dict[str, Any]:
    return {"format": runstate.FORMAT, "run_id": run_id, "profile": "ci",
            "status": "complete", "host": {"kernel": kernel}, "instances": instances,
            "kernel_log": {"watched": True, "splats": [{"line": "WARNING"}] * splats}}


def cmp(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """compare reads the typed record (runstate.load, runstate.from_json)."""
    return compare.compare(runstate.from_json(a, "a"), runstate.from_json(b, "b"))


A = run("a", "6.12.1", [
    instance("p.avx", {"t.newfail": "pass", "t.fixed": "fail", "t.still": "fail",
                       "t.skipped": "pass", "t.gone": "pass", "t.flaky": "pass"}),
])
B = run("b", "6.12.2", [
    instance("p.avx", {"t.newfail": "fail", "t.fixed": "pass", "t.still": "fail",
                       "t.skipped": "skip", "t.new": "pass", "t.flaky": "pass"}, 1),
    instance("p.avx", {"t.newfail": "fail", "t.fixed": "pass", "t.still": "fail",
                       "t.skipped": "skip", "t.new": "pass", "t.flaky": "fail"}, 2),
], splats=1)


class Compare(TempTree):
    def test_categories(self) -> None:
        r = cmp(A, B)
        keys = {c: [i["key"] if isinstance(i, dict) else i for i in r[c]]
                for c in compare.CATEGORIES}
        self.assertEqual(keys["new_failures"], ["kernel-log :: splats", "p.avx :: t.newfail"])
        self.assertEqual(keys["fixed"], ["p.avx :: t.fixed"])
        self.assertEqual(keys["still_failing"], ["p.avx :: t.still"])
        self.assertEqual(keys["flaky"], ["p.avx :: t.flaky"])
        self.assertEqual(keys["newly_skipped"], ["p.avx :: t.skipped"])
        self.assertEqual(keys["only_in_a"], ["p.avx :: t.gone"])
        self.assertEqual(keys["only_in_b"], ["p.avx :: t.new"])
        self.assertEqual(r["exit_code"], 1)
        text = compare.text(r)
        self.assertIn("kernel 6.12.1", text)
        self.assertIn("kernel 6.12.2", text)
        self.assertIn("p.avx :: t.newfail: pass -> fail", text)

    def test_same_run_no_new_failures(self) -> None:
        r = cmp(B, B)
        self.assertEqual(r["new_failures"], [])
        self.assertEqual(r["exit_code"], 0)

    def test_instance_level_failure_counts(self) -> None:
        a = run("a", "k", [instance("p.hang", {"t": "pass"})])
        b = run("b", "k", [instance("p.hang", {"t": "pass"}, verdict="fail")])
        self.assertEqual([i["key"] for i in cmp(a, b)["new_failures"]],
                         ["p.hang :: t"])

    def test_run_cut_short_is_not_run_rather_than_missing(self) -> None:
        a = run("a", "k", [instance("p.x", {"t": "pass"}),
                           dict(instance("p.y", {}), status="pending", tests=[])])
        b = run("b", "k", [instance("p.x", {"t": "pass"}), instance("p.y", {"t": "fail"})])
        r = cmp(a, b)
        self.assertEqual(r["not_run_in_a"], ["p.y :: t"])
        self.assertEqual([i["key"] for i in r["new_failures"]], ["p.y :: t"])
        self.assertEqual(r["only_in_b"], [])
        r = cmp(b, a)
        self.assertEqual(r["not_run_in_b"], ["p.y :: t"])
        self.assertEqual(r["only_in_a"], [])

    def test_cut_short_candidate_is_not_a_pass(self) -> None:
        a = run("a", "k", [instance("p.x", {"t": "pass"}), instance("p.y", {"t": "pass"})])
        b = dict(run("b", "k", [instance("p.x", {"t": "pass"}),
                                dict(instance("p.y", {}), status="pending", tests=[])]),
                 status="interrupted", cut_short=True, cut_short_reason="SIGINT")
        r = cmp(a, b)
        self.assertEqual(r["new_failures"], [])
        self.assertEqual(r["exit_code"], compare.EXIT_INCOMPLETE)
        self.assertIn("B was cut short (status interrupted, SIGINT): 1 planned instance(s) "
                      "never finished", compare.text(r))
        self.assertNotIn("no new failures\n", compare.text(r) + "\n")
        b["instances"][1] = instance("p.y", {"t": "fail"})   # a real failure still wins
        self.assertEqual(cmp(a, b)["exit_code"], 1)

    def test_runs_sharing_nothing_are_not_a_pass(self) -> None:
        a = run("a", "k", [instance("p.x", {"t": "pass"})])
        b = run("b", "k", [instance("p.y", {"t": "pass"})])
        r = cmp(a, b)
        self.assertEqual(r["exit_code"], compare.EXIT_INCOMPLETE)
        self.assertIn("share no test", compare.text(r))

    def test_cli(self) -> None:
        for r in (A, B):
            d = self.results / r["run_id"]
            d.mkdir(parents=True)
            (d / "run.json").write_text(json.dumps(r))
        proc = self.kvmfpu("compare", "a", "b", "--results", str(self.results))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("new failures: 2", proc.stdout)
        proc = self.kvmfpu("compare", str(self.results / "b"), str(self.results / "b"), "--json")
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(json.loads(proc.stdout)["new_failures"], [])
        proc = self.kvmfpu("compare", "a", "missing", "--results", str(self.results))
        self.assertEqual(proc.returncode, 2)
        self.assertIn("cannot read run", proc.stderr)

    def test_real_runs_with_repeat(self) -> None:
        self.variants_profile("fl", ["pass", "flaky"])
        proc, run_a = self.run_profile("fl", "--repeat", "2")
        self.assertEqual(proc.returncode, 1, proc.stderr)  # the flaky one failed once
        proc, run_b = self.run_profile("fl", "--repeat", "2")
        self.assertEqual(self.load(run_a)["summary"]["flaky"], ["kvmfpu_fake_test.flaky"])
        self.assertIn("flaky (repeats disagree): kvmfpu_fake_test.flaky", proc.stderr)
        r = cmp(self.load(run_a), self.load(run_b))
        self.assertEqual(sorted(i["key"] for i in r["flaky"]),
                         ["kvmfpu_fake_test.flaky :: fake.flaky.guest_image",
                          "kvmfpu_fake_test.flaky :: fake.flaky.host_regs"])
        self.assertEqual(r["new_failures"], [])
