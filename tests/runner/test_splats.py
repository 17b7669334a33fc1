"""One splat rule: the host watcher, the remote-host grep and the lab reader agree on it."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from runner import kmsg, splats

# (line, kind or None). Each splat line starts a kernel bug report; each other line is
# something a kernel prints that merely looks alarming.
CANNED = [
    ("WARNING: CPU: 1 PID: 42 at arch/x86/kvm/x86.c:11234 kvm_arch_vcpu_ioctl_run+0x1a/0x20",
     "warning"),
    ("WARNING: at arch/x86/kernel/fpu/xstate.c:1234 xfd_validate_state+0x5a/0x70", "warning"),
    ("WARNING: possible circular locking dependency detected", "lockdep"),
    ("WARNING: suspicious RCU usage", "lockdep"),
    ("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", "lockdep"),
    ("BUG: KASAN: slab-out-of-bounds in copy_uabi_to_xstate+0x1b2/0x2f0", "kasan"),
    ("UBSAN: shift-out-of-bounds in arch/x86/kvm/cpuid.c:123:45", "ubsan"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008", "bug"),
    ("BUG: sleeping function called from invalid context at mm/slab.c:1", "bug"),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kvmfpu_swap_tes:160]", "bug"),
    ("kernel BUG at arch/x86/kvm/mmu/mmu.c:1234!", "bug"),
    ("Oops: general protection fault, probably for non-canonical address 0xdead: 0000",
     "oops"),
    ("traps: kvmfpu_swap_tes[160] general protection fault ip:4011 sp:7ffd error:0", "oops"),
    ("Kernel panic - not syncing: Fatal exception", "panic"),
    ("x86/fpu: Supporting XSAVE feature 0x002: 'SSE registers'", None),
    ("x86/fpu: Enabled xstate features 0x2e7, context size is 2440 bytes, using 'standard' "
     "format.", None),
    ("KASAN: initialized", None),
    ("kvm_amd: Nested Virtualization enabled", None),
    ("BUGS: none", None),
    ("DEBUGBUG: not a bug", None),
    ("WARNING", None),
    ("Oopsie", None),
]


def splat_lines_by_watcher(lines: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="kvmfpu-splats-") as tmp:
        path = Path(tmp) / "kmsg"
        path.write_text("")
        w = kmsg.Watcher(str(path), lambda: ["inst"])
        w.start()
        with open(path, "a") as f:
            for n, line in enumerate(lines):
                f.write(f"4,{n},{n},-;{line}\n")
        w.stop()
        return [s.line for s in w.splats]


def splat_lines_by_grep(lines: list[str]) -> list[str]:
    """What a remote job's `dmesg | grep -E SPLAT_ERE` keeps (gnuparallel.job_line)."""
    proc = subprocess.run(["grep", "-E", kmsg.SPLAT_ERE], input="".join(
        f"[   12.000000] {line}\n" for line in lines), capture_output=True, text=True)
    return [splats.strip_time(line) for line in proc.stdout.splitlines()]


class OneRule(unittest.TestCase):
    def test_each_canned_line(self) -> None:
        for line, kind in CANNED:
            with self.subTest(line=line):
                self.assertEqual(splats.start_kind(f"[    3.5] {line}"), kind)

    def test_host_watcher_agrees(self) -> None:
        lines = [line for line, _ in CANNED]
        want = [line for line, kind in CANNED if kind]
        self.assertEqual(splat_lines_by_watcher(lines), want)

    def test_lab_reader_agrees(self) -> None:
        """Each line alone: the lab finds a splat exactly where the host does."""
        for line, kind in CANNED:
            with self.subTest(line=line):
                found = splats.find([f"[    3.5] {line}"])
                self.assertEqual([s.kind for s in found], [kind] if kind else [])
                self.assertEqual(bool(found), bool(splat_lines_by_watcher([line])))

    @unittest.skipUnless(shutil.which("grep"), "no grep")
    def test_remote_grep_agrees(self) -> None:
        lines = [line for line, _ in CANNED]
        self.assertEqual(splat_lines_by_grep(lines), [line for line, kind in CANNED if kind])


if __name__ == "__main__":
    unittest.main()
