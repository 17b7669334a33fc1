"""Local execution: a pool of program invocations, each in its own process group.

A timed-out or interrupted instance gets SIGTERM to its whole process group, then SIGKILL.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from runner.evaluate import Outcome
from runner.plan import Instance

GRACE = 2.0  # seconds between SIGTERM and SIGKILL
POLL = 0.05

OnStart = Callable[[Instance], None]
OnFinish = Callable[[Instance, Outcome], None]


@dataclasses.dataclass
class _Job:
    inst: Instance
    proc: subprocess.Popen[bytes]
    log: object
    started: float
    term_sent: float | None = None
    timed_out: bool = False
    interrupted: bool = False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _start(inst: Instance, bin_dir: Path, log_path: Path) -> _Job:
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen(inst.command(str(bin_dir)), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError as e:
        log.write(f"# kvmfpu-error: msg=cannot start {inst.program}: {e}\n".encode())
        log.close()
        raise
    return _Job(inst, proc, log, time.monotonic())


def _outcome(job: _Job, now: float) -> Outcome:
    rc = job.proc.returncode
    sig = -rc if rc is not None and rc < 0 else None
    return Outcome(returncode=None if sig else rc, signal=sig, timed_out=job.timed_out,
                   interrupted=job.interrupted and not job.timed_out,
                   duration=now - job.started)


def run(instances: list[Instance], bin_dir: Path, logs_dir: Path, jobs: int,
        on_start: OnStart, on_finish: OnFinish, stop: threading.Event) -> None:
    """Run instances with at most `jobs` at a time until done or `stop` is set."""
    pending = list(instances)
    running: list[_Job] = []
    while pending or running:
        now = time.monotonic()
        while pending and len(running) < jobs and not stop.is_set():
            inst = pending.pop(0)
            on_start(inst)
            try:
                running.append(_start(inst, bin_dir, logs_dir / f"{inst.id}.log"))
            except OSError:
                on_finish(inst, Outcome(returncode=None, duration=0.0))
        if stop.is_set():
            pending.clear()
        for job in list(running):
            if job.proc.poll() is not None:
                _signal_group(job.proc.pid, signal.SIGKILL)  # leftover children
                job.log.close()  # type: ignore[attr-defined]
                running.remove(job)
                on_finish(job.inst, _outcome(job, time.monotonic()))
                continue
            if job.term_sent is None and (stop.is_set() or
                                          now - job.started > job.inst.timeout):
                job.timed_out = not stop.is_set()
                job.interrupted = stop.is_set()
                job.term_sent = now
                _signal_group(job.proc.pid, signal.SIGTERM)
            elif job.term_sent is not None and now - job.term_sent > GRACE:
                _signal_group(job.proc.pid, signal.SIGKILL)
        time.sleep(POLL)
