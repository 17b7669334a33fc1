"""kvmfpu_swap_bench's input: refused with one line and exit 2 before anything is measured
(a bad --json path, bad numbers, no /dev/kvm), and the --json path checked first, so that a
long measurement never ends in "cannot write". Needs the programs built (make)."""
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
BENCH = TOP / "out" / "bin" / "kvmfpu_swap_bench"
EXIT_ERROR = 2


@unittest.skipUnless(BENCH.exists(), f"{BENCH} not built (run make)")
class BenchInput(unittest.TestCase):
    def refused(self, args: list[str], words: str) -> None:
        p = subprocess.run([str(BENCH), *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, EXIT_ERROR, f"{args}: exit {p.returncode}\n{p.stderr}")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"{args}: want one line on stderr, got {lines}")
        self.assertIn(words, lines[0])
        self.assertNotIn("round trips/s", p.stdout, f"{args}: it measured anyway")

    def test_json_in_a_missing_directory(self) -> None:
        self.refused(["--json", "/nonexistent/bench.json"], "--json /nonexistent/bench.json")

    def test_json_is_a_directory(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.refused(["--json", d], "is a directory")

    @unittest.skipIf(os.geteuid() == 0, "root writes into a read-only directory")
    def test_json_in_a_read_only_directory(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o555)
            self.refused(["--json", f"{d}/bench.json"], "cannot create")

    def test_bad_numbers(self) -> None:
        self.refused(["--repeats", "0"], "--repeats 0")
        self.refused(["--repeats", "5x"], "--repeats 5x")
        self.refused(["--seconds", "-1"], "--seconds -1")
        self.refused(["--seconds"], "usage")
        self.refused(["--nope"], "usage")

    @unittest.skipIf(os.path.exists("/dev/kvm"), "this machine has /dev/kvm")
    def test_no_dev_kvm_is_refused_not_skipped(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.refused(["--json", f"{d}/bench.json"], "/dev/kvm does not exist")
            self.assertEqual(os.listdir(d), [], "a temporary --json file was left behind")


if __name__ == "__main__":
    unittest.main()
