"""junit.xml and results.ktap say which machine ran what: per-testsuite identity properties
and one `# kvmfpu-host:` header line per host (issue 13 item 4)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from runner import artifacts, ktap, runstate
from runner.evaluate import Outcome
from runner.plan import Instance
from tests.runner.helpers import AMX_HOST, TempTree

PASSING = "TAP version 13\n1..1\nok 1 swap.avx.guest_image\n"

AMX = AMX_HOST
TCG = {"hostname": None, "tier": "lab-tcg",
       "cpu": {"model_name": "QEMU TCG CPU version 2.5+", "microcode": None},
       "kernel": {"release": "6.12.117+deb12-amd64"}, "kvm": {"module": "kvm_amd"}}


class IdentityInReports(TempTree):
    def run_on_two_hosts(self) -> runstate.Run:
        insts = [Instance(id=f"kvmfpu_swap_test.avx.seed={s}", program="kvmfpu_swap_test",
                          args=["--seed", str(s)], variant="avx", tests=[], params={},
                          timeout=5) for s in (1, 2, 3)]
        run = runstate.new_run("r1", "ci", "", {"kernel": "6.12.9", "tier": "host"}, insts,
                               "/bin", {}, {})
        run.hosts = {"root@amx-07:22": AMX, "lab-tcg": TCG,
                     "root@amx-08:22": {"error": "identity probe timed out after 60 s"}}
        (self.root / "logs").mkdir()
        runstate.record_finish(run, insts[0], Outcome(returncode=0, host="root@amx-07:22"),
                               PASSING)
        runstate.record_finish(run, insts[1], Outcome(returncode=0), PASSING,
                               host_key="lab-tcg")
        artifacts.write_all(run, self.root)            # insts[2] never ran
        return run

    def test_junit_testsuite_properties_name_the_machine(self) -> None:
        self.run_on_two_hosts()
        root = ET.parse(self.root / "junit.xml").getroot()
        props = {s.get("name"): {p.get("name"): p.get("value")
                                 for p in s.iter("property")} for s in root.iter("testsuite")}
        amx = props["kvmfpu_swap_test.avx.seed=1"]
        self.assertEqual({k: amx[k] for k in ("host", "cpu_model", "kernel", "tier",
                                              "microcode")},
                         {"host": "root@amx-07:22",
                          "cpu_model": "Intel(R) Xeon(R) Platinum 8480+",
                          "kernel": "6.12.9", "tier": "host", "microcode": "0x2b000590"})
        lab = props["kvmfpu_swap_test.avx.seed=2"]
        self.assertEqual((lab["host"], lab["tier"], lab["cpu_model"], lab["microcode"]),
                         ("lab-tcg", "lab-tcg", "QEMU TCG CPU version 2.5+", ""))
        self.assertNotIn("host", props["kvmfpu_swap_test.avx.seed=3"])      # never ran

    def test_ktap_header_has_one_line_per_host(self) -> None:
        self.run_on_two_hosts()
        text = (self.root / "results.ktap").read_text()
        head = text.split("\n1..")[0].splitlines()
        self.assertEqual([ln for ln in head if ln.startswith("# kvmfpu-host:")], [
            "# kvmfpu-host: key=root@amx-07:22 tier=host kernel=6.12.9 microcode=0x2b000590 "
            "cpu=Intel(R) Xeon(R) Platinum 8480+",
            "# kvmfpu-host: key=lab-tcg tier=lab-tcg kernel=6.12.117+deb12-amd64 microcode=? "
            "cpu=QEMU TCG CPU version 2.5+",
            "# kvmfpu-host: key=root@amx-08:22 error=identity probe timed out after 60 s"])
        rec = ktap.parse_record(head[2])
        self.assertEqual((rec["kind"], rec["key"], rec["tier"]), ("host", "root@amx-07:22",
                                                                  "host"))
        self.assertEqual(ktap.parse(text).problems, [])   # still KTAP our parser accepts
