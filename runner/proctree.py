"""Every process an instance made, whatever process groups or sessions it moved into.

The kselftest harness forks one child per test and that child calls setpgrp(), so killing
the instance's process group leaves the running test behind (re-parented to init). Two
things find every process of an instance instead:

- a mark in the environment: each instance starts with KVMFPU_INSTANCE=<tag> (see tag()),
  which every descendant inherits whatever group or session it makes; /proc/PID/environ
  holds the environment a process started with, so a process that later changes its own
  variables still carries the mark;
- descent: every process below the instance's first process (by /proc/PID/stat's ppid),
  for a descendant that was started with a cleared environment.

The runner makes itself a child subreaper (prctl(PR_SET_CHILD_SUBREAPER)), so a process
orphaned by a killed parent is re-parented to the runner, not to init: it stays findable
by descent from the runner, and when it dies the runner reaps it (reap_orphans()).
Linux only; standard library only (ctypes for prctl).
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

MARK = "KVMFPU_INSTANCE"
PR_SET_CHILD_SUBREAPER = 36
PROC = Path("/proc")


def tag(run_token: str, inst_id: str) -> str:
    """The mark of one instance: '<run-token>/<instance-id>'."""
    return f"{run_token}/{inst_id}"


def run_token(run_id: str) -> str:
    """'<run-id>@<runner pid>': unique among the runs on this host at a time."""
    return f"{run_id}@{os.getpid()}"


def marked_env(mark: str, env: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ if env is None else env, **{MARK: mark})


def become_subreaper() -> bool:
    """Orphans of our descendants re-parent to us (Linux >= 3.4); False if it failed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def _environ(pid: int) -> bytes:
    try:
        return (PROC / str(pid) / "environ").read_bytes()
    except OSError:   # gone, a zombie, or not ours
        return b""


def _has_mark(env: bytes, mark: str, prefix: bool) -> bool:
    entry = f"{MARK}={mark}".encode()
    for var in env.split(b"\0"):
        if var == entry or (prefix and var.startswith(entry)):
            return True
    return False


def find(mark: str, root: int | None = None, prefix: bool = False) -> dict[int, str]:
    """Live processes (pid -> state) carrying the mark (or, with prefix, a mark starting
    with it), and every descendant of root (root included). Never this process."""
    me = os.getpid()
    stats = {}
    for pid in _pids():
        st = _stat(pid)
        if st is not None:
            stats[pid] = st
    found: dict[int, str] = {}
    for pid, (state, _) in stats.items():
        if mark and pid != me and state != "Z" and _has_mark(_environ(pid), mark, prefix):
            found[pid] = state
    if root is not None and root in stats:
        children: dict[int, list[int]] = {}
        for pid, (_, ppid) in stats.items():
            children.setdefault(ppid, []).append(pid)
        todo = [root]
        while todo:
            pid = todo.pop()
            if pid != me and stats[pid][0] != "Z":
                found[pid] = stats[pid][0]
            todo.extend(children.get(pid, []))
    return found


def signal_all(mark: str, sig: int, root: int | None = None, prefix: bool = False) -> int:
    """Send sig to every process find() returns; how many there were."""
    pids = find(mark, root, prefix)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return len(pids)


def reap_orphans(keep: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """Reap our dead children other than `keep` (processes subprocess.Popen still owns:
    waiting for those here would lose their exit status)."""
    me = os.getpid()
    for pid in _pids():
        if pid in keep:
            continue
        st = _stat(pid)
        if st is not None and st[1] == me and st[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def kill_all(mark: str, root: int | None = None, prefix: bool = False,
             keep: set[int] = frozenset(), timeout: float = 5.0) -> list[int]:  # type: ignore[assignment]
    """SIGKILL every process of the mark (and below root) until none is left, reaping
    those re-parented to us. Returns the pids still alive after `timeout` (normally none:
    only a process in uninterruptible sleep outlasts SIGKILL for long)."""
    deadline = time.monotonic() + timeout
    while True:
        left = find(mark, root, prefix)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap_orphans(keep)
        if not left or time.monotonic() > deadline:
            return sorted(left)
        time.sleep(0.02)


def kill_descendants() -> list[int]:
    """SIGKILL every descendant of this process (the end of a run: orphans that lost their
    mark and were re-parented to us, the subreaper); returns those still alive after 5 s."""
    me = os.getpid()
    deadline = time.monotonic() + 5.0
    while True:
        left = sorted(find("", me))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap_orphans()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)
