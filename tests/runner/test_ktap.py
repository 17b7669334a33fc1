"""KTAP parsing, including malformed and truncated output, and instance verdicts."""
from __future__ import annotations

import signal
import unittest

from runner import evaluate, ktap, verdicts as V
from runner.evaluate import Outcome

GOOD = """Random seed: 0x6b8b4567
TAP version 13
1..3
# Starting 3 tests from 1 test cases.
#  RUN           swap.avx.guest_image ...
# kvmfpu-env: kvm_xcr0=0xe7 host_xcr0=0x2e7 guest_xcr0=0x7 kvm_xsave_size=4096 tier=host
# kvmfpu-exercised: components=x87,sse,avx
#            OK  swap.avx.guest_image
ok 1 swap.avx.guest_image
#  RUN           swap.avx.host_regs ...
# kvmfpu-exercised: components=x87,sse
# kvmfpu-layout: component=avx offset=576 size=256
# ymm3.hi byte 5: expected 0x55, actual 0xaa
# kvmfpu-mismatch: check=host_regs component=avx reg=ymm3.hi offset=0x2a0 size=2 first_byte=1 expected=0x0055 actual=0x00aa
# kvmfpu-replay: args=--seed 0x1 --round 2 -r swap.avx.host_regs
#          FAIL  swap.avx.host_regs
not ok 2 swap.avx.host_regs
#  RUN           swap.avx.init_state ...
#      SKIP      no AVX
ok 3 swap.avx.init_state # SKIP no AVX in guest CPUID
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
"""


class Parse(unittest.TestCase):
    def test_good(self) -> None:
        doc = ktap.parse(GOOD)
        self.assertEqual(doc.problems, [])
        self.assertEqual(doc.plan, 3)
        self.assertEqual([t.name for t in doc.tests],
                         ["swap.avx.guest_image", "swap.avx.host_regs", "swap.avx.init_state"])
        self.assertEqual([evaluate.test_verdict(t) for t in doc.tests], [V.PASS, V.FAIL, V.SKIP])
        self.assertEqual(doc.tests[2].reason, "no AVX in guest CPUID")
        self.assertEqual(evaluate.exercised(doc.tests[0]), ["x87", "sse", "avx"])
        mm = doc.tests[1].kind("mismatch")[0]
        self.assertEqual((mm["reg"], mm["expected"], mm["actual"]), ("ymm3.hi", "0x0055", "0x00aa"))
        self.assertEqual(doc.tests[1].kind("replay")[0]["args"],
                         "--seed 0x1 --round 2 -r swap.avx.host_regs")
        self.assertEqual(doc.other_lines, 1)
        self.assertIn("pass:1", doc.totals or "")

    def test_exercised_none_is_no_component(self) -> None:
        # kvmfpu_print_exercised(0) prints "components=none" (e.g. xfd.*.msrs): that is an
        # empty list, not a component called "none" in the run's summary.
        doc = ktap.parse("TAP version 13\n1..1\n#  RUN           xfd.first_write.msrs ...\n"
                         "# kvmfpu-exercised: components=none\n"
                         "#            OK  xfd.first_write.msrs\nok 1 xfd.first_write.msrs\n")
        self.assertEqual(evaluate.exercised(doc.tests[0]), [])

    def test_record_with_message(self) -> None:
        rec = ktap.parse_record("# kvmfpu-error: msg=KVM_CREATE_VM failed: x=y z")
        self.assertEqual(rec, {"kind": "error", "msg": "KVM_CREATE_VM failed: x=y z"})
        self.assertIsNone(ktap.parse_record("# plain comment"))

    def test_truncated_inside_a_test(self) -> None:
        text = GOOD.split("#  RUN           swap.avx.init_state")[0] + \
            "#  RUN           swap.avx.init_state ...\n# half a li"
        doc = ktap.parse(text)
        self.assertTrue(doc.truncated)
        self.assertFalse(doc.tests[-1].complete)
        self.assertTrue(any("ends inside test 'swap.avx.init_state'" in p for p in doc.problems))
        self.assertTrue(any("plan 1..3 but only 2" in p for p in doc.problems))

    def test_truncated_before_plan(self) -> None:
        doc = ktap.parse("TAP version 13\n")
        self.assertTrue(any("no plan line" in p for p in doc.problems))

    def test_empty_and_garbage(self) -> None:
        for text in ("", "\x00\x01garbage\nmore garbage\n", "Segmentation fault\n"):
            doc = ktap.parse(text)
            self.assertEqual(doc.tests, [])
            self.assertTrue(any("no KTAP" in p for p in doc.problems))

    def test_malformed_result_and_numbering(self) -> None:
        doc = ktap.parse("TAP version 13\n1..2\nok one two\nnot okay\nok 3 c\n")
        self.assertTrue(any("result number 3, expected 2" in p for p in doc.problems), doc.problems)
        doc = ktap.parse("KTAP version 1\n1..1\nok\n")
        self.assertEqual(doc.problems, [])
        self.assertEqual(doc.tests[0].name, "")

    def test_second_header_and_plan(self) -> None:
        doc = ktap.parse("TAP version 13\n1..1\nok 1 a\nTAP version 13\n1..1\n")
        self.assertEqual(len(doc.problems), 2, doc.problems)

    def test_nested_lines_stay_in_block(self) -> None:
        doc = ktap.parse("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 sub\nok 1 top\n")
        self.assertEqual(doc.problems, [])
        self.assertEqual([t.name for t in doc.tests], ["top"])

    def test_bail_out(self) -> None:
        doc = ktap.parse("TAP version 13\n1..2\nBail out! no /dev/kvm\n")
        self.assertEqual(doc.bail_out, "no /dev/kvm")
        self.assertTrue(doc.truncated)


def verdict(text: str, **outcome: object) -> tuple[str, list[str]]:
    out = Outcome(**{"returncode": 0, **outcome})  # type: ignore[arg-type]
    return evaluate.evaluate(ktap.parse(text), out, 10)


class Verdicts(unittest.TestCase):
    def test_fail_wins(self) -> None:
        v, diags = verdict(GOOD, returncode=1)
        self.assertEqual(v, V.FAIL)
        self.assertIn("swap.avx.host_regs: ymm3.hi byte 5: expected 0x55, actual 0xaa", diags)

    def test_error_line_is_error_not_failure(self) -> None:
        text = ("TAP version 13\n1..1\n#  RUN           f.v.t ...\n"
                "# kvmfpu-error: msg=cannot allocate guest memory\nnot ok 1 f.v.t\n")
        v, diags = verdict(text, returncode=1)
        self.assertEqual(v, V.ERROR)
        self.assertTrue(any("cannot allocate guest memory" in d for d in diags))

    def test_all_skipped(self) -> None:
        v, _ = verdict("TAP version 13\n1..1\nok 1 a # SKIP no AVX\n", returncode=4)
        self.assertEqual(v, V.SKIP)

    def test_truncated_is_error(self) -> None:
        v, diags = verdict("TAP version 13\n1..3\nok 1 a\n", returncode=0)
        self.assertEqual(v, V.ERROR)
        self.assertTrue(any("truncated" in d for d in diags))

    def test_exit_2(self) -> None:
        v, _ = verdict("# kvmfpu-error: msg=bad --xcr0\n", returncode=2)
        self.assertEqual(v, V.ERROR)

    def test_exit_1_without_failure(self) -> None:
        v, diags = verdict("TAP version 13\n1..1\nok 1 a\n", returncode=1)
        self.assertEqual(v, V.ERROR)
        v, diags = verdict("Usage: prog [-h|-l]\n", returncode=1)
        self.assertEqual(v, V.ERROR)
        self.assertIn("no KTAP output (exit status 1)", diags)

    def test_timeout_and_signal(self) -> None:
        text = "TAP version 13\n1..2\nok 1 a\n#  RUN           f.v.b ...\n"
        v, diags = verdict(text, returncode=None, timed_out=True)
        self.assertEqual(v, V.FAIL)
        self.assertIn("timed out after 10 s while 'f.v.b' ran; its processes killed", diags)
        v, diags = verdict(text, returncode=None, signal=signal.SIGSEGV)
        self.assertEqual(v, V.FAIL)
        self.assertIn("program killed by SIGSEGV while 'f.v.b' ran", diags)

    def test_interrupted(self) -> None:
        v, _ = verdict("TAP version 13\n", returncode=None, interrupted=True)
        self.assertEqual(v, V.INTERRUPTED)

    def test_nothing_ran(self) -> None:
        v, diags = verdict("TAP version 13\n1..0\n", returncode=0)
        self.assertEqual(v, V.ERROR)

    def test_run_exit_codes(self) -> None:
        self.assertEqual(V.run_exit_code([V.PASS, V.SKIP]), 0)
        self.assertEqual(V.run_exit_code([V.PASS, V.FAIL, V.ERROR]), 1)
        self.assertEqual(V.run_exit_code([V.PASS, V.ERROR]), 2)
        self.assertEqual(V.run_exit_code([V.SKIP, V.SKIP]), 2)
        self.assertEqual(V.run_exit_code([]), 2)
        self.assertEqual(V.run_exit_code([V.PASS], kernel_splats=1), 1)
        self.assertEqual(V.run_exit_code([V.PASS], cut_short=True), 2)


if __name__ == "__main__":
    unittest.main()
