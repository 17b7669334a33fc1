"""Execution through GNU parallel, locally or over a fleet (--sshloginfile).

Each instance is one job line around `timeout -k G T PROG ARGS 2>&1`; parallel keeps its
joblog (parallel.joblog in the run directory) and the output of job N in parallel/N. The
joblog is followed while parallel runs, so results are written as jobs finish.

No process outlives its job, here or on a remote host: the program starts with the
instance's environment mark (runner/proctree.py), and the job's shell kills every process
carrying it (found in /proc/*/environ, whatever process group or session it moved into)
when the program ends and when parallel stops the job (--termseq: SIGTERM, then SIGKILL
TERM_GRACE ms later; the shell traps the SIGTERM). Locally the runner also kills what
carries its run's mark when a job ends and when parallel exits.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from runner import proctree
from runner.evaluate import Outcome
from runner.kmsg import SPLAT_ERE
from runner.plan import Instance
from runner.pool import GRACE, OnFinish, OnStart

TIMEOUT_EXIT = (124, 128 + signal.SIGKILL)  # coreutils timeout: TERM'd, or needed KILL


TERM_GRACE = 3000  # ms parallel waits after SIGTERM before SIGKILL when it stops a job


def _marked(line: str, mark: str) -> str:
    """`line` (a `timeout ...` command) run with the mark, and every process that carries
    the mark killed after it and when the job is stopped. The job's shell does not carry
    the mark (only the command does), nor do grep and kill."""
    entry = shlex.quote(f"{proctree.MARK}={mark}")
    kill = (f"k() {{ grep -lzxF {entry} /proc/[0-9]*/environ 2>/dev/null | "
            "while IFS=/ read -r _ _ p _; do kill -$1 $p 2>/dev/null; done; }")
    return (f"{kill}; trap 'k TERM; sleep 1; k KILL; exit 143' INT TERM HUP; "
            f"{proctree.MARK}={shlex.quote(mark)} {line} & wait $!; rc=$?; k KILL")


def job_line(inst: Instance, bin_dir: Path, watch_kernel_log: bool = False,
             mark: str = "") -> str:
    """The shell line of one job; with mark, the program carries it in its environment and
    leaves no process behind (_marked). With watch_kernel_log (remote hosts, whose kernel
    log the runner can't follow), the job itself reports the host's new splat lines after
    the program as `# kvmfpu-kmsg: LINE`, or `# kvmfpu-kmsg_unreadable:` if dmesg fails."""
    cmd = " ".join(shlex.quote(a) for a in inst.command(str(bin_dir)))
    line = f"timeout -k {GRACE:g} {inst.timeout:g} {cmd} 2>&1"
    if mark:
        line = _marked(line, mark)
    else:
        line += "; rc=$?"
    if not watch_kernel_log:
        return f"{line}; exit $rc" if mark else line[:-len("; rc=$?")]
    ere = shlex.quote(SPLAT_ERE)
    # New lines are those after the last line seen before the job (a full ring buffer keeps
    # its line count, so counting lines would miss them); lines carry timestamps.
    new_lines = ("L=\"$last\" awk '{a[NR]=$0} $0==ENVIRON[\"L\"]{s=NR} "
                 "END{for(i=s+1;i<=NR;i++)print a[i]}'")
    return (f"if dmesg >/dev/null 2>&1; then ok=1; last=$(dmesg | tail -n 1); else ok=0; fi; "
            f"{line}; if [ $ok = 1 ]; then dmesg | {new_lines} | grep -E {ere} | "
            f"sed 's/^/# kvmfpu-kmsg: /'; "
            f"else echo \"# kvmfpu-kmsg_unreadable: host=$(uname -n)\"; fi; exit $rc")


def parse_joblog_line(line: str) -> dict[str, str] | None:
    cols = line.rstrip("\n").split("\t")
    if len(cols) < 9 or not cols[0].isdigit():
        return None
    keys = ("seq", "host", "start", "runtime", "send", "receive", "exitval", "signal")
    return dict(zip(keys, (c.strip() for c in cols[:8])))


def short_host(sshlogin: str) -> str:
    """'user@host:port' from an sshlogin ('4/ssh -p 2201 -i key root@127.0.0.1'); '' = local."""
    if sshlogin in (":", ""):
        return ""
    words = sshlogin.split("/", 1)[-1].split() if "/" in sshlogin.split()[0] else sshlogin.split()
    host = words[-1]
    if "-p" in words[:-1]:
        host += ":" + words[words.index("-p") + 1]
    return host


def ssh_command(sshlogin: str) -> list[str]:
    """The command GNU parallel starts a job on `sshlogin` with, the job's line appended:
    ['ssh', '-p', '2201', 'root@h'] of '4/ssh -p 2201 root@h'; ['ssh', 'h'] of 'h'."""
    text = sshlogin.strip()
    first = text.split()[0] if text.split() else ""
    if "/" in first and first.split("/", 1)[0].isdigit():      # ncpus/
        text = text.split("/", 1)[1]
    words = shlex.split(text)
    return words if len(words) > 1 else ["ssh"] + words


def outcome_of(entry: dict[str, str]) -> Outcome:
    rc, sig = int(entry["exitval"]), int(entry["signal"])
    host = short_host(entry["host"])
    if sig:
        return Outcome(returncode=None, signal=sig, duration=float(entry["runtime"]), host=host)
    if rc in TIMEOUT_EXIT:
        return Outcome(returncode=None, timed_out=True, duration=float(entry["runtime"]),
                       host=host)
    if rc > 128:
        return Outcome(returncode=None, signal=rc - 128, duration=float(entry["runtime"]),
                       host=host)
    if rc == 255 and host:
        # ssh's own failure: not the program's status
        return Outcome(returncode=255, duration=float(entry["runtime"]), host=host)
    return Outcome(returncode=rc, duration=float(entry["runtime"]), host=host)


def command(jobs_file: Path, run_dir: Path, jobs: int, sshloginfile: Path | None) -> list[str]:
    cmd = ["parallel", "--will-cite", "--termseq", f"TERM,{TERM_GRACE},KILL,25", "--joblog", str(run_dir / "parallel.joblog"),
           "--results", str(run_dir / "parallel" / "{#}"), "-j", str(jobs) if jobs else "100%",
           "-a", str(jobs_file)]
    if sshloginfile is not None:
        cmd += ["--sshloginfile", str(sshloginfile)]
    return cmd


class Executor:
    """GNU parallel as an executor, called as pool.run is; `error` says why it could not run
    every instance (None when it could)."""

    def __init__(self, sshloginfile: Path | None = None):
        self.sshloginfile = sshloginfile
        self.error: str | None = None

    def __call__(self, instances: list[Instance], bin_dir: Path, logs_dir: Path, jobs: int,
                 on_start: OnStart, on_finish: OnFinish, stop: threading.Event,
                 run_token: str = "", on_tick: Callable[[], None] | None = None) -> None:
        self.error = run(instances, bin_dir, logs_dir.parent, jobs, self.sshloginfile,
                         on_start, on_finish, stop, run_token, on_tick)


def run(instances: list[Instance], bin_dir: Path, run_dir: Path, jobs: int,
        sshloginfile: Path | None, on_start: OnStart, on_finish: OnFinish,
        stop: threading.Event, run_token: str = "",
        on_tick: Callable[[], None] | None = None) -> str | None:
    """Run every instance through GNU parallel; returns an error message if it can't."""
    token = run_token or proctree.run_token("run")
    proctree.become_subreaper()
    if shutil.which("parallel") is None:
        return "GNU parallel is not installed (Debian package 'parallel')"
    logs = run_dir / "logs"
    (run_dir / "parallel").mkdir(exist_ok=True)
    jobs_file = run_dir / "parallel.jobs"
    remote = sshloginfile is not None
    jobs_file.write_text("".join(job_line(i, bin_dir.resolve(), remote,
                                          proctree.tag(token, i.id)) + "\n"
                                 for i in instances))
    joblog = run_dir / "parallel.joblog"
    with open(run_dir / "parallel.stdout", "wb") as out:
        proc = subprocess.Popen(command(jobs_file, run_dir, jobs, sshloginfile), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    started: set[int] = set()
    finished: set[int] = set()
    offset = 0
    stop_sent: float | None = None

    next_seq = 1

    def follow() -> None:
        nonlocal offset, next_seq
        # parallel starts jobs in sequence order and writes N.seq when job N starts
        while next_seq <= len(instances) and (run_dir / "parallel" / f"{next_seq}.seq").exists():
            if next_seq not in started:
                started.add(next_seq)
                on_start(instances[next_seq - 1])
            next_seq += 1
        if not joblog.exists():
            return
        with open(joblog) as f:
            f.seek(offset)
            data = f.read()
        complete = data[:data.rfind("\n") + 1]
        offset += len(complete.encode())
        for line in complete.splitlines():
            entry = parse_joblog_line(line)
            if entry is None or not 1 <= int(entry["seq"]) <= len(instances):
                continue
            n = int(entry["seq"])
            inst = instances[n - 1]
            if n not in started:
                started.add(n)
                on_start(inst)
            out_file = run_dir / "parallel" / str(n)
            log = logs / f"{inst.id}.log"
            if out_file.exists():
                shutil.copyfile(out_file, log)
                err = out_file.with_name(f"{n}.err")
                if err.exists() and err.stat().st_size:
                    with open(log, "ab") as lf:
                        lf.write(err.read_bytes())
            finished.add(n)
            if not remote:     # the job's shell did this already; unless it was killed
                proctree.kill_all(proctree.tag(token, inst.id), keep={proc.pid})
            outcome = outcome_of(entry)
            outcome.interrupted = stop.is_set() and (outcome.signal is not None or
                                                     outcome.timed_out)
            if outcome.interrupted:
                outcome.timed_out = False
            on_finish(inst, outcome)

    while proc.poll() is None:
        if stop.is_set():
            now = time.monotonic()
            if stop_sent is None:
                stop_sent = now
                os.killpg(proc.pid, signal.SIGINT)
            elif now - stop_sent > 3 * GRACE:
                os.killpg(proc.pid, signal.SIGKILL)
        follow()
        if on_tick is not None:
            on_tick()
        time.sleep(0.1)
    proctree.kill_all(token + "/", prefix=True)
    follow()
    for n in sorted(started - finished):
        on_finish(instances[n - 1], Outcome(returncode=None, interrupted=True))
    if proc.returncode not in range(0, 102) and not stop.is_set():
        return f"GNU parallel exited with status {proc.returncode} (see parallel.stdout)"
    return None
