"""Lab host side: lab definitions, kvm-lab preflight, module lookup, builds and bisect glue."""
from __future__ import annotations

import lzma
import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from runner import cli, run
from runner.lab import bisect, bochs, build, kernel, labs, qemu


class LabsTest(unittest.TestCase):
    def test_every_lab_loads(self):
        self.assertEqual(labs.names(), ["bochs", "kvm", "tcg"])
        for name in labs.names():
            lab = labs.load(name)
            self.assertIn("console=ttyS0", lab.cmdline)
            self.assertIn("panic=-1", lab.cmdline)

    def test_tcg_quirks_and_bochs_workaround(self):
        self.assertEqual(labs.load("tcg").quirk_names,
                         ["xsetbv_not_intercepted", "no_xinuse", "int3_not_intercepted"])
        self.assertEqual(labs.load("bochs").quirk_names, [])
        self.assertEqual(labs.load("kvm").quirk_names, [])  # real hardware: no quirks
        self.assertIn("clearcpuid=515,519,596,313,323,321", labs.load("bochs").cmdline)

    def test_every_quirk_says_what_tests_do(self):
        for q in labs.load_quirks().values():
            self.assertTrue(q.what and q.tests_do and q.lab, q.name)

    def test_unknown_lab_and_bad_config(self):
        with self.assertRaises(labs.LabConfigError):
            labs.load("nosuch")
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "quirks.toml").write_text("[a]\nlab='x'\n")
            (Path(d) / "x.toml").write_text(
                'name="x"\ndescription=""\nlauncher="qemu"\ncmdline=""\nkvm_module="kvm"\n'
                'quirks=["b"]\n')
            with self.assertRaisesRegex(labs.LabConfigError, "not defined"):
                labs.load("x", Path(d))

    def test_qemu_command(self):
        lab = labs.load("tcg")
        cmd = qemu.command(lab, Path("/k"), Path("/i"), Path("/c.log"), Path("/r.log"))
        s = " ".join(cmd)
        # one host thread for both CPUs: multi-threaded TCG broke the kernel's text patching
        self.assertIn("-accel tcg,thread=single -cpu max", s)
        self.assertIn("-smp 2", s)
        self.assertIn("-no-reboot", s)
        self.assertIn("-serial file:/c.log -serial file:/r.log", s)

    def test_bochsrc(self):
        rc = bochs.bochsrc(labs.load("bochs"), Path("/b.iso"), Path("/c"), Path("/r"))
        self.assertIn("cpu: model=tigerlake", rc)
        self.assertIn('display_library: rfb, options="timeout=0"', rc)
        self.assertIn("com2: enabled=1, mode=file, dev=/r", rc)
        self.assertIn("waveoutdrv=dummy", rc)  # Debian's Bochs aborts without a sound card

    def test_bochs_guest_tsc_runs_at_the_emulated_instruction_rate(self):
        """Bochs' TSC counts instructions, `ips` per emulated second; CPUID 0x15 of its
        tigerlake says 2419.2 MHz, which Linux took without calibrating: the guest's clock
        ran 24x slow, and a 3 s stress stimulus cost 7.3G emulated instructions (3 minutes)."""
        lab = labs.load("bochs")
        self.assertIn(f" tsc_early_khz={lab.ips // 1000}", bochs.kernel_cmdline(lab))
        self.assertTrue(bochs.kernel_cmdline(lab).startswith(lab.cmdline))
        lab.ips = 40000000
        self.assertIn("tsc_early_khz=40000", bochs.isolinux_cfg(bochs.kernel_cmdline(lab)))
        lab.cmdline += " tsc_early_khz=123"        # --append wins
        self.assertEqual(bochs.kernel_cmdline(lab), lab.cmdline)
        self.assertIn("ips=40000000", bochs.bochsrc(lab, Path("/b.iso"), Path("/c"), Path("/r")))


class KvmPreflightTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.sys = Path(self.tmp.name)
        self.dev = self.sys / "kvm"
        self.dev.write_text("")

    def tearDown(self):
        self.tmp.cleanup()

    def module(self, name, nested=None):
        (self.sys / name / "parameters").mkdir(parents=True)
        if nested is not None:
            (self.sys / name / "parameters" / "nested").write_text(nested + "\n")

    def test_pvm_cannot_nest(self):
        self.module("kvm_pvm")
        self.assertIn("kvm_pvm", qemu.kvm_preflight(self.sys, str(self.dev)))

    def test_nested_on(self):
        self.module("kvm_intel", "Y")
        self.assertIsNone(qemu.kvm_preflight(self.sys, str(self.dev)))

    def test_nested_off(self):
        self.module("kvm_amd", "0")
        self.assertIn("nested=1", qemu.kvm_preflight(self.sys, str(self.dev)))

    def test_no_dev_kvm(self):
        self.assertIn("does not exist", qemu.kvm_preflight(self.sys, str(self.sys / "none")))

    def test_vendor_picks_the_module(self):
        self.assertEqual(qemu.kvm_module_for_host("vendor_id\t: AuthenticAMD\n"), "kvm-amd")
        self.assertEqual(qemu.kvm_module_for_host("vendor_id\t: GenuineIntel\n"), "kvm-intel")


def fake_module(path: Path, depends: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = f"license=GPL\0depends={depends}\0name={path.name.split('.')[0]}\0".encode()
    path.write_bytes(lzma.compress(b"\x7fELF" + b"\0" * 16 + info, format=lzma.FORMAT_XZ))


def fake_modules(mods: Path, deps: dict[str, str]) -> None:
    """A lib/modules/<release> tree: module path under kernel/ -> its `depends`."""
    for path, depends in deps.items():
        fake_module(mods / "kernel" / path, depends)


KVM_AMD = {"arch/x86/kvm/kvm-amd.ko.xz": "kvm,ccp", "arch/x86/kvm/kvm.ko.xz": "irqbypass",
           "drivers/crypto/ccp/ccp.ko.xz": "", "virt/lib/irqbypass.ko.xz": ""}


class ModulesTest(unittest.TestCase):
    def test_closure_loads_dependencies_first(self):
        with tempfile.TemporaryDirectory() as d:
            mods = Path(d)
            fake_modules(mods, KVM_AMD)
            order = [p.name for p in kernel.module_closure(mods, "kvm_amd")]
            self.assertEqual(order, ["irqbypass.ko.xz", "kvm.ko.xz", "ccp.ko.xz",
                                     "kvm-amd.ko.xz"])
            k = kernel.Kernel(Path("/k"), mods)
            (mods / "modules.builtin").write_text("kernel/arch/x86/kvm/kvm-intel.ko\n")
            self.assertEqual(kernel.kvm_modules(k, "kvm-intel"), [])   # built in
            self.assertEqual(kernel.kvm_modules(kernel.Kernel(Path("/k")), "kvm-amd"), [])
            with self.assertRaises(kernel.KernelError):
                kernel.module_closure(mods, "nosuch")

    def test_kernel_fpu_modules_are_optional_and_not_repeated(self):
        with tempfile.TemporaryDirectory() as d:
            mods = Path(d)
            fake_modules(mods, {**KVM_AMD, "crypto/cryptd.ko.xz": "", "crypto/af_alg.ko.xz": "",
                                "crypto/algif_hash.ko.xz": "af_alg",
                                "arch/x86/crypto/aesni-intel.ko.xz": "cryptd"})
            (mods / "modules.builtin").write_text("kernel/arch/x86/crypto/sha256-ssse3.ko\n")
            k = kernel.Kernel(Path("/k"), mods)
            have = kernel.kvm_modules(k, "kvm")
            out, missing = kernel.optional_modules(
                k, ["sha256-ssse3", "algif_hash", "aesni-intel", "nosuch", "kvm"], have)
            # built in: nothing to load; missing: named, not an error; KVM's not repeated
            self.assertEqual([p.name for p in out],
                             ["af_alg.ko.xz", "algif_hash.ko.xz", "cryptd.ko.xz",
                              "aesni-intel.ko.xz"])
            self.assertEqual(missing, ["nosuch"])
            # a kernel built from a tree has them built in: nothing known missing
            self.assertEqual(kernel.optional_modules(kernel.Kernel(Path("/k")), ["x"], []),
                             ([], []))

    def test_newest_debian_package(self):
        pkgs = ["linux-image-6.12.9+deb12-amd64-unsigned",
                "linux-image-6.12.117+deb12-amd64-unsigned",
                "linux-image-6.12.43+deb12-amd64-unsigned"]
        self.assertEqual(max(pkgs, key=kernel._version_key), pkgs[1])

    def test_the_newest_package_is_asked_again_when_apt_lists_change(self):
        """apt takes a second to answer; its answer is kept only while its lists are the
        same, so an `apt-get update` that brings a newer kernel is seen at once."""
        with tempfile.TemporaryDirectory() as d:
            lists = Path(d) / "lists"
            lists.mkdir()
            answers = iter(["linux-image-6.12.1+deb12-amd64-unsigned",
                            "linux-image-6.12.2+deb12-amd64-unsigned"])
            with mock.patch.object(kernel, "CACHE", Path(d) / "cache"), \
                    mock.patch.object(kernel, "APT_LISTS", lists), \
                    mock.patch.object(kernel, "_ask_apt", side_effect=lambda s: next(answers)):
                first = kernel.debian_package("6.12")
                self.assertEqual(kernel.debian_package("6.12"), first)      # memo
                self.assertEqual(kernel._ask_apt.call_count, 1)
                os.utime(lists, ns=(0, lists.stat().st_mtime_ns + 10**9))   # apt-get update
                self.assertEqual(kernel.debian_package("6.12"),
                                 "linux-image-6.12.2+deb12-amd64-unsigned")
                self.assertEqual(kernel._ask_apt.call_count, 2)
                (Path(d) / "cache" / "debian-package-6.12.json").write_text("{garbage")
                with self.assertRaises(StopIteration):      # a bad memo: apt is asked again
                    kernel.debian_package("6.12")


class BuildTest(unittest.TestCase):
    def test_fragment_has_kvm_built_in(self):
        want = build.wanted_options(build.fragment_text(kasan=False))
        for opt in ("CONFIG_KVM", "CONFIG_KVM_INTEL", "CONFIG_KVM_AMD", "CONFIG_X86_DEBUG_FPU"):
            self.assertEqual(want[opt], "y")
        self.assertNotIn("CONFIG_KASAN", want)
        self.assertEqual(build.wanted_options(build.fragment_text(kasan=True))["CONFIG_KASAN"],
                         "y")

    def test_config_problems_name_what_did_not_stick(self):
        frag = "CONFIG_KVM=y\nCONFIG_KVM_AMD=y\n"
        self.assertEqual(build.config_problems("CONFIG_KVM=y\nCONFIG_KVM_AMD=y\n", frag), [])
        self.assertEqual(build.config_problems("CONFIG_KVM=y\n# CONFIG_KVM_AMD is not set\n",
                                               frag), ["CONFIG_KVM_AMD=y (got unset)"])

    def test_not_a_tree(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(build.BuildError, "not a kernel source tree"):
                build.build(Path(d))

    def test_kasan_builds_live_outside_the_checkout(self):
        """A KASAN kernel takes long to build: its build directory is in the user's cache,
        which a fresh clone or `git clean` does not drop."""
        out = build.default_build_dir(Path("/src/linux-6.12"), kasan=True)
        self.assertEqual(out, build.USER_CACHE / "build" / "linux-6.12-kasan")
        self.assertFalse(out.is_relative_to(kernel.REPO))
        self.assertTrue(build.default_build_dir(Path("/src/t"), False).is_relative_to(
            kernel.REPO))

    def test_debian_source_unpacked_once(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            top = d / "pkg" / "linux-source-6.12"
            (top / "arch" / "x86").mkdir(parents=True)
            (top / "Makefile").write_text("# top\n")
            tarball = d / "linux-source-6.12.tar.xz"
            subprocess.run(["tar", "-cJf", str(tarball), "-C", str(d / "pkg"),
                            "linux-source-6.12"], check=True)
            logs: list[str] = []
            tree = build.debian_source_tree(tarball, d / "cache", log=logs.append)
            self.assertEqual(tree, d / "cache" / "linux-source-6.12")
            self.assertTrue((tree / "arch" / "x86").is_dir())
            self.assertEqual(len(logs), 1)
            (tree / "Makefile").write_text("# kept\n")      # a second call reuses it
            self.assertEqual(build.debian_source_tree(tarball, d / "cache", log=logs.append),
                             tree)
            self.assertEqual((tree / "Makefile").read_text(), "# kept\n")
            self.assertEqual(len(logs), 1)
            with self.assertRaisesRegex(build.BuildError, "install Debian's linux-source"):
                build.debian_source_tree(d / "linux-source-6.99.tar.xz", d / "c2")

    def test_kasan_is_a_build_option(self):
        """--kasan with a ready image would boot a kernel without KASAN: refused."""
        for spec in (kernel.KernelSpec(image=Path("/bz"), kasan=True),
                     kernel.KernelSpec(debian_package="linux-image-x", kasan=True)):
            with self.assertRaisesRegex(kernel.KernelError, "--kasan builds a kernel"):
                build.kernel_for(spec, log=lambda m: None)


class BisectTest(unittest.TestCase):
    def test_step_codes(self):
        self.assertEqual([bisect.step_code(c) for c in (0, 1, 2)], [0, 1, 125])

    def test_first_bad_commit(self):
        out = ("Bisecting: 0 revisions left\nabc123def4567890 is the first bad commit\n"
               "commit abc123def4567890\n")
        self.assertEqual(bisect.first_bad(out), "abc123def4567890")
        self.assertIsNone(bisect.first_bad("bisect found nothing"))

    def bisect_request(self, *argv: str) -> bisect.BisectRequest:
        opts = cli.parser().parse_args(["bisect", *argv])
        return bisect.BisectRequest(cli.request(opts), opts.kernel_tree, opts.steps_dir,
                                    opts.good, opts.bad)

    def test_each_step_gets_the_lab_request_of_the_bisection(self):
        """step_args() is the one place a request becomes `bisect-step` arguments: the
        step's command line parses back into the same request (its kernel: the tree)."""
        for argv in (["--lab", "bochs", "--test", "kvmfpu_swap_test -v avx512",
                      "--timeout", "60"],
                     ["--profile", "smoke", "--filter", "swap", "--repeat", "2", "--kasan",
                      "--kvm-xcr0", "0x207", "--build-dir", "/b", "--append", "nokaslr",
                      "--require-exercised", "--bin", "/static", "--smp", "1"]):
            with self.subTest(argv=argv):
                req = self.bisect_request("--good", "g", "--bad", "b", "--kernel-tree", "/t",
                                          *argv)
                args = bisect.step_args(req, Path("/t"), Path("/steps"))
                step = cli.parser().parse_args(["bisect-step", *args])
                self.assertEqual(cli.request(step), req.run)
                self.assertEqual((step.kernel_tree, step.steps_dir),
                                 (Path("/t"), Path("/steps")))

    def test_a_test_argument_becomes_one_instance(self):
        """With the plan's id when it is a variant or fixture and options: a `lab --test`
        run and a profile run compare instance by instance."""
        insts = run.instances_from_tests(["kvmfpu_swap_test -v avx --seed 2"], 30)
        self.assertEqual(insts[0].id, "kvmfpu_swap_test.avx.seed=2")
        self.assertEqual(insts[0].args, ["-v", "avx", "--seed", "2"])
        for item, iid in (("kvmfpu_swap_test --xcr0 519 -v pass",
                           "kvmfpu_swap_test.pass.xcr0=0x207"),
                          ("kvmfpu_swap_test", "kvmfpu_swap_test"),
                          ("kvmfpu_swap_test -r swap.avx.guest_image",
                           "kvmfpu_swap_test.r.swap.avx.guest_image"),
                          ("kvmfpu_swap_bench --repeats 3", "kvmfpu_swap_bench.repeats.3")):
            self.assertEqual(run.instances_from_tests([item], 30)[0].id, iid)
        with self.assertRaisesRegex(run.SetupError, "given twice"):
            run.instances_from_tests(["kvmfpu_swap_test", "kvmfpu_swap_test"], 30)


if __name__ == "__main__":
    unittest.main()
