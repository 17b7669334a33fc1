"""hostinfo.identity() on canned /proc and /sys trees, and the probe a fleet run sends."""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import unittest
import unittest.mock
from pathlib import Path

from runner import hostinfo, run as runner_run
from runner.run import RunRequest
from tests.runner.helpers import REPO, TempTree

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
microcode\t: 0x2b000590
flags\t\t: fpu sse sse2 xsave xsaveopt xsavec xsaves avx avx2 avx512f amx_tile amx_int8 xfd

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
microcode\t: 0x2b000590
flags\t\t: fpu sse sse2 xsave
"""


class Identity(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="kvmfpu-hostinfo-")
        self.root = Path(self._tmp.name)

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def put(self, rel: str, text: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def intel_host(self) -> None:
        self.put("proc/cpuinfo", CPUINFO)
        self.put("proc/sys/kernel/hostname", "amx-07\n")
        self.put("proc/sys/kernel/osrelease", "6.12.9-kvmfpu\n")
        self.put("proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC\n")
        self.put("sys/module/kvm/parameters/ignore_msrs", "N\n")
        self.put("sys/module/kvm/parameters/force_emulation_prefix", "1\n")
        self.put("sys/module/kvm/parameters/tdp_mmu", "Y\n")       # not an FPU matter
        self.put("sys/module/kvm_intel/parameters/nested", "Y\n")
        self.put("sys/module/kvm_intel/parameters/enable_xfd", "Y\n")

    def test_canned_intel_host(self) -> None:
        self.intel_host()
        config = b"CONFIG_KVM=m\nCONFIG_KVM_INTEL=m\n"
        with gzip.open(self.root / "proc" / "config.gz", "wb") as f:
            f.write(config)
        ident = hostinfo.identity(self.root, "host", None)
        self.assertEqual(ident["hostname"], "amx-07")
        self.assertEqual(ident["tier"], "host")
        self.assertEqual(ident["cpu"], {
            "vendor": "GenuineIntel", "family": 6, "model": 143, "stepping": 8,
            "model_name": "Intel(R) Xeon(R) Platinum 8480+", "microcode": "0x2b000590",
            "cpus": 2, "fpu_features": ["fpu", "sse", "sse2", "xsave", "xsaveopt", "xsavec",
                                        "xsaves", "avx", "avx2", "avx512f", "amx_tile",
                                        "amx_int8", "xfd"]})
        self.assertEqual(ident["kernel"]["release"], "6.12.9-kvmfpu")
        self.assertEqual(ident["kernel"]["version"], "#1 SMP PREEMPT_DYNAMIC")
        self.assertEqual(ident["kernel"]["config_sha256"], hashlib.sha256(config).hexdigest())
        self.assertEqual(ident["kernel"]["config_source"], "/proc/config.gz")
        kvm = ident["kvm"]
        self.assertEqual(kvm["module"], "kvm_intel")
        # the parameters that matter, as the files say; tdp_mmu is not one, and kvm_intel
        # parameters the canned kernel lacks (unrestricted_guest, ...) are absent
        self.assertEqual(kvm["params"], {"force_emulation_prefix": "1", "ignore_msrs": "N",
                                         "kvm_intel.nested": "Y",
                                         "kvm_intel.enable_xfd": "Y"})
        for k in ("supported_xcr0", "supported_xss", "cap_xsave2"):
            self.assertIsNone(kvm[k])
            self.assertTrue(kvm[f"{k}_why"])

    def test_boot_config_when_no_proc_config(self) -> None:
        self.intel_host()
        self.put("boot/config-6.12.9-kvmfpu", "CONFIG_X86_64=y\n")
        kernel = hostinfo.identity(self.root, "host", None)["kernel"]
        self.assertEqual(kernel["config_sha256"],
                         hashlib.sha256(b"CONFIG_X86_64=y\n").hexdigest())
        self.assertEqual(kernel["config_source"], "/boot/config-6.12.9-kvmfpu")

    def test_unreadable_fields_are_null_with_why(self) -> None:
        """An empty root: nothing invented; the kernel config's absence is explained."""
        ident = hostinfo.identity(self.root, "host", None)
        self.assertIsNone(ident["hostname"])
        self.assertIsNone(ident["kernel"]["release"])
        self.assertIsNone(ident["kernel"]["config_sha256"])
        self.assertIn("/proc/config.gz", ident["kernel"]["config_sha256_why"])
        self.assertEqual(ident["cpu"]["vendor"], None)
        self.assertEqual(ident["cpu"]["cpus"], None)
        self.assertEqual(ident["kvm"], {**ident["kvm"], "module": "none", "params": {}})

    def test_amd_module_and_sev_params(self) -> None:
        self.put("sys/module/kvm_amd/parameters/nested", "1\n")
        self.put("sys/module/kvm_amd/parameters/sev_es", "N\n")
        kvm = hostinfo.identity(self.root, "host", None)["kvm"]
        self.assertEqual(kvm["module"], "kvm_amd")
        self.assertEqual(kvm["params"], {"kvm_amd.nested": "1", "kvm_amd.sev_es": "N"})

    def test_not_a_kvm_device(self) -> None:
        """A file that is not /dev/kvm: every KVM fact null, each saying why."""
        dev = self.put("kvm", "")
        facts = hostinfo.kvm_facts(str(dev))
        for k in ("supported_xcr0", "supported_xss", "cap_xsave2"):
            self.assertIsNone(facts[k])
            self.assertIn(str(dev), facts[f"{k}_why"])
        missing = hostinfo.kvm_facts(str(self.root / "nothing"))
        self.assertIn("No such file", missing["cap_xsave2_why"])

    def test_probe_prints_identity_json(self) -> None:
        """`python3 -m runner.hostinfo`: the remote probe of a fleet run."""
        self.intel_host()
        proc = subprocess.run([sys.executable, "-m", "runner.hostinfo", "--root",
                               str(self.root), "--tier", "host"], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ident = json.loads(proc.stdout)
        self.assertEqual(ident["hostname"], "amx-07")
        self.assertEqual(ident["kvm"]["module"], "kvm_intel")


# Stands in for ssh: runs the last argument (the remote command line) here, as ssh runs it on
# the host; FAKE_SSH_FAIL makes it fail as ssh does when it cannot connect.
FAKE_SSH = """#!/bin/sh
for last; do :; done
[ -n "$FAKE_SSH_FAIL" ] && { echo "ssh: connect to host: Connection refused" >&2; exit 255; }
exec sh -c "$last"
"""


class FleetIdentity(TempTree):
    def fake_ssh(self) -> Path:
        ssh = self.root / "fakessh"
        ssh.write_text(FAKE_SSH)
        ssh.chmod(0o755)
        return ssh

    def test_probe_runs_the_probe_through_the_logins_ssh_command(self) -> None:
        ident = hostinfo.probe(f"1/{self.fake_ssh()} -p 2201 root@127.0.0.1", REPO)
        self.assertNotIn("error", ident)
        self.assertEqual(ident["tier"], "host")
        self.assertEqual(ident["hostname"], hostinfo.identity(kvm_dev=None)["hostname"])

    def test_a_login_that_cannot_be_probed_gets_an_error_and_nothing_else(self) -> None:
        with unittest.mock.patch.dict("os.environ", {"FAKE_SSH_FAIL": "1"}):
            ident = hostinfo.probe(f"{self.fake_ssh()} root@10.0.0.9", REPO)
        self.assertEqual(list(ident), ["error"])
        self.assertIn("status 255", ident["error"])
        self.assertIn("Connection refused", ident["error"])

    def test_every_login_is_a_host_key_and_local_only_when_listed(self) -> None:
        ssh = self.fake_ssh()
        logins = self.root / "sshloginfile"
        logins.write_text(f"1/{ssh} -p 2201 root@127.0.0.1\n# a comment\n"
                          f"1/{ssh} -p 2202 root@127.0.0.1\n")
        req = RunRequest(sshloginfile=str(logins), kvm_dev=str(self.kvm_dev))
        key, hosts = runner_run.machines(req)
        self.assertEqual(sorted(hosts), ["root@127.0.0.1:2201", "root@127.0.0.1:2202"])
        self.assertTrue(all(h["hostname"] for h in hosts.values()))
        logins.write_text(f":\n1/{ssh} -p 2201 root@127.0.0.1\n")
        key, hosts = runner_run.machines(req)
        self.assertEqual(sorted(hosts), sorted([key, "root@127.0.0.1:2201"]))

    def test_local_run_records_this_host_for_every_instance(self) -> None:
        """Before: a local run's instances had host null and run.json no hosts."""
        self.variants_profile("two", ["pass", "skip"])
        proc, run_dir = self.run_profile("two", "--tier", "host")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = self.load(run_dir)
        self.assertEqual(len(run["hosts"]), 1, run["hosts"])
        key, ident = next(iter(run["hosts"].items()))
        self.assertEqual(key, ident["hostname"])
        self.assertEqual(ident["tier"], "host")
        self.assertIn("not a KVM device", ident["kvm"]["supported_xcr0_why"])   # the stand-in
        self.assertEqual({e["host"] for e in run["instances"]}, {key})


if __name__ == "__main__":
    unittest.main()
