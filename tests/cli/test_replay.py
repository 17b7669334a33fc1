"""Replay lines are commands: what a failure prints after `# kvmfpu-replay: args=` must be
arguments the same program accepts and that select exactly the failed test.

No KVM failure can be produced here, so the formats are taken from the programs' sources
(each replay printf is one format string) and filled in with values of the right kind for
every test the program lists; the program then parses them with -l, which checks options,
values and selection like a real run and runs nothing.
"""
import re
import subprocess
import unittest
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
BIN = TOP / "out" / "bin"
PROGRAMS = ["kvmfpu_swap_test", "kvmfpu_xsave_uabi_test"]

# The conversions a replay format may use and what fills them in.
_VALUES = {"0x%llx": "0x1", "%u": "1"}
_NAME = re.compile(r"-r (\w+)\.(%s|\w+)\.(%s|\w+)$")


def replay_formats(source: Path) -> list[str]:
    """The format strings of the printf calls that print a replay line."""
    text = source.read_text()
    formats = []
    for call in re.findall(r"printf\((.*?)\);", text, re.S):
        literal = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', call))
        if literal.startswith("# kvmfpu-replay: args="):
            formats.append(literal.removeprefix("# kvmfpu-replay: args=").removesuffix("\\n"))
    return formats


def listed_tests(prog: Path) -> list[tuple[str, str, str]]:
    """(fixture, variant, test) for every test the program runs, from its -l."""
    p = subprocess.run([str(prog), "-l"], capture_output=True, text=True, timeout=30)
    fixture, variants, tests, out = "", [], [], []
    for line in p.stderr.splitlines() + ["-"]:
        if line.startswith("# FIXTURE"):
            continue
        if line.startswith("-"):
            out += [(fixture, v, t) for v in variants for t in tests]
            variants, tests = [], []
            continue
        cols = [line[:20].strip(), line[21:46].strip(), line[47:].strip()]
        fixture = cols[0] or fixture
        variants += [cols[1]] if cols[1] else []
        tests += [cols[2]] if cols[2] else []
    return out


def fill(fmt: str, fixture: str, variant: str, test: str) -> str | None:
    """`fmt` with values filled in for this test, or None if its -r is another test's."""
    m = _NAME.search(fmt)
    if not m or m.group(1) != fixture or m.group(3) not in ("%s", test):
        return None
    args = fmt[:m.start()] + f"-r {fixture}.{variant}.{test}"
    for conv, value in _VALUES.items():
        args = args.replace(conv, value)
    return args


class ReplayLines(unittest.TestCase):
    def test_every_replay_line_is_a_command(self) -> None:
        for name in PROGRAMS:
            prog, source = BIN / name, TOP / "selftests" / f"{name}.c"
            if not prog.exists():
                self.fail(f"{prog} not built (run make)")
            formats = replay_formats(source)
            self.assertTrue(formats, f"{source} prints no replay line")
            tests = listed_tests(prog)
            self.assertTrue(tests, f"{name} -l lists no tests")
            for fmt in formats:
                self.assertRegex(fmt, _NAME, f"{name}: '{fmt}' does not end in -r F.V.T")
                filled = [a for t in tests if (a := fill(fmt, *t)) is not None]
                self.assertTrue(filled, f"{name}: '{fmt}' names no test of the program")
                for args in filled:
                    with self.subTest(program=name, args=args):
                        self.assertNotIn("%", args, "a conversion without a known value")
                        p = subprocess.run([str(prog), *args.split(), "-l"],
                                           capture_output=True, text=True, timeout=30)
                        self.assertEqual(p.returncode, 0, f"{name} {args}: {p.stderr}")

    def test_the_fuzz_replay_names_its_round(self) -> None:
        formats = replay_formats(TOP / "selftests" / "kvmfpu_xsave_uabi_test.c")
        fuzz = [f for f in formats if f.endswith(".fuzz")]
        self.assertEqual(len(fuzz), 1, formats)
        self.assertIn("--rounds %u", fuzz[0])

    def test_the_swap_replay_names_the_round_and_an_explicit_xcr0(self) -> None:
        formats = replay_formats(TOP / "selftests" / "kvmfpu_swap_test.c")
        self.assertTrue(all("--round %u" in f for f in formats), formats)
        self.assertTrue(any("--xcr0 0x%llx" in f for f in formats), formats)


if __name__ == "__main__":
    unittest.main()
