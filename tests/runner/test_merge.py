"""merge RUN... --out DIR: one run of several hosts or kernels; bad input is exit 2."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from runner import merge, runstate
from tests.runner import merge_data as D
from tests.runner.helpers import TempTree


class Merge(TempTree):
    def setUp(self) -> None:
        super().setUp()
        self.fleet = D.fleet_run(self.root / "fleet")
        self.tcg = D.tcg_run(self.root / "tcg")
        self.host = D.host_run(self.root / "host")
        self.out = self.root / "merged"

    def merge(self, *runs: Path, out: Path | None = None):
        return self.kvmfpu("merge", *map(str, runs), "--out", str(out or self.out))

    def test_run_id_names_the_sources_not_the_directory(self) -> None:
        """KCIDB ids start with the run id: two merges written to directories of the same
        name must not share it; the same runs merged again get the same one."""
        ids = []
        for runs, out in (((self.fleet, self.tcg), self.root / "a" / "night"),
                          ((self.fleet, self.tcg), self.root / "b" / "night"),
                          ((self.fleet, self.host), self.root / "c" / "night")):
            self.merge(*runs, out=out)
            ids.append(self.load(out)["run_id"])
        self.assertTrue(ids[0].startswith("merge-"), ids)
        self.assertEqual(ids[0], ids[1])
        self.assertNotEqual(ids[0], ids[2])

    def test_three_runs_one_record(self) -> None:
        proc = self.merge(self.fleet, self.tcg, self.host)
        self.assertEqual(proc.returncode, 1, proc.stderr)     # PKRU failed on two hosts
        self.assertIn("FAIL: 2 instance(s) failed", proc.stdout)
        run = self.load(self.out)
        self.assertEqual(run["format"], runstate.FORMAT)
        cols = [*D.FLEET_HOSTS, "lab-tcg", "amx-host-1"]
        self.assertEqual(list(run["hosts"]), cols)
        self.assertEqual(run["hosts"]["lab-tcg"]["cpu"]["model_name"],
                         "QEMU TCG CPU version 2.5+")    # from Run.host: a v2 run
        self.assertEqual(run["hosts"]["lab-tcg"]["source"], merge.FALLBACK_SOURCE)
        self.assertEqual(run["hosts"][D.FLEET_HOSTS[1]]["cpu"]["model_name"], D.EMR)
        self.assertEqual([(m["run_id"], m["hosts"]) for m in run["merged_from"]],
                         [("fleet", list(D.FLEET_HOSTS)),
                          ("20261129-103336-check-tcg", ["lab-tcg"]),   # the real run's id
                          ("host", ["amx-host-1"])])
        ids = [e["id"] for e in run["instances"]]
        self.assertEqual(len(ids), 9)
        self.assertIn(f"lab-tcg/{D.PKRU}", ids)
        self.assertIn(f"{D.FLEET_HOSTS[1]}/{D.PKRU}", ids)
        for e in run["instances"]:
            self.assertEqual(e["id"], f"{e['host']}/{e['key']}")   # key kept, for compare
            self.assertTrue((self.out / e["log"]).is_file(), e["log"])
        self.assertEqual(run["summary"]["counts"]["fail"], 2)
        self.assertEqual(run["summary"]["exit_code"], 1)
        self.assertEqual(run["kernel_log"]["remote_hosts"]["amx-host-1"],
                         "watched (/dev/kmsg)")
        self.assertEqual(run["kernel_log"]["unwatched_hosts"], [])
        for name in ("report.html", "junit.xml", "results.ktap"):
            self.assertTrue((self.out / name).is_file())
        report = self.kvmfpu("report", str(self.out))
        self.assertEqual(report.returncode, 1, report.stderr)

    def test_logs_are_the_sources_logs(self) -> None:
        self.assertEqual(self.merge(self.tcg, self.host).returncode, 1)
        merged = self.out / "logs" / "lab-tcg" / f"{D.PKRU}.log"
        self.assertEqual(merged.read_text(), (self.tcg / "logs" / f"{D.PKRU}.log").read_text())
        self.assertEqual(os.stat(merged).st_ino, os.stat(self.tcg / "logs" / f"{D.PKRU}.log")
                         .st_ino)   # hard linked: same file system

    def test_same_host_two_kernels_are_two_columns(self) -> None:
        other = D.host_run(self.root / "host2", kernel="6.14.0-rc1")
        self.assertEqual(self.merge(self.host, other).returncode, 0)
        run = self.load(self.out)
        self.assertEqual(list(run["hosts"]),
                         ["amx-host-1@6.13.0-kvm", "amx-host-1@6.14.0-rc1"])
        self.assertEqual(len({e["id"] for e in run["instances"]}), 6)

    def test_merging_a_merged_run_keeps_one_prefix(self) -> None:
        self.assertEqual(self.merge(self.fleet, self.tcg).returncode, 1)
        again = self.root / "again"
        self.assertEqual(self.merge(self.out, self.host, out=again).returncode, 1)
        ids = [e["id"] for e in self.load(again)["instances"]]
        self.assertIn(f"lab-tcg/{D.PKRU}", ids)
        self.assertIn(f"amx-host-1/{D.PKRU}", ids)

    def test_a_cut_short_source_makes_the_merge_cut_short(self) -> None:
        run = json.loads((self.host / "run.json").read_text())
        run.update(status="interrupted", cut_short=True, cut_short_reason="SIGINT")
        run["instances"][2].update(status="pending", verdict=None, tests=[])
        (self.host / "run.json").write_text(json.dumps(run))
        proc = self.merge(self.host)
        self.assertEqual(proc.returncode, 2, proc.stdout)
        merged = self.load(self.out)
        self.assertEqual(merged["status"], "interrupted")
        self.assertEqual(merged["cut_short_reason"], "host: SIGINT")
        self.assertEqual(merged["summary"]["counts"]["not_run"], 1)

    def assertRefused(self, proc, what: str) -> None:
        self.assertEqual(proc.returncode, 2, proc.stdout)
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn(what, proc.stderr)

    def test_bad_input(self) -> None:
        (self.root / "empty").mkdir()
        self.assertRefused(self.merge(self.tcg, self.root / "empty"), "not a kvmfpu run")
        self.assertRefused(self.merge(self.tcg, self.root / "missing"), "not a kvmfpu run")
        self.assertRefused(self.merge(self.tcg, self.host, self.tcg), "the same run as")
        copy = D.tcg_run(self.root / "copy")   # another directory, the same run
        self.assertRefused(self.merge(self.tcg, copy), "the same run as")
        self.out.mkdir()
        (self.out / "x").write_text("")
        self.assertRefused(self.merge(self.tcg, self.host), "not an empty directory")
        self.assertEqual(list(self.out.iterdir()), [self.out / "x"])
        other = D.host_run(self.root / "host2")   # same host, same kernel, same tests
        self.assertRefused(self.merge(self.host, other, out=self.root / "o2"),
                           "is in another of the runs too")
        self.assertFalse((self.root / "o2").exists())    # nothing written

    def test_a_run_without_hosts_is_one_host(self) -> None:
        """The fallback of a v2 run, or of a v3 run that recorded no `hosts`."""
        run = runstate.load(self.host)
        self.assertEqual(run.hosts, {})
        cols = merge.columns(run)
        self.assertEqual(list(cols), ["amx-host-1"])
        self.assertEqual(merge.cpu_name(cols["amx-host-1"]), D.SPR)
        self.assertEqual(merge.kernel_release(cols["amx-host-1"]), "6.13.0-kvm")
        self.assertEqual(cols["amx-host-1"]["tier"], "host")
        data = json.loads((self.host / "run.json").read_text())
        data.update(format=runstate.FORMAT, hosts={})        # v3 before host identity
        self.assertEqual(merge.columns(runstate.from_json(data, "v3")), cols)
        fleet = runstate.load(self.fleet)
        self.assertEqual(list(merge.columns(fleet)), list(D.FLEET_HOSTS))
        self.assertEqual(merge.kernel_release(merge.columns(fleet)[D.FLEET_HOSTS[0]]),
                         "6.13.0-kvm")

    def test_a_test_failing_on_one_host_only_is_not_flaky(self) -> None:
        """The same key passed on three hosts and failed on two: that is not "repeats
        disagree" (summary.flaky); repeats on one host that disagree still are."""
        self.assertEqual(self.merge(self.fleet, self.tcg, self.host).returncode, 1)
        self.assertEqual(self.load(self.out)["summary"]["flaky"], [])
        run = runstate.load(self.host)
        for n, verdict in ((1, "pass"), (2, "fail")):
            e = run.instances[D.PKRU]
            run.instances[f"{D.PKRU}~{n}"] = dataclasses.replace(e, id=f"{e.id}~{n}",
                                                                 verdict=verdict)
        del run.instances[D.PKRU]
        self.assertEqual(runstate.summarize(run)["flaky"], [D.PKRU])
