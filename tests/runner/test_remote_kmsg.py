"""Remote hosts' kernel logs: each GNU parallel job reports its host's new splat lines."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runner import gnuparallel, runstate
from runner.evaluate import Outcome
from runner.plan import Instance
from tests.runner.helpers import TempTree

PROGRAM = """#!/bin/sh
echo "TAP version 13"; echo "1..1"; echo "ok 1 fake.pass.a"
echo "[  12.500000] WARNING: CPU: 0 PID: 1 at arch/x86/kvm/x86.c:1 kvm_x" >> "$KLOG"
echo "[  12.600000] harmless line" >> "$KLOG"
"""
DMESG_OK = '#!/bin/sh\ncat "$KLOG"\n'
DMESG_DENIED = '#!/bin/sh\necho "dmesg: read kernel buffer failed: Operation not permitted" >&2\nexit 1\n'


class RemoteKernelLog(TempTree):
    def job(self, dmesg: str) -> tuple[Instance, str]:
        fake_bin = self.root / "fakebin"
        fake_bin.mkdir(exist_ok=True)
        for name, text in (("dmesg", dmesg), ("prog", PROGRAM)):
            (fake_bin / name).write_text(text)
            (fake_bin / name).chmod(0o755)
        klog = self.root / "klog"
        klog.write_text("[   1.000000] WARNING: an old splat, before the job\n"
                        "[   2.000000] last line before the job\n")
        inst = Instance(id="prog.pass", program="prog", args=[], variant="pass", tests=[],
                        params={}, timeout=10)
        line = gnuparallel.job_line(inst, fake_bin, watch_kernel_log=True)
        env = dict(os.environ, KLOG=str(klog), PATH=f"{fake_bin}:{os.environ['PATH']}")
        proc = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env,
                              timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return inst, proc.stdout

    def record(self, inst: Instance, output: str) -> runstate.Run:
        run = runstate.new_run("r", "p", "", {"kernel": "k"}, [inst], "/b", {}, {})
        run.kernel_log["remote_hosts"] = {"root@h:22": "not reached yet"}
        runstate.record_finish(run, inst, Outcome(returncode=0, host="root@h:22"), output)
        return run

    def test_new_splat_is_reported_and_attributed(self) -> None:
        inst, out = self.job(DMESG_OK)
        self.assertIn("# kvmfpu-kmsg: [  12.500000] WARNING: CPU: 0 PID: 1", out)
        self.assertNotIn("an old splat", out)
        self.assertNotIn("harmless", out)
        run = self.record(inst, out)
        kl = run.kernel_log
        self.assertEqual([s["line"][:24] for s in kl["splats"]], ["[  12.500000] WARNING: C"])
        self.assertEqual(kl["splats"][0]["host"], "root@h:22")
        self.assertEqual(run.instances["prog.pass"].verdict, "fail")
        self.assertTrue(kl["remote_hosts"]["root@h:22"].startswith("watched"))
        self.assertEqual(kl["unwatched_hosts"], [])

    def test_unreadable_remote_log_is_said(self) -> None:
        inst, out = self.job(DMESG_DENIED)
        self.assertIn("# kvmfpu-kmsg_unreadable: host=", out)
        run = self.record(inst, out)
        self.assertEqual(run.instances["prog.pass"].verdict, "pass")
        self.assertTrue(run.kernel_log["remote_hosts"]["root@h:22"].startswith("unreadable"))
        self.assertEqual(run.kernel_log["unwatched_hosts"], ["root@h:22"])

    def test_local_jobs_are_not_wrapped(self) -> None:
        inst = Instance(id="x", program="p", args=["-v", "a"], variant="a", tests=[],
                        params={}, timeout=5)
        self.assertEqual(gnuparallel.job_line(inst, Path("/b")), "timeout -k 2 5 /b/p -v a 2>&1")
