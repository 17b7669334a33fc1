"""Splat detection and the verdicts of lab runs, on canned console and channel logs."""
from __future__ import annotations

import unittest
from pathlib import Path

from runner import verdicts as V
from runner.lab import labs, protocol, run, splats
from runner.lab.boot import BootResult
from runner.lab.kernel import Kernel
from runner.plan import Instance

DATA = Path(__file__).parent / "data"
P = protocol.PREFIX


def inst(name: str = "kvmfpu_swap_test", timeout: float = 120) -> Instance:
    return Instance(id=name, program="kvmfpu_swap_test", args=[], variant=None, tests=[],
                    params={}, timeout=timeout)


def judge(channel: str, console: str = "", how: str = "done", lab: str = "tcg",
          instances: list[Instance] | None = None) -> run.LabRun:
    result = BootResult(console, channel, how, 0, 5.0, "")
    return run.judge(labs.load(lab), Kernel(Path("/boot/vmlinuz")), instances or [inst()],
                     result)


def channel_with(test_output: str, rc: int = 0, dmesg: str = "", name="kvmfpu_swap_test"):
    return (f"{P} begin kernel=6.12.117 lab=tcg uptime=2.6\n"
            f"{P} dmesg-begin name=@boot\n{P} dmesg-end name=@boot\n"
            f"{P} test-begin name={name} timeout=120 uptime=3.0\n{test_output}"
            f"{P} test-end name={name} rc={rc} uptime=4.0\n"
            f"{P} dmesg-begin name={name}\n{dmesg}{P} dmesg-end name={name}\n{P} done\n")


PASSING = ("TAP version 13\n1..1\n# kvmfpu-env: kvm_xcr0=0x207 tier=lab-tcg\n"
           "#  RUN           swap.avx_xcrs.guest_image ...\n"
           "# kvmfpu-exercised: components=x87,sse,avx\n"
           "#            OK  swap.avx_xcrs.guest_image\nok 1 swap.avx_xcrs.guest_image\n"
           "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n")
FAILING = PASSING.replace("#            OK", "#          FAIL").replace(
    "ok 1 swap", "not ok 1 swap").replace("pass:1 fail:0", "pass:0 fail:1")
WARNING = ("[    3.5] ------------[ cut here ]------------\n"
           "[    3.5] WARNING: CPU: 0 PID: 160 at arch/x86/kernel/fpu/xstate.c:1234 "
           "xfd_validate_state+0x5a/0x70\n[    3.5] Call Trace:\n[    3.5]  <TASK>\n"
           "[    3.5]  fpu_swap_kvm_fpstate+0x30/0x120\n[    3.5]  </TASK>\n"
           "[    3.5] ---[ end trace 0000000000000000 ]---\n[    3.6] kvm: unrelated\n")


class SplatTest(unittest.TestCase):
    def test_warning_with_its_trace(self):
        [s] = splats.find(WARNING.splitlines())
        self.assertEqual(s.kind, "warning")
        self.assertTrue(s.title.startswith("WARNING: CPU: 0 PID: 160 at arch/x86/kernel/fpu"))
        self.assertEqual(s.lines[-1], "---[ end trace 0000000000000000 ]---")
        self.assertNotIn("kvm: unrelated", s.lines)

    def test_bug_oops_and_the_panic_they_end_in_are_one_splat(self):
        [s] = splats.find((DATA / "oops_during_test.console").read_text().splitlines())
        self.assertEqual(s.kind, "bug")
        self.assertIn("NULL pointer dereference", s.title)
        self.assertTrue(any("fpu_swap_kvm_fpstate" in ln for ln in s.lines))

    def test_kasan(self):
        [s] = splats.find((DATA / "kasan_during_test.dmesg").read_text().splitlines())
        self.assertEqual(s.kind, "kasan")
        self.assertIn("copy_uabi_to_xstate", s.title)
        self.assertNotIn("kvm: some unrelated info line", s.lines)

    def test_boot_panic(self):
        found = splats.find((DATA / "boot_panic.console").read_text().splitlines())
        self.assertEqual([s.kind for s in found], ["panic"])

    def test_quiet_logs_have_no_splats(self):
        text = "[ 1.0] kvm_amd: Nested Virtualization enabled\n[ 1.1] BUGS: none\nWARNING\n"
        self.assertEqual(splats.find(text.splitlines()), [])

    def test_console_lines_are_attributed_to_the_running_test(self):
        lines = ["boot line", f"{P} test-begin name=a timeout=1", "[ 1.0] in a",
                 f"{P} test-end name=a rc=0", "[ 2.0] between"]
        runs = splats.attribute_console(lines, P)
        self.assertEqual(runs, [("@boot", ["boot line"]), ("a", ["[ 1.0] in a"]),
                                (None, ["[ 2.0] between"])])


class JudgeTest(unittest.TestCase):
    def test_real_tcg_run_passes_and_records_the_environment(self):
        lr = judge((DATA / "tcg_pass.channel").read_text(),
                   (DATA / "tcg_pass.console").read_text())
        self.assertIsNone(lr.lab_error)
        self.assertEqual([i.verdict for i in lr.instances], [V.PASS])
        self.assertEqual(lr.exit_code, 0)
        self.assertEqual(lr.kvm_xcr0, "0x207")
        self.assertEqual(lr.exercised, ["x87", "sse", "avx", "pkru"])
        data = lr.to_json()
        self.assertEqual(data["kernel"]["release"], "6.12.117+deb12-amd64")
        self.assertEqual(data["cpu_model"], "QEMU TCG CPU version 2.5+")
        self.assertEqual(data["tier"], "lab-tcg")

    def test_failed_check_is_exit_1(self):
        lr = judge(channel_with(FAILING, rc=1))
        self.assertEqual(lr.instances[0].verdict, V.FAIL)
        self.assertEqual(lr.exit_code, 1)

    def test_warning_while_a_test_ran_fails_that_test(self):
        lr = judge(channel_with(PASSING, rc=0, dmesg=WARNING))
        i = lr.instances[0]
        self.assertEqual(i.verdict, V.FAIL)
        self.assertEqual(i.splats[0].test, "kvmfpu_swap_test")
        self.assertTrue(any("xfd_validate_state" in d for d in i.diagnostics))
        self.assertEqual(lr.exit_code, 1)

    def test_boot_panic_is_a_lab_error_with_the_console_tail(self):
        lr = judge("", (DATA / "boot_panic.console").read_text(), how="exited")
        self.assertIn("panicked before /init", lr.lab_error)
        self.assertIn("Unable to mount root fs", lr.lab_error)
        self.assertEqual(lr.instances[0].verdict, V.INTERRUPTED)
        self.assertEqual(lr.boot_splats, [])  # not a KVM verdict
        self.assertEqual(lr.exit_code, 2)
        self.assertTrue(any("Kernel panic" in ln for ln in lr.console_tail))

    def test_boot_hang_is_a_lab_error(self):
        lr = judge("", "[ 0.5] Booting...\n", how="boot-timeout")
        self.assertIn("boot hang", lr.lab_error)
        self.assertEqual(lr.exit_code, 2)

    def test_kernel_oops_inside_a_test_fails_it(self):
        lr = judge((DATA / "oops_during_test.channel").read_text(),
                   (DATA / "oops_during_test.console").read_text(), how="panic")
        i = lr.instances[0]
        self.assertEqual(i.verdict, V.FAIL)
        self.assertIn("NULL pointer", i.splats[0].title)
        self.assertEqual(lr.exit_code, 1)

    def test_guest_hang_inside_a_test_without_splat_is_an_error(self):
        lr = judge((DATA / "oops_during_test.channel").read_text(), "", how="test-timeout")
        self.assertEqual(lr.instances[0].verdict, V.ERROR)
        self.assertIn("kvmfpu_swap_test", lr.lab_error)
        self.assertEqual(lr.exit_code, 2)

    def test_tests_after_the_guest_died_were_not_run(self):
        second = inst("kvmfpu_other_test")
        lr = judge((DATA / "oops_during_test.channel").read_text(),
                   (DATA / "oops_during_test.console").read_text(), how="panic",
                   instances=[inst(), second])
        self.assertEqual(lr.instances[1].verdict, V.INTERRUPTED)

    def test_guest_timeout_of_a_program(self):
        ch = channel_with("TAP version 13\n1..1\n#  RUN  swap.max.guest_image ...\n", rc=137)
        ch = ch.replace("uptime=4.0", "uptime=130.0")
        i = judge(ch).instances[0]
        self.assertTrue(i.outcome.timed_out)
        self.assertEqual(i.verdict, V.FAIL)  # as on the host (runner.evaluate)

    def test_missing_dev_kvm_is_a_lab_error(self):
        ch = (f"{P} begin kernel=k lab=tcg\n{P} module-error name=kvm-amd\n"
              f"{P} lab-error msg=/dev/kvm does not exist after loading the KVM modules\n"
              f"{P} done\n")
        lr = judge(ch)
        self.assertIn("/dev/kvm does not exist", lr.lab_error)
        self.assertEqual(lr.exit_code, 2)

    def test_known_emulator_boot_noise_is_ignored_only_at_boot(self):
        noise = (DATA / "bochs_boot_warning.dmesg").read_text()
        ch = channel_with(PASSING).replace(
            f"{P} dmesg-begin name=@boot\n", f"{P} dmesg-begin name=@boot\n{noise}")
        lr = judge(ch, lab="bochs")
        self.assertEqual(lr.boot_splats, [])
        self.assertEqual(len(lr.ignored_splats), 1)
        self.assertEqual(lr.exit_code, 0)
        # the same splat while a test runs counts
        lr = judge(channel_with(PASSING, dmesg=noise), lab="bochs")
        self.assertEqual(lr.instances[0].verdict, V.FAIL)
        # and in a lab that does not list it, it counts at boot too
        lr = judge(ch, lab="tcg")
        self.assertEqual(len(lr.boot_splats), 1)
        self.assertEqual(lr.exit_code, 1)

    def test_splat_at_boot_fails_the_run(self):
        ch = channel_with(PASSING).replace(
            f"{P} dmesg-begin name=@boot\n", f"{P} dmesg-begin name=@boot\n{WARNING}")
        lr = judge(ch)
        self.assertEqual(lr.boot_splats[0].test, "@boot")
        self.assertEqual(lr.exit_code, 1)


class RunRecordTest(unittest.TestCase):
    def test_lab_run_as_a_runner_record(self):
        from runner.lab import results
        lr = judge(channel_with(PASSING, dmesg=WARNING))
        run = results.run_record(lr, "lab-tcg-x", "lab", Path("/nonexistent"), 7.0)
        self.assertEqual(run["host"]["tier"], "lab-tcg")
        self.assertEqual(run["host"]["kvm_supported_xcr0"], "0x207")
        [e] = run["instances"]
        self.assertEqual((e["status"], e["verdict"]), ("done", V.FAIL))
        self.assertEqual(e["exercised"], ["x87", "sse", "avx"])
        self.assertEqual(run["kernel_log"]["splats"][0]["instances"], ["kvmfpu_swap_test"])
        from runner import runstate
        self.assertEqual(runstate.summarize(run)["exit_code"], 1)


if __name__ == "__main__":
    unittest.main()
