"""The identity of a lab's kernel under test (run.json `hosts["lab-<name>"]`), mapped from
what the guest reports, and the commit a tree-built kernel came from."""
from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path

from runner.lab import run
from runner.lab.kernel import Kernel
from tests.lab.test_judge import DATA, judge


class LabIdentity(unittest.TestCase):
    def test_tcg_guest_report_becomes_the_identity(self):
        j = judge((DATA / "tcg_pass.channel").read_text(),
                  (DATA / "tcg_pass.console").read_text())
        with tempfile.TemporaryDirectory() as d:
            boot = Path(d) / "boot"
            boot.mkdir()
            (boot / "config-6.12.117+deb12-amd64").write_text(
                "CONFIG_KVM=m\nCONFIG_KASAN=y\n# CONFIG_UBSAN is not set\nCONFIG_X86_DEBUG_FPU=y\n")
            kernel = Kernel(boot / "vmlinuz-6.12.117+deb12-amd64", None,
                            "6.12.117+deb12-amd64", "debian:linux-image-6.12.117")
            ident = run.identity(j.run, j.info, kernel, {})
        self.assertEqual(ident["tier"], "lab-tcg")
        self.assertEqual(ident["kernel"]["release"], "6.12.117+deb12-amd64")
        self.assertRegex(ident["kernel"]["config_sha256"], "^[0-9a-f]{64}$")
        self.assertEqual(ident["kernel"]["debug"], ["KASAN", "X86_DEBUG_FPU"])
        self.assertEqual(ident["cpu"]["model_name"], "QEMU TCG CPU version 2.5+")
        self.assertIn("avx", ident["cpu"]["fpu_features"])
        kvm = ident["kvm"]
        self.assertEqual(kvm["module"], "kvm_amd")
        self.assertEqual(kvm["params"], {"kvm_amd.nested": "1"})
        self.assertEqual(kvm["supported_xcr0"], "0x207")       # as the tests reported it
        # what the guest does not report is null, and says so; never a guess
        for key in ("supported_xss", "cap_xsave2"):
            self.assertIsNone(kvm[key])
            self.assertTrue(kvm[f"{key}_why"])
        self.assertIsNone(ident["cpu"]["microcode"])
        self.assertIsNone(ident["hostname"])

    def test_planning_xcr0_is_not_reported_as_kvms(self):
        """A guest whose tests never ran: configs/labs' XCR0 is for planning, not KVM's."""
        j = judge("")
        ident = run.identity(j.run, j.info, Kernel(Path("/nonexistent/bzImage")), {})
        self.assertIsNone(ident["kvm"]["supported_xcr0"])
        self.assertIsNone(ident["kernel"]["config_sha256"])
        self.assertTrue(ident["kernel"]["config_sha256_why"])

    def test_tree_commit(self):
        with tempfile.TemporaryDirectory() as d:
            tree = Path(d)
            git = ["git", "-C", d, "-c", "user.name=t", "-c", "user.email=t@t"]
            subprocess.run(git + ["init", "-q"], check=True)
            (tree / "Makefile").write_text("all:\n")
            subprocess.run(git + ["add", "Makefile"], check=True)
            subprocess.run(git + ["commit", "-q", "-m", "x"], check=True)
            info = run.tree_commit(tree)
            self.assertRegex(info["git_commit"], "^[0-9a-f]{40}$")
            self.assertFalse(info["git_dirty"])
            (tree / "Makefile").write_text("all: x\n")
            self.assertTrue(run.tree_commit(tree)["git_dirty"])
            self.assertEqual(run.tree_commit(tree / ".." / "nonexistent-tree"), {})


if __name__ == "__main__":
    unittest.main()
