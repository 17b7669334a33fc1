"""Which test binaries a lab boots with: ones built with a KVM selftest library the kernel
under test supports.

From Linux 6.8 the KVM selftest library creates every memslot with
KVM_SET_USER_MEMORY_REGION2 (`vm_mem_add()`), and a kernel without it fails every program
with "KVM selftests now require KVM_SET_USER_MEMORY_REGION2": a lab booting Debian's 6.1 with
the default (6.12-built) programs gets parse errors, not a verdict. The kernel's version is
read before it is fetched or built (a tree's Makefile, a bzImage's header, a Debian package's
name), and the library's from the build directory's name (`out/linux-source-X.Y`).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Callable

from runner.lab.kernel import DEFAULT_SERIES, KernelSpec

REPO = Path(__file__).resolve().parents[2]
MEMORY_REGION2 = (6, 8)          # the first kernel with KVM_SET_USER_MEMORY_REGION2
OLD_LIBRARY = "6.1"              # the Debian linux-source whose library still runs there

Version = tuple[int, int]


class BinariesError(Exception):
    """No binaries fit the kernel under test: one line, exit 2."""


def _version(text: str) -> Version | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def bzimage_version(image: Path) -> Version | None:
    """The version in a bzImage's setup header (boot protocol 2.00+: `kernel_version` at
    0x20e, an offset from 0x200 to a NUL-terminated string)."""
    try:
        with open(image, "rb") as f:
            head = f.read(0x8000)
    except OSError:
        return None
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    at = int.from_bytes(head[0x20e:0x210], "little") + 0x200
    return _version(head[at:at + 64].split(b"\0")[0].decode(errors="replace"))


def tree_version(tree: Path) -> Version | None:
    try:
        text = (tree / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        return None
    v = re.search(r"^VERSION = (\d+)$", text, re.M)
    p = re.search(r"^PATCHLEVEL = (\d+)$", text, re.M)
    return (int(v.group(1)), int(p.group(1))) if v and p else None


def kernel_version(spec: KernelSpec) -> Version | None:
    """The version of the kernel @spec names, before it is fetched or built; None if unknown."""
    if spec.tree:
        return tree_version(spec.tree)
    if spec.image:
        return bzimage_version(spec.image)
    return _version(spec.debian_package.removeprefix("linux-image-")
                    if spec.debian_package else DEFAULT_SERIES)


def library_version(bin_dir: Path) -> Version | None:
    """The KVM selftest library @bin_dir was built with, from its build directory's name."""
    m = re.search(r"linux-source-(\d+)\.(\d+)", str(bin_dir.resolve()))
    return (int(m.group(1)), int(m.group(2))) if m else None


def _fmt(v: Version | None) -> str:
    return f"{v[0]}.{v[1]}" if v else "unknown"


def pick(bin_dir: Path, given: bool, spec: KernelSpec, log: Callable[[str], None],
         build: Callable[[], None] | None = None) -> Path:
    """The binaries to boot @spec's kernel with: @bin_dir when its library fits the kernel
    (or either version is unknown), else, for the default binaries, the ones built with
    linux-source-6.1 (brought up to date by @build first). Says which it used; raises
    BinariesError when --bin named binaries that cannot run there."""
    kernel, library = kernel_version(spec), library_version(bin_dir)
    if kernel is None or library is None or kernel >= MEMORY_REGION2 or library < MEMORY_REGION2:
        log(f"lab: test programs {bin_dir} (KVM selftest library {_fmt(library)}, kernel "
            f"under test {_fmt(kernel)})")
        return bin_dir
    why = (f"the kernel under test is {_fmt(kernel)}, and the KVM selftest library of "
           f"{_fmt(library)} that built {bin_dir} needs KVM_SET_USER_MEMORY_REGION2 "
           f"({_fmt(MEMORY_REGION2)}+)")
    if given:
        raise BinariesError(f"{why}: build with `make KDIR_VERSION={OLD_LIBRARY} BIN_LINK=` "
                            f"and pass --bin out/linux-source-{OLD_LIBRARY}/kvmfpu")
    old = REPO / "out" / f"linux-source-{OLD_LIBRARY}" / "kvmfpu"
    # Always through make, which rebuilds only what changed (under a second when nothing
    # did): binaries that merely exist may predate the sources, and would run old tests.
    log(f"lab: {why}; building the programs with linux-source-{OLD_LIBRARY} (make "
        f"KDIR_VERSION={OLD_LIBRARY} BIN_LINK=, incremental)")
    (build or build_old_library)()
    if not any(old.glob("kvmfpu_*_test")):
        raise BinariesError(f"{why}, and no programs were built in {old}")
    log(f"lab: test programs {old} (KVM selftest library {OLD_LIBRARY}: {why})")
    return old


def build_old_library() -> None:
    """`make KDIR_VERSION=6.1 BIN_LINK=`, leaving out/bin where it points."""
    r = subprocess.run(["make", "-C", str(REPO), f"KDIR_VERSION={OLD_LIBRARY}", "BIN_LINK="],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise BinariesError(f"make KDIR_VERSION={OLD_LIBRARY} BIN_LINK= failed: "
                            f"{(r.stderr or r.stdout).strip()[-300:]}")
