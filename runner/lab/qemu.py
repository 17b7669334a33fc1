"""QEMU launcher for the tcg and kvm labs."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from runner.lab.labs import Lab

QEMU = "qemu-system-x86_64"


def command(lab: Lab, kernel: Path, initrd: Path, console: Path, channel: Path,
            qemu: str = QEMU) -> list[str]:
    return [
        qemu, "-accel", lab.accel, "-cpu", lab.cpu, "-m", lab.memory, "-smp", str(lab.smp),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", lab.cmdline,
        "-serial", f"file:{console}", "-serial", f"file:{channel}",
    ]


def host_vendor(cpuinfo: str | None = None) -> str:
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    for line in cpuinfo.splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return ""


def kvm_module_for_host(cpuinfo: str | None = None) -> str:
    return "kvm-amd" if host_vendor(cpuinfo) == "AuthenticAMD" else "kvm-intel"


def _param(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def kvm_preflight(sys_module: Path = Path("/sys/module"), dev: str = "/dev/kvm") -> str | None:
    """Why this host cannot run the kvm lab (None if it can).

    The kvm lab boots the kernel under test with hardware acceleration and then runs KVM inside
    it, so the host's KVM must offer nested VMX or SVM.
    """
    if not os.path.exists(dev):
        return f"{dev} does not exist: the kvm lab needs hardware virtualization on this host"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"{dev} is not readable and writable by this user"
    if (sys_module / "kvm_pvm").is_dir():
        return (f"{dev} is provided by kvm_pvm (pagetable-based virtualization), which cannot "
                "run nested VMX/SVM; use --lab tcg or --lab bochs here")
    for mod in ("kvm_intel", "kvm_amd"):
        if (sys_module / mod).is_dir():
            nested = _param(str(sys_module / mod / "parameters" / "nested"))
            if nested in ("Y", "1"):
                return None
            return (f"{mod} is loaded with nested={nested or '?'}: reload it with nested=1 "
                    f"(modprobe -r {mod}; modprobe {mod} nested=1) to run KVM inside the lab")
    return f"{dev} exists but neither kvm_intel nor kvm_amd is loaded: no nested VMX/SVM"


def available(qemu: str = QEMU) -> str | None:
    if shutil.which(qemu) is None:
        return f"{qemu} not found: install qemu-system-x86 (runner/lab/deps.sh)"
    return None
