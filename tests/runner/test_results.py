"""Results writing without running anything: run.json, KTAP, JUnit, HTML from a record."""
from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET

from runner import artifacts, kmsg, ktap, runstate
from runner.evaluate import Outcome
from runner.plan import Instance
from tests.runner.helpers import TempTree

LOG = """TAP version 13
1..2
#  RUN           swap.avx.guest_image ...
# \x1b[31mcolour\x1b[0m and a NUL \x00 from a confused program
# kvmfpu-exercised: components=x87,sse,avx
# kvmfpu-layout: component=avx offset=576 size=256
# kvmfpu-mismatch: check=guest_image component=avx reg=ymm0.hi offset=0x240 size=16 first_byte=0 expected=0x0102030405060708090a0b0c0d0e0f10 actual=0xff02030405060708090a0b0c0d0e0fff
not ok 1 swap.avx.guest_image
ok 2 swap.avx.host_regs # SKIP <no> & "AVX"
"""


def instances() -> list[Instance]:
    return [Instance(id=f"kvmfpu_swap_test.avx.seed={s}", program="kvmfpu_swap_test",
                     args=["--seed", str(s), "-v", "avx"], variant="avx", tests=[],
                     params={"seed": s}, timeout=5) for s in (1, 2)]


class Writing(TempTree):
    def make(self) -> tuple[runstate.Run, list[Instance]]:
        insts = instances()
        run = runstate.new_run("r1", "ci", "desc", {"kernel": "6.12.0", "tier": "host",
                                                    "kvm_supported_xcr0": "0xe7"},
                               insts, "/bin", {}, {})
        (self.root / "logs").mkdir()
        return run, insts

    def test_junit_counts_match_its_test_cases(self) -> None:
        run, insts = self.make()
        # a splat makes the instance fail as a whole: an extra "(instance)" test case
        runstate.record_finish(run, insts[0], Outcome(returncode=1, duration=0.5), LOG)
        splat = kmsg.Splat("WARNING: x", 0.0, [insts[1].id])
        runstate.record_finish(run, insts[1], Outcome(returncode=0, duration=0.5),
                               LOG.replace("not ok 1", "ok 1"), [splat])
        runstate.record_splats(run, [splat])
        artifacts.write_all(run, self.root)
        root = ET.parse(self.root / "junit.xml").getroot()
        totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
        for suite in root.iter("testsuite"):
            cases = suite.findall("testcase")
            want = {"tests": len(cases),
                    "failures": sum(c.find("failure") is not None for c in cases),
                    "errors": sum(c.find("error") is not None for c in cases),
                    "skipped": sum(c.find("skipped") is not None for c in cases)}
            got = {k: int(suite.get(k, "-1")) for k in want}
            self.assertEqual(got, want, suite.get("name"))
            for k in want:
                totals[k] += want[k]
        self.assertEqual({k: int(root.get(k, "-1")) for k in totals}, totals)
        self.assertEqual(totals["tests"], 2 + 3 + 1)   # 2, 2 + (instance), kernel-log

    def test_all_files_from_a_partial_run(self) -> None:
        run, insts = self.make()
        runstate.record_start(run, insts[0].id)
        (self.root / insts[0].id).write_text(LOG)
        runstate.record_finish(run, insts[0], Outcome(returncode=1, duration=0.5), LOG)
        (self.root / "logs" / f"{insts[0].id}.log").write_text(LOG)
        artifacts.write_all(run, self.root)
        self.assertEqual(sorted(p.name for p in self.root.glob(".*.tmp")), [])
        data = json.loads((self.root / "run.json").read_text())
        self.assertEqual(run.instances[insts[0].id].verdict, "fail")
        self.assertEqual(data["instances"][0]["verdict"], "fail")
        self.assertEqual(data["instances"][1]["status"], "pending")
        self.assertEqual(data["summary"]["counts"]["not_run"], 1)
        self.assertEqual(data["instances"][0]["exercised"], ["x87", "sse", "avx"])
        ET.parse(self.root / "junit.xml")                     # control characters dropped
        doc = ktap.parse((self.root / "results.ktap").read_text())
        self.assertEqual(doc.problems, [])
        html = (self.root / "report.html").read_text()
        self.assertNotRegex(html, r'(src|href)="(https?:)?//')  # no external assets
        self.assertIn("&lt;no&gt; &amp; &quot;AVX&quot;", html)  # escaped skip reason
        self.assertEqual(len(re.findall(r'class="diff"', html)), 2)  # bytes 0 and 15

    def test_splat_marks_instances(self) -> None:
        run, insts = self.make()
        splat = kmsg.Splat("BUG: oops", 0.0, [insts[0].id, "gone"])
        entry = runstate.record_finish(run, insts[0], Outcome(returncode=0),
                                       "TAP version 13\n1..1\nok 1 a\n", [splat])
        self.assertEqual(entry.verdict, "fail")
        self.assertIn("kernel log while running: BUG: oops", entry.diagnostics)


class KernelLog(TempTree):
    def test_reads_only_new_records_and_strips_kmsg_prefix(self) -> None:
        self.kmsg.write_text("4,1,1,-;WARNING: before the run\n")
        running = ["inst-a"]
        w = kmsg.Watcher(str(self.kmsg), lambda: running)
        w.start()
        self.assertIsNone(w.error)
        with open(self.kmsg, "a") as f:
            f.write("6,2,2,-;x86/fpu: xstate_offset[2]:  576\n"   # informational, no splat
                    "4,3,3,-;WARNING: CPU: 0 PID: 9 at arch/x86/kvm/x86.c:1 f+0x1/0x2\n")
            f.write("4,4,4,-;BUG: kernel NULL pointer dereference, address: 0")  # no newline yet
        time.sleep(0.5)
        running[:] = ["inst-b"]
        with open(self.kmsg, "a") as f:
            f.write("000\n")
        w.stop()
        self.assertEqual([s.line for s in w.splats],
                         ["WARNING: CPU: 0 PID: 9 at arch/x86/kvm/x86.c:1 f+0x1/0x2",
                          "BUG: kernel NULL pointer dereference, address: 0000"])
        self.assertEqual(w.splats[0].instances, ["inst-a"])
        self.assertEqual(len(w.lines), 3)

    def test_unreadable(self) -> None:
        w = kmsg.Watcher(str(self.root / "nope"), list)
        w.start()
        w.stop()
        self.assertIn("can't be read", w.error or "")


class ImagePicture(TempTree):
    def test_both_hex_byte_orders_give_the_same_bytes(self) -> None:
        from runner import xsave_svg
        exp = bytes(range(16))
        act = bytearray(exp)
        act[5], act[9] = 0xaa, 0xbb
        base = {"kind": "mismatch", "component": "sse", "reg": "xmm1", "offset": "0xb0",
                "size": "16", "first_byte": "5"}
        image_order = dict(base, expected="0x" + exp.hex(), actual="0x" + bytes(act).hex())
        msb_first = dict(base, expected="0x" + exp[::-1].hex(),
                         actual="0x" + bytes(act)[::-1].hex())      # lib/ximage.c
        want = [(0xb5, 5, 0xaa), (0xb9, 9, 0xbb)]
        self.assertEqual(xsave_svg.byte_diffs(image_order), want)
        self.assertEqual(xsave_svg.byte_diffs(msb_first), want)
        imgs = xsave_svg.images([{"kind": "layout", "component": "sse", "offset": "160",
                                  "size": "256"}, msb_first])
        svg = xsave_svg.render(imgs[0])
        self.assertIn("xmm1 byte +9 (offset 0xb9): expected 0x09, actual 0xbb", svg)
