"""Splat detection and the verdicts of lab runs, on canned console and channel logs: the lab
executor (runner/lab/run.py) is fed them as a boot would, and the runner records what it
reports (runner/run.py), as in `kvmfpu run --lab`."""
from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from runner import run as runner_run, runstate, verdicts as V
from runner import splats
from runner.lab import boot, labs, protocol, run
from runner.lab.boot import BootResult
from runner.lab.kernel import Kernel
from runner.plan import Instance

DATA = Path(__file__).parent / "data"
P = protocol.PREFIX


def inst(name: str = "kvmfpu_swap_test", timeout: float = 120) -> Instance:
    return Instance(id=name, program="kvmfpu_swap_test", args=[], variant=None, tests=[],
                    params={}, timeout=timeout)


class Judged:
    """A lab run's record after the executor ran `instances` on canned guest output."""

    def __init__(self, run_: dict[str, Any], info: run.LabInfo, starts: list[str]):
        self.run, self.info, self.starts = run_, info, starts
        self.summary = runstate.summarize(run_)
        self.exit_code = self.summary["exit_code"]
        self.lab_error = info.error
        self.by_id = {e["id"]: e for e in run_["instances"]}
        self.verdicts = [e["verdict"] for e in run_["instances"]]


def judge(channel: str, console: str = "", how: str = "done", lab: str = "tcg",
          instances: list[Instance] | None = None,
          ignore_boot_splats: list[str] | None = None) -> Judged:
    """Boot "output" given line by line to the executor's poll, as it grows."""
    insts = instances or [inst()]
    lab_ = labs.load(lab)
    if ignore_boot_splats is not None:
        lab_ = dataclasses.replace(lab_, ignore_boot_splats=ignore_boot_splats)
    result = BootResult(console, channel, how, 0, 5.0, "")

    def fake_boot(*_a: Any, on_poll=None, stop=None, **_k: Any) -> BootResult:
        lines = channel.splitlines(keepends=True)
        for n in range(len(lines) + 1):
            on_poll("".join(lines[:n]), console)
        return result

    with tempfile.TemporaryDirectory() as d:
        logs = Path(d) / "logs"
        logs.mkdir()
        ex = run.Executor(lab_, Kernel(Path("/boot/vmlinuz")), log=lambda s: None)
        rec = runstate.new_run("r", "p", "", run.host_record(lab_), insts, "/tests", {}, {})
        starts: list[str] = []

        def on_start(i: Instance) -> None:
            starts.append(i.id)
            runstate.record_start(rec, i.id)

        with mock.patch.object(boot, "run", fake_boot), \
                mock.patch.object(run.Executor, "_prepare", return_value=([], Path(d), 1.0)):
            ex(insts, Path(d), logs, 1, on_start,
               lambda i, o: runner_run.record_finish(rec, logs, i, o), threading.Event())
        run.record(rec, ex.info, ex.kernel)
    return Judged(rec, ex.info, starts)


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
        j = judge((DATA / "tcg_pass.channel").read_text(),
                  (DATA / "tcg_pass.console").read_text())
        self.assertIsNone(j.lab_error)
        self.assertEqual(j.verdicts, [V.PASS])
        self.assertEqual(j.exit_code, 0)
        host = j.run["host"]
        self.assertEqual(host["kvm_supported_xcr0"], "0x207")
        self.assertEqual(j.summary["exercised"], ["x87", "sse", "avx", "pkru"])
        self.assertEqual(host["kernel"], "6.12.117+deb12-amd64")
        self.assertEqual(host["cpu"]["model"], "QEMU TCG CPU version 2.5+")
        self.assertEqual(host["tier"], "lab-tcg")
        self.assertEqual(host["lab"]["quirks"], labs.load("tcg").quirk_names)

    def test_failed_check_is_exit_1(self):
        j = judge(channel_with(FAILING, rc=1))
        self.assertEqual(j.verdicts, [V.FAIL])
        self.assertEqual(j.exit_code, 1)

    def test_warning_while_a_test_ran_fails_that_test(self):
        j = judge(channel_with(PASSING, rc=0, dmesg=WARNING))
        e = j.by_id["kvmfpu_swap_test"]
        self.assertEqual(e["verdict"], V.FAIL)
        self.assertEqual(j.run["kernel_log"]["splats"][0]["instances"], ["kvmfpu_swap_test"])
        self.assertTrue(any("xfd_validate_state" in d for d in e["diagnostics"]))
        self.assertEqual(j.exit_code, 1)

    def test_instances_are_reported_as_the_guest_reports_them(self):
        """Each is started when the guest begins it and finished, with its verdict final,
        before the next begins: not judged after the boot."""
        second = inst("kvmfpu_other_test")
        ch = channel_with(PASSING, dmesg=WARNING)
        ch = ch.replace(f"{P} done\n", "") + channel_with(PASSING, name="kvmfpu_other_test") \
            .split(f"{P} dmesg-end name=@boot\n", 1)[1]
        order: list[str] = []
        orig = runner_run.record_finish

        def spy(rec, logs, i, o):
            verdict = orig(rec, logs, i, o)
            other = runstate.find(rec, "kvmfpu_other_test")["status"]
            order.append(f"finish {i.id} {verdict}; other {other}")
        with mock.patch.object(runner_run, "record_finish", spy):
            j = judge(ch, instances=[inst(), second])
        self.assertEqual(j.starts, ["kvmfpu_swap_test", "kvmfpu_other_test"])
        self.assertEqual(order, ["finish kvmfpu_swap_test fail; other pending",
                                 "finish kvmfpu_other_test pass; other done"])

    def test_boot_panic_is_a_lab_error_with_the_console_tail(self):
        j = judge("", (DATA / "boot_panic.console").read_text(), how="exited")
        self.assertIn("panicked before /init", j.lab_error)
        self.assertIn("Unable to mount root fs", j.lab_error)
        self.assertIn(j.lab_error, j.run["error"])
        self.assertEqual(j.verdicts, [V.INTERRUPTED])
        self.assertEqual(j.run["kernel_log"]["splats"], [])  # not a KVM verdict
        self.assertEqual(j.exit_code, 2)
        self.assertTrue(any("Kernel panic" in ln for ln in j.run["host"]["lab"]["console_tail"]))

    def test_a_lab_that_cannot_boot_runs_nothing_and_says_why(self):
        """A missing module or binary: every instance is reported, interrupted."""
        with mock.patch.object(run.Executor, "_prepare",
                               side_effect=run.LabError("kvm-amd.ko not found")), \
                tempfile.TemporaryDirectory() as d:
            logs = Path(d) / "logs"
            logs.mkdir()
            ex = run.Executor(labs.load("tcg"), Kernel(Path("/boot/vmlinuz")))
            rec = runstate.new_run("r", "p", "", run.host_record(ex.lab), [inst()], "/t", {},
                                   {})
            ex([inst()], Path(d), logs, 1, lambda i: runstate.record_start(rec, i.id),
               lambda i, o: runner_run.record_finish(rec, logs, i, o), threading.Event())
            run.record(rec, ex.info, ex.kernel)
        self.assertEqual(ex.error, "kvm-amd.ko not found")
        [e] = rec["instances"]
        self.assertEqual(e["verdict"], V.INTERRUPTED)
        self.assertTrue(any("kvm-amd.ko not found" in d for d in e["diagnostics"]))
        self.assertEqual(runstate.summarize(rec)["exit_code"], 2)

    def test_a_relative_results_dir_gives_the_emulator_absolute_paths(self):
        """`lab --results results/x`: the emulator runs in that directory and was given
        paths relative to the checkout (Bochs: "can not open file 'results/x/bochs.cmds'")."""
        seen: dict[str, Any] = {}

        def fake_boot(cmd, workdir, console, channel, *_a: Any, cwd=None, **_k: Any):
            seen.update(workdir=workdir, console=console, channel=channel, cwd=cwd)
            return BootResult("", "", "exited", 1, 0.1, "")

        with tempfile.TemporaryDirectory() as d, contextlib.chdir(d):
            Path("r/logs").mkdir(parents=True)
            ex = run.Executor(labs.load("bochs"), Kernel(Path("/boot/vmlinuz")),
                              log=lambda s: None)
            with mock.patch.object(boot, "run", fake_boot), \
                    mock.patch.object(run.Executor, "_prepare", autospec=True,
                                      side_effect=lambda _s, _i, _b, w: ([], w, 1.0)):
                ex([inst()], Path("/t"), Path("r/logs"), 1, lambda i: None,
                   lambda i, o: None, threading.Event())
        self.assertTrue(all(Path(v).is_absolute() for v in seen.values()), seen)

    def test_a_marker_after_bytes_the_uart_dropped_still_counts(self):
        """Seen in the bochs lab under load: the end of a dmesg-end line lost, the done
        marker right after it on the same line. The plan finished: no lab error."""
        ch = channel_with(PASSING).replace(f"name=kvmfpu_swap_test\n{P} done",
                                           f"name=kvmfpu\0{P} done")
        self.assertIn("kvmfpu\0@@", ch)
        j = judge(ch)
        self.assertIsNone(j.lab_error)
        self.assertEqual((j.verdicts, j.exit_code), ([V.PASS], 0))

    def test_boot_hang_is_a_lab_error(self):
        j = judge("", "[ 0.5] Booting...\n", how="boot-timeout")
        self.assertIn("boot hang", j.lab_error)
        self.assertEqual(j.exit_code, 2)

    def test_kernel_oops_inside_a_test_fails_it(self):
        j = judge((DATA / "oops_during_test.channel").read_text(),
                  (DATA / "oops_during_test.console").read_text(), how="panic")
        self.assertEqual(j.verdicts, [V.FAIL])
        self.assertIn("NULL pointer", j.run["kernel_log"]["splats"][0]["line"])
        self.assertEqual(j.exit_code, 1)

    def test_guest_hang_inside_a_test_without_splat_is_an_error(self):
        j = judge((DATA / "oops_during_test.channel").read_text(), "", how="test-timeout")
        self.assertEqual(j.verdicts, [V.ERROR])
        self.assertIn("kvmfpu_swap_test", j.lab_error)
        self.assertEqual(j.exit_code, 2)

    def test_tests_after_the_guest_died_were_not_run(self):
        second = inst("kvmfpu_other_test")
        j = judge((DATA / "oops_during_test.channel").read_text(),
                  (DATA / "oops_during_test.console").read_text(), how="panic",
                  instances=[inst(), second])
        self.assertEqual(j.by_id["kvmfpu_other_test"]["verdict"], V.INTERRUPTED)
        self.assertTrue(any("never ran it" in d
                            for d in j.by_id["kvmfpu_other_test"]["diagnostics"]))

    def test_a_stopped_run_interrupts_the_running_program(self):
        j = judge((DATA / "oops_during_test.channel").read_text(), "", how="interrupted")
        self.assertEqual(j.verdicts, [V.INTERRUPTED])
        self.assertEqual(j.exit_code, 2)

    def test_guest_timeout_of_a_program(self):
        ch = channel_with("TAP version 13\n1..1\n#  RUN  swap.max.guest_image ...\n", rc=137)
        ch = ch.replace("uptime=4.0", "uptime=130.0")
        e = judge(ch).run["instances"][0]
        self.assertTrue(e["exit"]["timed_out"])
        self.assertEqual(e["verdict"], V.FAIL)  # as on the host (runner.evaluate)

    def test_missing_dev_kvm_is_a_lab_error(self):
        ch = (f"{P} begin kernel=k lab=tcg\n{P} module-error name=kvm-amd\n"
              f"{P} lab-error msg=/dev/kvm does not exist after loading the KVM modules\n"
              f"{P} done\n")
        j = judge(ch)
        self.assertIn("/dev/kvm does not exist", j.lab_error)
        self.assertEqual(j.exit_code, 2)

    def test_an_optional_module_that_fails_is_not_a_lab_error(self):
        ch = channel_with(PASSING).replace(
            f"{P} dmesg-begin name=@boot\n",
            f"{P} module-skipped name=aesni_intel\n{P} dmesg-begin name=@boot\n")
        j = judge(ch)
        self.assertIsNone(j.lab_error)
        self.assertEqual(j.exit_code, 0)

    def test_known_emulator_boot_noise_is_ignored_only_at_boot(self):
        # Bochs' CPU topology WARN, as Debian 6.12 gave it before the lab hid HT (bochs.toml)
        noise = (DATA / "bochs_boot_warning.dmesg").read_text()
        known = [r"at arch/x86/kernel/cpu/topology_common\.c:\d+ parse_legacy"]
        ch = channel_with(PASSING).replace(
            f"{P} dmesg-begin name=@boot\n", f"{P} dmesg-begin name=@boot\n{noise}")
        j = judge(ch, lab="bochs", ignore_boot_splats=known)
        self.assertEqual(j.run["kernel_log"]["splats"], [])
        self.assertEqual(len(j.run["host"]["lab"]["ignored_boot_splats"]), 1)
        self.assertEqual(j.exit_code, 0)
        # the same splat while a test runs counts
        j = judge(channel_with(PASSING, dmesg=noise), lab="bochs", ignore_boot_splats=known)
        self.assertEqual(j.verdicts, [V.FAIL])
        # and in a lab that does not list it, it counts at boot too
        j = judge(ch, lab="bochs")
        self.assertEqual(len(j.run["kernel_log"]["splats"]), 1)
        self.assertEqual(j.exit_code, 1)

    def test_splat_at_boot_fails_the_run(self):
        ch = channel_with(PASSING).replace(
            f"{P} dmesg-begin name=@boot\n", f"{P} dmesg-begin name=@boot\n{WARNING}")
        j = judge(ch)
        self.assertEqual(j.run["kernel_log"]["splats"][0]["instances"], ["@boot"])
        self.assertEqual(j.verdicts, [V.PASS])
        self.assertEqual(j.exit_code, 1)


class CompareTest(unittest.TestCase):
    def test_a_lab_run_and_a_host_run_compare_in_either_order(self):
        """Same planner ids, same record: `kvmfpu compare` takes a lab run against a host run
        of the same instances, either way round, and finds what changed."""
        from runner import compare
        from runner.evaluate import Outcome
        lab_run = judge(channel_with(PASSING)).run
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "kvmfpu_swap_test.log").write_text(FAILING)
            host_run = runstate.new_run("h", "p", "", {"tier": "host", "kernel": "6.1.0"},
                                        [inst()], "/bin", {}, {})
            runner_run.record_finish(host_run, Path(d), inst(), Outcome(returncode=1))
        for r in (lab_run, host_run):
            r["status"] = "complete"
        fwd, back = compare.compare(host_run, lab_run), compare.compare(lab_run, host_run)
        self.assertEqual(fwd["exit_code"], 0, compare.text(fwd))    # the lab fixed it
        self.assertEqual(back["exit_code"], 1, compare.text(back))  # the host broke it
        self.assertIn("swap.avx_xcrs.guest_image", compare.text(back))


if __name__ == "__main__":
    unittest.main()
