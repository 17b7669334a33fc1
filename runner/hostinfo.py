"""What the run ran on: host, kernel, CPU model and features, KVM's supported XCR0; and the
identity of a machine that ran instances (identity(), `python3 -m runner.hostinfo` as the
probe a fleet run sends to each ssh login)."""
from __future__ import annotations

import ctypes
import fcntl
import gzip
import hashlib
import json
import os
import platform
import shlex
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

# Features that matter to FPU state handling, as /proc/cpuinfo spells them.
FPU_FLAGS = ("fpu", "sse", "sse2", "xsave", "xsaveopt", "xsavec", "xsaves", "avx", "avx2",
             "avx512f", "avx512bw", "avx512vl", "pku", "ospke", "amx_tile", "amx_bf16",
             "amx_int8", "xfd", "mpx", "apx")

KVM_GET_API_VERSION = 0xAE00
KVM_CHECK_EXTENSION = 0xAE03            # _IO(KVMIO, 0x03)
KVM_GET_SUPPORTED_CPUID = 0xC008AE05   # _IOWR(KVMIO, 0x05, struct kvm_cpuid2)
KVM_CAP_XSAVE2 = 208
_ENTRY = struct.Struct("=10I")          # function index flags eax ebx ecx edx pad[3]
_MAX_ENTRIES = 256

# Module parameters that change how KVM handles guest FPU state, per module; a kernel that
# lacks one has no file for it and it is left out (never guessed).
#  kvm         force_emulation_prefix: the KVM_FEP prefix makes KVM's emulator run an
#              instruction, and the emulator reaches the guest's SSE/x87 registers through
#              kvm_fpu_get()/kvm_fpu_put();
#              ignore_msrs: an XFD, XFD_ERR or XSS write KVM refuses is dropped and reads
#              back 0 instead of raising #GP (kvm_set_msr_common).
#  kvm_intel   nested: L2 runs on L1's guest_fpu, switched by nested VM-Enter/VM-Exit;
#              emulate_invalid_guest_state, unrestricted_guest: whether real-mode and
#              invalid-state guest code goes through the emulator (see above);
#              enable_xfd: not a parameter of mainline up to 6.12; read where a kernel
#              has it.
#  kvm_amd     nested: as for kvm_intel;
#              sev_es, sev_snp: the FPU state of an SEV-ES/SNP guest is encrypted in its
#              VMSA, and KVM_GET_XSAVE/KVM_SET_XSAVE refuse it (guest_state_protected).
KVM_PARAMS = {
    "kvm": ("force_emulation_prefix", "ignore_msrs"),
    "kvm_intel": ("nested", "emulate_invalid_guest_state", "unrestricted_guest",
                  "enable_xfd"),
    "kvm_amd": ("nested", "sev_es", "sev_snp"),
}
KVM_MODULES = ("kvm_intel", "kvm_amd", "kvm_pvm")


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


def _cpuid_entries(fd: int) -> list[tuple[int, ...]]:
    """KVM_GET_SUPPORTED_CPUID on an open /dev/kvm fd: (function, index, flags, eax, ebx,
    ecx, edx, ...) per entry; OSError if it fails."""
    buf = ctypes.create_string_buffer(8 + _ENTRY.size * _MAX_ENTRIES)
    struct.pack_into("=II", buf, 0, _MAX_ENTRIES, 0)
    fcntl.ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf, True)
    nent = struct.unpack_from("=I", buf, 0)[0]
    return [_ENTRY.unpack_from(buf, 8 + i * _ENTRY.size) for i in range(nent)]


def kvm_facts(dev: str = "/dev/kvm") -> dict[str, Any]:
    """What KVM itself says about XSAVE state, each with why it is null when it is:
    supported_xcr0 (KVM_GET_SUPPORTED_CPUID leaf 0xD.0 EDX:EAX), supported_xss (leaf 0xD.1
    EDX:ECX), cap_xsave2 (KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2): the size of the buffer
    KVM_GET_XSAVE2 fills, 0 when KVM lacks it)."""
    out: dict[str, Any] = {"supported_xcr0": None, "supported_xss": None, "cap_xsave2": None}
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        why = f"{dev}: {e.strerror}"
        return {**out, **{f"{k}_why": why for k in out}}
    try:
        try:
            api = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        except OSError as e:
            api = f"KVM_GET_API_VERSION failed: {e.strerror}"
        if api != 12:
            why = f"{dev}: not a KVM device ({api})" if isinstance(api, str) else \
                f"{dev}: unexpected KVM API version {api}"
            return {**out, **{f"{k}_why": why for k in out}}
        try:
            entries = _cpuid_entries(fd)
            d0 = next((e for e in entries if e[0] == 0xD and e[1] == 0), None)
            d1 = next((e for e in entries if e[0] == 0xD and e[1] == 1), None)
            if d0 is None:
                out["supported_xcr0_why"] = "KVM_GET_SUPPORTED_CPUID has no leaf 0xD (no XSAVE)"
            else:
                out["supported_xcr0"] = f"{d0[3] | d0[6] << 32:#x}"
            if d1 is None:
                out["supported_xss_why"] = "KVM_GET_SUPPORTED_CPUID has no leaf 0xD.1"
            else:
                out["supported_xss"] = f"{d1[5] | d1[6] << 32:#x}"
        except OSError as e:
            out["supported_xcr0_why"] = out["supported_xss_why"] = \
                f"KVM_GET_SUPPORTED_CPUID failed: {e.strerror}"
        try:
            out["cap_xsave2"] = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2)
        except OSError as e:
            out["cap_xsave2_why"] = f"KVM_CHECK_EXTENSION failed: {e.strerror}"
        return out
    finally:
        os.close(fd)


def kvm_supported_xcr0(dev: str = "/dev/kvm") -> tuple[int | None, str]:
    """KVM's supported XCR0 from KVM_GET_SUPPORTED_CPUID leaf 0xD.0; (None, why) if unknown."""
    facts = kvm_facts(dev)
    if facts["supported_xcr0"] is None:
        return None, facts["supported_xcr0_why"]
    return int(facts["supported_xcr0"], 16), "KVM_GET_SUPPORTED_CPUID leaf 0xD.0"


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


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def cpu_identity(root: Path) -> dict[str, Any]:
    """The first processor of <root>/proc/cpuinfo (vendor, family, model, stepping, model
    name, microcode revision) and the number of processors; missing fields are null."""
    first: dict[str, str] = {}
    cpus = 0
    try:
        with open(root / "proc" / "cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                key = key.strip()
                if not sep:
                    continue
                if key == "processor":
                    cpus += 1
                if cpus == 1 and key not in first:
                    first[key] = value.strip()
    except OSError:
        pass
    flags = first.get("flags", "").split()
    return {"vendor": first.get("vendor_id"), "family": _int(first.get("cpu family")),
            "model": _int(first.get("model")), "stepping": _int(first.get("stepping")),
            "model_name": first.get("model name"), "microcode": first.get("microcode"),
            "cpus": cpus or None, "fpu_features": [f for f in FPU_FLAGS if f in flags]}


def config_sha256(root: Path, release: str | None) -> tuple[str | None, str]:
    """sha256 of the running kernel's .config: /proc/config.gz decompressed, else
    /boot/config-<release>; (None, why) when neither can be read."""
    tried = []
    try:
        with gzip.open(root / "proc" / "config.gz") as f:
            return hashlib.sha256(f.read()).hexdigest(), "/proc/config.gz"
    except (OSError, EOFError) as e:
        tried.append(f"/proc/config.gz: {getattr(e, 'strerror', None) or e}")
    if release:
        try:
            data = (root / "boot" / f"config-{release}").read_bytes()
            return hashlib.sha256(data).hexdigest(), f"/boot/config-{release}"
        except OSError as e:
            tried.append(f"/boot/config-{release}: {e.strerror}")
    return None, "; ".join(tried)


def kvm_identity(root: Path, dev: str | None) -> dict[str, Any]:
    """Which KVM vendor module is loaded, the KVM_PARAMS it has, and kvm_facts(dev) (dev
    None: not asked, e.g. a canned root)."""
    sysmod = root / "sys" / "module"
    loaded = [m for m in KVM_MODULES if (sysmod / m).is_dir()]
    params: dict[str, str] = {}
    for mod, names in KVM_PARAMS.items():
        for name in names:
            value = _read(sysmod / mod / "parameters" / name)
            if value is not None:
                params[name if mod == "kvm" else f"{mod}.{name}"] = value
    out: dict[str, Any] = {"module": ",".join(loaded) or "none", "params": params}
    if dev is None:
        why = "not asked (no KVM device given)"
        out.update({"supported_xcr0": None, "supported_xcr0_why": why,
                    "supported_xss": None, "supported_xss_why": why,
                    "cap_xsave2": None, "cap_xsave2_why": why})
    else:
        out.update(kvm_facts(dev))
    return out


def identity(root: str | Path = "/", tier: str = "host",
             kvm_dev: str | None = "/dev/kvm") -> dict[str, Any]:
    """The identity of the machine under `root` (a canned tree in tests): hostname, cpu,
    kernel {release, version, config_sha256}, kvm {module, params, supported_xcr0,
    supported_xss, cap_xsave2}, tier. A field that cannot be read is null, and a
    `<field>_why` next to it says why."""
    root = Path(root)
    proc = root / "proc" / "sys" / "kernel"
    live = root == Path("/")
    u = platform.uname()
    release = _read(proc / "osrelease") or (u.release if live else None)
    config, how = config_sha256(root, release)
    kernel = {"release": release,
              "version": _read(proc / "version") or (u.version if live else None),
              "config_sha256": config}
    kernel["config_sha256_why" if config is None else "config_source"] = how
    return {"hostname": _read(proc / "hostname") or (u.node if live else None),
            "cpu": cpu_identity(root), "kernel": kernel,
            "kvm": kvm_identity(root, kvm_dev), "tier": tier}


PROBE_TIMEOUT = 60.0


def probe(sshlogin: str, repo: Path, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """identity() of the host behind a GNU parallel sshlogin, asked through the ssh command
    parallel uses (the checkout is at the same path there); {"error": why} if it cannot be
    had, never a guess."""
    from runner import gnuparallel
    cmd = gnuparallel.ssh_command(sshlogin) + [
        f"cd {shlex.quote(str(repo))} && python3 -m runner.hostinfo"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"identity probe timed out after {timeout:g} s"}
    except OSError as e:
        return {"error": f"identity probe could not start {cmd[0]}: {e.strerror}"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return {"error": f"identity probe exited with status {proc.returncode}: {last}"}
    try:
        ident = json.loads(proc.stdout)
    except ValueError:
        ident = None
    if not isinstance(ident, dict):
        return {"error": "identity probe printed no JSON object"}
    return ident


def main(argv: list[str]) -> int:
    """`python3 -m runner.hostinfo [--tier T] [--kvm-dev DEV]`: identity() as JSON."""
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m runner.hostinfo",
                                 description="this machine's identity, as JSON")
    ap.add_argument("--tier", default="host")
    ap.add_argument("--kvm-dev", default="/dev/kvm")
    ap.add_argument("--root", default="/", help="read /proc and /sys under this directory")
    opts = ap.parse_args(argv)
    dev = opts.kvm_dev if opts.root == "/" else None
    print(json.dumps(identity(opts.root, opts.tier, dev), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
