"""compare RUN_A RUN_B: new failures, fixed, still failing, flaky, newly skipped."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner import compare, merge, runstate
from tests.runner import merge_data as D
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


class PerHost(TempTree):
    """compare on runs of several hosts (merged, or a fleet): matched host by host, and the
    new failures say on which hosts and CPU models they appeared."""

    def merged(self, name: str, *runs: Path) -> runstate.Run:
        return merge.merge(list(runs), self.root / name, [])

    def keys(self, r: dict[str, Any], category: str) -> list[tuple[str, str]]:
        return [(i["host"], i["key"]) for i in r[category]]

    def test_one_host_baseline_against_every_host(self) -> None:
        a = runstate.load(D.host_run(self.root / "good"))
        b = self.merged("m", D.fleet_run(self.root / "fleet"), D.tcg_run(self.root / "tcg"))
        r = compare.compare(a, b)
        self.assertEqual(r["exit_code"], 1)
        set_xsave = f"{D.PKRU} :: swap.pkru.set_xsave"
        self.assertEqual(self.keys(r, "new_failures"),
                         [(D.FLEET_HOSTS[1], set_xsave), ("lab-tcg", set_xsave)])
        self.assertEqual(r["new_failures"][0]["cpu_model"], D.EMR)
        self.assertEqual(r["new_failures_by_cpu_model"],
                         {D.EMR: [D.FLEET_HOSTS[1]], "QEMU TCG CPU version 2.5+": ["lab-tcg"]})
        text = compare.text(r)
        self.assertIn(f"  {D.FLEET_HOSTS[1]} ({D.EMR}, kernel 6.13.0-kvm, host): 1", text)
        self.assertIn(f"  {D.FLEET_HOSTS[1]}/{set_xsave}: pass -> fail", text)
        self.assertIn(f"  on CPU model {D.EMR}: {D.FLEET_HOSTS[1]}", text)

    def test_merged_against_merged_matches_host_by_host(self) -> None:
        tcg = D.tcg_run(self.root / "tcg")
        a = self.merged("a", D.host_run(self.root / "h1"), tcg)
        b = self.merged("b", D.host_run(self.root / "h2", pkru_fails=True), tcg)
        r = compare.compare(a, b)
        set_xsave = f"{D.PKRU} :: swap.pkru.set_xsave"
        # lab-tcg failed in both: still failing there, not new; new on amx-host-1 only
        self.assertEqual(self.keys(r, "new_failures"), [("amx-host-1", set_xsave)])
        self.assertEqual(self.keys(r, "still_failing"), [("lab-tcg", set_xsave)])
        self.assertEqual(r["paired_hosts"], [{"a": "amx-host-1", "b": "amx-host-1"},
                                             {"a": "lab-tcg", "b": "lab-tcg"}])
        r = compare.compare(b, a)
        self.assertEqual(self.keys(r, "fixed"), [("amx-host-1", set_xsave)])
        self.assertEqual(r["exit_code"], 0)

    def test_merged_baseline_against_one_host(self) -> None:
        a = self.merged("a", D.host_run(self.root / "h1"), D.tcg_run(self.root / "tcg"))
        b = runstate.load(D.host_run(self.root / "h2", pkru_fails=True))
        r = compare.compare(a, b)     # B's host is compared with A's amx-host-1, not lab-tcg
        self.assertEqual(self.keys(r, "new_failures"),
                         [("amx-host-1", f"{D.PKRU} :: swap.pkru.set_xsave")])
        self.assertEqual(len(r["only_in_a"]), 14 + 1)   # + its kernel log
        self.assertTrue(all(k.startswith("lab-tcg/") for k in r["only_in_a"]))

    def test_a_host_only_in_b_fails_as_new(self) -> None:
        a = self.merged("a", D.host_run(self.root / "h1"),
                        D.host_run(self.root / "h9", hostname="amx-host-9"))
        b = self.merged("b", D.host_run(self.root / "h2"), D.tcg_run(self.root / "tcg"))
        r = compare.compare(a, b)
        self.assertEqual(self.keys(r, "new_failures"),
                         [("lab-tcg", f"{D.PKRU} :: swap.pkru.set_xsave")])
        self.assertEqual(len(r["only_in_b"]), 14 + 1)
        self.assertEqual(len(r["only_in_a"]), 14 + 1)   # + its kernel log
        self.assertIn("host amx-host-9: only in A", compare.text(r))

    def test_cli_json(self) -> None:
        a = D.host_run(self.root / "good")
        out = self.root / "m"
        self.assertEqual(self.kvmfpu("merge", str(D.fleet_run(self.root / "fleet")),
                                     "--out", str(out)).returncode, 1)
        proc = self.kvmfpu("compare", str(a), str(out), "--json")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        r = json.loads(proc.stdout)
        self.assertEqual(list(r["new_failures_by_host"]), [D.FLEET_HOSTS[1]])
        self.assertEqual(r["new_failures_by_host"][D.FLEET_HOSTS[1]]["cpu_model"], D.EMR)

    def test_one_host_matched_by_hostname_and_tier(self) -> None:
        """A fleet's column is its ssh login; a one-host run of the same machine is matched
        by the hostname and tier of its identity, and a choice of two is no match."""
        a = runstate.load(D.fleet_run(self.root / "fleet"))
        b = runstate.load(D.host_run(self.root / "spr", hostname="spr-1", pkru_fails=True))
        r = compare.compare(a, b)
        self.assertEqual(r["paired_hosts"], [{"a": D.FLEET_HOSTS[0], "b": "spr-1"},
                                             {"a": D.FLEET_HOSTS[1], "b": None}])
        self.assertEqual(self.keys(r, "new_failures"),
                         [("spr-1", f"{D.PKRU} :: swap.pkru.set_xsave")])   # never ran there
        a = self.merged("two", D.host_run(self.root / "k1"),
                        D.host_run(self.root / "k2", kernel="6.14.0-rc1"))
        b = runstate.load(D.host_run(self.root / "k3", kernel="6.15.0"))
        r = compare.compare(a, b)
        self.assertEqual(r["paired_hosts"][0], {"a": None, "b": "amx-host-1"})
        self.assertEqual(r["exit_code"], compare.EXIT_INCOMPLETE)
        self.assertIn("share no test", compare.text(r))

    def test_a_splat_is_new_on_its_host(self) -> None:
        tcg = D.tcg_run(self.root / "tcg")
        a = self.merged("a", D.host_run(self.root / "h1"), tcg)
        splat = D.host_run(self.root / "h2")
        run = json.loads((splat / "run.json").read_text())
        run["kernel_log"]["splats"] = [{"line": "WARNING: CPU: 3 PID: 7 at "
                                        "arch/x86/kernel/fpu/core.c:42", "time": 1.0,
                                        "instances": [D.PKRU]}]
        (splat / "run.json").write_text(json.dumps(run))
        b = self.merged("b", splat, tcg)
        self.assertEqual(b.kernel_log["splats"][0]["host"], "amx-host-1")
        self.assertEqual(b.kernel_log["splats"][0]["instances"], [f"amx-host-1/{D.PKRU}"])
        self.assertEqual(runstate.summarize(b)["exit_code"], 1)
        r = compare.compare(a, b)
        self.assertEqual(self.keys(r, "new_failures"), [("amx-host-1", "kernel-log :: splats")])
