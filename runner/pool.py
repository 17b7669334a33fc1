"""Local execution: a pool of program invocations, each marked and in its own session.

A timed-out or interrupted instance gets SIGTERM to every process it made (runner/proctree.py:
its environment mark, or descent from its first process, whatever process group or session
each moved into), then SIGKILL GRACE seconds later. When its first process exits, whatever
it left behind is killed too, before the instance's result is recorded: no process outlives
its instance.
"""
from __future__ import annotations

import dataclasses
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from runner import proctree
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
    mark: str
    term_sent: float | None = None
    timed_out: bool = False
    interrupted: bool = False


def _start(inst: Instance, bin_dir: Path, log_path: Path, mark: str) -> _Job:
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen(inst.command(str(bin_dir)), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=proctree.marked_env(mark))
    except OSError as e:
        log.write(f"# kvmfpu-error: msg=cannot start {inst.program}: {e}\n".encode())
        log.close()
        raise
    return _Job(inst, proc, log, time.monotonic(), mark)


def _outcome(job: _Job, now: float) -> Outcome:
    rc = job.proc.returncode
    sig = -rc if rc is not None and rc < 0 else None
    return Outcome(returncode=None if sig else rc, signal=sig, timed_out=job.timed_out,
                   interrupted=job.interrupted and not job.timed_out,
                   duration=now - job.started)


def run(instances: list[Instance], bin_dir: Path, logs_dir: Path, jobs: int,
        on_start: OnStart, on_finish: OnFinish, stop: threading.Event,
        run_token: str = "", on_tick: Callable[[], None] | None = None) -> None:
    """Run instances with at most `jobs` at a time until done or `stop` is set.

    run_token (proctree.run_token()) makes the instances' marks unique to this run."""
    token = run_token or proctree.run_token("run")
    proctree.become_subreaper()
    pending = list(instances)
    running: list[_Job] = []
    try:
        while pending or running:
            now = time.monotonic()
            while pending and len(running) < jobs and not stop.is_set():
                inst = pending.pop(0)
                on_start(inst)
                try:
                    running.append(_start(inst, bin_dir, logs_dir / f"{inst.id}.log",
                                          proctree.tag(token, inst.id)))
                except OSError:
                    on_finish(inst, Outcome(returncode=None, duration=0.0))
            if stop.is_set():
                pending.clear()
            for job in list(running):
                if job.proc.poll() is not None:
                    # whatever it left behind (a test child in its own group, say)
                    # (its own children re-parented to us when it exited: the mark finds
                    # them, and those started with a cleared environment go at the end of
                    # the run, proctree.kill_descendants())
                    proctree.kill_all(job.mark, keep={j.proc.pid for j in running})
                    job.log.close()  # type: ignore[attr-defined]
                    running.remove(job)
                    on_finish(job.inst, _outcome(job, time.monotonic()))
                    continue
                if job.term_sent is None and (stop.is_set() or
                                              now - job.started > job.inst.timeout):
                    job.timed_out = not stop.is_set()
                    job.interrupted = stop.is_set()
                    job.term_sent = now
                    proctree.signal_all(job.mark, signal.SIGTERM, job.proc.pid)
                elif job.term_sent is not None and now - job.term_sent > GRACE:
                    proctree.signal_all(job.mark, signal.SIGKILL, job.proc.pid)
            if on_tick is not None:
                on_tick()
            time.sleep(POLL)
    finally:   # the runner itself failed: still leave nothing behind
        keep = {j.proc.pid for j in running}
        for job in running:
            proctree.kill_all(job.mark, job.proc.pid, keep=keep)
            job.proc.wait()
        proctree.kill_all(token + "/", prefix=True)
