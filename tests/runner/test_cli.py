"""The command line: list, and the lab commands (lab, bisect) as typed requests."""
from __future__ import annotations

import io
import json
import subprocess
import tempfile
import unittest
from contextlib import redirect_stderr
from pathlib import Path
from unittest import mock

from runner import cli
from tests.runner.helpers import PROGRAM, TempTree


class ListCommand(TempTree):
    def test_list_programs_and_configs(self) -> None:
        self.variants_profile("p", ["pass"])
        proc = self.kvmfpu("list", "--configs", str(self.configs), "--bin", str(self.bin))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"program {PROGRAM} ({self.bin / PROGRAM}; options: seed rounds round "
                      "xcr0)", proc.stdout)
        self.assertIn("  fixture solo: variants (none); tests alone", proc.stdout)
        self.assertIn("profiles: p", proc.stdout)

    def test_list_reports_invalid_configs(self) -> None:
        self.profile("bad", f'[[run]]\nprogram = "{PROGRAM}"\ntests = ["nope"]\n')
        proc = self.kvmfpu("list", "--configs", str(self.configs), "--bin", str(self.bin))
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown test 'nope'", proc.stderr)

    def test_list_profile_prints_commands(self) -> None:
        self.variants_profile("p", ["pass", "fail"], "timeout = 9")
        proc = self.kvmfpu("list", "--configs", str(self.configs), "--bin", str(self.bin),
                           "--profile", "p")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.splitlines(),
                         [f"{PROGRAM}.pass\t9s\t{PROGRAM} -v pass",
                          f"{PROGRAM}.fail\t9s\t{PROGRAM} -v fail"])


class BadInput(TempTree):
    """Bad input is one line on stderr and exit 2, before anything is written."""

    def one_line_exit_2(self, proc: subprocess.CompletedProcess[str], *words: str) -> None:
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        for w in words:
            self.assertIn(w, proc.stderr)

    def run_args(self, *extra: str) -> list[str]:
        return ["run", "--profile", "ok", "--configs", str(self.configs), "--bin",
                str(self.bin), "--kmsg", str(self.kmsg), "--kvm-xcr0", "0xe7", *extra]

    def test_run_id_is_a_plain_name(self) -> None:
        self.variants_profile("ok", ["pass"])
        nest = self.root / "res" / "deeper"
        for bad in ("..", ".", "", "a/b", "../x", "latest", ".hidden"):
            proc = self.kvmfpu(*self.run_args("--results", str(nest), "--kvm-dev",
                                              str(self.kvm_dev), "--run-id", bad))
            self.one_line_exit_2(proc, "--run-id")
        self.assertFalse((self.root / "res").exists())   # nothing was written anywhere

    def test_results_root_that_is_a_file(self) -> None:
        self.variants_profile("ok", ["pass"])
        (self.root / "file").write_text("")
        proc = self.kvmfpu(*self.run_args("--results", str(self.root / "file"), "--kvm-dev",
                                          str(self.kvm_dev)))
        self.one_line_exit_2(proc, "not a directory")

    def test_no_kvm_device_is_refused_before_the_run(self) -> None:
        self.variants_profile("ok", ["pass"])
        proc = self.kvmfpu(*self.run_args("--results", str(self.results), "--kvm-dev",
                                          str(self.root / "no-kvm")))
        self.one_line_exit_2(proc, "no-kvm does not exist")
        self.assertFalse(self.results.exists())

    def test_no_kvm_access_names_the_reason(self) -> None:
        from runner import run
        with mock.patch("os.open", side_effect=PermissionError(13, "Permission denied")):
            with self.assertRaises(run.SetupError) as cm:
                run.check_kvm_dev("/dev/kvm")
        self.assertIn("no read/write access to /dev/kvm", str(cm.exception))

    def test_parallel_missing_is_refused_before_the_run(self) -> None:
        self.variants_profile("ok", ["pass"])
        self.env["PATH"] = str(self.root / "empty-path")
        proc = self.kvmfpu(*self.run_args("--results", str(self.results), "--kvm-dev",
                                          str(self.kvm_dev), "--via", "parallel"))
        self.one_line_exit_2(proc, "GNU parallel is not installed")
        self.assertFalse(self.results.exists())

    def test_corrupt_or_foreign_run_json(self) -> None:
        good = {"format": "kvmfpu-run/1", "run_id": "g", "profile": "p", "status": "complete",
                "host": {}, "kernel_log": {"splats": []},
                "instances": [{"id": "i", "key": "i", "status": "done", "verdict": "pass",
                               "tests": []}]}
        bad = {"notjson": "{\"format\": ", "list": "[1, 2]", "foreign": '{"a": 1}',
               "noinst": json.dumps(dict(good, instances=None)),
               "badinst": json.dumps(dict(good, instances=[{"id": 1}])),
               "badtest": json.dumps(dict(good, instances=[dict(good["instances"][0],
                                                                tests=[{"x": 1}])])),
               "binary": "\udcff"}
        (self.root / "good.json").write_text(json.dumps(good))
        for name, text in bad.items():
            path = self.root / f"{name}.json"
            path.write_bytes(text.encode(errors="surrogateescape"))
            for args in (("report", str(path)), ("compare", str(self.root / "good.json"),
                                                 str(path)),
                         ("compare", str(path), str(self.root / "good.json"))):
                with self.subTest(name=name, cmd=args[0]):
                    self.one_line_exit_2(self.kvmfpu(*args), str(path))


class LabCommands(unittest.TestCase):
    """`lab`, `bisect` and `bisect-step` are commands of the one CLI, each a typed request."""

    def test_lab_is_run_with_a_lab_and_its_test_items(self) -> None:
        from runner import run
        with mock.patch.object(run, "execute", return_value=0) as execute:
            self.assertEqual(cli.main(["lab", "--lab", "tcg", "--test", "kvmfpu_swap_test -v avx",
                                       "--results", "/tmp/x/r1", "--bin-dir", "/s"]), 0)
        [req], _ = execute.call_args
        self.assertEqual((req.lab, req.tests, req.results, req.run_id, req.bin_dir),
                         ("tcg", ["kvmfpu_swap_test -v avx"], Path("/tmp/x"), "r1", Path("/s")))

    def test_run_with_a_lab_boots_the_default_kernel_with_the_programs_of_make(self) -> None:
        req = cli.request(cli.parser().parse_args(["run", "--lab", "bochs", "--profile",
                                                   "check", "--require-exercised"]))
        self.assertEqual((req.lab, req.profile, req.require_exercised), ("bochs", "check", True))
        self.assertEqual(req.bin_dir, cli.DEFAULT_BIN)
        self.assertEqual(req.kernel, cli.KernelSpec())

    def test_every_program_is_every_kvm_test_not_the_unit_tests(self) -> None:
        """`lab` with no --test boots the KVM test programs; the library's unit tests
        (kvmfpu_unit_*, no /dev/kvm) cost the bochs lab a minute and checked no KVM code."""
        with tempfile.TemporaryDirectory() as d:
            for name in ("kvmfpu_swap_test", "kvmfpu_xfd_test", "kvmfpu_unit_diff_test",
                         "kvmfpu_swap_bench", "kvmfpu_verdict_fixture"):
                (Path(d) / name).write_text("")
            req = cli.request(cli.parser().parse_args(["lab", "--lab", "bochs", "--bin", d]))
        self.assertEqual(req.tests, ["kvmfpu_swap_test", "kvmfpu_xfd_test"])

    def test_kernel_without_a_lab_is_bad_input(self) -> None:
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(cli.main(["run", "--kernel", "/boot/vmlinuz"]), 2)
        self.assertIn("need --lab", err.getvalue())

    def test_bisect_step_gets_a_typed_request(self) -> None:
        from runner.lab import bisect
        with mock.patch.object(bisect, "run_step", return_value=125) as step:
            self.assertEqual(cli.main(["bisect", "step", "--lab", "tcg", "--kernel-tree", "/t",
                                       "--test", "kvmfpu_swap_test"]), 125)
        [req], _ = step.call_args
        self.assertIsInstance(req, bisect.BisectRequest)
        self.assertEqual((req.tree, req.run.lab, req.run.tests),
                         (Path("/t"), "tcg", ["kvmfpu_swap_test"]))


if __name__ == "__main__":
    unittest.main()
