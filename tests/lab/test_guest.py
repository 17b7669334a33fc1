"""Lab guest side: initramfs contents, the plan, and the result-channel protocol."""
from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
import tempfile
import unittest
from unittest import mock
from pathlib import Path

from runner.lab import initramfs, protocol
from runner.lab.initramfs import GuestSetup, PlanEntry

DATA = Path(__file__).parent / "data"


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, contents) of a newc archive."""
    out, pos = {}, 0
    while True:
        hdr = data[pos:pos + 110]
        assert hdr[:6] == b"070701", hdr[:6]
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


class PlanTest(unittest.TestCase):
    def test_line_quotes_arguments_for_the_guest_shell(self):
        e = PlanEntry("swap.avx", "kvmfpu_swap_test", ["-v", "avx", "--seed", "it's"], 30)
        self.assertEqual(e.line(), "swap.avx 30 kvmfpu_swap_test -v avx --seed 'it'\"'\"'s'")

    def test_names_must_be_one_word_and_unique(self):
        with self.assertRaises(ValueError):
            PlanEntry("a b", "prog").line()
        with self.assertRaises(ValueError):
            initramfs.plan_text([PlanEntry("a", "p"), PlanEntry("a", "q")])

    def test_env_carries_quirks_and_tier(self):
        env = initramfs.env_text(GuestSetup("tcg", ["xsetbv_not_intercepted", "no_xinuse"]))
        self.assertIn("export KVMFPU_QUIRKS=xsetbv_not_intercepted,no_xinuse\n", env)
        self.assertIn("export KVMFPU_TIER=lab-tcg\n", env)
        self.assertIn("export KVMFPU_QUIRKS=''\n", initramfs.env_text(GuestSetup("bochs")))


class InitramfsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.busybox = self.dir / "busybox"
        self.busybox.write_bytes(b"\x7fELF busybox")
        self.prog = self.dir / "kvmfpu_swap_test"
        self.prog.write_bytes(b"\x7fELF test")
        self.mod = self.dir / "kvm-amd.ko.xz"
        self.mod.write_bytes(lzma.compress(b"\x7fELF module", format=lzma.FORMAT_XZ))
        self.opt = self.dir / "algif_hash.ko"
        self.opt.write_bytes(b"\x7fELF optional")

    def tearDown(self):
        self.tmp.cleanup()

    def build(self, plan):
        setup = GuestSetup("tcg", ["no_xinuse"], [self.mod])
        return read_cpio(gzip.decompress(
            initramfs.build([self.prog], plan, setup, busybox=self.busybox)))

    def test_contents(self):
        files = self.build([PlanEntry("kvmfpu_swap_test", "kvmfpu_swap_test", [], 60)])
        self.assertEqual(files["init"][1], initramfs.INIT.encode())
        self.assertEqual(files["init"][0] & 0o777, 0o755)
        self.assertEqual(files["bin/busybox"][1], b"\x7fELF busybox")
        self.assertEqual(files["tests/kvmfpu_swap_test"][1], b"\x7fELF test")
        self.assertEqual(files["modules/kvm-amd.ko"][1], b"\x7fELF module")  # decompressed
        self.assertEqual(files["modules.order"][1], b"kvm-amd\n")
        self.assertEqual(files["plan"][1], b"kvmfpu_swap_test 60 kvmfpu_swap_test\n")
        self.assertIn(b"KVMFPU_QUIRKS=no_xinuse", files["lab.env"][1])

    def test_optional_modules_are_listed_for_init(self):
        setup = GuestSetup("tcg", [], [self.mod, self.opt], optional={"algif_hash"})
        files = read_cpio(gzip.decompress(initramfs.build(
            [self.prog], [PlanEntry("x", "kvmfpu_swap_test")], setup, busybox=self.busybox)))
        self.assertEqual(files["modules.order"][1], b"kvm-amd\nalgif_hash\n")
        self.assertEqual(files["modules.optional"][1], b"algif_hash\n")
        self.assertIn("say module-skipped", initramfs.INIT)

    def test_kernel_config_reaches_boot(self):
        """The tests read /boot/config-$(uname -r) to know whether X86_DEBUG_FPU is set;
        without it the kernel_warn stress skips in every lab."""
        setup = GuestSetup("tcg", [], [self.mod], kernel_config=b"CONFIG_X86_DEBUG_FPU=y\n")
        files = read_cpio(gzip.decompress(initramfs.build(
            [self.prog], [PlanEntry("x", "kvmfpu_swap_test")], setup, busybox=self.busybox)))
        self.assertEqual(files["kernel.config"][1], b"CONFIG_X86_DEBUG_FPU=y\n")
        self.assertIn("cp /kernel.config /boot/config-$(uname -r)", initramfs.INIT)
        self.assertNotIn("kernel.config", self.build([PlanEntry("x", "kvmfpu_swap_test")]))

    def test_programs_lose_their_debug_info_only(self):
        """Every initramfs byte is read by isolinux and unpacked by the guest at emulated
        speed; the programs' DWARF is 40% of them and nothing in the guest reads it."""
        cc = shutil.which("cc")
        if cc is None or shutil.which("objcopy") is None:
            self.skipTest("needs cc and objcopy")
        src, prog = self.dir / "p.c", self.dir / "kvmfpu_swap_test"
        src.write_text("int main(void) { return 0; }\n")
        subprocess.run([cc, "-g", "-o", str(prog), str(src)], check=True)
        files = self.build([PlanEntry("x", "kvmfpu_swap_test")])
        stripped = files["tests/kvmfpu_swap_test"][1]
        self.assertLess(len(stripped), prog.stat().st_size)
        self.assertNotIn(b".debug_info", stripped)
        self.assertIn(b".debug_info", prog.read_bytes())
        self.assertIn(b".symtab", stripped)
        # not an ELF objcopy can read: as it is
        self.assertEqual(initramfs.program_bytes(self.busybox), b"\x7fELF busybox")

    def test_dynamic_programs_bring_their_libraries(self):
        """The labs boot the programs of `make`, dynamically linked: the guest needs the loader
        and libc at the paths the programs name, the very files they were linked against.
        Static programs need nothing."""
        cc = shutil.which("cc")
        if cc is None or shutil.which("ldd") is None:
            self.skipTest("needs cc and ldd")
        src, prog = self.dir / "p.c", self.dir / "kvmfpu_swap_test"
        src.write_text("#include <stdio.h>\nint main(void) { puts(\"x\"); return 0; }\n")
        subprocess.run([cc, "-o", str(prog), str(src)], check=True)
        libs = initramfs.shared_libraries([prog])
        self.assertTrue(any("ld-linux" in p for p in libs), libs)
        self.assertTrue(any(p.endswith("/libc.so.6") for p in libs), libs)
        files = self.build([PlanEntry("x", "kvmfpu_swap_test")])
        for guest_path, real in libs.items():
            self.assertEqual(files[guest_path.lstrip("/")][1], real.read_bytes())
            self.assertEqual(files[guest_path.lstrip("/")][0] & 0o777, 0o755)
        static = self.dir / "static_test"
        r = subprocess.run([cc, "-static", "-o", str(static), str(src)], check=False,
                           capture_output=True)
        if r.returncode == 0:
            self.assertEqual(initramfs.shared_libraries([static]), {})

    def test_zstd_only_for_a_kernel_that_unpacks_it(self):
        """zstd unpacks faster at emulated speed, but only a kernel with CONFIG_RD_ZSTD can;
        without its .config the initramfs stays gzip, which every kernel reads."""
        cpio = b"070701" + b"x" * 5000
        gz = initramfs.compress(cpio, None)
        self.assertEqual(gz[:2], b"\x1f\x8b")
        self.assertEqual(gzip.decompress(gz), cpio)
        self.assertEqual(initramfs.compress(cpio, b"# CONFIG_RD_ZSTD is not set\n")[:2],
                         b"\x1f\x8b")
        if shutil.which("zstd") is None:
            self.skipTest("no zstd tool (runner/lab/deps.sh installs it)")
        zst = initramfs.compress(cpio, b"CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n")
        self.assertEqual(zst[:4], b"\x28\xb5\x2f\xfd")
        self.assertEqual(subprocess.run(["zstd", "-dcq"], input=zst, capture_output=True,
                                        check=True).stdout, cpio)

    def test_a_library_missing_here_is_one_line(self):
        ldd = "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x00007f)\n"
        with mock.patch.object(subprocess, "run", return_value=subprocess.CompletedProcess(
                [], 0, ldd, "")):
            with self.assertRaises(ValueError) as e:
                initramfs.shared_libraries([self.prog])
        self.assertIn("libfoo.so.1 => not found", str(e.exception))
        self.assertNotIn("\n", str(e.exception))

    def test_modules_lose_their_btf_only(self):
        """The kernel parses and checks a module's BTF as it loads it: for Debian's kvm.ko and
        the crypto modules that was half of the module loading in Bochs (72 -> 38 s of guest
        time, /init to the first test). Nothing in the lab reads BTF."""
        cc = shutil.which("cc")
        if cc is None or shutil.which("objcopy") is None:
            self.skipTest("needs cc and objcopy")
        src, obj = self.dir / "m.c", self.dir / "m.ko"
        src.write_text('__attribute__((section(".BTF"))) char btf[64] = "types";\n'
                       "int kvmfpu_code(void) { return 1; }\n")
        subprocess.run([cc, "-c", "-o", str(obj), str(src)], check=True)
        xz = self.dir / "m.ko.xz"
        xz.write_bytes(lzma.compress(obj.read_bytes(), format=lzma.FORMAT_XZ))
        for path in (obj, xz):
            out = initramfs.module_bytes(path)
            self.assertNotIn(b".BTF", out)
            self.assertIn(b"kvmfpu_code", out)
        self.assertIn(b".BTF", obj.read_bytes())
        # not an ELF objcopy can read: as it is
        self.assertEqual(initramfs.module_bytes(self.mod), b"\x7fELF module")

    def test_init_holds_the_serial_ports_open(self):
        """A program's exit (or an echo's close) was the result channel's last close, after
        which the next open restarted the UART: Bochs then lost the end of a KTAP, with a NUL
        in its place. /init keeps both ports open; the programs do not inherit them."""
        init = initramfs.INIT
        self.assertIn("exec 3>$R 4>/dev/console\n", init)
        self.assertLess(init.index("exec 3>$R"), init.index("say begin"))
        self.assertIn('/tests/$bin "$@" > $R 2>&1 < /dev/null 3>&- 4>&-', init)
        # and lets them go before powering off: the last close drains the UART
        self.assertIn("finish() { say done; exec 3>&- 4>&-; sync; poweroff -f;", init)

    def test_missing_binary_is_an_error(self):
        with self.assertRaises(FileNotFoundError):
            self.build([PlanEntry("x", "kvmfpu_other_test")])

    def test_init_speaks_the_protocol(self):
        init = initramfs.INIT
        for word in ("begin", "test-begin", "test-end", "dmesg-begin", "dmesg-end", "done",
                     "lab-error", "module-error"):
            self.assertIn(f"say {word}", init)
        self.assertIn(protocol.PREFIX, init)
        self.assertIn("timeout -s KILL", init)


class ProtocolTest(unittest.TestCase):
    def test_complete_run(self):
        r = protocol.parse((DATA / "tcg_pass.channel").read_text())
        self.assertTrue(r.began and r.done)
        self.assertEqual(r.kernel, "6.12.117+deb12-amd64")
        self.assertEqual(r.lab, "tcg")
        self.assertEqual(r.quirks, ["xsetbv_not_intercepted", "no_xinuse", "int3_not_intercepted"])
        self.assertIn("avx2", r.cpu_flags)
        self.assertEqual(r.modules, {"kvm_amd": "1"})
        self.assertTrue(r.boot_dmesg_complete)
        [t] = r.tests
        self.assertEqual((t.name, t.rc, t.timeout), ("kvmfpu_swap_test", 0, 120))
        self.assertTrue(t.dmesg_complete)
        self.assertIn("TAP version 13", t.output)
        self.assertFalse(any(line.startswith(protocol.PREFIX) for line in t.output))
        self.assertIsNone(r.running)

    def test_cut_off_inside_a_test(self):
        r = protocol.parse((DATA / "oops_during_test.channel").read_text())
        self.assertTrue(r.began)
        self.assertFalse(r.done)
        self.assertEqual(r.running.name, "kvmfpu_swap_test")
        self.assertIsNone(r.running.rc)

    def test_a_garbled_test_begin_is_closed_by_its_test_end(self):
        """Bochs' serial port drops bytes under load: seen in a baseline run, the marker
        lost its end and a NUL ran it into the program's first line. /init runs one program
        at a time, so the test-end that follows names the open record."""
        text = (f"{protocol.PREFIX} test-begin name=a timeout=10 uptime=1.00\n"
                f"{protocol.PREFIX} test-end name=a rc=0 uptime=2.00\n"
                f"{protocol.PREFIX} test-begin name=kvmfpu_xsave_uabi_test.no_xs\0Random seed\n"
                "TAP version 13\n1..9\n"
                f"{protocol.PREFIX} test-end name=kvmfpu_xsave_uabi_test.no_xsave rc=0 uptime=5.8\n"
                f"{protocol.PREFIX} test-end name=gone rc=0 uptime=6.0\n")
        r = protocol.parse(text)
        self.assertEqual([(t.name, t.rc) for t in r.tests],
                         [("a", 0), ("kvmfpu_xsave_uabi_test.no_xsave", 0)])
        self.assertIn("1..9", r.tests[1].output)
        # a test-end with no open record adopts nothing (the program never began)
        self.assertIsNone(r.test("gone"))

    def test_timeout_is_rc_137_after_the_timeout(self):
        text = (f"{protocol.PREFIX} test-begin name=t timeout=10 uptime=1.00\n"
                f"{protocol.PREFIX} test-end name=t rc=137 uptime=11.02\n")
        self.assertTrue(protocol.parse(text).tests[0].timed_out)
        early = text.replace("uptime=11.02", "uptime=2.0")
        self.assertFalse(protocol.parse(early).tests[0].timed_out)  # killed by someone else

    def test_carriage_returns_and_nuls_are_dropped(self):
        r = protocol.parse(f"\0{protocol.PREFIX} begin kernel=k lab=tcg\r\n")
        self.assertEqual(r.kernel, "k")


if __name__ == "__main__":
    unittest.main()
