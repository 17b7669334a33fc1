"""Bad input to the C test programs and the build: one clear line, a non-zero exit.

The programs must have been built (make); these tests run them with arguments and
environments that must be refused before any KVM verdict: exit 2 for an error, exit 4
(kselftest skip) only where a missing feature is the reason.
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
SWAP = TOP / "out" / "bin" / "kvmfpu_swap_test"
EXIT_ERROR = 2
EXIT_SKIP = 4


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


@unittest.skipUnless(SWAP.exists(), f"{SWAP} not built (run make)")
class BadArguments(unittest.TestCase):
    def refused(self, args: list[str], words: str) -> None:
        p = run([str(SWAP), *args])
        self.assertEqual(p.returncode, EXIT_ERROR, f"{args}: exit {p.returncode}\n{p.stderr}")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"{args}: want one line on stderr, got {lines}")
        self.assertIn(words, lines[0], f"{args}: {lines[0]!r} does not say {words!r}")
        self.assertNotIn("ok ", p.stdout, f"{args}: tests ran anyway:\n{p.stdout}")

    def test_unknown_xcr0_bit(self) -> None:
        self.refused(["--xcr0", "0x103"], "bit 8 is not an XCR0 state component")

    def test_reserved_xcr0_bit(self) -> None:
        self.refused(["--xcr0", str((1 << 63) | 3)], "bit 63")

    def test_avx_without_sse(self) -> None:
        self.refused(["--xcr0", "0x5"], "AVX (bit 2) requires SSE (bit 1)")

    def test_partial_avx512(self) -> None:
        self.refused(["--xcr0", "0x27"], "AVX-512 bits 5-7 must be set together")

    def test_no_x87(self) -> None:
        self.refused(["--xcr0", "0x2"], "bit 0 (x87) must be set")

    def test_component_the_guest_code_does_not_drive(self) -> None:
        self.refused(["--xcr0", "0x60007"], "does not drive xtilecfg,xtiledata")

    def test_unknown_component_name(self) -> None:
        self.refused(["--xcr0", "x87,sse,avx1024"], "not a number or component list")

    def test_bad_seed(self) -> None:
        self.refused(["--seed", "twelve"], "--seed: 'twelve' is not a number")

    def test_missing_value(self) -> None:
        self.refused(["--rounds"], "--rounds needs a value")

    def test_zero_rounds(self) -> None:
        self.refused(["--rounds", "0"], "--rounds must be from 1 to")

    def test_negative_number(self) -> None:
        self.refused(["--seed", "-1"], "--seed: '-1' is not a number")

    def test_every_program_checks_its_options(self) -> None:
        for prog, args, words in [
                ("kvmfpu_swap_stress_test", ["--vcpus", "0"], "--vcpus must be from 1 to 8"),
                ("kvmfpu_xsave_uabi_test", ["--rounds", "x"], "--rounds: 'x' is not a number"),
                ("kvmfpu_amx_test", ["--seed"], "--seed needs a value"),
                ("kvmfpu_xfd_test", ["--seed", "0x"], "--seed: '0x' is not a number"),
                ("kvmfpu_swap_stress_test", ["--allow-hotplug=1"],
                 "--allow-hotplug takes no value"),
                ("kvmfpu_swap_test", ["--allow-hotplug"],
                 "kvmfpu_swap_test takes no --allow-hotplug (-h lists its options)")]:
            path = SWAP.parent / prog
            if not path.exists():
                self.fail(f"{path} not built")
            p = run([str(path), *args])
            self.assertEqual(p.returncode, EXIT_ERROR, f"{prog} {args}: {p.stderr}")
            self.assertEqual(p.stderr.strip(), f"kvmfpu: {words}", prog)


def in_mount_namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (root only)."""
    return run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])


@unittest.skipUnless(SWAP.exists(), f"{SWAP} not built (run make)")
@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "needs root and unshare(1) to hide /dev/kvm in a mount namespace")
class NoUsableKvm(unittest.TestCase):
    def test_no_dev_kvm_is_a_skip(self) -> None:
        p = in_mount_namespace(f"mount -t tmpfs none /dev && exec {SWAP}")
        self.assertEqual(p.returncode, EXIT_SKIP, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip().splitlines(),
                         ["kvmfpu: /dev/kvm does not exist: no KVM on this machine"])
        self.assertIn("1..0 # SKIP /dev/kvm does not exist", p.stdout)

    def test_dev_kvm_that_is_not_kvm_is_an_error(self) -> None:
        # A private /dev holding only a kvm node that is /dev/null: works whether or not this
        # machine has a /dev/kvm to bind over.
        p = in_mount_namespace("exec 3<>/dev/null && mount -t tmpfs none /dev && "
                               "touch /dev/kvm && mount --bind /proc/self/fd/3 /dev/kvm && "
                               f"exec {SWAP} 3>&-")
        self.assertEqual(p.returncode, EXIT_ERROR, p.stdout + p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("/dev/kvm is unusable: KVM_GET_API_VERSION returned -1", lines[0])


class BadKdir(unittest.TestCase):
    def make_kdir(self, kdir: str) -> subprocess.CompletedProcess:
        return run(["make", "-C", str(TOP), "--no-print-directory", f"KDIR={kdir}", "build"])

    def refused(self, kdir: str, words: str) -> None:
        p = self.make_kdir(kdir)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        first = p.stderr.strip().splitlines()[0]
        self.assertEqual(first, f"kvmfpu: KDIR={kdir} {words}")

    def test_missing(self) -> None:
        self.refused("/nonexistent/linux", "does not exist")

    def test_not_a_kernel_tree(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.refused(d, "is not a kernel tree (no Makefile or arch/x86)")

    def test_tree_without_kvm_selftests(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "arch" / "x86").mkdir(parents=True)
            (Path(d) / "Makefile").write_text("")
            self.refused(d, "has no KVM selftest library "
                            "(tools/testing/selftests/kvm/lib/kvm_util.c)")

    def test_tree_without_headers(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            kvm = Path(d) / "tools" / "testing" / "selftests" / "kvm"
            (kvm / "lib").mkdir(parents=True)
            (kvm / "lib" / "kvm_util.c").write_text("")
            (kvm / "include" / "x86").mkdir(parents=True)
            (kvm / "include" / "x86" / "processor.h").write_text("")
            (Path(d) / "arch" / "x86").mkdir(parents=True)
            (Path(d) / "Makefile").write_text("")
            self.refused(d, f"has no exported headers: run 'make -C {d} headers' first")


if __name__ == "__main__":
    unittest.main()
