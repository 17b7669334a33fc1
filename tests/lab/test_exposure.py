"""A running lab listens on no port of the host: the emulators are started with the command
line the labs use (bochs.prepare, qemu.command) and the host network namespace's socket
tables are read while they run.

Bochs' rfb display is an unauthenticated VNC server (console and keyboard of the kernel under
test) on port 5900 of every interface; the lab must keep it in a network namespace of its own.
These tests need the emulators installed and skip, naming what is missing, when they are not.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from runner import cli
from runner.lab import bochs, labs, qemu, run

TABLES = ("tcp", "tcp6", "udp", "udp6")
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
SOCKET = re.compile(r"socket:\[(\d+)\]")
STARTUP = 30.0  # seconds Bochs gets to open its display (a loaded 2-core machine)


def tree(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def socket_inodes(pids: list[int]) -> set[str]:
    out = set()
    for p in pids:
        try:
            for fd in Path(f"/proc/{p}/fd").iterdir():
                m = SOCKET.fullmatch(os.readlink(fd))
                if m:
                    out.add(m.group(1))
        except OSError:
            continue
    return out


def listening(net: Path) -> dict[str, str]:
    """inode -> "table local-address" of every listening TCP or bound, unconnected UDP socket
    in the network namespace whose /proc/<pid>/net is `net`."""
    out = {}
    for table in TABLES:
        try:
            lines = (net / table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for ln in lines:
            f = ln.split()
            state = TCP_LISTEN if table.startswith("tcp") else UDP_UNCONNECTED
            if f[3] == state:
                out[f[9]] = f"{table} {f[1]}"
    return out


def own_listening(pid: int) -> dict[str, str]:
    """The listening sockets of pid's process tree, in pid's network namespace."""
    pids = tree(pid)
    mine = socket_inodes(pids)
    return {i: a for i, a in listening(Path(f"/proc/{pid}/net")).items() if i in mine}


def exposed(pid: int) -> dict[str, str]:
    """The sockets of pid's process tree that listen in the host's (this test's) namespace."""
    host = listening(Path("/proc/self/net"))
    return {i: host[i] for i in socket_inodes(tree(pid)) if i in host}


class Emulator:
    """An emulator process group, killed when the test ends."""

    def __init__(self, case: unittest.TestCase, cmd: list[str], cwd: Path):
        with open(cwd / "emulator.log", "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        case.addCleanup(self.stop)
        self.cwd = cwd

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def alive(self, case: unittest.TestCase) -> None:
        if self.proc.poll() is not None:
            case.fail(f"the emulator exited ({self.proc.returncode}): "
                      f"{(self.cwd / 'emulator.log').read_text(errors='replace')[-2000:]}")


class BochsExposureTest(unittest.TestCase):
    def setUp(self):
        why = bochs.available()
        if why:
            self.skipTest(f"bochs lab cannot run here: {why}")
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        self.dir = Path(d.name)

    def test_running_bochs_listens_on_no_host_port(self):
        lab = labs.load("bochs")
        kernel, initrd = self.dir / "vmlinuz", self.dir / "initrd.img"
        kernel.write_bytes(b"not a kernel: only the display matters here\n")
        initrd.write_bytes(b"\0" * 512)
        cmd, cwd = bochs.prepare(lab, kernel, initrd, self.dir / "console.log",
                                 self.dir / "channel.log", self.dir)
        emu = Emulator(self, cmd, cwd)
        # Wait for the rfb display to listen in Bochs' own namespace: without it the check
        # below would pass on a Bochs that had not opened its display yet.
        deadline = time.monotonic() + STARTUP
        while True:
            emu.alive(self)
            own = own_listening(emu.proc.pid)
            if own:
                break
            if time.monotonic() > deadline:
                self.fail(f"Bochs opened no listening socket in {STARTUP:.0f} s: its rfb "
                          "display is gone, so this test no longer observes anything")
            time.sleep(0.2)
        self.assertIn(":170C", " ".join(own.values()), f"rfb is not on port 5900: {own}")
        self.assertEqual(exposed(emu.proc.pid), {},
                         "Bochs listens in the host's network namespace: anyone who reaches "
                         "this machine can watch and type into the lab's console")

    def test_two_bochs_run_side_by_side_each_on_its_own_5900(self):
        lab = labs.load("bochs")
        emus = []
        for n in (1, 2):
            d = self.dir / str(n)
            d.mkdir()
            kernel, initrd = d / "vmlinuz", d / "initrd.img"
            kernel.write_bytes(b"not a kernel\n")
            initrd.write_bytes(b"\0" * 512)
            cmd, cwd = bochs.prepare(lab, kernel, initrd, d / "console.log",
                                     d / "channel.log", d)
            emus.append(Emulator(self, cmd, cwd))
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            for e in emus:
                e.alive(self)
            if all(own_listening(e.proc.pid) for e in emus):
                break
            time.sleep(0.2)
        else:
            self.fail("the two Bochs did not both open their display")
        time.sleep(1)
        for e in emus:
            e.alive(self)
            # In one namespace the second Bochs' rfb moves on to 5901 (0x170D).
            ports = " ".join(own_listening(e.proc.pid).values())
            self.assertIn(":170C", ports, "not on port 5900 in a namespace of its own")


class BochsRefusedWithoutNamespaceTest(unittest.TestCase):
    """No network namespace, no Bochs lab: one line, exit 2, never an exposed display."""

    def setUp(self):
        saved = bochs.UNSHARE
        bochs.UNSHARE = "/nonexistent/unshare"
        self.addCleanup(setattr, bochs, "UNSHARE", saved)

    def test_isolation_problem_says_why(self):
        why = bochs.isolation_problem()
        self.assertIsNotNone(why)
        self.assertNotIn("\n", why)
        self.assertIn("network namespace", why)
        self.assertIn("5900", why)

    def test_preflight_refuses(self):
        saved = bochs.available
        bochs.available = lambda: bochs.isolation_problem()  # tools present or not
        self.addCleanup(setattr, bochs, "available", saved)
        with self.assertRaisesRegex(run.LabError, "network namespace"):
            run.preflight(labs.load("bochs"))

    def test_lab_command_exits_2_before_booting(self):
        import contextlib
        import io
        saved = bochs.available
        bochs.available = lambda: bochs.isolation_problem()
        self.addCleanup(setattr, bochs, "available", saved)
        err = io.StringIO()
        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            (Path(d) / "kvmfpu_swap_test").write_bytes(b"")
            rc = cli.main(["lab", "--lab", "bochs", "--test", "kvmfpu_swap_test",
                           "--bin-dir", d, "--results", str(Path(d) / "r"), "-q"])
            self.assertFalse((Path(d) / "r").exists())
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.getvalue().strip().splitlines()), 1, err.getvalue())
        self.assertIn("network namespace", err.getvalue())


class QemuExposureTest(unittest.TestCase):
    def test_running_qemu_listens_on_no_host_port(self):
        why = qemu.available()
        if why:
            self.skipTest(f"tcg lab cannot run here: {why}")
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            cmd = qemu.command(labs.load("tcg"), d / "vmlinuz", d / "initrd.img",
                               d / "console.log", d / "channel.log")
            # The sockets QEMU opens do not depend on the kernel it boots: leave it out, and
            # keep the (firmware-only) guest stopped (-S).
            for opt in ("-kernel", "-initrd", "-append"):
                i = cmd.index(opt)
                del cmd[i:i + 2]
            emu = Emulator(self, cmd + ["-S"], d)
            deadline = time.monotonic() + STARTUP
            while not (d / "channel.log").exists():  # the last device QEMU sets up
                emu.alive(self)
                if time.monotonic() > deadline:
                    self.fail("QEMU did not open its serial files")
                time.sleep(0.1)
            time.sleep(1)
            emu.alive(self)
            self.assertEqual(exposed(emu.proc.pid), {},
                             "QEMU listens in the host's network namespace")

if __name__ == "__main__":
    unittest.main()
