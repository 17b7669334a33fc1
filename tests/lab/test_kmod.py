"""The suite's test modules for a lab kernel (runner/lab/kmod.py): where they build, when the
lab asks for them, and that a lab without them says so instead of failing or passing."""
from __future__ import annotations

import tempfile
import unittest
from pathlib import Path
from unittest import mock

from runner.lab import build, kmod, labs, run
from runner.lab.kernel import Kernel, KernelSpec
from runner.plan import Instance


def _instance(program: str) -> Instance:
    return Instance(id=program, program=program, args=[], variant=None, tests=[], params={},
                    timeout=60)


class KbuildDir(unittest.TestCase):
    def test_tree_build_needs_module_symvers(self):
        with tempfile.TemporaryDirectory() as d:
            k = Kernel(Path(d) / "arch/x86/boot/bzImage", kbuild_dir=Path(d))
            with self.assertRaisesRegex(kmod.KmodUnavailable, "no Module.symvers"):
                kmod.kbuild_dir(k, print)
            (Path(d) / "Module.symvers").write_text("")
            self.assertEqual(kmod.kbuild_dir(k, print), Path(d))

    def test_a_bare_image_has_none(self):
        with self.assertRaisesRegex(kmod.KmodUnavailable, "no kbuild directory"):
            kmod.kbuild_dir(Kernel(Path("/x/bzImage"), source="file:/x/bzImage"), print)

    def test_image_in_its_build_directory_keeps_it(self):
        # A mutation repeat boots <build>/arch/x86/boot/bzImage with --kernel: the module
        # must still be built there, else irq_fpu skips and the mutation reads as missed.
        with tempfile.TemporaryDirectory() as d:
            image = Path(d) / "arch/x86/boot/bzImage"
            image.parent.mkdir(parents=True)
            image.write_bytes(b"")
            self.assertIsNone(build.kernel_for(KernelSpec(image=image), print).kbuild_dir)
            (Path(d) / "Module.symvers").write_text("")
            self.assertEqual(build.kernel_for(KernelSpec(image=image), print).kbuild_dir,
                             Path(d).resolve())
            other = Path(d) / "bzImage"
            other.write_bytes(b"")
            self.assertIsNone(build.kernel_for(KernelSpec(image=other), print).kbuild_dir)

    def test_debian_headers_makefile_points_into_the_cache(self):
        # Debian's flavour Makefile includes /usr/src/linux-headers-<v>-common/Makefile by
        # its installed path; unpacked into the cache it must include the cache's copy, also
        # when a run stopped between unpacking and rewriting it.
        with tempfile.TemporaryDirectory() as d, mock.patch.object(kmod, "CACHE", Path(d)):
            kb = Path(d) / "headers/6.12.1-amd64/usr/src/linux-headers-6.12.1-amd64"
            kb.mkdir(parents=True)
            (kb / "Module.symvers").write_text("")
            (kb / "Makefile").write_text("include /usr/src/linux-headers-6.12.1-common/Makefile\n")
            for _ in range(2):
                self.assertEqual(kmod._debian_headers("6.12.1-amd64", print), kb)
                self.assertEqual((kb / "Makefile").read_text(),
                                 f"include {d}/headers/6.12.1-amd64/usr/src/"
                                 "linux-headers-6.12.1-common/Makefile\n")

    def test_cache_key_follows_sources_and_kernel(self):
        with tempfile.TemporaryDirectory() as d:
            kb = Path(d)
            (kb / "Module.symvers").write_text("a")
            k1 = kmod._key(kb)
            (kb / "Module.symvers").write_text("b")
            self.assertNotEqual(k1, kmod._key(kb))


class ExecutorModules(unittest.TestCase):
    def setUp(self):
        self.logged: list[str] = []
        self.ex = run.Executor(labs.load("tcg"), Kernel(Path("/boot/vmlinuz")),
                               log=self.logged.append)

    def test_only_for_the_stress_program(self):
        with mock.patch.object(kmod, "test_modules") as tm:
            self.assertEqual(self.ex._test_modules([_instance("kvmfpu_swap_test")]), [])
            tm.assert_not_called()

    def test_unavailable_is_logged_not_fatal(self):
        with mock.patch.object(kmod, "test_modules",
                               side_effect=kmod.KmodUnavailable("no headers")):
            self.assertEqual(self.ex._test_modules([_instance("kvmfpu_swap_stress_test")]),
                             [])
        self.assertTrue(any("no headers" in m and "irq_fpu will skip" in m
                            for m in self.logged), self.logged)


if __name__ == "__main__":
    unittest.main()
