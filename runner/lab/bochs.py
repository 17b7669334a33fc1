"""Bochs launcher for the bochs lab: an isolinux ISO, a bochsrc, and the debugger build's
`-rc` command file (Debian's bochs-bin has no nogui: an rfb display that never waits)."""
from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from runner.lab.labs import Lab

LOCK = Path(tempfile.gettempdir()) / "kvmfpu-lab-bochs.lock"  # machine-wide, like the port

BOCHS = "bochs-bin"
BIOS = Path("/usr/share/bochs/BIOS-bochs-latest")
VGABIOS = Path("/usr/share/vgabios/vgabios.bin")
ISOLINUX = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")


def available() -> str | None:
    for tool, pkg in ((BOCHS, "bochs"), ("genisoimage", "genisoimage")):
        if shutil.which(tool) is None:
            return f"{tool} not found: install {pkg} (runner/lab/deps.sh)"
    for f, pkg in ((BIOS, "bochsbios"), (VGABIOS, "vgabios"), (ISOLINUX, "isolinux"),
                   (LDLINUX, "syslinux-common")):
        if not f.is_file():
            return f"{f} not found: install {pkg} (runner/lab/deps.sh)"
    return None


@contextlib.contextmanager
def display_lock(log: Callable[[str], None] = print, path: Path = LOCK) -> Iterator[None]:
    """One Bochs lab at a time on this machine: its rfb display wants loopback port 5900."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"lab bochs: waiting for another Bochs lab to finish ({path})")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def isolinux_cfg(cmdline: str) -> str:
    return ("DEFAULT lab\nPROMPT 0\nTIMEOUT 0\nLABEL lab\n  KERNEL /vmlinuz\n"
            f"  APPEND initrd=/initrd.img {cmdline}\n")


def bochsrc(lab: Lab, iso: Path, console: Path, channel: Path) -> str:
    return f"""\
megs: {int(lab.memory)}
cpu: model={lab.cpu}, count=1, ips={lab.ips}, reset_on_triple_fault=0
clock: sync=none, time0=local
romimage: file={BIOS}
vgaromimage: file={VGABIOS}
ata0-master: type=cdrom, path={iso}, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev={console}
com2: enabled=1, mode=file, dev={channel}
display_library: rfb, options="timeout=0"
mouse: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: -
panic: action=fatal
error: action=report
info: action=ignore
debug: action=ignore
"""


def make_iso(kernel: Path, initrd: Path, cmdline: str, workdir: Path) -> Path:
    tree = workdir / "iso"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "isolinux").mkdir(parents=True)
    shutil.copy(ISOLINUX, tree / "isolinux" / "isolinux.bin")
    shutil.copy(LDLINUX, tree / "isolinux" / "ldlinux.c32")
    (tree / "isolinux" / "isolinux.cfg").write_text(isolinux_cfg(cmdline))
    shutil.copy(kernel, tree / "vmlinuz")
    shutil.copy(initrd, tree / "initrd.img")
    iso = workdir / "boot.iso"
    r = subprocess.run(["genisoimage", "-quiet", "-o", str(iso), "-b", "isolinux/isolinux.bin",
                        "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
                        "-boot-info-table", "-J", "-R", str(tree)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"genisoimage failed: {r.stderr.strip()}")
    shutil.rmtree(tree, ignore_errors=True)
    return iso


def prepare(lab: Lab, kernel: Path, initrd: Path, console: Path, channel: Path,
            workdir: Path) -> tuple[list[str], Path]:
    """The Bochs command line and its working directory."""
    iso = make_iso(kernel, initrd, lab.cmdline, workdir)
    rc = workdir / "bochsrc"
    rc.write_text(bochsrc(lab, iso, console, channel))
    cmds = workdir / "bochs.cmds"
    cmds.write_text("c\nquit\n")
    return [BOCHS, "-q", "-f", str(rc), "-rc", str(cmds)], workdir
