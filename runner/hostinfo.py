"""What the run ran on: host, kernel, CPU model and features, KVM's supported XCR0."""
from __future__ import annotations

import ctypes
import fcntl
import os
import platform
import struct
from typing import Any

# Features that matter to FPU state handling, as /proc/cpuinfo spells them.
FPU_FLAGS = ("fpu", "sse", "sse2", "xsave", "xsaveopt", "xsavec", "xsaves", "avx", "avx2",
             "avx512f", "avx512bw", "avx512vl", "pku", "ospke", "amx_tile", "amx_bf16",
             "amx_int8", "xfd", "mpx", "apx")

KVM_GET_API_VERSION = 0xAE00
KVM_GET_SUPPORTED_CPUID = 0xC008AE05   # _IOWR(KVMIO, 0x05, struct kvm_cpuid2)
_ENTRY = struct.Struct("=10I")          # function index flags eax ebx ecx edx pad[3]
_MAX_ENTRIES = 256


def cpuinfo() -> dict[str, Any]:
    model, flags = "", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = value.split()
    except OSError:
        pass
    return {"model": model, "fpu_features": [f for f in FPU_FLAGS if f in flags],
            "cpus": os.cpu_count()}


def kvm_supported_xcr0(dev: str = "/dev/kvm") -> tuple[int | None, str]:
    """KVM's supported XCR0 from KVM_GET_SUPPORTED_CPUID leaf 0xD.0; (None, why) if unknown."""
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return None, f"{dev}: {e.strerror}"
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION) != 12:
            return None, f"{dev}: unexpected KVM API version"
        buf = ctypes.create_string_buffer(8 + _ENTRY.size * _MAX_ENTRIES)
        struct.pack_into("=II", buf, 0, _MAX_ENTRIES, 0)
        fcntl.ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf, True)
        nent = struct.unpack_from("=I", buf, 0)[0]
        for i in range(nent):
            e = _ENTRY.unpack_from(buf, 8 + i * _ENTRY.size)
            if e[0] == 0xD and e[1] == 0:
                return e[3] | e[6] << 32, "KVM_GET_SUPPORTED_CPUID leaf 0xD.0"
        return None, "KVM_GET_SUPPORTED_CPUID has no leaf 0xD (no XSAVE)"
    except OSError as e:
        return None, f"KVM_GET_SUPPORTED_CPUID failed: {e.strerror}"
    finally:
        os.close(fd)


def describe(tier: str = "host") -> dict[str, Any]:
    xcr0, source = kvm_supported_xcr0()
    u = platform.uname()
    return {
        "hostname": u.node, "kernel": u.release, "kernel_version": u.version,
        "machine": u.machine, "tier": tier, "cpu": cpuinfo(),
        "kvm_supported_xcr0": None if xcr0 is None else f"{xcr0:#x}",
        "kvm_supported_xcr0_source": source,
        "kvm_module": kvm_module(),
    }


def kvm_module() -> str:
    """Which KVM vendor module provides /dev/kvm (kvm_intel, kvm_amd, kvm_pvm, ...)."""
    try:
        names = sorted(os.listdir("/sys/module"))
    except OSError:
        return ""
    return ",".join(n for n in names if n.startswith("kvm_")) or (
        "kvm (built in)" if os.path.exists("/dev/kvm") else "")
