"""Kernels for labs: Debian's packaged kernel (fetched into .cache/lab/) and module lookup."""
from __future__ import annotations

import fcntl
import functools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runner.lab.initramfs import module_elf, module_name
from runner.lab.labs import REPO

CACHE = REPO / ".cache" / "lab"
DEFAULT_SERIES = "6.12"


class KernelError(Exception):
    """The kernel or its modules cannot be had: a lab error (exit 2), never a verdict."""


@dataclass
class Kernel:
    image: Path                      # bzImage / vmlinuz
    modules_dir: Path | None = None  # lib/modules/<version>, None when KVM is built in
    version: str = ""                # release string when known (else the guest reports it)
    source: str = ""                 # "debian:<package>", "file:<path>", "tree:<dir>"
    kbuild_dir: Path | None = None   # where external modules build (a tree build's output)


@dataclass
class KernelSpec:
    """Which kernel a lab boots: a bzImage (with its modules), a tree to build, or Debian's
    package (the default)."""
    image: Path | None = None
    modules: Path | None = None
    tree: Path | None = None
    build_dir: Path | None = None
    kasan: bool = False
    debian_package: str | None = None


def _version_key(pkg: str) -> tuple[int, ...]:
    m = re.search(r"linux-image-(\d+)\.(\d+)\.(\d+)", pkg)
    return tuple(int(x) for x in m.groups()) if m else (0,)


APT_LISTS = Path("/var/lib/apt/lists")


def _apt_stamp() -> int | None:
    """Changes whenever `apt-get update` brings new package lists (it renames them in)."""
    try:
        return APT_LISTS.stat().st_mtime_ns
    except OSError:
        return None


def debian_package(series: str = DEFAULT_SERIES) -> str:
    """The newest linux-image-<series>.N+deb12-amd64-unsigned apt knows of. Asking apt takes
    a second (it loads its whole cache); the answer is kept in .cache/lab/ for as long as apt's
    lists stay the same."""
    memo, stamp = CACHE / f"debian-package-{series}.json", _apt_stamp()
    try:
        known = json.loads(memo.read_text())
        if stamp is not None and known["apt_lists"] == stamp and known["series"] == series:
            return str(known["package"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    package = _ask_apt(series)
    if stamp is not None:
        try:
            CACHE.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(".tmp")
            tmp.write_text(json.dumps({"series": series, "apt_lists": stamp,
                                       "package": package}))
            tmp.replace(memo)
        except OSError:
            pass        # a read-only cache: ask apt again next time
    return package


def _ask_apt(series: str) -> str:
    rx = rf"^linux-image-{re.escape(series)}\.[0-9]+\+deb[0-9]+-amd64-unsigned$"
    out = subprocess.run(["apt-cache", "search", "--names-only", rx],
                         capture_output=True, text=True, check=False).stdout
    pkgs = [line.split(" - ")[0].strip() for line in out.splitlines() if line.strip()]
    if not pkgs:
        raise KernelError(f"apt knows no linux-image-{series}.*-amd64-unsigned package; "
                          "run `apt-get update` (runner/lab/deps.sh does)")
    return max(pkgs, key=_version_key)


def _unpacked(pkg: str) -> Kernel | None:
    root = CACHE / "kernels" / pkg
    images = sorted((root / "boot").glob("vmlinuz-*")) if root.is_dir() else []
    if not images:
        return None
    version = images[-1].name.removeprefix("vmlinuz-")
    mods = root / "lib" / "modules" / version
    return Kernel(images[-1], mods if mods.is_dir() else None, version, f"debian:{pkg}")


def debian_kernel(series: str = DEFAULT_SERIES, package: str | None = None,
                  log=print) -> Kernel:
    """Debian's kernel image package, downloaded and unpacked once into .cache/lab/."""
    if package is None:
        try:
            package = debian_package(series)
        except KernelError:
            cached = sorted((CACHE / "kernels").glob(f"linux-image-{series}.*"),
                            key=lambda p: _version_key(p.name))
            if cached and (k := _unpacked(cached[-1].name)):
                return k
            raise
    if k := _unpacked(package):
        return k
    # Labs run at the same time (make check): one fetches and unpacks, the others wait for it.
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if k := _unpacked(package):
            return k
        return _fetch(package, log)


def download(packages: list[str], log) -> list[Path]:
    """The .deb files of @packages in .cache/lab/debs, fetched with `apt-get download` once."""
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        log(f"lab: fetching {', '.join(missing)} with apt-get download")
        r = subprocess.run(["apt-get", "download"] + missing, cwd=debs,
                           capture_output=True, text=True, check=False)
        if r.returncode != 0 or any(not list(debs.glob(f"{p}_*.deb")) for p in missing):
            raise KernelError(f"apt-get download {' '.join(missing)} failed: "
                              f"{r.stderr.strip()[-500:]}")
    return [sorted(debs.glob(f"{p}_*.deb"))[-1] for p in packages]


def unpack(debs: list[Path], root: Path) -> None:
    """`dpkg-deb -x` every one of @debs into @root, which appears only when all are in."""
    tmp = root.with_name(root.name + ".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        r = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise KernelError(f"dpkg-deb -x {deb} failed: {r.stderr.strip()}")
    subprocess.run(["rm", "-rf", str(root)], check=True)
    tmp.rename(root)


def _fetch(package: str, log) -> Kernel:
    have = download([package], log)
    unpack(have, CACHE / "kernels" / package)
    k = _unpacked(package)
    if k is None:
        raise KernelError(f"{have[0]} holds no boot/vmlinuz-*")
    return k


def modinfo(path: Path, key: str) -> str | None:
    """A field of a module's .modinfo section (no modinfo tool needed)."""
    m = re.search(rb"(?:^|\0)" + re.escape(key.encode()) + rb"=([^\0]*)\0", module_elf(path))
    return m.group(1).decode() if m else None


def _norm(name: str) -> str:
    return name.replace("-", "_")


@functools.lru_cache(maxsize=8)
def _module_index(modules_dir: Path) -> dict[str, Path]:
    """Every module under @modules_dir/kernel by name (the first in path order): one walk of
    the tree (a second per lab run when each lookup walked it)."""
    index: dict[str, Path] = {}
    for p in sorted((modules_dir / "kernel").rglob("*.ko*")):
        index.setdefault(_norm(module_name(p)), p)
    return index


def find_module(modules_dir: Path, name: str) -> Path | None:
    return _module_index(modules_dir).get(_norm(name))


def module_closure(modules_dir: Path, name: str) -> list[Path]:
    """`name` and what it depends on, in load order (dependencies first)."""
    order: list[Path] = []
    seen: set[str] = set()

    def visit(n: str, chain: tuple[str, ...]) -> None:
        if _norm(n) in seen:
            return
        if _norm(n) in chain:
            raise KernelError(f"module dependency cycle: {' -> '.join(chain + (n,))}")
        path = find_module(modules_dir, n)
        if path is None:
            raise KernelError(f"module {n} not found under {modules_dir}")
        for dep in filter(None, (modinfo(path, "depends") or "").split(",")):
            visit(dep, chain + (_norm(n),))
        seen.add(_norm(n))
        order.append(path)

    visit(name, ())
    return order


def _builtin(modules_dir: Path, name: str) -> bool:
    builtin = modules_dir / "modules.builtin"
    return builtin.is_file() and any(_norm(Path(line).name).startswith(_norm(name) + ".ko")
                                     for line in builtin.read_text().splitlines())


def kvm_modules(kernel: Kernel, kvm_module: str) -> list[Path]:
    """The module files to load for a lab's KVM module; [] when KVM is built in."""
    if kernel.modules_dir is None or _builtin(kernel.modules_dir, kvm_module):
        return []
    return module_closure(kernel.modules_dir, kvm_module)


def optional_modules(kernel: Kernel, names: list[str],
                     have: list[Path]) -> tuple[list[Path], list[str]]:
    """Modules @names with their dependencies, after @have and without repeating any of it,
    and the names the kernel has neither built in nor as a module. A kernel without modules
    (built from a tree) has what its config built in: nothing to load, nothing known missing."""
    if kernel.modules_dir is None:
        return [], []
    seen = {_norm(module_name(p)) for p in have}
    out: list[Path] = []
    missing: list[str] = []
    for name in names:
        if _builtin(kernel.modules_dir, name):
            continue
        try:
            closure = module_closure(kernel.modules_dir, name)
        except KernelError:
            missing.append(name)
            continue
        for p in closure:
            if _norm(module_name(p)) not in seen:
                seen.add(_norm(module_name(p)))
                out.append(p)
    return out, missing
