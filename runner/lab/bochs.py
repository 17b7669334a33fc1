"""Bochs launcher for the bochs lab: an isolinux ISO, a bochsrc, and the debugger build's
`-rc` command file (Debian's bochs-bin has no nogui: an rfb display that never waits).

The rfb display is an unauthenticated VNC server on port 5900 of every interface (the console
and keyboard of the kernel under test), so Bochs runs in a network namespace of its own, where
nothing can reach it; each Bochs lab has its own port 5900 there, so any number run at once.
Where no namespace can be made the lab is refused, never run exposed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from runner.lab.labs import Lab

BOCHS = "bochs-bin"
UNSHARE = "unshare"
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
    return isolation_problem()


def netns_prefix() -> list[str]:
    """What runs a command in a new, empty network namespace: as root `unshare --net`; as
    another user inside a user namespace of its own (unprivileged user namespaces)."""
    if os.geteuid() == 0:
        return [UNSHARE, "--net"]
    return [UNSHARE, "--user", "--map-root-user", "--net"]


def isolation_problem() -> str | None:
    """Why Bochs cannot get a network namespace of its own here (None if it can), in one line."""
    cmd = netns_prefix() + ["true"]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30, check=False)
        lines = r.stderr.strip().splitlines()
        why = None if r.returncode == 0 else (lines[-1] if lines else f"exit {r.returncode}")
    except (OSError, subprocess.TimeoutExpired) as e:
        why = str(e).splitlines()[0]
    if why is None:
        return None
    return (f"refused: `{' '.join(cmd[:-1])}` failed ({why}), and without a network namespace "
            "of its own Bochs' rfb display is an unauthenticated VNC server on port 5900 of "
            "every interface; run as root, or allow unprivileged user namespaces")


def kernel_cmdline(lab: Lab) -> str:
    """The lab's kernel command line, with the guest's TSC frequency set to Bochs' tick rate.

    Bochs' TSC advances one tick per emulated instruction, `ips` ticks per emulated second (the
    rate of its HPET, PIT and APIC timer too), but the tigerlake model's CPUID leaf 0x15 says
    2419.2 MHz, and Linux believes it (tsc_known_freq: no calibration, and with constant,
    nonstop TSC and TSC_ADJUST no clocksource watchdog either). The guest's clock then ran 24x
    slower than the emulator's other timers: every guest second, a test's --duration or a
    sleep, cost 2.4G instructions instead of `ips`. tsc_early_khz= replaces CPUID's figure,
    and the kernel then refines it against the HPET (the boot log says 'Refined TSC
    clocksource calibration' with the ips figure). A tsc_early_khz= already in the command
    line (--append) wins.
    """
    if "tsc_early_khz=" in lab.cmdline:
        return lab.cmdline
    return f"{lab.cmdline} tsc_early_khz={lab.ips // 1000}"


def isolinux_cfg(cmdline: str) -> str:
    return ("DEFAULT lab\nPROMPT 0\nTIMEOUT 0\nLABEL lab\n  KERNEL /vmlinuz\n"
            f"  APPEND initrd=/initrd.img {cmdline}\n")


def bochsrc(lab: Lab, iso: Path, console: Path, channel: Path) -> str:
    return f"""\
megs: {int(lab.memory)}
cpu: model={lab.cpu}, count={lab.smp}, ips={lab.ips}, reset_on_triple_fault=0
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
    """The Bochs command line, in a network namespace of its own, and its working directory."""
    iso = make_iso(kernel, initrd, kernel_cmdline(lab), workdir)
    rc = workdir / "bochsrc"
    rc.write_text(bochsrc(lab, iso, console, channel))
    cmds = workdir / "bochs.cmds"
    cmds.write_text("c\nquit\n")
    return netns_prefix() + [BOCHS, "-q", "-f", str(rc), "-rc", str(cmds)], workdir
