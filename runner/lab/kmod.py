"""The suite's test modules (selftests/test_modules) built for the kernel a lab boots.

kvmfpu_irq_fpu.ko is the stress test's interrupt-context kernel FPU user (irq_fpu). An
out-of-tree module builds against the kernel's kbuild directory:
- a kernel built from a tree: its build directory (build.py makes `modules` too, which writes
  the Module.symvers an external module links against);
- Debian's packaged kernel: linux-headers-<release> with the -common and linux-kbuild packages
  it depends on, fetched once with `apt-get download` into .cache/lab/headers/<release>/;
- a bzImage given with --kernel: its build directory if it still lies there
  (<dir>/arch/x86/boot/bzImage with <dir>/Module.symvers), else none, so no module.

Built modules are cached in .cache/lab/kmod/, keyed by the module sources and the kbuild
directory's Module.symvers, .config and release. Without a module the lab still runs: the
test that needs it SKIPs, saying so; the lab log says why it is missing.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from runner.lab import kernel as K
from runner.lab.kernel import CACHE, Kernel
from runner.lab.labs import REPO

SRC = REPO / "selftests" / "test_modules"
MODULES = ("kvmfpu_irq_fpu",)
USERS = ("kvmfpu_swap_stress_test",)     # the programs that use them


class KmodUnavailable(Exception):
    """No module for this kernel, and why (one line): the lab goes on without it."""


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


def _debian_headers(release: str, log) -> Path:
    """/usr/src/linux-headers-<release> of Debian's packages, unpacked under .cache/lab."""
    root = CACHE / "headers" / release
    kbuild = root / "usr" / "src" / f"linux-headers-{release}"
    pkg = f"linux-headers-{release}"
    if not (kbuild / "Module.symvers").is_file():
        _fetch_headers(pkg, root, log)
    # The flavour's Makefile includes the -common one by its installed, absolute path.
    mk = kbuild / "Makefile"
    if not mk.is_file():
        raise KmodUnavailable(f"{pkg} holds no Makefile")
    mk.write_text(mk.read_text().replace("include /usr/src/", f"include {root}/usr/src/"))
    return kbuild


def _fetch_headers(pkg: str, root: Path, log) -> None:
    deps = _run(["apt-cache", "depends", pkg])
    if deps.returncode != 0:
        raise KmodUnavailable(f"apt knows no {pkg}: {deps.stderr.strip()[-200:]}")
    # The flavour's headers need the -common headers and linux-kbuild it depends on.
    pkgs = [pkg] + sorted({m.group(1) for m in re.finditer(
        r"Depends: (linux-(?:headers|kbuild)-\S+)", deps.stdout)})
    try:
        K.unpack(K.download(pkgs, log), root)
    except K.KernelError as e:
        raise KmodUnavailable(str(e)) from None


def kbuild_dir(kernel: Kernel, log) -> Path:
    """The directory `make M=` builds external modules for @kernel in."""
    if kernel.kbuild_dir is not None:
        if not (kernel.kbuild_dir / "Module.symvers").is_file():
            raise KmodUnavailable(f"{kernel.kbuild_dir} has no Module.symvers (build it with "
                                  "`make modules`)")
        return kernel.kbuild_dir
    if kernel.source.startswith("debian:") and kernel.version:
        return _debian_headers(kernel.version, log)
    raise KmodUnavailable(f"no kbuild directory for {kernel.source or kernel.image} (give "
                          "--kernel-tree, or a Debian package, to build test modules)")


def _key(kbuild: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(SRC.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    for name in ("Module.symvers", ".config", "include/config/kernel.release"):
        p = kbuild / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b""))
    return h.hexdigest()[:16]


def _build(kbuild: Path, log) -> list[Path]:
    out = CACHE / "kmod" / _key(kbuild)
    kos = [out / f"{m}.ko" for m in MODULES]
    if all(k.is_file() for k in kos):
        return kos
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(SRC, tmp)
    # No BTF for the module: it needs pahole, and nothing reads a test module's BTF.
    cmd = ["make", "-s", "-C", str(kbuild), f"M={tmp}", "CONFIG_DEBUG_INFO_BTF_MODULES=",
           "modules"]
    r = _run(cmd)
    if r.returncode != 0:
        (CACHE / "kmod").mkdir(parents=True, exist_ok=True)
        err = CACHE / "kmod" / "last-error.log"
        err.write_text(r.stdout + r.stderr)
        raise KmodUnavailable(f"building {SRC.name} against {kbuild} failed (log {err}): "
                              f"{(r.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    # What `make modules_install INSTALL_MOD_STRIP=1` does: the initramfs carries no DWARF.
    for ko in kos:
        _run(["objcopy", "--strip-debug", str(tmp / ko.name)])
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"lab: built {', '.join(k.name for k in kos)} against {kbuild}")
    return kos


def test_modules(kernel: Kernel, log) -> list[Path]:
    """The test modules for @kernel, built (once) if need be; KmodUnavailable if they cannot
    be had. Labs running at once share the cache: one builds, the others wait."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(kbuild_dir(kernel, log), log)
