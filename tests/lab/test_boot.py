"""Emulator supervision (runner/lab/boot.py) with stand-in emulators: shell scripts that write
the two serial files the way a guest would, then hang or exit."""
from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

from unittest import mock

from runner.lab import boot, protocol

P = protocol.PREFIX


class SuperviseTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.console, self.channel = self.dir / "console.log", self.dir / "channel.log"

    def tearDown(self):
        self.tmp.cleanup()

    def supervise(self, script: str, boot_timeout=2.0, wall_timeout=20.0):
        cmd = ["sh", "-c", script, "emu", str(self.console), str(self.channel)]
        t0 = time.monotonic()
        r = boot.run(cmd, self.dir, self.console, self.channel, boot_timeout, wall_timeout,
                     poll=0.05)
        return r, time.monotonic() - t0

    def test_boot_hang_is_killed_after_the_boot_timeout(self):
        r, took = self.supervise('echo "[ 0.1] Booting" > "$1"; exec sleep 60', 0.5)
        self.assertEqual(r.how, "boot-timeout")
        self.assertLess(took, 10)
        self.assertIn("Booting", r.console)

    def test_no_process_of_the_emulator_survives(self):
        """An emulator's child in a session of its own (setsid) dies with the emulator, on a
        watchdog kill and when the emulator exits by itself."""
        for tail, how in (("exec sleep 60", "boot-timeout"), ("exit 0", "exited")):
            pid_file = self.dir / "grandchild.pid"
            pid_file.unlink(missing_ok=True)
            script = (f'setsid sh -c \'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60\' '
                      f'"{pid_file}" & while [ ! -e "{pid_file}" ]; do sleep 0.05; done; {tail}')
            r, _ = self.supervise(script, 0.5)
            self.assertEqual(r.how, how)
            pid = int(pid_file.read_text())
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                state = "gone"
            self.assertEqual(state, "gone", f"{how}: the emulator's setsid child survived")

    def test_a_test_that_hangs_the_guest_is_killed(self):
        script = (f'echo "{P} begin kernel=k lab=tcg" > "$2"; '
                  f'echo "{P} test-begin name=t timeout=0 uptime=1" >> "$2"; exec sleep 60')
        with mock.patch.object(boot, "TEST_SLACK", 0.5):
            r, took = self.supervise(script)
        self.assertEqual(r.how, "test-timeout")
        self.assertLess(took, 10)

    def test_a_guest_stuck_after_an_oops_is_stopped_before_the_test_watchdog(self):
        """The mutation runs' case: the kernel oopsed under a program with interrupts off, and
        the guest said nothing more; waiting out timeout x 3 + 30 s per boot cost 6.5 min."""
        begin = f"{P} test-begin name=t timeout=100 uptime=1"
        script = (f'echo "{P} begin kernel=k lab=tcg" > "$2"; echo "{begin}" >> "$2"; '
                  f'echo "{begin}" > "$1"; '
                  'echo "[ 2.0] Oops: general protection fault, probably for non-canonical '
                  'address" >> "$1"; exec sleep 60')
        with mock.patch.object(boot, "STALL_AFTER_OOPS", 0.5):
            r, took = self.supervise(script)
        self.assertEqual(r.how, "stalled-after-oops")
        self.assertLess(took, 10)

    def test_a_warning_or_a_talking_guest_is_not_stalled(self):
        """A WARNING is survivable, and a guest still printing after an Oops is not stuck:
        both run into the ordinary test watchdog instead."""
        begin = f"{P} test-begin name=t timeout=0 uptime=1"
        for splat, keep_talking in (("WARNING: CPU: 0 PID: 1 at x.c:1 f", False),
                                    ("Oops: 0000 [#1] SMP", True)):
            talk = 'while :; do echo . >> "$2"; sleep 0.1; done' if keep_talking else "exec sleep 60"
            script = (f'echo "{P} begin kernel=k lab=tcg" > "$2"; echo "{begin}" >> "$2"; '
                      f'echo "{begin}" > "$1"; echo "[ 2.0] {splat}" >> "$1"; {talk}')
            with mock.patch.object(boot, "STALL_AFTER_OOPS", 0.3), \
                    mock.patch.object(boot, "TEST_SLACK", 1.5):
                r, _ = self.supervise(script)
            self.assertEqual(r.how, "test-timeout", splat)

    def test_done_then_power_off(self):
        script = (f'echo "{P} begin kernel=k lab=tcg" > "$2"; echo "{P} done" >> "$2"; '
                  'echo "[ 3.0] reboot: Power down" > "$1"; exec sleep 60')
        r, took = self.supervise(script)
        self.assertEqual(r.how, "done")
        self.assertLess(took, boot.GRACE)  # did not wait for the emulator to exit by itself

    def test_emulator_that_exits(self):
        r, _ = self.supervise('echo "qemu: could not open kernel file" >&2; exit 1')
        self.assertEqual((r.how, r.returncode), ("exited", 1))
        self.assertIn("could not open kernel file", r.emulator_log)

    def test_panic_is_seen_on_the_console(self):
        old, boot.GRACE = boot.GRACE, 0.3   # qemu exits on its own (-no-reboot); bochs may not
        try:
            r, _ = self.supervise('echo "[ 1.0] Kernel panic - not syncing: VFS" > "$1"; '
                                  'exec sleep 60')
        finally:
            boot.GRACE = old
        self.assertEqual(r.how, "panic")
        self.assertIsNotNone(r.returncode)  # killed, and reaped


if __name__ == "__main__":
    unittest.main()
