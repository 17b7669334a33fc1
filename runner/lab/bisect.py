"""Bisect a kernel tree with a lab.

`bisect-step` is what `git bisect run` calls at each commit: build the tree (incrementally, out
of tree), boot it in the lab, run the tests; exit 0 good, 1 bad (a check failed or the kernel
splatted), 125 untestable (build failure, boot failure, lab error).
`bisect --good G --bad B` runs the whole bisection and prints the first bad commit with the
diagnostics of its failing checks.
"""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

from runner import run, verdicts as V
from runner.lab.labs import REPO

GOOD, BAD, UNTESTABLE = 0, 1, 125
STEP_LOG = "bisect-steps.jsonl"
ABORT = 128  # git bisect run stops on exit codes above 127


@dataclasses.dataclass
class BisectRequest:
    """A bisection (or one step of it): the lab run each commit gets (its kernel spec names
    the tree and build directory), where the steps' runs go, and the range."""
    run: run.RunRequest
    tree: Path | None = None        # default: the current directory
    steps_dir: Path | None = None
    good: str = ""
    bad: str = ""


def git(tree: Path, *args: str, check: bool = True) -> str:
    r = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def step_code(lab_exit: int) -> int:
    return {V.EXIT_PASS: GOOD, V.EXIT_FAIL: BAD}.get(lab_exit, UNTESTABLE)


def step_args(req: BisectRequest, tree: Path, steps: Path) -> list[str]:
    """The `kvmfpu bisect-step` arguments that repeat `req` at each commit."""
    r, k = req.run, req.run.kernel
    out = ["--lab", str(r.lab), "--kernel-tree", str(tree), "--steps-dir", str(steps),
           "--configs", str(r.configs.absolute()), "--timeout", str(r.timeout)]
    if r.bin_given:     # else each step picks the programs its kernel can run (binaries.py)
        out += ["--bin", str(r.bin_dir.absolute())]
    for t in r.tests:
        out += ["--test", t]
    if r.profile and not r.tests:
        out += ["--profile", r.profile]
    for f in r.filter:
        out += ["--filter", f]
    if r.repeat is not None:
        out += ["--repeat", str(r.repeat)]
    if r.kvm_xcr0 is not None:
        out += ["--kvm-xcr0", f"{r.kvm_xcr0:#x}"]
    if k.build_dir:
        out += ["--build-dir", str(k.build_dir.absolute())]
    if k.kasan:
        out.append("--kasan")
    if r.append:
        out += ["--append", r.append]
    if r.smp:
        out += ["--smp", str(r.smp)]
    if r.require_exercised:
        out.append("--require-exercised")
    return out


def run_step(req: BisectRequest) -> int:
    from runner.lab import build
    tree = (req.tree or Path.cwd()).resolve()
    commit = git(tree, "rev-parse", "--short=12", "HEAD", check=False) or "unknown"
    steps = (req.steps_dir or REPO / "results" / "bisect").resolve()
    run_id = run.unused_name(steps, commit)   # a commit tested twice: two runs
    started = time.monotonic()
    print(f"bisect-step: {commit} {git(tree, 'log', '-1', '--format=%s', check=False)}",
          flush=True)
    k = req.run.kernel
    try:
        kern = build.build(tree, k.build_dir, kasan=k.kasan)
    except build.BuildError as e:
        print(f"bisect-step: build failed, untestable: {e}", file=sys.stderr)
        code, lab_exit = UNTESTABLE, None
    else:
        spec = dataclasses.replace(k, image=kern.image, modules=None, tree=None)
        lab_exit = run.execute(dataclasses.replace(req.run, kernel=spec, results=steps,
                                                   run_id=run_id))
        code = step_code(lab_exit)
    rec = {"commit": commit, "code": code, "lab_exit": lab_exit,
           "seconds": round(time.monotonic() - started, 1), "results": str(steps / run_id)}
    steps.mkdir(parents=True, exist_ok=True)
    with open(steps / STEP_LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"bisect-step: {commit} -> {({GOOD: 'good', BAD: 'bad'}).get(code, 'skip (125)')} "
          f"in {rec['seconds']} s", flush=True)
    return code


def step(req: BisectRequest) -> int:
    """`bisect-step`: a harness bug or a Ctrl-C is no verdict on the commit: stop."""
    try:
        return run_step(req)
    except KeyboardInterrupt:
        return ABORT
    except Exception:
        traceback.print_exc()
        print("bisect-step: internal error, aborting the bisection", file=sys.stderr)
        return ABORT


FIRST_BAD = re.compile(r"^([0-9a-f]{7,40}) is the first bad commit", re.M)


def first_bad(output: str) -> str | None:
    m = FIRST_BAD.search(output)
    return m.group(1) if m else None


def failing_diagnostics(run_dir: Path) -> list[str]:
    """What failed in a step's run: kernel splats, each failing instance with its
    diagnostics and the lines of its log that say what differed."""
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return [f"(no run.json in {run_dir})"]
    out = [f"kernel log: {s['line']} (while running: {', '.join(s['instances'])})"
           for s in data["kernel_log"]["splats"]]
    for i in data["instances"]:
        if i.get("verdict") in (V.FAIL, V.ERROR, V.INTERRUPTED):
            out.append(f"{i['verdict'].upper()} {i['id']}")
            out += [f"  {d}" for d in i.get("diagnostics", [])]
            log = run_dir / i["log"]
            if log.is_file():
                out += ["  | " + ln for ln in log.read_text().splitlines()
                        if ln.startswith(("not ok", "# kvmfpu-mismatch", "# kvmfpu-replay"))
                        or "FAIL" in ln or "Expected" in ln][:30]
    return out


LIVE = ("bisect-step:", "lab ", "build:", "Bisecting:", "kvmfpu: run ")


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


def run_bisect(req: BisectRequest) -> int:
    tree = (req.tree or Path.cwd()).resolve()
    steps = (req.steps_dir or REPO / "results" / f"bisect-{time.strftime('%Y%m%d-%H%M%S')}")
    steps = steps.resolve()
    steps.mkdir(parents=True, exist_ok=True)
    if git(tree, "status", "--porcelain", "--untracked-files=no"):
        print(f"bisect: {tree} has uncommitted changes; commit or stash them first",
              file=sys.stderr)
        return V.EXIT_ERROR
    started = time.monotonic()
    step_cmd = [sys.executable, str(REPO / "runner" / "kvmfpu"), "bisect-step",
                *step_args(req, tree, steps)]
    git(tree, "bisect", "reset", check=False)
    git(tree, "bisect", "start", req.bad, req.good)
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
    where = next((Path(r["results"]) for r in reversed(recs)
                  if r["commit"] == short and r.get("results")), steps / short)
    for line in failing_diagnostics(where):
        print("  " + line)
    return 0
