"""Shared helpers for the runner tests: a configs tree and a bin dir with the fake program."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
KVMFPU = REPO / "runner" / "kvmfpu"
FAKE = HERE / "fake_kvmfpu_test"
PROGRAM = "kvmfpu_fake_test"

PROGRAMS_TOML = f"""
[{PROGRAM}]
options = ["seed", "rounds", "round", "xcr0"]
xcr0_variant = "pass"
xcr0_drivable = "0x2e7"
timeout = 30
"""


class TempTree(unittest.TestCase):
    """A test case with a fresh configs/, bin/ and results/ under a temporary directory."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="kvmfpu-test-")
        self.root = Path(self._tmp.name)
        self.configs = self.root / "configs"
        (self.configs / "profiles").mkdir(parents=True)
        (self.configs / "matrices").mkdir()
        (self.configs / "programs.toml").write_text(PROGRAMS_TOML)
        self.bin = self.root / "bin"
        self.bin.mkdir()
        os.symlink(FAKE, self.bin / PROGRAM)
        self.results = self.root / "results"
        self.kmsg = self.root / "kmsg"
        self.kmsg.write_text("")
        self.kvm_dev = self.root / "kvm"   # stand-in for /dev/kvm: read/write access checked
        self.kvm_dev.write_text("")
        self.env = dict(os.environ, FAKE_KMSG=str(self.kmsg), FAKE_STATE=str(self.root))

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def profile(self, name: str, text: str) -> None:
        (self.configs / "profiles" / f"{name}.toml").write_text(text)

    def matrix(self, name: str, text: str) -> None:
        (self.configs / "matrices" / f"{name}.toml").write_text(text)

    def variants_profile(self, name: str, variants: list[str], extra: str = "",
                         run_extra: str = "") -> None:
        self.profile(name, f"{extra}\n[[run]]\nprogram = \"{PROGRAM}\"\n"
                           f"variants = {json.dumps(variants)}\n{run_extra}\n")

    def kvmfpu(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(KVMFPU)] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=self.env, stdin=subprocess.DEVNULL)

    def run_profile(self, profile: str, *extra: str,
                    timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], Path]:
        run_id = f"t-{profile}-{len(list(self.results.glob('*'))) if self.results.exists() else 0}"
        proc = self.kvmfpu("run", "--profile", profile, "--configs", str(self.configs),
                           "--bin", str(self.bin), "--results", str(self.results),
                           "--kmsg", str(self.kmsg), "--run-id", run_id, "--kvm-xcr0", "0xe7",
                           "--kvm-dev", str(self.kvm_dev),
                           *extra, timeout=timeout)
        return proc, self.results / run_id

    @staticmethod
    def load(run_dir: Path) -> dict:
        with open(run_dir / "run.json") as f:
            return json.load(f)


def processes_with(marker: str) -> list[str]:
    """`pgrep -fa MARKER`: processes whose command line holds marker (a test's temp dir)."""
    proc = subprocess.run(["pgrep", "-fa", marker], capture_output=True, text=True)
    return proc.stdout.splitlines()


def counts_add_up(test: unittest.TestCase, run: dict) -> None:
    """Every planned instance is counted exactly once in the summary."""
    counts = run["summary"]["counts"]
    test.assertEqual(sum(counts.values()), len(run["instances"]), counts)
    test.assertEqual(run["summary"]["instances"], len(run["instances"]))


def apt_install(package: str) -> str | None:
    """Install a Debian package a test needs (chromium, python3-jsonschema); None on success,
    else why it could not be installed."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{package} is not installed and apt-get can't be used here (not root?)"
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", package]
    proc = subprocess.run(install, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:   # a fresh machine may need its package lists first
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
        proc = subprocess.run(install, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return f"{package} could not be installed with apt: {' '.join(tail)}"
    return None


# An AMX host's identity as hostinfo.identity() records it (Sapphire Rapids).
AMX_HOST = {"hostname": "amx-07", "tier": "host",
            "cpu": {"vendor": "GenuineIntel", "family": 6, "model": 143, "stepping": 8,
                    "model_name": "Intel(R) Xeon(R) Platinum 8480+",
                    "microcode": "0x2b000590", "cpus": 224,
                    "fpu_features": ["xsave", "amx_tile"]},
            "kernel": {"release": "6.12.9", "version": "#1 SMP", "config_sha256": None,
                       "config_sha256_why": "/proc/config.gz: No such file or directory"},
            "kvm": {"module": "kvm_intel", "params": {"kvm_intel.nested": "Y"},
                    "supported_xcr0": "0x602e7", "supported_xss": "0x0",
                    "cap_xsave2": 11008}}
