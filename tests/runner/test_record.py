"""The typed run record: schema, lookup by id, the journal, verdicts final when recorded."""
from __future__ import annotations

import json
import subprocess

from runner import artifacts, kmsg, report_html, runstate, verdicts as V
from runner.evaluate import Outcome
from runner.plan import Instance
from tests.runner.helpers import PROGRAM, TempTree

PASSING = "TAP version 13\n1..1\n# kvmfpu-exercised: components=x87,sse\nok 1 f.v.a\n"


def instances(n: int = 3) -> list[Instance]:
    return [Instance(id=f"p.v{i}", program="p", args=["-v", f"v{i}"], variant=f"v{i}",
                     tests=["a"], params={}, timeout=5) for i in range(n)]


class Schema(TempTree):
    def test_typed_record_round_trips_through_run_json(self) -> None:
        insts = instances()
        run = runstate.new_run("r", "ci", "", {"kernel": "k"}, insts, "/b", {}, {})
        runstate.record_finish(run, insts[0], Outcome(returncode=0, duration=0.1), PASSING)
        runstate.save(run, self.root)
        data = json.loads((self.root / "run.json").read_text())
        self.assertEqual(data["format"], "kvmfpu-run/3")
        self.assertEqual([e["id"] for e in data["instances"]], ["p.v0", "p.v1", "p.v2"])
        self.assertEqual(data["instances"][1]["tests"], [])          # no results yet
        self.assertEqual(data["instances"][1]["test_filter"], ["a"])
        back = runstate.load(self.root)
        self.assertIsInstance(back, runstate.Run)
        entry = back.instances["p.v0"]
        self.assertEqual((entry.verdict, entry.exercised), (V.PASS, ["x87", "sse"]))
        self.assertIsInstance(entry.tests[0], runstate.TestResult)
        self.assertEqual(back.to_json(), data)

    def test_schema_1_is_converted(self) -> None:
        """kvmfpu-run/1 kept a pending instance's test filter in `tests`."""
        old = {"format": "kvmfpu-run/1", "run_id": "o", "profile": "p", "status": "complete",
               "host": {}, "kernel_log": {"splats": []},
               "instances": [{"id": "i", "key": "i", "status": "pending", "verdict": None,
                              "tests": ["guest_image"]}]}
        run = runstate.from_json(old, "old.json")
        self.assertEqual(run.instances["i"].test_filter, ["guest_image"])
        self.assertEqual(run.instances["i"].tests, [])

    def test_a_run_split_per_test(self) -> None:
        """split = "test" (the soak profile): kvmfpu-run/1 put each pending instance's test
        filter where results go, and rendering results.ktap at the start of the run failed
        (TypeError: string indices must be integers)."""
        self.variants_profile("split", ["pass"], run_extra='split = "test"')
        proc, run_dir = self.run_profile("split", "--jobs", "1")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        data = self.load(run_dir)
        self.assertEqual([e["test_filter"] for e in data["instances"]],
                         [["guest_image"], ["host_regs"]])
        self.assertEqual({t["verdict"] for e in data["instances"] for t in e["tests"]},
                         {V.PASS})          # (the fake program runs every test anyway)
        self.assertEqual(self.kvmfpu("report", str(run_dir)).returncode, 0)

    def test_an_id_twice_is_corrupt(self) -> None:
        e = {"id": "i", "key": "i", "status": "done", "verdict": "pass", "tests": []}
        data = {"format": runstate.FORMAT, "run_id": "d", "profile": "p", "status": "complete",
                "host": {}, "kernel_log": {"splats": []}, "instances": [e, e]}
        with self.assertRaisesRegex(ValueError, r"^x.json: corrupt run.json: instances\[1\]: "
                                    "id 'i' appears twice$"):
            runstate.from_json(data, "x.json")


class Journal(TempTree):
    def started(self) -> tuple[runstate.Run, list[Instance]]:
        insts = instances()
        run = runstate.new_run("r", "ci", "", {"kernel": "k"}, insts, "/b", {}, {})
        runstate.open_journal(run, self.root)
        runstate.save(run, self.root)                  # run.json at the start only
        return run, insts

    def test_one_line_per_start_and_finish_and_load_reads_them(self) -> None:
        run, insts = self.started()
        runstate.record_start(run, insts[0].id)
        runstate.record_finish(run, insts[0], Outcome(returncode=1), PASSING.replace("ok 1",
                                                                                      "not ok 1"))
        runstate.record_start(run, insts[1].id)
        lines = (self.root / runstate.JOURNAL).read_text().splitlines()
        self.assertEqual([(json.loads(ln)["id"], json.loads(ln)["status"]) for ln in lines],
                         [("p.v0", "running"), ("p.v0", "done"), ("p.v1", "running")])
        # the runner is SIGKILLed here: run.json still says every instance is pending
        stale = json.loads((self.root / "run.json").read_text())
        self.assertEqual({e["status"] for e in stale["instances"]}, {"pending"})
        back = runstate.load(self.root)
        self.assertEqual([(e.status, e.verdict) for e in back.instances.values()],
                         [("done", V.FAIL), ("running", None), ("pending", None)])
        runstate.mark_runner_died(back)
        self.assertEqual(back.instances["p.v1"].verdict, V.INTERRUPTED)
        self.assertEqual(runstate.summarize(back)["counts"]["not_run"], 1)

    def test_report_after_sigkill_regenerates_run_json_from_the_journal(self) -> None:
        run, insts = self.started()
        run.runner_pid = int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True,
                                            text=True).stdout)     # gone by now
        runstate.save(run, self.root)
        runstate.record_start(run, insts[0].id)
        runstate.record_finish(run, insts[0], Outcome(returncode=1), PASSING.replace("ok 1",
                                                                                      "not ok 1"))
        runstate.record_start(run, insts[1].id)
        rep = self.kvmfpu("report", str(self.root))
        self.assertEqual(rep.returncode, 1, rep.stdout + rep.stderr)     # the failure counts
        self.assertIn("aborted", rep.stdout)
        data = json.loads((self.root / "run.json").read_text())
        self.assertEqual([(e["status"], e["verdict"]) for e in data["instances"]],
                         [("done", V.FAIL), ("done", V.INTERRUPTED), ("pending", None)])

    def test_a_last_line_cut_short_is_ignored_anything_else_is_corrupt(self) -> None:
        run, insts = self.started()
        runstate.record_start(run, insts[0].id)
        journal = self.root / runstate.JOURNAL
        good = journal.read_text()
        journal.write_text(good + '{"id": "p.v0", "key"')        # killed while writing
        self.assertEqual(runstate.load(self.root).instances["p.v0"].status, "running")
        journal.write_text('{"id": \n' + good)
        with self.assertRaisesRegex(ValueError, "corrupt journal: line 1 is not JSON$"):
            runstate.load(self.root)
        journal.write_text(good.replace("p.v0", "p.nope"))
        with self.assertRaisesRegex(ValueError, "instance 'p.nope' is not in run.json$"):
            runstate.load(self.root)

    def test_a_finished_run_json_is_not_overridden_by_its_journal(self) -> None:
        run, insts = self.started()
        runstate.record_start(run, insts[0].id)
        run.status = "interrupted"
        runstate.interrupt_running(run, "cut short")
        runstate.save(run, self.root)
        self.assertEqual(runstate.load(self.root).instances["p.v0"].verdict, V.INTERRUPTED)


class SplatsWhenRecorded(TempTree):
    """A host kernel splat fails the instances running when it was logged, in the verdict
    recorded as each of them finishes; nothing rewrites a recorded verdict afterwards."""

    def test_canned_kmsg_lines(self) -> None:
        insts = instances()
        run = runstate.new_run("r", "ci", "", {"kernel": "k"}, insts, "/b", {}, {})
        runstate.open_journal(run, self.root)
        running: list[str] = []
        w = kmsg.Watcher(str(self.kmsg), lambda: list(running))
        w.start()
        try:
            running[:] = [insts[0].id, insts[1].id]
            with open(self.kmsg, "a") as f:
                f.write("4,7,7,-;WARNING: CPU: 0 PID: 9 at arch/x86/kvm/x86.c:1 kvm_x\n")
            w.poll()                    # what the runner does as an instance finishes
            e0 = runstate.record_finish(run, insts[0], Outcome(returncode=0), PASSING,
                                        w.splats)
            running[:] = [insts[1].id]
            self.assertEqual(e0.verdict, V.FAIL)
            self.assertIn("kernel log while running: WARNING: CPU: 0 PID: 9 at "
                          "arch/x86/kvm/x86.c:1 kvm_x", e0.diagnostics)
            # read after p.v0's verdict was recorded (the watcher's slack still names it)
            with open(self.kmsg, "a") as f:
                f.write("4,8,8,-;BUG: late\n")
            w.poll()
            running[:] = []
            w.poll()
            e1 = runstate.record_finish(run, insts[1], Outcome(returncode=0), PASSING,
                                        w.splats)
            running[:] = [insts[0].id]                  # "ended SPLAT_SLACK ago"
            with open(self.kmsg, "a") as f:
                f.write("4,9,9,-;BUG: after p.v0's verdict\n")
            w.poll()
            running[:] = []
            with open(self.kmsg, "a") as f:
                f.write("4,10,10,-;WARNING: CPU: 1 PID: 3 at kernel/x.c:2 nothing_running\n")
        finally:
            w.stop()
        self.assertEqual(e1.verdict, V.FAIL)        # both splats were logged while it ran
        journal = [json.loads(ln) for ln in
                   (self.root / runstate.JOURNAL).read_text().splitlines()]
        self.assertEqual([(j["id"], j["verdict"]) for j in journal],
                         [("p.v0", V.FAIL), ("p.v1", V.FAIL)])
        runstate.record_splats(run, w.splats)
        self.assertEqual([e.verdict for e in run.instances.values()],
                         [V.FAIL, V.FAIL, None])     # as recorded: nothing rewritten
        self.assertEqual(len(run.instances["p.v0"].diagnostics), 1)
        late = [s for s in run.kernel_log["splats"] if s.get("after_verdict")]
        self.assertEqual([(s["line"], s["after_verdict"]) for s in late],
                         [("BUG: after p.v0's verdict", ["p.v0"])])
        self.assertEqual(run.kernel_log["splats"][-1]["instances"], [])
        run.summary = runstate.summarize(run)
        self.assertEqual(run.summary["exit_code"], V.EXIT_FAIL)
        self.assertIn("kernel log: BUG: after p.v0's verdict (while running: nothing; just "
                      "after p.v0, verdict kept)", artifacts.summary_text(run))
        self.assertIn("just after p.v0 (verdict kept)", report_html.render(run.to_json()))

    def test_no_instance_running_still_fails_the_run(self) -> None:
        insts = instances(1)
        run = runstate.new_run("r", "ci", "", {"kernel": "k"}, insts, "/b", {}, {})
        runstate.record_finish(run, insts[0], Outcome(returncode=0), PASSING, [])
        runstate.record_splats(run, [kmsg.Splat("WARNING: idle", 0.0, [])])
        self.assertEqual(run.instances["p.v0"].verdict, V.PASS)
        self.assertEqual(runstate.summarize(run)["exit_code"], V.EXIT_FAIL)

    def test_remote_splats_stay_beside_the_hosts(self) -> None:
        insts = instances(1)
        run = runstate.new_run("r", "ci", "", {"kernel": "k"}, insts, "/b", {}, {})
        remote = PASSING + "# kvmfpu-kmsg: [ 1.0] WARNING: remote\n"
        runstate.record_finish(run, insts[0], Outcome(returncode=0, host="h"), remote)
        runstate.record_splats(run, [kmsg.Splat("WARNING: local", 0.0, [])])
        self.assertEqual([s["line"] for s in run.kernel_log["splats"]],
                         ["[ 1.0] WARNING: remote", "WARNING: local"])

    def test_a_run_records_the_splat_verdict_as_the_instance_finishes(self) -> None:
        self.variants_profile("splat", ["pass", "splat"])
        proc, run_dir = self.run_profile("splat", "--jobs", "1")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        # the progress line says the verdict as recorded (it said "pass" when splats were
        # attributed at the end of the run)
        self.assertIn(f"| fail  {PROGRAM}.splat\n", proc.stderr)
        done = {j["variant"]: j for j in map(json.loads, (run_dir / "instances.jsonl")
                                             .read_text().splitlines())
                if j["status"] == "done"}
        self.assertEqual(done["splat"]["verdict"], V.FAIL)
        self.assertIn("kernel log while running: WARNING: CPU: 1 PID: 42",
                      " ".join(done["splat"]["diagnostics"]))
        final = {e["variant"]: e for e in self.load(run_dir)["instances"]}
        for variant in ("pass", "splat"):
            self.assertEqual(final[variant]["verdict"], done[variant]["verdict"], variant)
            self.assertEqual(final[variant]["diagnostics"], done[variant]["diagnostics"])
        # it ended before the splat was logged: its pass stands (the splat, read within
        # SPLAT_SLACK of its end, was attributed to it at the end of the run before)
        self.assertEqual(final["pass"]["verdict"], V.PASS)

