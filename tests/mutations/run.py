#!/usr/bin/env python3
"""Re-inject classes of KVM FPU bugs into a kernel tree and count what the suite notices.

Each mutation in mutations.toml is applied alone to a clean git tree of Linux 6.12 (for
example the one runner/lab/bisect-demo.sh makes), the kernel is built incrementally and
booted in a lab, and the tests run there: exit 1 (a check failed) means caught, 0 missed,
anything else could not be tested. The tree is restored after each mutation.

    tests/mutations/run.py --kernel-tree .cache/lab/bisect-demo/linux --base 0eb88c5fe \\
        --build-dir .cache/lab/bisect-demo/build [--lab tcg] [--only NAME]
"""
import argparse
import subprocess
import sys
import time
import tomllib
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
PROFILE = "check"     # the swap, uabi and xcr0 tests, as `make check` runs them; a
                      # mutation's `profile` names another (race: the stress stimuli)


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True,
                          text=True).stdout


def apply(tree: Path, m: dict) -> None:
    path = tree / m["file"]
    text = path.read_text()
    if text.count(m["old"]) != 1:
        raise SystemExit(f"mutation {m['name']}: its 'old' text occurs {text.count(m['old'])} "
                         f"times in {m['file']}, not once")
    path.write_text(text.replace(m["old"], m["new"]))


def run_lab(args: argparse.Namespace, tree: Path, built: bool,
            profile: str = PROFILE) -> tuple[str, float, str]:
    """Build the tree as it stands (incrementally), boot it, run the profile: one verdict.
    Once @built, boot the image the build left (KVM is built in) without asking make again."""
    start = time.monotonic()
    cmd = [str(TOP / "runner" / "kvmfpu"), "run", "--lab", args.lab, "--profile", profile, "-q"]
    image = Path(args.build_dir or "") / "arch/x86/boot/bzImage"
    if built and args.build_dir and image.is_file():
        cmd += ["--kernel", str(image)]
    else:
        cmd += ["--kernel-tree", str(tree)]
        if args.build_dir:
            cmd += ["--build-dir", args.build_dir]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=TOP)
    verdict = {1: "caught", 0: "MISSED"}.get(p.returncode, f"untestable (exit {p.returncode})")
    # the runner's summary: "  FAIL <instance>: <tests> <first diagnostic>", splat lines
    fails = [line.strip() for line in p.stderr.splitlines()
             if line.startswith(("  FAIL ", "kernel log: "))]
    return verdict, time.monotonic() - start, fails[0] if fails else p.stderr.strip()[-200:]


def run_one(args: argparse.Namespace, m: dict) -> list[tuple[str, float, str]]:
    """Apply @m once and boot it --repeat times: the repeats after the first boot the image
    the first one built."""
    tree = Path(args.kernel_tree)
    git(tree, "checkout", "-q", "--detach", args.base)
    apply(tree, m)
    try:
        profile = m.get("profile", PROFILE)
        results = [run_lab(args, tree, False, profile)]
        # a first run that gave a verdict built this kernel; otherwise the image on disk may be
        # an older build's, and each repeat goes through the tree again
        built = results[0][0] in ("caught", "MISSED")
        results += [run_lab(args, tree, built, profile) for _ in range(args.repeat - 1)]
        return results
    finally:
        git(tree, "checkout", "-q", "--", ".")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel-tree", required=True)
    ap.add_argument("--base", required=True, help="the unmodified commit to mutate")
    ap.add_argument("--build-dir")
    ap.add_argument("--lab", default="tcg")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--repeat", type=int, default=1, help="run each mutation N times")
    args = ap.parse_args()
    if git(Path(args.kernel_tree), "status", "--porcelain", "--untracked-files=no"):
        print(f"mutations: {args.kernel_tree} has uncommitted changes", file=sys.stderr)
        return 2
    start_ref = git(Path(args.kernel_tree), "rev-parse", "--abbrev-ref", "HEAD").strip()
    mutations = tomllib.loads((Path(__file__).parent / "mutations.toml").read_text())["mutation"]
    results = []
    try:
        for m in mutations:
            if args.only and m["name"] not in args.only:
                continue
            labs = m.get("labs", ["tcg"])    # the labs whose KVM can show this class
            if args.lab not in labs:
                print(f"{'skipped':8} {m['name']:30}        lab {args.lab} cannot show it "
                      f"(it needs: {', '.join(labs)})", flush=True)
                continue
            for verdict, secs, detail in run_one(args, m):
                results.append(verdict)
                print(f"{verdict:8} {m['name']:30} {secs:5.0f} s  {detail}", flush=True)
    finally:
        git(Path(args.kernel_tree), "checkout", "-q", start_ref)
    caught = results.count("caught")
    print(f"mutations: {caught} passed, {len(results) - caught} failed")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
