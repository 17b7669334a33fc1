"""runner/lab/binaries.py: a lab boots programs built with a library its kernel supports."""
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from runner.lab import binaries
from runner.lab.kernel import KernelSpec


def bzimage(path: Path, version: str) -> None:
    """A file with a bzImage setup header whose kernel_version points at @version."""
    head = bytearray(0x1000)
    head[0x202:0x206] = b"HdrS"
    head[0x20e:0x210] = (0x800 - 0x200).to_bytes(2, "little")
    head[0x800:0x800 + len(version)] = version.encode()
    path.write_bytes(bytes(head))


class VersionTest(unittest.TestCase):
    def test_versions_are_read_before_fetching_or_building(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            bzimage(d / "bz", "6.1.0-47-amd64 (debian-kernel@lists.debian.org) #1 SMP")
            (d / "Makefile").write_text("# SPDX\nVERSION = 6\nPATCHLEVEL = 7\nSUBLEVEL = 0\n")
            (d / "junk").write_bytes(b"\0" * 4096)
            self.assertEqual(binaries.kernel_version(KernelSpec(image=d / "bz")), (6, 1))
            self.assertEqual(binaries.kernel_version(KernelSpec(tree=d)), (6, 7))
            self.assertIsNone(binaries.kernel_version(KernelSpec(image=d / "junk")))
        self.assertEqual(binaries.kernel_version(
            KernelSpec(debian_package="linux-image-6.1.0-47-amd64-unsigned")), (6, 1))
        self.assertEqual(binaries.kernel_version(KernelSpec()), (6, 12))   # Debian's default
        self.assertEqual(binaries.library_version(Path("/x/out/linux-source-6.12/kvmfpu")),
                         (6, 12))


class PickTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.new = root / "out/linux-source-6.12/kvmfpu"
        self.old = root / "out/linux-source-6.1/kvmfpu"
        self.new.mkdir(parents=True)
        (self.new / "kvmfpu_swap_test").write_text("")
        self.logs: list[str] = []
        patcher = mock.patch.object(binaries, "REPO", root)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(self.tmp.cleanup)

    def pick(self, spec, given=False, build=None):
        return binaries.pick(self.new, given, spec, self.logs.append, build)

    def test_a_new_kernel_keeps_the_binaries(self):
        self.assertEqual(self.pick(KernelSpec()), self.new)
        self.assertIn("library 6.12, kernel under test 6.12", self.logs[0])

    def test_an_old_kernel_gets_the_old_library_built_when_missing(self):
        def build():
            self.old.mkdir(parents=True)
            (self.old / "kvmfpu_swap_test").write_text("")
        spec = KernelSpec(debian_package="linux-image-6.1.0-47-amd64-unsigned")
        self.assertEqual(self.pick(spec, build=build), self.old)
        self.assertIn("building the programs with linux-source-6.1", self.logs[0])
        self.assertIn("KVM_SET_USER_MEMORY_REGION2", self.logs[-1])

    def test_old_library_binaries_are_brought_up_to_date_not_trusted(self):
        # Built once, they went stale: a new test was missing from them ("-t irq_fpu matches
        # no test") while the 6.12 binaries had it. make runs every time; it is incremental.
        self.old.mkdir(parents=True)
        (self.old / "kvmfpu_swap_test").write_text("")
        built = []
        spec = KernelSpec(debian_package="linux-image-6.1.0-47-amd64-unsigned")
        self.assertEqual(self.pick(spec, build=lambda: built.append(1)), self.old)
        self.assertEqual(built, [1])

    def test_binaries_given_that_cannot_run_are_refused_in_one_line(self):
        spec = KernelSpec(debian_package="linux-image-6.1.0-47-amd64-unsigned")
        with self.assertRaises(binaries.BinariesError) as e:
            self.pick(spec, given=True)
        self.assertNotIn("\n", str(e.exception))
        self.assertIn("make KDIR_VERSION=6.1 BIN_LINK=", str(e.exception))

    def test_a_build_that_makes_nothing_is_an_error(self):
        spec = KernelSpec(debian_package="linux-image-6.1.0-47-amd64-unsigned")
        with self.assertRaises(binaries.BinariesError):
            self.pick(spec, build=lambda: None)


if __name__ == "__main__":
    unittest.main()
