"""The lab guest's initramfs: busybox, the test binaries and the shared libraries they load,
KVM modules and a plan.

Written as a newc cpio by this module (no cpio tool needed), then compressed (compress()).
The guest's /init runs the plan and speaks a small line protocol (see protocol.py) on a second
serial port, so kernel console output never mixes with test output.
"""
from __future__ import annotations

import functools
import gzip
import io
import lzma
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from runner.lab import protocol

BUSYBOX = Path("/bin/busybox")


@dataclass
class PlanEntry:
    """One test program invocation inside the lab."""
    name: str              # unique id, no spaces (e.g. kvmfpu_swap_test or kvmfpu_swap_test.avx)
    binary: str            # file name under /tests in the guest
    args: list[str] = field(default_factory=list)
    timeout: int = 120     # seconds; the guest kills the program after this

    def line(self) -> str:
        for word in (self.name, self.binary):
            if not word or any(c.isspace() for c in word):
                raise ValueError(f"plan entry name/binary must be one word: {word!r}")
        return " ".join([self.name, str(int(self.timeout)), self.binary]
                        + [shlex.quote(a) for a in self.args])


@dataclass
class GuestSetup:
    """Everything the guest's /init needs besides the plan."""
    lab: str
    quirks: list[str] = field(default_factory=list)
    modules: list[Path] = field(default_factory=list)   # in load order; .ko or .ko.xz
    # Of those, the ones a test can do without (kernel FPU users): a failed insmod is
    # reported as module-skipped, not as a lab error.
    optional: set[str] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)   # extra environment for the tests
    # The kernel's .config when known: /boot/config-$(uname -r) in the guest, where the
    # tests read it (lib/kernel_env.c: is X86_DEBUG_FPU set, so can a missing WARN count?).
    kernel_config: bytes | None = None


def plan_text(entries: list[PlanEntry]) -> str:
    names = [e.name for e in entries]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate plan entry names: {', '.join(sorted(dup))}")
    return "".join(e.line() + "\n" for e in entries)


def env_text(setup: GuestSetup) -> str:
    env = {"KVMFPU_LAB": setup.lab, "KVMFPU_TIER": f"lab-{setup.lab}",
           "KVMFPU_QUIRKS": ",".join(setup.quirks)}
    env.update(setup.env)
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


INIT = r"""#!/bin/busybox sh
# kvmfpu lab /init: load KVM, run /plan, report on /dev/ttyS1 (protocol in runner/lab/protocol.py)
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
. /lab.env
R=/dev/ttyS1
P='@@P@@'
say() { echo "$P $*" > $R; echo "$P $*" > /dev/console; }
up() { read -r u _ < /proc/uptime; echo "$u"; }
# Closing the held ports is their last close, which waits for the UART to send what it holds
# (else poweroff cut the last dmesg and the done marker off).
finish() { say done; exec 3>&- 4>&-; sync; poweroff -f; sleep 10; }
stty -F $R 115200 raw -echo 2>/dev/null
# Hold both serial ports open until the end: else a program's exit (or an echo's) can be a
# port's last close, which shuts the UART down, and the next open starts it again with its
# FIFOs cleared. In Bochs the end of a program's KTAP was lost once so, a NUL in its place.
exec 3>$R 4>/dev/console
[ -f /kernel.config ] && mkdir -p /boot && cp /kernel.config /boot/config-$(uname -r)
say begin kernel=$(uname -r) lab=$KVMFPU_LAB uptime=$(up)
say cpu-model $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)
say cpu-flags $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2-)
say quirks $KVMFPU_QUIRKS
for m in $(cat /modules.order); do
	if ! insmod /modules/$m.ko $(cat /modules/$m.args 2>/dev/null); then
		if grep -qx "$m" /modules.optional; then
			say module-skipped name=$m
		else
			say module-error name=$m
		fi
	fi
done
for m in kvm_intel kvm_amd; do
	[ -r /sys/module/$m/parameters/nested ] && say module name=$m nested=$(cat /sys/module/$m/parameters/nested)
done
# Boot log: only levels 0-4 (emerg..warning: every splat), the info chatter costs serial time.
say dmesg-begin name=@boot
dmesg -c -r | grep -E '^<([0-4]|1[0-2])>' | sed -E 's/^<[0-9]+>//' > $R
say dmesg-end name=@boot
if [ ! -c /dev/kvm ]; then
	say lab-error msg=/dev/kvm does not exist after loading the KVM modules
	finish
fi
while read -r name t bin args; do
	[ -n "$name" ] || continue
	say test-begin name=$name timeout=$t uptime=$(up)
	eval "set -- $args"
	timeout -s KILL "$t" /tests/$bin "$@" > $R 2>&1 < /dev/null 3>&- 4>&-
	rc=$?
	say test-end name=$name rc=$rc uptime=$(up)
	say dmesg-begin name=$name
	dmesg -c > $R
	say dmesg-end name=$name
done < /plan
finish
""".replace("@@P@@", protocol.PREFIX)


class Cpio:
    """A minimal newc cpio writer (what the kernel's initramfs unpacker reads)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        nb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(nb), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.ino += 1
        self.buf.write(hdr + nb)
        self.buf.write(b"\0" * (-(len(hdr) + len(nb)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def mkdir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.mkdir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        if "/" in name:
            self.mkdir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


@functools.lru_cache(maxsize=32)
def module_elf(path: Path) -> bytes:
    """A module's ELF bytes, decompressed (busybox insmod cannot read compressed modules);
    once per run: modinfo() reads them too."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        data = lzma.decompress(data)
    elif path.name.endswith(".zst"):
        raise ValueError(f"{path}: zstd-compressed modules are not supported; decompress first")
    return data


def module_bytes(path: Path) -> bytes:
    """A module as the guest loads it: decompressed, without its BTF."""
    return _without_btf(module_elf(path))


def _without_btf(data: bytes) -> bytes:
    """The module without its BTF (as it is where objcopy is missing or fails): the kernel
    parses and checks a module's BTF as it loads it, which for Debian's kvm.ko and the crypto
    modules was half of the module loading in Bochs, and nothing in the lab reads it. The
    appended signature goes too: Debian's kernel does not enforce module signatures and loads
    the module with taint E (unsigned), which no test reads (they watch W)."""
    objcopy = shutil.which("objcopy")
    if objcopy is None:
        return data
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "in.ko", Path(d) / "out.ko"
        src.write_bytes(data)
        r = subprocess.run([objcopy, "--remove-section=.BTF", "--remove-section=.BTF.ext",
                            str(src), str(out)], capture_output=True, check=False)
        return out.read_bytes() if r.returncode == 0 and out.is_file() else data


def program_bytes(path: Path) -> bytes:
    """A test program without its DWARF (objcopy --strip-debug; as it is where objcopy is
    missing or fails): a program is 1.1 MB, three quarters of it debug info nothing in the
    guest reads, and every byte of the initramfs is read by isolinux and unpacked by the
    kernel at emulated speed. The code and the symbol table stay."""
    objcopy = shutil.which("objcopy")
    if objcopy is not None:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / path.name
            r = subprocess.run([objcopy, "--strip-debug", str(path), str(out)],
                               capture_output=True, check=False)
            if r.returncode == 0 and out.is_file():
                return out.read_bytes()
    return path.read_bytes()


# One library line of `ldd`: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or the
# loader's "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO's "linux-vdso.so.1 (0x...)" has no
# file.
LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def shared_libraries(binaries: list[Path]) -> dict[str, Path]:
    """The shared libraries (and the loader) @binaries load, by the path they are loaded from,
    as this machine's `ldd` resolves them: the guest gets these very files at those paths. The
    labs run the programs `make` builds, dynamically linked like any KVM selftest: the selftest
    library loads the whole program into every VM it creates (kvm_vm_elf_load(), which clears
    each segment first with the library's byte-at-a-time memset()), and a static glibc made
    that four times larger: memset() was 70% of the swap and uABI tests' CPU time in Bochs. A
    static program needs nothing here (ldd: "not a dynamic executable")."""
    libs: dict[str, Path] = {}
    if not binaries:
        return libs
    # One ldd for all: "FILE:" before each file's lines when there are several.
    r = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True,
                       check=False)
    static = (r.stdout + r.stderr).count("not a dynamic executable")
    if r.returncode != 0 and not static:
        raise ValueError(f"ldd {' '.join(b.name for b in binaries)}: "
                         f"{(r.stderr or r.stdout).strip()}")
    for line in r.stdout.splitlines():
        if "not found" in line:
            raise ValueError(f"a test program needs a library this machine lacks: "
                             f"{line.strip()}")
        m = LDD_LINE.match(line)
        if m:
            libs[m.group(1)] = Path(m.group(1)).resolve()
    return libs


def module_name(path: Path) -> str:
    n = path.name
    for suffix in (".xz", ".gz", ".zst"):
        n = n.removesuffix(suffix)
    return n.removesuffix(".ko")


def build(binaries: list[Path], plan: list[PlanEntry], setup: GuestSetup,
          busybox: Path = BUSYBOX) -> bytes:
    """The compressed initramfs image bytes."""
    by_name = {b.name: b for b in binaries}
    missing = sorted({e.binary for e in plan} - set(by_name))
    if missing:
        raise FileNotFoundError(f"plan names binaries not given: {', '.join(missing)}")
    if not busybox.is_file():
        raise FileNotFoundError(f"{busybox} missing: install busybox-static (runner/lab/deps.sh)")
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "tests",
              "modules"):
        c.mkdir(d)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", INIT.encode(), 0o755)
    c.file("lab.env", env_text(setup).encode())
    c.file("plan", plan_text(plan).encode())
    if setup.kernel_config is not None:
        c.file("kernel.config", setup.kernel_config)
    order = []
    for m in setup.modules:
        name = module_name(m)
        c.file(f"modules/{name}.ko", module_bytes(m))
        order.append(name)
    c.file("modules.order", "".join(n + "\n" for n in order).encode())
    c.file("modules.optional", "".join(module_name(m) + "\n" for m in setup.modules
                                       if module_name(m) in setup.optional).encode())
    for name in sorted(by_name):
        c.file(f"tests/{name}", program_bytes(by_name[name]), 0o755)
    for guest_path, lib in sorted(shared_libraries(binaries).items()):
        c.file(guest_path, lib.read_bytes(), 0o755)
    return compress(c.finish(), setup.kernel_config)


def compress(cpio: bytes, kernel_config: bytes | None) -> bytes:
    """The cpio as the kernel under test unpacks it fastest: zstd (`zstd -3`, the tool of
    runner/lab/deps.sh) when its .config says CONFIG_RD_ZSTD=y, else gzip. The kernel unpacks
    the initramfs while it boots, at emulated speed; zstd's image is smaller and unpacks with
    fewer instructions than gzip's (-9 is a tenth smaller again but takes twice the host
    time)."""
    zstd = shutil.which("zstd")
    if zstd and kernel_config and re.search(rb"^CONFIG_RD_ZSTD=y$", kernel_config, re.M):
        r = subprocess.run([zstd, "-q", "-3", "-T0", "-c"], input=cpio, capture_output=True,
                           check=False)
        if r.returncode == 0 and r.stdout:
            return r.stdout
    return gzip.compress(cpio, compresslevel=1)


def write(path: Path, binaries: list[Path], plan: list[PlanEntry], setup: GuestSetup) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(build(binaries, plan, setup))
    os.replace(tmp, path)
    return path
