"""Run an emulator until the guest's plan is done, it dies, or a watchdog fires."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runner import proctree, splats
from runner.lab import protocol

POWER_DOWN = "reboot: Power down"
GRACE = 5.0          # seconds an emulator gets to exit by itself after "done" or a panic
TEST_SLACK = 30.0    # host watchdog per test: timeout * TEST_FACTOR + TEST_SLACK
TEST_FACTOR = 3.0    # guest time can run slower than wall time in an emulator
# A program under which the kernel oopsed or hit a BUG (a "dead" splat: not a WARNING, which
# the kernel survives) and after which neither serial port has said anything for this long:
# the guest is stuck (a task that died holding a lock, or with interrupts off), so stop now
# instead of waiting out the program's whole test watchdog. The splat fails the program all
# the same (runner/lab/run.py attributes it from the console).
STALL_AFTER_OOPS = 60.0
DEAD_SPLATS = ("oops", "bug", "kasan")


@dataclass
class BootResult:
    console: str            # kernel console (ttyS0)
    channel: str            # result channel (ttyS1)
    how: str                # exited | done | panic | boot-timeout | test-timeout | wall-timeout
                            # | stalled-after-oops
                            # | interrupted (the run was stopped)
    returncode: int | None  # the emulator's (-9 when the supervisor killed it)
    wall: float             # seconds
    emulator_log: str       # the emulator's own stdout/stderr (tail)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _kill(proc: subprocess.Popen, mark: str) -> None:
    """SIGKILL the emulator and every process it made, whatever group or session each
    moved into (runner/proctree.py: the environment mark, or descent), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proctree.kill_all(mark, proc.pid, keep={proc.pid})
    proc.wait()
    proctree.kill_all(mark)       # its children, re-parented to us when it died


def _oopsed(console: str, name: str) -> bool:
    """Did the kernel oops (or hit a BUG) since program @name began, by the console (where
    /init echoes its markers)?"""
    at = console.rfind(f"{protocol.PREFIX} test-begin name={name} ")
    return at >= 0 and any(splats.start_kind(line) in DEAD_SPLATS
                           for line in console[at:].splitlines())


def _watch(channel: str, console: str, started: float, now: float, boot_timeout: float,
           wall_timeout: float, test_seen: dict[str, float],
           quiet_since: float | None = None) -> str | None:
    """Why the emulator should be stopped now, or None to keep going. @quiet_since: when the
    serial ports last grew."""
    if protocol.PREFIX + " done" in channel:
        return "done"
    if "Kernel panic - not syncing" in console:
        return "panic"
    if now - started > wall_timeout:
        return "wall-timeout"
    if protocol.PREFIX + " begin" not in channel:
        return "boot-timeout" if now - started > boot_timeout else None
    report = protocol.parse(channel)
    running = report.running
    if running is not None:
        first = test_seen.setdefault(running.name, now)
        if now - first > running.timeout * TEST_FACTOR + TEST_SLACK:
            return "test-timeout"
        if (quiet_since is not None and now - quiet_since > STALL_AFTER_OOPS
                and _oopsed(console, running.name)):
            return "stalled-after-oops"
    return None


def run(cmd: list[str], workdir: Path, console_path: Path, channel_path: Path,
        boot_timeout: float, wall_timeout: float, cwd: Path | None = None,
        poll: float = 0.2, on_poll: Callable[[str, str], None] | None = None,
        stop: threading.Event | None = None) -> BootResult:
    """Start `cmd` (which writes the two serial ports to the given files) and supervise it.

    on_poll(channel, console) sees both serial logs so far at every poll; `stop` being set
    kills the emulator (how = interrupted)."""
    for p in (console_path, channel_path):
        p.unlink(missing_ok=True)
    log_path = workdir / "emulator.log"
    started = time.monotonic()
    proctree.become_subreaper()
    mark = proctree.tag(proctree.run_token("lab"), f"{workdir.name}-{time.time_ns()}")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=cwd or workdir, start_new_session=True,
                                env=proctree.marked_env(mark))
    how = None
    stop_at = None
    test_seen: dict[str, float] = {}
    seen_size, quiet_since = -1, started
    try:
        while True:
            if proc.poll() is not None:
                how = how or "exited"
                break
            now = time.monotonic()
            if stop is not None and stop.is_set():
                how = how or "interrupted"
                _kill(proc, mark)
                break
            if stop_at is not None and now >= stop_at:
                _kill(proc, mark)
                break
            channel, console = _read(channel_path), _read(console_path)
            if len(channel) + len(console) != seen_size:
                seen_size, quiet_since = len(channel) + len(console), now
            if on_poll is not None:
                on_poll(channel, console)
            if stop_at is None:
                why = _watch(channel, console, started, now, boot_timeout, wall_timeout,
                             test_seen, quiet_since)
                if why in ("done", "panic"):
                    how, stop_at = why, now + GRACE
                elif why is not None:
                    how = why
                    _kill(proc, mark)
                    break
            elif POWER_DOWN in console:
                stop_at = min(stop_at, now + 0.5)  # Bochs does not exit on ACPI power off
            time.sleep(poll)
    except BaseException:
        _kill(proc, mark)
        raise
    proctree.kill_all(mark)       # an emulator that exited leaves nothing behind either
    wall = round(time.monotonic() - started, 1)
    return BootResult(_read(console_path), _read(channel_path), how, proc.returncode, wall,
                      _read(log_path)[-4000:])
