"""Interrupt safety: kill the runner mid-run and check what the results directory holds."""
from __future__ import annotations

import json
import shutil
import signal
import unittest
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.runner.helpers import KVMFPU, TempTree, counts_add_up, processes_with


class Interrupt(TempTree):
    def start(self, profile: str, *extra: str) -> tuple[subprocess.Popen[str], Path]:
        run_dir = self.results / "cut"
        cmd = [sys.executable, str(KVMFPU), "run", "--profile", profile, "--configs",
               str(self.configs), "--bin", str(self.bin), "--results", str(self.results),
               "--kmsg", str(self.kmsg), "--run-id", "cut", "--jobs", "1",
               "--kvm-dev", str(self.kvm_dev), *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env, stdin=subprocess.DEVNULL)
        return proc, run_dir

    def wait_done(self, run_dir: Path, n: int, timeout: float = 30) -> None:
        """Until n instances are done and the next one is running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                run = json.loads((run_dir / "run.json").read_text())
                if sum(e["status"] == "done" for e in run["instances"]) >= n and \
                        any(e["status"] == "running" for e in run["instances"]):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.fail(f"fewer than {n} instances finished in {timeout} s")

    def slow_profile(self) -> None:
        self.matrix("m", "seed = { first = 1, count = 10 }\n")
        self.variants_profile("slow", ["slow"], 'matrix = "m"')

    def check_cut_short(self, run_dir: Path, reason: str) -> dict:
        run = self.load(run_dir)                      # valid JSON
        states = [(e["id"][-10:], e["status"], e["verdict"]) for e in run["instances"]]
        self.assertNotIn("running", [st for _, st, _ in states], states)
        self.assertEqual(run["status"], "interrupted")
        self.assertTrue(run["cut_short"])
        self.assertEqual(run["cut_short_reason"], reason)
        done = [e for e in run["instances"] if e["status"] == "done"]
        finished = [e for e in done if e["verdict"] == "pass"]
        self.assertGreaterEqual(len(finished), 2, states)
        for e in finished:
            self.assertTrue((run_dir / e["log"]).is_file())
            self.assertEqual(len(e["tests"]), 2)
        self.assertTrue(any(e["status"] == "pending" for e in run["instances"]), states)
        self.assertTrue(all(e["verdict"] in ("pass", "interrupted") for e in done), states)
        self.assertEqual(run["summary"]["exit_code"], 2)
        self.assertEqual(run["summary"]["reason"], "ERROR: run was cut short")
        ET.parse(run_dir / "junit.xml")
        self.assertIn("Run cut short", (run_dir / "report.html").read_text())
        self.assertIn("not run (run cut short)", (run_dir / "results.ktap").read_text())
        return run

    def test_sigint_keeps_finished_results(self) -> None:
        self.slow_profile()
        proc, run_dir = self.start("slow")
        self.wait_done(run_dir, 2)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2)
        run = self.check_cut_short(run_dir, "SIGINT")
        # the instance running at the signal is killed and marked (unless it just finished)
        interrupted = [e for e in run["instances"] if e["verdict"] == "interrupted"]
        for e in interrupted:
            self.assertTrue(e.get("exit", {}).get("interrupted") or e["diagnostics"], e)

    def test_sigterm_keeps_finished_results(self) -> None:
        self.slow_profile()
        proc, run_dir = self.start("slow")
        self.wait_done(run_dir, 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2)
        self.check_cut_short(run_dir, "SIGTERM")
        self.assertIn("cut short", err)

    def test_sigkill_leaves_valid_run_json(self) -> None:
        self.slow_profile()
        proc, run_dir = self.start("slow")
        self.wait_done(run_dir, 2)
        proc.kill()
        proc.communicate(timeout=30)
        run = self.load(run_dir)
        self.assertEqual(run["status"], "running")
        self.assertGreaterEqual(sum(e["verdict"] == "pass" for e in run["instances"]), 2)
        rep = self.kvmfpu("report", str(run_dir))
        self.assertEqual(rep.returncode, 2, rep.stdout + rep.stderr)
        self.assertIn("aborted", rep.stdout)
        run = self.load(run_dir)
        self.assertEqual(run["status"], "aborted")
        counts_add_up(self, run)

    def hang_until_child(self, *extra: str) -> tuple[subprocess.Popen[str], Path]:
        """A run whose first instance hangs in a test child that made its own process
        group (like the kselftest harness's); returns once that child runs."""
        self.variants_profile("hang", ["hang", "pass"], "timeout = 60")
        proc, run_dir = self.start("hang", *extra)
        deadline = time.monotonic() + 30
        while not (self.root / "hang.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue((self.root / "hang.pid").exists(), "the hanging test never started")
        return proc, run_dir

    def check_nothing_left(self, proc: subprocess.Popen[str], run_dir: Path,
                           sig: signal.Signals) -> None:
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2)
        # the runner has exited: nothing of the fake program may be left (pgrep by the
        # test's unique temporary directory, which is in the program's command line)
        self.assertEqual(processes_with(str(self.root)), [])
        run = self.load(run_dir)
        counts_add_up(self, run)
        by = {e["variant"]: e for e in run["instances"]}
        self.assertEqual(by["hang"]["verdict"], "interrupted")
        self.assertEqual(by["pass"]["status"], "pending")
        self.assertEqual(run["summary"]["counts"]["not_run"], 1)

    def test_sigint_leaves_no_process(self) -> None:
        proc, run_dir = self.hang_until_child()
        self.check_nothing_left(proc, run_dir, signal.SIGINT)

    def test_sigterm_leaves_no_process(self) -> None:
        proc, run_dir = self.hang_until_child()
        self.check_nothing_left(proc, run_dir, signal.SIGTERM)

    def test_sigkill_running_instance_is_interrupted_not_lost(self) -> None:
        proc, run_dir = self.hang_until_child()
        self.wait_done(run_dir, 0)
        proc.kill()
        proc.communicate(timeout=30)
        self.assertEqual(self.load(run_dir)["status"], "running")
        rep = self.kvmfpu("report", str(run_dir))
        self.assertEqual(rep.returncode, 2, rep.stdout + rep.stderr)
        run = self.load(run_dir)
        self.assertEqual(run["status"], "aborted")
        counts_add_up(self, run)
        by = {e["variant"]: e for e in run["instances"]}
        self.assertEqual(by["hang"]["verdict"], "interrupted")
        self.assertIn("runner died", by["hang"]["diagnostics"][0])
        # what the killed runner left running, report killed (the instance's mark)
        self.assertEqual(processes_with(str(self.root)), [])

    @unittest.skipIf(shutil.which("parallel") is None, "GNU parallel not installed")
    def test_sigint_through_gnu_parallel_leaves_no_process(self) -> None:
        proc, run_dir = self.hang_until_child("--via", "parallel")
        self.check_nothing_left(proc, run_dir, signal.SIGINT)

    @unittest.skipIf(shutil.which("parallel") is None, "GNU parallel not installed")
    def test_sigint_through_gnu_parallel(self) -> None:
        self.slow_profile()
        proc, run_dir = self.start("slow", "--via", "parallel")
        self.wait_done(run_dir, 2)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2)
        self.check_cut_short(run_dir, "SIGINT")
        self.assertTrue((run_dir / "parallel.joblog").is_file())
