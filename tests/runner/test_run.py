"""End to end: the runner with fake test programs (no /dev/kvm needed)."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

from runner import ktap
from tests.runner.helpers import PROGRAM, TempTree, processes_with


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Results(TempTree):
    def test_mixed_run_writes_everything(self) -> None:
        self.matrix("m", "seed = [3]\n")
        self.variants_profile("mix", ["pass", "fail", "skip"], 'matrix = "m"')
        proc, run_dir = self.run_profile("mix")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        run = self.load(run_dir)
        self.assertEqual(run["status"], "complete")
        self.assertFalse(run["cut_short"])
        for key in ("hostname", "kernel", "tier", "cpu", "kvm_supported_xcr0"):
            self.assertIn(key, run["host"])
        self.assertEqual(run["host"]["tier"], "host")
        by = {e["variant"]: e for e in run["instances"]}
        self.assertEqual({v: e["verdict"] for v, e in by.items()},
                         {"pass": "pass", "fail": "fail", "skip": "skip"})
        fail = by["fail"]
        self.assertEqual(fail["args"], ["--seed", "3", "-v", "fail"])
        self.assertEqual(fail["seed"], 3)
        self.assertGreater(fail["duration"], 0)
        self.assertEqual(fail["exercised"], ["x87", "sse"])
        self.assertEqual(fail["env"]["kvm_xcr0"], "0xe7")
        self.assertIn("fake.fail.guest_image: guest image differs from the expected pattern "
                      "in 1 register", fail["diagnostics"])
        self.assertEqual(fail["replay"], ["--seed 3 --round 1 -r fake.fail.guest_image"])
        self.assertEqual(by["skip"]["tests"][0]["reason"], "no AVX in guest CPUID")
        self.assertEqual(run["summary"]["exit_code"], 1)
        self.assertEqual(run["summary"]["exercised"], ["x87", "sse"])
        for e in run["instances"]:
            self.assertTrue((run_dir / e["log"]).is_file())
        # results.ktap is KTAP our own parser accepts, one top-level result per program
        doc = ktap.parse((run_dir / "results.ktap").read_text())
        self.assertEqual(doc.problems, [])
        self.assertEqual([(t.name, t.ok) for t in doc.tests], [(PROGRAM, False)])
        # junit.xml is well-formed and counts the failure
        root = ET.parse(run_dir / "junit.xml").getroot()
        self.assertEqual(len(root.findall(".//failure")), 1)
        self.assertEqual(len(root.findall(".//skipped")), 2)
        html = (run_dir / "report.html").read_text()
        self.assertIn("<svg", html)
        self.assertIn("expected 0x55, actual 0xaa", html)
        self.assertNotIn("http://", html.replace('xmlns="http://www.w3.org/2000/svg"', ""))
        self.assertEqual(os.readlink(self.results / "latest"), run_dir.name)

    def test_all_pass_exits_0(self) -> None:
        self.variants_profile("ok", ["pass", "skip"])
        proc, _ = self.run_profile("ok")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("PASS", proc.stderr)

    def test_nothing_ran_is_an_error(self) -> None:
        self.variants_profile("skips", ["skip"])
        proc, _ = self.run_profile("skips")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("nothing ran", proc.stderr)
        self.variants_profile("empty", ["nothing"])
        proc, run_dir = self.run_profile("empty")
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(self.load(run_dir)["instances"][0]["verdict"], "error")

    def test_error_line_and_exit2_are_errors(self) -> None:
        self.variants_profile("err", ["pass", "error", "exit2"])
        proc, run_dir = self.run_profile("err")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        by = {e["variant"]: e for e in self.load(run_dir)["instances"]}
        self.assertEqual(by["error"]["verdict"], "error")
        self.assertEqual(by["exit2"]["verdict"], "error")
        self.assertTrue(any("Cannot allocate memory" in d for d in by["error"]["diagnostics"]))

    def test_timeout_kills_process_group(self) -> None:
        self.variants_profile("hang", ["hang"], "timeout = 1")
        t0 = time.monotonic()
        proc, run_dir = self.run_profile("hang")
        self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        e = self.load(run_dir)["instances"][0]
        self.assertEqual(e["verdict"], "fail")
        self.assertTrue(e["exit"]["timed_out"])
        self.assertIn("timed out after 1 s while 'fake.hang.host_regs' ran; its processes "
                      "killed", e["diagnostics"])
        self.assertEqual([(t["name"], t["verdict"]) for t in e["tests"]],
                         [("fake.hang.guest_image", "pass"), ("fake.hang.host_regs", "fail")])
        self.assertEqual(e["tests"][1]["reason"], "timed out while it ran")
        # the test child made its own process group (like the harness's); it is gone
        # by the time the runner has exited, as is everything else of the fake program
        grandchild = int((self.root / "hang.pid").read_text())
        self.assertFalse(pid_alive(grandchild), "grandchild survived the timeout")
        self.assertEqual(processes_with(str(self.root)), [])

    def test_crash_and_truncation(self) -> None:
        self.variants_profile("bad", ["crash", "truncated"])
        proc, run_dir = self.run_profile("bad")
        by = {e["variant"]: e for e in self.load(run_dir)["instances"]}
        self.assertEqual(by["crash"]["verdict"], "fail")
        self.assertIn("program killed by SIGSEGV while 'fake.crash.host_regs' ran",
                      by["crash"]["diagnostics"])
        self.assertEqual(by["truncated"]["verdict"], "error")
        self.assertTrue(any("truncated" in d for d in by["truncated"]["diagnostics"]))

    def test_kernel_splat_fails_the_running_instance(self) -> None:
        self.variants_profile("splat", ["splat"])
        proc, run_dir = self.run_profile("splat", "--jobs", "1")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        run = self.load(run_dir)
        splats = run["kernel_log"]["splats"]
        self.assertEqual(len(splats), 2)   # one per test of the instance
        self.assertIn("WARNING: CPU: 1 PID: 42", splats[0]["line"])
        self.assertEqual(splats[0]["instances"], [f"{PROGRAM}.splat"])
        root = ET.parse(run_dir / "junit.xml").getroot()
        self.assertEqual(len(root.findall(".//failure")), 2)  # the instance and kernel-log
        self.assertEqual(run["instances"][0]["verdict"], "fail")
        self.assertIn("kernel log", proc.stderr)
        self.assertIn("WARNING", (run_dir / "dmesg.txt").read_text())

    def test_unreadable_kernel_log_is_reported(self) -> None:
        self.variants_profile("ok", ["pass"])
        self.kmsg.unlink()
        proc, run_dir = self.run_profile("ok")
        self.assertEqual(proc.returncode, 0)
        kl = self.load(run_dir)["kernel_log"]
        self.assertFalse(kl["watched"])
        self.assertIn("can't be read", kl["error"])
        self.assertIn("splats not watched", proc.stderr)

    def test_missing_binary_and_bad_config(self) -> None:
        self.variants_profile("ok", ["pass"])
        (self.bin / PROGRAM).unlink()
        proc, _ = self.run_profile("ok")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("not found or not executable", proc.stderr)
        self.profile("bad", 'color = "x"\n[[run]]\nprogram = "nope"\n')
        proc, _ = self.run_profile("bad")
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 2, proc.stderr)

    def test_filter_and_ktap_on_stdout(self) -> None:
        self.variants_profile("mix", ["pass", "fail", "skip"])
        proc, run_dir = self.run_profile("mix", "--filter", r"\.(pass|skip)$", "--ktap")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([e["variant"] for e in self.load(run_dir)["instances"]],
                         ["pass", "skip"])
        self.assertEqual(proc.stdout, (run_dir / "results.ktap").read_text())
        proc, _ = self.run_profile("mix", "--filter", "nothing-matches")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("matching --filter", proc.stderr)

    def test_require_exercised_is_in_run_json_as_the_exit_2(self) -> None:
        """Planned for XCR0 0xe7, the fake program exercises x87 and sse only: with
        --require-exercised the run exits 2 and its run.json says so, with the reason."""
        self.variants_profile("p", ["pass"])
        proc, run_dir = self.run_profile("p", "--require-exercised")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        run = self.load(run_dir)
        self.assertEqual(run["summary"]["exit_code"], 2)
        self.assertIn("not exercised although the tier can: avx,opmask", run["error"])
        self.assertIn("--require-exercised", proc.stderr.splitlines()[-2])
        # what the tier can test, all exercised: a pass
        proc, run_dir = self.run_profile("p", "--require-exercised", "--kvm-xcr0", "0x3")
        self.assertEqual((proc.returncode, self.load(run_dir)["summary"]["exit_code"]), (0, 0),
                         proc.stderr)

    def test_report_regenerates(self) -> None:
        self.variants_profile("ok", ["pass"])
        _, run_dir = self.run_profile("ok")
        (run_dir / "report.html").unlink()
        proc = self.kvmfpu("report", str(run_dir))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue((run_dir / "report.html").exists())
        self.assertIn("pass 1", proc.stdout)


@unittest.skipIf(shutil.which("parallel") is None, "GNU parallel not installed")
class Parallel(TempTree):
    def test_parallel_backend_matches_local(self) -> None:
        self.variants_profile("mix", ["pass", "fail", "skip", "hang"], "timeout = 2")
        proc, run_dir = self.run_profile("mix", "--via", "parallel", "--jobs", "2")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        run = self.load(run_dir)
        by = {e["variant"]: e for e in run["instances"]}
        self.assertEqual({v: e["verdict"] for v, e in by.items()},
                         {"pass": "pass", "fail": "fail", "skip": "skip", "hang": "fail"})
        self.assertTrue(by["hang"]["exit"]["timed_out"])
        self.assertEqual(processes_with(str(self.root)), [])   # the setpgrp child too
        self.assertEqual(by["fail"]["exercised"], ["x87", "sse"])
        joblog = (run_dir / "parallel.joblog").read_text().splitlines()
        self.assertEqual(len(joblog), 5)   # header + 4 jobs
        self.assertIn("guest image differs", (run_dir / by["fail"]["log"]).read_text())


if __name__ == "__main__":
    unittest.main()


class RunDirectories(unittest.TestCase):
    """make check starts a run per lab in the same second: generated names must not collide
    (they did: '...-check already exists' ended the bochs lab before it booted)."""

    def test_runs_started_at_once_get_their_own_directories(self) -> None:
        from runner import run as runner_run
        with tempfile.TemporaryDirectory() as d:
            got: list[str] = []
            threads = [threading.Thread(target=lambda: got.append(
                runner_run._new_run_dir(Path(d), "20261129-083935-check", True)[1]))
                for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(set(got)), 8, got)

    def test_lab_runs_are_named_by_lab(self) -> None:
        from runner import run as runner_run
        self.assertTrue(runner_run._run_id("check", "bochs").endswith("-check-bochs"))
        self.assertTrue(runner_run._run_id("check", None).endswith("-check"))

    def test_a_chosen_name_must_be_new(self) -> None:
        from runner import run as runner_run
        with tempfile.TemporaryDirectory() as d:
            runner_run._new_run_dir(Path(d), "mine", False)
            with self.assertRaises(runner_run.SetupError):
                runner_run._new_run_dir(Path(d), "mine", False)
