"""Build a kernel for the labs from a source tree: out of tree, incremental, KVM built in.

.config = x86_64_defconfig + configs/labs/kernel.config (+ kasan.config), redone when the
fragment changes and refreshed with olddefconfig on every build (bisect moves Kconfig around).
Runs `nice -n 19 make -j<cpus> bzImage`; a first build of 6.12 takes ~14 min on 2 cores, a
rebuild after touching a few files in arch/x86/kvm ~30 s.

`--kasan` without a tree builds Debian's linux-source-6.12, unpacked once into the user's
cache (USER_CACHE, outside the checkout, so that a fresh clone or `git clean` keeps it); KASAN
builds of any tree go there too, and a second run only relinks what changed.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from runner.lab.kernel import CACHE, Kernel, KernelError, KernelSpec, debian_kernel
from runner.lab.labs import CONFIG_DIR

FRAGMENT = CONFIG_DIR / "kernel.config"
KASAN = CONFIG_DIR / "kasan.config"


class BuildError(Exception):
    """The tree could not be configured or built (bisect: untestable, 125)."""


def fragment_text(kasan: bool) -> str:
    text = FRAGMENT.read_text()
    return text + (KASAN.read_text() if kasan else "")


def wanted_options(fragment: str) -> dict[str, str]:
    out = {}
    for line in fragment.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def config_problems(config: str, fragment: str) -> list[str]:
    """Options of the fragment that did not make it into .config (a dependency was missing)."""
    have = wanted_options(config)
    return [f"{k}={v} (got {have.get(k, 'unset')})"
            for k, v in wanted_options(fragment).items() if have.get(k) != v]


# Where KASAN kernels (and Debian's unpacked source) are kept: outside the checkout.
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kvmfpu"
DEBIAN_SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")   # Debian package linux-source-6.12


def default_build_dir(tree: Path, kasan: bool) -> Path:
    if kasan:
        return USER_CACHE / "build" / (tree.resolve().name + "-kasan")
    return CACHE / "build" / tree.resolve().name


def debian_source_tree(tarball: Path = DEBIAN_SOURCE, cache: Path | None = None,
                       log=print) -> Path:
    """Debian's kernel source, unpacked once under @cache (default USER_CACHE/src) and reused;
    BuildError if the package is not installed. The tree stays clean (builds are out of tree)."""
    if not tarball.is_file():
        raise BuildError(f"{tarball} missing: install Debian's {tarball.name.split('.tar')[0]} "
                         "package (apt-get install linux-source-6.12), or give --kernel-tree")
    root = cache or USER_CACHE / "src"
    tree = root / tarball.name.split(".tar")[0]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".unpack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # another run may be unpacking it
        if (tree / "Makefile").is_file() and (tree / ".kvmfpu-unpacked").is_file():
            return tree
        tmp = root / f".unpack-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        log(f"build: unpacking {tarball} into {root} (a minute, once)")
        r = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp)],
                           capture_output=True, text=True, check=False)
        tops = list(tmp.iterdir()) if r.returncode == 0 else []
        if r.returncode != 0 or len(tops) != 1:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BuildError(f"could not unpack {tarball}: {r.stderr.strip() or 'unexpected layout'}")
        shutil.rmtree(tree, ignore_errors=True)       # a half-unpacked one from a killed run
        tops[0].rename(tree)
        tmp.rmdir()
        (tree / ".kvmfpu-unpacked").write_text(f"{tarball}\n")
        return tree


def _make(tree: Path, out: Path, args: list[str], log: Path) -> None:
    cmd = ["nice", "-n", "19", "make", "-C", str(tree), f"O={out}",
           f"-j{os.cpu_count() or 1}"] + args
    with open(log, "ab") as f:
        f.write(("\n$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise BuildError(f"make {' '.join(args)} failed in {tree} (log {log}):\n" +
                         "\n".join(tail))


def configure(tree: Path, out: Path, fragment: str, log: Path) -> None:
    stamp = out / ".kvmfpu-fragment"
    digest = hashlib.sha256(fragment.encode()).hexdigest()
    if not (out / ".config").is_file() or not stamp.is_file() or stamp.read_text() != digest:
        _make(tree, out, ["x86_64_defconfig"], log)
        with open(out / ".config", "a") as f:
            f.write("\n# kvmfpu lab fragment\n" + fragment)
        stamp.write_text(digest)
    _make(tree, out, ["olddefconfig"], log)
    problems = config_problems((out / ".config").read_text(), fragment)
    if problems:
        raise BuildError("config fragment not satisfied: " + ", ".join(problems))


def build(tree: Path, build_dir: Path | None = None, kasan: bool = False,
          log=print) -> Kernel:
    tree = tree.resolve()
    if not (tree / "Makefile").is_file() or not (tree / "arch" / "x86").is_dir():
        raise BuildError(f"{tree} is not a kernel source tree")
    if (tree / ".config").exists():
        raise BuildError(f"{tree} has an in-tree .config: out-of-tree builds need a clean "
                         "source tree (make mrproper there, or use a copy)")
    out = (build_dir or default_build_dir(tree, kasan)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    buildlog = out / "kvmfpu-build.log"
    buildlog.write_text("")
    t0 = time.monotonic()
    log(f"build: {tree} -> {out} (log {buildlog})")
    configure(tree, out, fragment_text(kasan), buildlog)
    # `modules` too: it writes the Module.symvers the suite's test modules link against.
    _make(tree, out, ["bzImage", "modules"], buildlog)
    image = out / "arch" / "x86" / "boot" / "bzImage"
    if not image.is_file():
        raise BuildError(f"no {image} after make bzImage")
    release = (out / "include" / "config" / "kernel.release")
    version = release.read_text().strip() if release.is_file() else ""
    log(f"build: {version or image} in {time.monotonic() - t0:.0f} s")
    return Kernel(image, None, version, f"tree:{tree}", kbuild_dir=out)


def kernel_for(spec: KernelSpec, log) -> Kernel:
    """The Kernel of a spec: built from its tree, a given image checked, or Debian's package
    fetched; KernelError or BuildError if not."""
    if spec.tree:
        return build(spec.tree, spec.build_dir, kasan=spec.kasan, log=log)
    if spec.kasan:              # KASAN is a build option: build Debian's 6.12 source
        if spec.image or spec.debian_package:
            raise KernelError("--kasan builds a kernel: give --kernel-tree, or neither "
                              "(Debian's linux-source-6.12), not --kernel/--debian-package")
        return build(debian_source_tree(log=log), spec.build_dir, kasan=True, log=log)
    if spec.image:
        if not spec.image.is_file():
            raise KernelError(f"--kernel {spec.image}: no such file")
        mods = spec.modules.resolve() if spec.modules else None
        image = spec.image.resolve()
        # An image still in its build directory (<dir>/arch/x86/boot/bzImage, as a mutation
        # repeat boots it) can have the suite's test modules built there too (kmod.py).
        kbuild = image.parents[3] if len(image.parents) > 3 else None
        if kbuild is None or image != kbuild / "arch/x86/boot/bzImage" or \
                not (kbuild / "Module.symvers").is_file():
            kbuild = None
        return Kernel(image, mods, "", f"file:{spec.image}", kbuild_dir=kbuild)
    return debian_kernel(package=spec.debian_package, log=log)
