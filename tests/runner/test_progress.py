"""What a person watching a run sees: progress of long instances, an honest summary."""
from __future__ import annotations

import io
import time
import unittest
from typing import Any

from runner import artifacts, runstate, run as runmod
from runner.evaluate import Outcome
from runner.plan import Instance


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Progress(unittest.TestCase):
    def test_long_instance_shows_elapsed_and_timeout(self) -> None:
        for stream, interval in ((Tty(), runmod.Progress.TICK_TTY),
                                 (io.StringIO(), runmod.Progress.TICK_LOG)):
            self.assertLessEqual(interval, 10)      # never silence for long
            p = runmod.Progress(3, stream)
            p.start("prog.stress", 120)
            p.running["prog.stress"] -= 42          # started 42 s ago
            p.start("prog.other", 60)
            p.shown -= interval + 0.1
            p.tick()
            out = stream.getvalue()
            self.assertIn("running prog.stress 42 s of 120 s (+1 more)", out)
            self.assertIn("[0/3 instances]", out)
            before = stream.getvalue()
            p.tick()                                # not again right away
            self.assertEqual(stream.getvalue(), before)


def _run(reasons: int) -> dict[str, Any]:
    insts = [Instance(id=f"p.v{i}", program="p", args=[], variant=f"v{i}", tests=[],
                      params={}, timeout=5) for i in range(reasons)]
    run = runstate.new_run("r", "ci", "", {"kernel": "k", "tier": "host"}, insts, "/b", {}, {})
    for i, inst in enumerate(insts):
        log = (f"TAP version 13\n1..2\nok 1 f.v{i}.a # SKIP reason number {i}\n"
               f"ok 2 f.v{i}.b\n")
        runstate.record_finish(run, inst, Outcome(returncode=0, duration=0.1), log)
    run["summary"] = runstate.summarize(run)
    return run


class Summary(unittest.TestCase):
    def test_says_what_it_counts(self) -> None:
        text = artifacts.summary_text(_run(2))
        self.assertIn("2 instance(s): pass 2", text)
        self.assertIn("tests in those instances: pass 2, skip 2", text)

    def test_every_skip_reason_or_how_many_more(self) -> None:
        text = artifacts.summary_text(_run(4))
        for i in range(4):
            self.assertIn(f"skipped test 1x: reason number {i}", text)
        text = artifacts.summary_text(_run(13))
        shown = [ln for ln in text.splitlines() if ln.startswith("skipped test")]
        self.assertEqual(len(shown), artifacts.SKIP_REASONS_SHOWN)
        self.assertIn(f"... {13 - artifacts.SKIP_REASONS_SHOWN} more skip reason(s) "
                      f"({13 - artifacts.SKIP_REASONS_SHOWN} skipped test(s)): see report.html",
                      text)


if __name__ == "__main__":
    unittest.main()
