"""Bisect a kernel tree with a lab.

`bisect-step` is what `git bisect run` calls at each commit: build the tree (incrementally, out
of tree), boot it in the lab, run the tests; exit 0 good, 1 bad (a check failed or the kernel
splatted), 125 untestable (build failure, boot failure, lab error).
`bisect --good G --bad B` runs the whole bisection and prints the first bad commit with the
diagnostics of its failing checks.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

from runner import verdicts as V
from runner.lab.labs import REPO

GOOD, BAD, UNTESTABLE = 0, 1, 125
STEP_LOG = "bisect-steps.jsonl"


def add_parsers(sub: argparse._SubParsersAction, add_run_args) -> None:
    step = sub.add_parser("bisect-step", help="one `git bisect run` step (0 good, 1 bad, 125)")
    add_run_args(step)
    step.add_argument("--steps-dir", type=Path,
                      help="keep each step's results here, one directory per commit")
    whole = sub.add_parser("bisect", help="bisect a kernel tree between a good and a bad commit")
    add_run_args(whole)
    whole.add_argument("--good", required=True)
    whole.add_argument("--bad", required=True)
    whole.add_argument("--steps-dir", type=Path)


def git(tree: Path, *args: str, check: bool = True) -> str:
    r = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def step_code(lab_exit: int) -> int:
    return {V.EXIT_PASS: GOOD, V.EXIT_FAIL: BAD}.get(lab_exit, UNTESTABLE)


def forward_args(a: argparse.Namespace) -> list[str]:
    """The lab arguments of a `bisect` command line, for its `bisect-step`s."""
    out = ["--lab", a.lab, "--timeout", str(a.timeout), "--bin-dir", str(a.bin_dir.resolve())]
    for t in a.tests:
        out += ["--test", t]
    if a.profile:
        out += ["--profile", a.profile]
    if a.kvm_xcr0:
        out += ["--kvm-xcr0", a.kvm_xcr0]
    if a.build_dir:
        out += ["--build-dir", str(a.build_dir.resolve())]
    if a.kasan:
        out.append("--kasan")
    return out


def run_step(a: argparse.Namespace) -> int:
    from runner.lab import build, cli
    tree = (a.kernel_tree or Path.cwd()).resolve()
    commit = git(tree, "rev-parse", "--short=12", "HEAD", check=False) or "unknown"
    steps = (a.steps_dir or REPO / "results" / "bisect").resolve()
    a.results = steps / commit
    started = time.monotonic()
    print(f"bisect-step: {commit} {git(tree, 'log', '-1', '--format=%s', check=False)}",
          flush=True)
    try:
        kern = build.build(tree, a.build_dir, kasan=a.kasan)
    except build.BuildError as e:
        print(f"bisect-step: build failed, untestable: {e}", file=sys.stderr)
        code, lab_exit = UNTESTABLE, None
    else:
        a.kernel, a.modules, a.kernel_tree = kern.image, None, None
        lab_exit = cli.cmd_lab(a)
        code = step_code(lab_exit)
    rec = {"commit": commit, "code": code, "lab_exit": lab_exit,
           "seconds": round(time.monotonic() - started, 1), "results": str(a.results)}
    steps.mkdir(parents=True, exist_ok=True)
    with open(steps / STEP_LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"bisect-step: {commit} -> {({GOOD: 'good', BAD: 'bad'}).get(code, 'skip (125)')} "
          f"in {rec['seconds']} s", flush=True)
    return code


FIRST_BAD = re.compile(r"^([0-9a-f]{7,40}) is the first bad commit", re.M)


def first_bad(output: str) -> str | None:
    m = FIRST_BAD.search(output)
    return m.group(1) if m else None


def failing_diagnostics(results_dir: Path) -> list[str]:
    """What failed in a step's lab run: each failing instance with its diagnostics."""
    try:
        data = json.loads((results_dir / "lab.json").read_text())
    except (OSError, ValueError):
        return [f"(no lab.json in {results_dir})"]
    out = []
    for s in data.get("boot_splats", []):
        out += [f"kernel {s['kind']} during boot:"] + ["  " + ln for ln in s["lines"][:20]]
    for i in data.get("instances", []):
        if i["verdict"] != V.PASS and i["verdict"] != V.SKIP:
            out.append(f"{i['verdict'].upper()} {i['id']}")
            out += [f"  {d}" for d in i["diagnostics"]]
            log = results_dir / "logs" / f"{i['id']}.log"
            if log.is_file():
                out += ["  | " + ln for ln in log.read_text().splitlines()
                        if ln.startswith(("not ok", "# kvmfpu-mismatch", "# kvmfpu-replay"))
                        or "FAIL" in ln or "Expected" in ln][:30]
            for s in i.get("splats", []):
                out += ["  | " + ln for ln in s["lines"][:20]]
    return out


LIVE = ("bisect-step:", "lab ", "build:", "Bisecting:")


def _run_logged(cmd: list[str], log_path: Path) -> str:
    """Run cmd, keep its whole output in log_path, show the step lines as they come."""
    out: list[str] = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            log.write(line)
            log.flush()
            if line.startswith(LIVE):
                print(line, end="", flush=True)
        proc.wait()
    return "".join(out)


def run_bisect(a: argparse.Namespace) -> int:
    tree = (a.kernel_tree or Path.cwd()).resolve()
    steps = (a.steps_dir or REPO / "results" / f"bisect-{time.strftime('%Y%m%d-%H%M%S')}")
    steps = steps.resolve()
    steps.mkdir(parents=True, exist_ok=True)
    if git(tree, "status", "--porcelain", "--untracked-files=no"):
        print(f"bisect: {tree} has uncommitted changes; commit or stash them first",
              file=sys.stderr)
        return V.EXIT_ERROR
    started = time.monotonic()
    step_cmd = [sys.executable, str(REPO / "runner" / "kvmfpu-lab"), "bisect-step", "--kernel-tree",
                str(tree), "--steps-dir", str(steps)] + forward_args(a)
    git(tree, "bisect", "reset", check=False)
    git(tree, "bisect", "start", a.bad, a.good)
    try:
        output = _run_logged(["git", "-C", str(tree), "bisect", "run", *step_cmd],
                             steps / "bisect-run.log")
        log = git(tree, "bisect", "log", check=False)
        (steps / "bisect.log").write_text(log + "\n")
    finally:
        git(tree, "bisect", "reset", check=False)
    recs = [json.loads(ln) for ln in (steps / STEP_LOG).read_text().splitlines()
            if ln.strip()] if (steps / STEP_LOG).is_file() else []
    total = time.monotonic() - started
    bad = first_bad(output)
    per = ", ".join(f"{r['commit'][:8]} {r['seconds']:.0f}s" for r in recs)
    print(f"bisect: {len(recs)} steps in {total:.0f} s ({per})")
    if bad is None:
        print("bisect: no first bad commit found; see " + str(steps / "bisect-run.log"),
              file=sys.stderr)
        return V.EXIT_ERROR
    short = git(tree, "rev-parse", "--short=12", bad, check=False)
    subject = git(tree, "log", "-1", "--format=%s", bad, check=False)
    print(f"first bad commit: {short} {subject}")
    for line in failing_diagnostics(steps / short):
        print("  " + line)
    return 0


ABORT = 128  # git bisect run stops on exit codes above 127


def dispatch(a: argparse.Namespace) -> int:
    if a.cmd == "bisect-step":
        try:
            return run_step(a)
        except KeyboardInterrupt:
            return ABORT
        except Exception:  # a bug in the harness is no verdict on the commit: stop
            traceback.print_exc()
            print("bisect-step: internal error, aborting the bisection", file=sys.stderr)
            return ABORT
    return run_bisect(a)
