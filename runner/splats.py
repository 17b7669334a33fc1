"""Kernel log splats: the one rule for what in a kernel log line means the kernel found a bug.

Every reader uses it: the host's /dev/kmsg watcher (runner/kmsg.py), the remote-host dmesg
filter of GNU parallel jobs (SPLAT_ERE, the same patterns for grep -E), and the labs'
console and dmesg reader (find, attribute_console). A splat is a line that starts one of the
kernel's own bug reports: WARN (``WARNING: CPU: N PID: N at``), lockdep and RCU-lockdep
reports, BUG (incl. KASAN, soft lockups, sleeping in atomic), UBSAN, Oops, general
protection fault, kernel BUG at, panic. Informational lines are not splats, however they
look ("x86/fpu: ..." boot messages, "KASAN: ..." init lines, a bare "WARNING").

A lab's known emulator noise is not part of this rule: it is data in that lab's file
(configs/labs/LAB.toml `ignore_boot_splats`), passed to find() by the lab only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# printk.time=1 prefix, e.g. "[   12.345678] "; dmesg and the console both carry it.
TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")

# Start of a word: written so that each pattern is both a Python re and a POSIX ERE (no \b,
# no \d), because SPLAT_ERE is the same table for grep -E on remote hosts.
_W = "(^|[^A-Za-z0-9_])"
# Lockdep (kernel/locking/lockdep.c) and RCU-lockdep report headers.
_LOCKDEP = ("WARNING: (possible [a-z ]+ detected|suspicious RCU usage|inconsistent lock state"
            "|bad unlock balance detected|held lock freed|lock held when returning"
            "|[Nn]ested lock was not taken|[A-Z]+-safe -> [A-Z]+-unsafe lock order)")

# Lines that start a splat, in the order they are tried. Kept narrow: each one means the
# kernel itself found a bug.
START_PATTERNS = [
    ("warning", _W + "WARNING: (CPU: [0-9]+ PID: [0-9]+ at|at) "),
    ("lockdep", _W + _LOCKDEP),
    ("kasan", _W + "BUG: KASAN: "),
    ("ubsan", _W + "UBSAN: "),
    ("bug", _W + "BUG: "),
    ("bug", _W + "kernel BUG at "),
    ("oops", _W + "Oops: "),
    ("oops", _W + "general protection fault"),
    ("panic", _W + "Kernel panic - not syncing"),
]
STARTS = [(kind, re.compile(rx)) for kind, rx in START_PATTERNS]
# The same rule for grep -E (gnuparallel.job_line: a remote host's new dmesg lines).
SPLAT_ERE = "|".join(f"({rx})" for _, rx in START_PATTERNS)
END = re.compile(r"---\[ end (trace|Kernel panic)|^={40,}\s*$")  # KASAN/UBSAN end in ====
MAX_LINES = 60


@dataclass
class Splat:
    kind: str                  # warning, lockdep, kasan, ubsan, bug, oops, panic
    title: str                 # the first line, timestamp removed
    lines: list[str] = field(default_factory=list)
    test: str | None = None    # the test that was running, "@boot", or None if unknown

    def to_json(self) -> dict:
        return {"kind": self.kind, "title": self.title, "test": self.test, "lines": self.lines}


def strip_time(line: str) -> str:
    return TIMESTAMP.sub("", line)


def start_kind(line: str) -> str | None:
    """The kind of splat `line` starts, or None: the one test every reader applies."""
    text = strip_time(line)
    for kind, rx in STARTS:
        if rx.search(text):
            return kind
    return None


def _continues(cur: Splat | None, kind: str) -> bool:
    """Whether a start line belongs to the open splat: the panic a splat ends in, or the
    "Oops:" line right after "BUG: unable to handle ..."."""
    if cur is None:
        return False
    if kind == "panic":
        return True
    return kind == "oops" and cur.kind == "bug" and len(cur.lines) < 4


def find(lines: list[str], ignore: list[re.Pattern] | None = None) -> list[Splat]:
    """The splats in a run of kernel log lines, each with the lines that follow it.

    A splat whose title matches an `ignore` pattern (a lab's known emulator noise, from
    configs/labs/) is dropped. A panic that follows a splat is part of that splat.
    """
    out: list[Splat] = []
    cur: Splat | None = None
    ended_at = -10
    for n, line in enumerate(lines):
        text = strip_time(line)
        kind = start_kind(line)
        if kind == "panic" and cur is None and out and n - ended_at <= 2:
            out[-1].lines.append(text)  # "Fatal exception" right after an Oops's end
            continue
        if kind and not _continues(cur, kind):
            cur = Splat(kind, text.strip(), [text])
            out.append(cur)
            continue
        if cur is not None:
            if len(cur.lines) < MAX_LINES:
                cur.lines.append(text)
            if END.search(text):
                cur, ended_at = None, n
    if ignore:
        out = [s for s in out if not any(rx.search(s.title) for rx in ignore)]
    return out


def attribute_console(lines: list[str], prefix: str) -> list[tuple[str | None, list[str]]]:
    """Split console lines into runs, each tagged with the test running at the time.

    /init echoes its protocol markers to the console too, so a `test-begin name=N` marker
    opens N's run and `test-end` closes it; lines before the first test are "@boot".
    """
    runs: list[tuple[str | None, list[str]]] = [("@boot", [])]
    for line in lines:
        text = strip_time(line)
        if text.startswith(prefix + " "):
            word, _, tail = text[len(prefix) + 1:].partition(" ")
            if word == "test-begin":
                name = tail.split("name=", 1)[-1].split()[0] if "name=" in tail else "?"
                runs.append((name, []))
            elif word == "test-end":
                runs.append((None, []))
            continue
        runs[-1][1].append(line)
    return runs
