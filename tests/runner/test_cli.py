"""The command line: list, lab/bisect dispatch."""
from __future__ import annotations

import io
import unittest
from contextlib import redirect_stderr
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


class LabDispatch(unittest.TestCase):
    def test_missing_lab_module_is_a_clear_error(self) -> None:
        err = io.StringIO()
        with mock.patch("importlib.util.find_spec", return_value=None), redirect_stderr(err):
            self.assertEqual(cli.main(["lab", "--lab", "tcg"]), 2)
        self.assertIn("runner/lab/cli.py does not exist", err.getvalue())

    def test_lab_and_bisect_go_to_lab_cli(self) -> None:
        fake = mock.Mock()
        fake.main.return_value = 125
        with mock.patch("importlib.util.find_spec", return_value=object()), \
                mock.patch("importlib.import_module", return_value=fake):
            self.assertEqual(cli.main(["bisect", "step", "--x"]), 125)
        fake.main.assert_called_once_with(["bisect", "step", "--x"])


if __name__ == "__main__":
    unittest.main()
