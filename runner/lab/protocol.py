"""The line protocol between the lab guest's /init and the host.

/init writes to the second serial port (ttyS1, the "result channel"); each of its own lines
starts with PREFIX and a word, everything else is the output of the section it is in:

    @@kvmfpu-lab begin kernel=6.12.117+deb12-amd64 lab=tcg uptime=1.93
    @@kvmfpu-lab cpu-model AMD EPYC ...          (rest of line)
    @@kvmfpu-lab cpu-flags fpu vme ...           (rest of line)
    @@kvmfpu-lab quirks xsetbv_not_intercepted,no_xinuse
    @@kvmfpu-lab module-error name=kvm-amd
    @@kvmfpu-lab module name=kvm_amd nested=1
    @@kvmfpu-lab dmesg-begin name=@boot          kernel log lines follow (dmesg -c)
    @@kvmfpu-lab dmesg-end name=@boot
    @@kvmfpu-lab lab-error msg=...               the guest cannot run tests
    @@kvmfpu-lab test-begin name=N timeout=T uptime=U   test stdout+stderr follow
    @@kvmfpu-lab test-end name=N rc=RC uptime=U
    @@kvmfpu-lab done

The same marker lines also go to the kernel console (ttyS0) so a splat printed live there can be
attributed to the test that was running.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PREFIX = "@@kvmfpu-lab"
_MID_LINE = re.compile(r"(?<=[^\n])" + re.escape(PREFIX + " "))
BOOT = "@boot"


@dataclass
class TestRecord:
    name: str
    timeout: int = 0
    rc: int | None = None           # None: the test never ended (kernel died or hung)
    begin_uptime: float | None = None
    end_uptime: float | None = None
    output: list[str] = field(default_factory=list)
    dmesg: list[str] = field(default_factory=list)
    dmesg_complete: bool = False    # the kernel log after the test was read out in full

    @property
    def elapsed(self) -> float | None:
        if self.begin_uptime is None or self.end_uptime is None:
            return None
        return round(self.end_uptime - self.begin_uptime, 2)

    @property
    def timed_out(self) -> bool:
        # /init runs `timeout -s KILL T`: SIGKILL gives 128 + 9.
        return self.rc == 137 and (self.elapsed is None or self.elapsed >= self.timeout - 1)


@dataclass
class GuestReport:
    began: bool = False
    done: bool = False
    kernel: str = ""
    lab: str = ""
    boot_uptime: float | None = None
    cpu_model: str = ""
    cpu_flags: list[str] = field(default_factory=list)
    quirks: list[str] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)   # module -> nested parameter
    module_errors: list[str] = field(default_factory=list)
    modules_skipped: list[str] = field(default_factory=list)   # optional ones insmod refused
    lab_error: str | None = None
    boot_dmesg: list[str] = field(default_factory=list)
    boot_dmesg_complete: bool = False
    tests: list[TestRecord] = field(default_factory=list)

    def test(self, name: str) -> TestRecord | None:
        for t in self.tests:
            if t.name == name:
                return t
        return None

    @property
    def running(self) -> TestRecord | None:
        """The test that began and never ended, if any."""
        if self.tests and self.tests[-1].rc is None:
            return self.tests[-1]
        return None


def kv(words: list[str]) -> dict[str, str]:
    out = {}
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            out[k] = v
    return out


def _float(s: str | None) -> float | None:
    try:
        return float(s) if s is not None else None
    except ValueError:
        return None


def clean(text: str) -> list[str]:
    """Serial text as lines: CRs and NULs gone, and a protocol line that lost the end of the
    line before it (an emulated UART under load drops bytes: "dmesg-end name=kvmfpu\\0@@kvmfpu-lab
    done" was seen in the bochs lab) starts a line of its own again."""
    text = text.replace("\r", "").replace("\0", "")
    return _MID_LINE.sub("\n" + PREFIX + " ", text).split("\n")


def parse(text: str) -> GuestReport:
    """Parse the result channel's text (possibly cut off anywhere)."""
    r = GuestReport()
    section: list[str] | None = None
    dmesg_of = ""
    for line in clean(text):
        if not line.startswith(PREFIX + " "):
            if section is not None:
                section.append(line)
            continue
        rest = line[len(PREFIX) + 1:]
        word, _, tail = rest.partition(" ")
        args = kv(tail.split())
        if word == "begin":
            r.began = True
            r.kernel = args.get("kernel", "")
            r.lab = args.get("lab", "")
            r.boot_uptime = _float(args.get("uptime"))
        elif word == "cpu-model":
            r.cpu_model = tail.strip()
        elif word == "cpu-flags":
            r.cpu_flags = tail.split()
        elif word == "quirks":
            r.quirks = [q for q in tail.strip().split(",") if q]
        elif word == "module":
            r.modules[args.get("name", "?")] = args.get("nested", "")
        elif word == "module-error":
            r.module_errors.append(args.get("name", "?"))
        elif word == "module-skipped":
            r.modules_skipped.append(args.get("name", "?"))
        elif word == "lab-error":
            r.lab_error = tail.partition("msg=")[2] or tail
        elif word == "test-begin":
            t = TestRecord(args.get("name", "?"), int(args.get("timeout", "0") or 0),
                           begin_uptime=_float(args.get("uptime")))
            r.tests.append(t)
            section = t.output
        elif word == "test-end":
            t = r.test(args.get("name", "?"))
            if t is None and r.tests and r.tests[-1].rc is None:
                # /init runs one program at a time, so this ends the open one: Bochs' serial
                # port drops bytes under load, and a garbled test-begin keeps its output
                t = r.tests[-1]
                t.name = args.get("name", "?")
            if t is not None:
                try:
                    t.rc = int(args.get("rc", ""))
                except ValueError:
                    t.rc = -1
                t.end_uptime = _float(args.get("uptime"))
            section = None
        elif word == "dmesg-begin":
            name = args.get("name", "?")
            t = r.test(name)
            section = r.boot_dmesg if name == BOOT or t is None else t.dmesg
            dmesg_of = name
        elif word == "dmesg-end":
            if dmesg_of == BOOT:
                r.boot_dmesg_complete = True
            elif (t := r.test(dmesg_of)) is not None:
                t.dmesg_complete = True
            section = None
        elif word == "done":
            r.done = True
            section = None
    for t in r.tests:
        while t.output and t.output[-1] == "":
            t.output.pop()
    return r
