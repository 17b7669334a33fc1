"""Kernel log splats: WARNING, BUG, Oops, KASAN, panics, found in console or dmesg lines."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# printk.time=1 prefix, e.g. "[   12.345678] "; dmesg and the console both carry it.
TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")

# Lines that start a splat. Kept narrow: each one means the kernel itself found a bug.
STARTS = [
    ("warning", re.compile(r"\bWARNING: (CPU: \d+ PID: \d+ at|at) ")),
    ("kasan", re.compile(r"\bBUG: KASAN: ")),
    ("ubsan", re.compile(r"\bUBSAN: ")),
    ("bug", re.compile(r"\bBUG: ")),
    ("bug", re.compile(r"\bkernel BUG at ")),
    ("oops", re.compile(r"\bOops: ")),
    ("oops", re.compile(r"\bgeneral protection fault\b")),
    ("panic", re.compile(r"\bKernel panic - not syncing")),
]
END = re.compile(r"---\[ end (trace|Kernel panic)|^={40,}\s*$")  # KASAN/UBSAN end in ====
MAX_LINES = 60


@dataclass
class Splat:
    kind: str                  # warning, kasan, ubsan, bug, oops, panic
    title: str                 # the first line, timestamp removed
    lines: list[str] = field(default_factory=list)
    test: str | None = None    # the test that was running, "@boot", or None if unknown

    def to_json(self) -> dict:
        return {"kind": self.kind, "title": self.title, "test": self.test, "lines": self.lines}


def strip_time(line: str) -> str:
    return TIMESTAMP.sub("", line)


def start_kind(line: str) -> str | None:
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
