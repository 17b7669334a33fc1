"""Verdict integrity of the C programs' harness layer (lib/kvmfpu_harness.h, lib/options.c).

kvmfpu_verdict_fixture (tests/verdicts/) has one test per way a test can end: pass, skip,
kvmfpu_fail(), kvmfpu_error() and one that never ends. No KVM is needed. The cases here are
the ways a verdict lied before: a failure after skips read as a skip, an error as exit 4, a
selection that matches nothing as a pass, a bad option as the harness's exit 1, and a test
process that survived a Ctrl-C of its program.
"""
import os
import re
import select
import signal
import subprocess
import time
import unittest
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
BIN = TOP / "out" / "bin"
FIXTURE = BIN / "kvmfpu_verdict_fixture"
EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_SKIP = 0, 1, 2, 4


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def results(stdout: str) -> list[str]:
    """The KTAP result lines, e.g. 'not ok 2 verdict.fail'. 6.1's harness leaves the test's
    name out of a skip's line ('ok 1 # SKIP why'); it is put back from the RUN line."""
    out, running = [], ""
    for line in stdout.splitlines():
        m = re.match(r"#\s+RUN\s+(\S+) \.\.\.", line)
        if m:
            running = m.group(1)
        elif re.match(r"(not )?ok \d+ ", line):
            out.append(re.sub(r"^(ok \d+) # SKIP", rf"\1 {running} # SKIP", line))
    return out


@unittest.skipUnless(FIXTURE.exists(), f"{FIXTURE} not built (run make)")
class Verdicts(unittest.TestCase):
    def verdict(self, tests: list[str]) -> subprocess.CompletedProcess:
        args = [str(FIXTURE)]
        for t in tests:
            args += ["-r", f"verdict.{t}"]
        return run(args)

    def test_fail_after_skip_is_a_failure(self) -> None:
        p = self.verdict(["skip", "fail"])
        self.assertEqual(results(p.stdout), ["ok 1 verdict.skip # SKIP skipped on purpose",
                                             "not ok 2 verdict.fail"], p.stdout)
        self.assertEqual(p.returncode, EXIT_FAIL, p.stdout)

    def test_failure_prints_the_replay_it_named(self) -> None:
        """kvmfpu_fail() prints the replay line a test named once (KVMFPU_REPLAY_NAME(), a
        program without --seed), before its message, and that line reruns exactly it."""
        p = self.verdict(["fail_replayed"])
        self.assertIn("# kvmfpu-replay: args=-r verdict.fail_replayed\n"
                      "# failed on purpose, replay named\n", p.stdout)
        self.assertEqual(p.returncode, EXIT_FAIL, p.stdout)
        again = run([str(FIXTURE), "-r", "verdict.fail_replayed"])
        self.assertEqual(results(again.stdout), ["not ok 1 verdict.fail_replayed"],
                         again.stdout)

    def test_error_after_skip_is_an_error(self) -> None:
        p = self.verdict(["skip", "error"])
        self.assertIn("# kvmfpu-error: msg=an environment error on purpose", p.stdout)
        self.assertEqual(results(p.stdout)[1], "not ok 2 verdict.error", p.stdout)
        self.assertEqual(p.returncode, EXIT_ERROR, p.stdout)

    def test_error_outranks_a_failure(self) -> None:
        p = self.verdict(["skip", "fail", "error", "pass"])
        self.assertEqual(p.returncode, EXIT_ERROR, p.stdout)

    def test_every_later_failure_counts(self) -> None:
        p = self.verdict(["skip", "fail", "fail_again"])
        self.assertEqual([l.split()[0] for l in results(p.stdout)], ["ok", "not", "not"],
                         p.stdout)
        self.assertIn("# Totals: pass:0 fail:2 ", p.stdout)
        self.assertEqual(p.returncode, EXIT_FAIL, p.stdout)

    def test_all_skipped_is_exit_4(self) -> None:
        p = self.verdict(["skip"])
        self.assertEqual(p.returncode, EXIT_SKIP, p.stdout)

    def test_no_body_after_a_setup_skip(self) -> None:
        """KVMFPU_TEST_F() on 6.1's harness, which runs the body after a skipped setup."""
        p = run([str(FIXTURE), "-r", "setup_skip.body"])
        self.assertNotIn("the body ran", p.stdout)
        self.assertEqual(results(p.stdout),
                         ["ok 1 setup_skip.body # SKIP setup skipped on purpose"], p.stdout)
        self.assertEqual(p.returncode, EXIT_SKIP, p.stdout)

    def test_pass_and_skip_is_a_pass(self) -> None:
        p = self.verdict(["pass", "skip"])
        self.assertEqual(results(p.stdout), ["ok 1 verdict.pass",
                                             "ok 2 verdict.skip # SKIP skipped on purpose"])
        self.assertEqual(p.returncode, EXIT_PASS, p.stdout)


def refused(test: unittest.TestCase, args: list[str], words: str) -> None:
    p = run(args)
    test.assertEqual(p.returncode, EXIT_ERROR, f"{args}: exit {p.returncode}\n{p.stdout}")
    lines = p.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, f"{args}: want one line on stderr, got {lines}")
    test.assertIn(words, lines[0], f"{args}: {lines[0]!r} does not say {words!r}")
    test.assertNotIn("ok ", p.stdout, f"{args}: tests ran anyway:\n{p.stdout}")


@unittest.skipUnless(FIXTURE.exists(), f"{FIXTURE} not built (run make)")
class Selection(unittest.TestCase):
    """Each include option must match a test: a mistyped replay command is not a pass."""

    def test_patterns_that_match_nothing(self) -> None:
        for args, words in [(["-r", "verdict.nope"], "-r verdict.nope matches no test"),
                            (["-t", "nope"], "-t nope matches no test"),
                            (["-f", "nope"], "-f nope matches no test"),
                            (["-v", "nope"], "-v nope matches no test"),
                            (["-r", "verdict.pass", "-r", "verdict.pas"],
                             "-r verdict.pas matches no test")]:
            with self.subTest(args=args):
                refused(self, [str(FIXTURE), *args], words)

    def test_excluding_everything(self) -> None:
        refused(self, [str(FIXTURE), "-F", "verdict", "-F", "setup_skip"],
                "the options select no test")

    def test_the_swap_replay_of_a_mistyped_test(self) -> None:
        refused(self, [str(BIN / "kvmfpu_swap_test"), "-r", "swap.nope.guest_image"],
                "-r swap.nope.guest_image matches no test")

    def test_exclusion_after_inclusion(self) -> None:
        p = run([str(FIXTURE), "-l", "-T", "hang", "-f", "verdict"])
        self.assertEqual(p.returncode, EXIT_PASS, p.stderr)


@unittest.skipUnless(FIXTURE.exists(), f"{FIXTURE} not built (run make)")
class Options(unittest.TestCase):
    def test_unknown_options(self) -> None:
        swap, stress = str(BIN / "kvmfpu_swap_test"), str(BIN / "kvmfpu_swap_stress_test")
        for args, words in [([swap, "--nope"], "unknown option --nope"),
                            ([swap, "-x"], "unknown option -x"),
                            ([swap, "--seed=5x"], "--seed: '5x' is not a number"),
                            ([stress, "--duration", "0.0001"],
                             "--duration: '0.0001' is not a number of seconds (to the ms)"),
                            ([stress, "--duration=1e3"], "'1e3' is not a number of seconds"),
                            ([stress, "--duration=0"], "--duration must be from 0.001 to"),
                            ([swap, "stray"], "unexpected argument 'stray'"),
                            ([swap, "-r"], "-r needs a value"),
                            ([str(BIN / "kvmfpu_xsave_uabi_test"), "--xcr0", "0x7"],
                             "kvmfpu_xsave_uabi_test takes no --xcr0"),
                            ([str(BIN / "kvmfpu_amx_test"), "--rounds", "2"],
                             "kvmfpu_amx_test takes no --rounds")]:
            with self.subTest(args=args[1:]):
                refused(self, args, words)

    def test_duration_in_seconds_to_the_ms(self) -> None:
        """--duration takes seconds with up to 3 decimals; what it cannot hold exactly, or
        outside 1 ms to a day, is refused in one line (exit 2), never rounded."""
        stress = str(BIN / "kvmfpu_swap_stress_test")
        for value in ("0.1", ".5", "5.", "0.2500", "86400", "0.001"):
            with self.subTest(value=value):
                p = run([stress, "--duration", value, "-l"])
                self.assertEqual(p.returncode, EXIT_PASS, p.stderr)
        for value in ("", ".", "-1", "0", "0.0005", "86400.001", "1,5", "1e2", "0x10"):
            with self.subTest(value=value):
                refused(self, [stress, f"--duration={value}"], "--duration")

    def test_gnu_style_value(self) -> None:
        p = run([str(FIXTURE), "--seed=0x5", "-r", "verdict.pass"])
        self.assertEqual(p.returncode, EXIT_PASS, p.stdout + p.stderr)
        self.assertIn("# kvmfpu-seed: pattern_seed=0x5", p.stdout)

    def test_help_lists_each_programs_own_options(self) -> None:
        for prog, own in [("kvmfpu_swap_test", ["--seed", "--rounds", "--round", "--xcr0"]),
                          ("kvmfpu_xsave_uabi_test", ["--seed", "--rounds"]),
                          ("kvmfpu_swap_stress_test",
                           ["--seed", "--vcpus", "--duration", "--cpu", "--round",
                            "--allow-hotplug"]),
                          ("kvmfpu_amx_test", ["--seed"]),
                          ("kvmfpu_xfd_test", ["--seed", "--allow-hotplug"]),
                          ("kvmfpu_xcr0_test", [])]:
            with self.subTest(prog=prog):
                p = run([str(BIN / prog), "-h"])
                self.assertEqual(p.returncode, EXIT_PASS, p.stderr)
                listed = re.findall(r"^  (--[a-z0-9-]+)", p.stdout, re.M)
                self.assertEqual(listed, own, p.stdout)
                for opt in ("-l", "-r", "-f", "-F", "-v", "-V", "-t", "-T"):
                    self.assertRegex(p.stdout, rf"(?m)^  {opt} ", f"{prog} -h lacks {opt}")


def alive(pid: int) -> bool:
    """A process that still exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@unittest.skipUnless(FIXTURE.exists(), f"{FIXTURE} not built (run make)")
class Interrupt(unittest.TestCase):
    """A Ctrl-C reaches only the program's own process group; its test runs in another."""

    def interrupted(self, sig: int) -> None:
        p = subprocess.Popen([str(FIXTURE), "-r", "verdict.hang"], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        pids: list[int] = []
        try:
            deadline = time.monotonic() + 20
            while not pids and time.monotonic() < deadline:
                select.select([p.stdout], [], [], 1)
                line = p.stdout.readline()
                m = re.match(r"# kvmfpu-verdict-hang: test=(\d+) grandchild=(\d+)", line)
                if m:
                    pids = [int(m.group(1)), int(m.group(2))]
            self.assertTrue(pids, "the hanging test never started")
            os.kill(p.pid, sig)   # the terminal's SIGINT goes to the foreground group only
            p.wait(timeout=10)
            deadline = time.monotonic() + 3
            while any(alive(x) for x in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual([x for x in pids if alive(x)], [],
                             f"left running after {signal.Signals(sig).name}")
        finally:
            for x in pids:
                if alive(x):
                    os.kill(x, signal.SIGKILL)
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_sigint_stops_the_test(self) -> None:
        self.interrupted(signal.SIGINT)

    def test_sigterm_stops_the_test(self) -> None:
        self.interrupted(signal.SIGTERM)


if __name__ == "__main__":
    unittest.main()
