"""`kvmfpu lab`, `kvmfpu build-kernel`, `kvmfpu bisect-step`, `kvmfpu bisect`.

main(argv) takes the subcommand first (`bisect step` = `bisect-step`); argv without one is a
`lab` command line. Also runs
standalone: `python3 -m runner.lab.cli lab --lab tcg` from the repo root, or runner/kvmfpu-lab.
Exit codes: lab 0 pass, 1 a check failed or the kernel splatted, 2 lab/harness error;
bisect-step 0 good, 1 bad, 125 untestable.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import sys
import time
from pathlib import Path

from runner import verdicts as V
from runner.lab import kernel as K
from runner.lab import labs, results
from runner.lab.labs import REPO
from runner.plan import Instance

class LabUsageError(Exception):
    """Bad lab arguments (exit 2)."""


SUBCOMMANDS = ("lab", "build-kernel", "bisect-step", "bisect")
DEFAULT_BIN = REPO / "out" / "static"


def _instance_id(words: list[str]) -> str:
    """PROGRAM.arg.arg, file-name safe; long ones end in a hash of the whole command."""
    iid = ".".join([words[0]] + [re.sub(r"[^A-Za-z0-9_+=.-]", "_", w.lstrip("-"))
                                 for w in words[1:] if w.strip("-")])
    if len(iid) > 80:
        iid = iid[:70] + "." + hashlib.sha1(" ".join(words).encode()).hexdigest()[:8]
    return iid


def instances_from_tests(tests: list[str], bin_dir: Path, timeout: float) -> list[Instance]:
    """`--test "PROGRAM [ARGS]"` items, or every kvmfpu_*_test in bin_dir when none."""
    if not tests:
        tests = sorted(p.name for p in bin_dir.glob("kvmfpu_*_test") if p.is_file())
        if not tests:
            raise LabUsageError(f"no kvmfpu_*_test programs in {bin_dir}: run `make static`")
    out, seen = [], set()
    for t in tests:
        words = shlex.split(t)
        iid = _instance_id(words)
        if iid in seen:
            raise LabUsageError(f"--test {t!r} given twice")
        seen.add(iid)
        out.append(Instance(id=iid, program=words[0], args=words[1:], variant=None, tests=[],
                            params={}, timeout=timeout))
    return out


def instances_from_profile(name: str, bin_dir: Path, lab: labs.Lab,
                           kvm_xcr0: str | None) -> list[Instance]:
    from runner import catalog, config, plan
    configs = REPO / "configs"
    programs = catalog.load(configs, bin_dir if bin_dir.is_dir() else None)
    profile, matrices = config.load_profile(configs, name, programs)
    xcr0 = kvm_xcr0 or lab.kvm_xcr0 or None
    return plan.expand(profile, matrices, programs, int(xcr0, 0) if xcr0 else None)


def add_kernel_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel under test (default: Debian's linux-image-6.12 package)")
    g.add_argument("--kernel", type=Path, help="a bzImage to boot")
    g.add_argument("--modules", type=Path,
                   help="its lib/modules/<release> directory (omit when KVM is built in)")
    g.add_argument("--kernel-tree", type=Path,
                   help="build this kernel source tree first (configs/labs/kernel.config)")
    g.add_argument("--build-dir", type=Path,
                   help="out-of-tree build directory (default .cache/lab/build/<tree name>)")
    g.add_argument("--kasan", action="store_true", help="build with configs/labs/kasan.config")
    g.add_argument("--debian-package", help="a specific linux-image-*-unsigned package")


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", default="tcg", choices=labs.names(),
                   help="tcg (QEMU TCG, kvm_amd), bochs (kvm_intel, AVX-512), kvm (-cpu host)")
    add_kernel_args(p)
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--test", dest="tests", action="append", default=[], metavar="'PROG ARGS'",
                     help="a program and its arguments (repeatable; default: every program)")
    sel.add_argument("--profile", help="a profile from configs/profiles/")
    p.add_argument("--kvm-xcr0", help="KVM's XCR0 for planning xcr0 matrices "
                                      "(default: the lab's, from configs/labs/)")
    p.add_argument("--timeout", type=float, default=120, help="per test program (s)")
    p.add_argument("--append", default="", help="more kernel command line for the guest")
    p.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN,
                   help="static test programs (default out/static)")
    p.add_argument("--results", type=Path, help="results directory (default results/<run-id>)")
    p.add_argument("--require-exercised", action="store_true",
                   help="exit 2 unless every component the lab can test (configs/labs/ "
                        "`exercises`) went through KVM in some passing test")
    p.add_argument("-q", "--quiet", action="store_true")


def get_kernel(a: argparse.Namespace, log) -> K.Kernel:
    if a.kernel_tree:
        from runner.lab import build
        return build.build(a.kernel_tree, a.build_dir, kasan=a.kasan, log=log)
    if a.kernel:
        if not a.kernel.is_file():
            raise K.KernelError(f"--kernel {a.kernel}: no such file")
        mods = a.modules.resolve() if a.modules else None
        return K.Kernel(a.kernel.resolve(), mods, "", f"file:{a.kernel}")
    return K.debian_kernel(package=a.debian_package, log=log)


def cmd_lab(a: argparse.Namespace) -> int:
    from runner import catalog, config, plan
    from runner.lab import build, run
    errors = (K.KernelError, run.LabError, labs.LabConfigError, LabUsageError, build.BuildError,
              config.ConfigError, plan.PlanError, catalog.CatalogError)
    log = (lambda s: None) if a.quiet else (lambda s: print(s, flush=True))
    started = time.monotonic()
    try:
        lab = labs.load(a.lab)
        if a.append:
            lab.cmdline += " " + a.append
        if a.profile:
            insts = instances_from_profile(a.profile, a.bin_dir, lab, a.kvm_xcr0)
        else:
            insts = instances_from_tests(a.tests, a.bin_dir, a.timeout)
        run.preflight(lab)
        kern = get_kernel(a, log)
        workdir = a.results or results.new_dir(lab.name)
        lr = run.run(lab, kern, insts, a.bin_dir, workdir, log)
    except errors as e:
        print(f"lab error: {e}", file=sys.stderr)
        return V.EXIT_ERROR
    results.write(lr, workdir, time.monotonic() - started, a.profile or "lab")
    print(results.summary(lr, workdir, time.monotonic() - started))
    missing = [c for c in lr.lab.exercises if c not in lr.exercised]
    if a.require_exercised and missing and lr.exit_code == V.EXIT_PASS:
        print(f"lab {lr.lab.name}: ERROR: not exercised although the lab can: "
              f"{','.join(missing)} (--require-exercised)", file=sys.stderr)
        return V.EXIT_ERROR
    return lr.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["bisect", "step"]:   # `kvmfpu bisect step` is `bisect-step`
        argv = ["bisect-step"] + argv[2:]
    if not argv or argv[0] not in SUBCOMMANDS + ("-h", "--help"):
        argv = ["lab"] + argv
    p = argparse.ArgumentParser(prog="kvmfpu", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    add_run_args(sub.add_parser("lab", help="boot a kernel in a lab and run tests in it"))
    bk = sub.add_parser("build-kernel", help="build a kernel tree for the labs")
    bk.add_argument("--kernel-tree", type=Path, required=True)
    bk.add_argument("--build-dir", type=Path)
    bk.add_argument("--kasan", action="store_true")
    from runner.lab import bisect
    bisect.add_parsers(sub, add_run_args)
    a = p.parse_args(argv)
    if a.cmd == "lab":
        return cmd_lab(a)
    if a.cmd == "build-kernel":
        from runner.lab import build
        try:
            k = build.build(a.kernel_tree, a.build_dir, kasan=a.kasan)
        except build.BuildError as e:
            print(f"build error: {e}", file=sys.stderr)
            return V.EXIT_ERROR
        print(k.image)
        return 0
    return bisect.dispatch(a)


if __name__ == "__main__":
    sys.exit(main())
