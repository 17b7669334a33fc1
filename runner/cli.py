"""Command line of runner/kvmfpu: list, run, report, compare, merge, export, and for the
labs: lab (an alias of `run --lab`), bisect, bisect-step, build-kernel. argparse into a typed
request (runner.run.RunRequest); each command is a function of it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner import catalog, compare, config, plan, proctree, runstate, verdicts as V, xcr0
from runner.lab.kernel import KernelSpec
from runner.run import RunRequest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = REPO / "configs"
DEFAULT_RESULTS = REPO / "results"
DEFAULT_BIN = REPO / "out" / "bin"
LABS = ("tcg", "bochs", "kvm")


def _xcr0_arg(text: str) -> int:
    try:
        mask = xcr0.parse_mask(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return mask


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


def _common(p: argparse.ArgumentParser, bin_flags: tuple[str, ...] = ("--bin",)) -> None:
    p.add_argument("--configs", default=str(DEFAULT_CONFIGS), help="configs directory")
    p.add_argument(*bin_flags, dest="bin", default=None,
                   help="test binaries (default out/bin)")
    p.add_argument("--kvm-xcr0", type=_xcr0_arg, default=None,
                   help="plan as if KVM supported this XCR0 (default: ask /dev/kvm; in a lab "
                        "its configs/labs/ value)")


def _lab_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--lab", choices=LABS, required=required,
                   help="run in a lab: tcg (QEMU TCG, kvm_amd), bochs (kvm_intel, AVX-512), "
                        "kvm (-cpu host); docs/labs.md")
    g = p.add_argument_group("kernel a lab boots (default: Debian's linux-image-6.12 package)")
    g.add_argument("--kernel", type=Path, help="a bzImage to boot")
    g.add_argument("--modules", type=Path,
                   help="its lib/modules/<release> directory (omit when KVM is built in)")
    g.add_argument("--kernel-tree", type=Path,
                   help="build this kernel source tree first (configs/labs/kernel.config)")
    g.add_argument("--build-dir", type=Path,
                   help="out-of-tree build directory (default .cache/lab/build/<tree name>)")
    g.add_argument("--kasan", action="store_true", help="build with configs/labs/kasan.config")
    g.add_argument("--debian-package", help="a specific linux-image-*-unsigned package")
    p.add_argument("--append", default="", help="more kernel command line for the guest")
    p.add_argument("--smp", type=_cpus, metavar="N",
                   help="CPUs of the kernel under test (default: the lab's `smp`: tcg 2, bochs 1)")
    p.add_argument("--require-exercised", action="store_true",
                   help="exit 2 unless every component the tier can test (a lab's configs/labs/ "
                        "`exercises`, a host's KVM XCR0) went through KVM in some instance")
    p.add_argument("-q", "--quiet", action="store_true", help="no lab progress lines")


def _cpus(text: str) -> int:
    n = int(text) if text.isdigit() else 0
    if not 1 <= n <= 8:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of CPUs from 1 to 8")
    return n


def _test_args(p: argparse.ArgumentParser) -> None:
    """`kvmfpu lab` (and bisect): --test items or a profile, and --results as a run dir."""
    _common(p, ("--bin", "--bin-dir"))
    _lab_args(p)
    p.set_defaults(lab="tcg")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--test", dest="tests", action="append", default=[], metavar="'PROG ARGS'",
                     help="a program and its arguments (repeatable; default: every program)")
    sel.add_argument("--profile", help="a profile from configs/profiles/")
    p.add_argument("--timeout", type=float, default=120, help="per --test program (s)")
    p.add_argument("--filter", action="append", default=[], metavar="REGEX")
    p.add_argument("--repeat", type=_positive, default=None)
    p.add_argument("--results", type=Path,
                   help="the run's directory (default results/<run-id>)")
    p.set_defaults(run_id=None, jobs=None, via="local", sshloginfile=None, tier="host",
                   kmsg="/dev/kmsg", kvm_dev="/dev/kvm", ktap=False)   # a host run's


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kvmfpu", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="programs, profiles, matrices; with --profile, its plan")
    _common(p)
    p.add_argument("--profile", help="print this profile's instances")
    p.add_argument("--repeat", type=_positive, default=None)
    p = sub.add_parser("run", help="run a profile")
    _common(p)
    p.add_argument("--profile", default="smoke")
    p.add_argument("--repeat", type=_positive, default=None, help="run the whole plan N times")
    p.add_argument("--via", choices=("local", "parallel"), default="local")
    p.add_argument("--sshloginfile", default=None, help="GNU parallel ssh login file "
                   "(implies --via parallel)")
    p.add_argument("--jobs", type=_positive, default=None, help="instances at a time")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help="results root directory")
    p.add_argument("--run-id", default=None, help="name of the run directory")
    p.add_argument("--tier", default="host", help="recorded tier (host, lab-tcg, ...)")
    p.add_argument("--kmsg", default="/dev/kmsg", help="kernel log to watch")
    p.add_argument("--kvm-dev", default="/dev/kvm", help="device the run checks read/write "
                   "access to before it starts (the programs open /dev/kvm; the runner's own "
                   "tests point this at a stand-in)")
    p.add_argument("--filter", action="append", default=[], metavar="REGEX",
                   help="only instances whose id matches (repeatable)")
    p.add_argument("--ktap", action="store_true",
                   help="print the run's KTAP (results.ktap) on stdout at the end")
    _lab_args(p)
    p.set_defaults(tests=[], timeout=120.0)
    p = sub.add_parser("lab", help="`run --lab` with --test items (default lab tcg)")
    _test_args(p)
    for name, what in (("bisect-step", "one `git bisect run` step (0 good, 1 bad, 125)"),
                       ("bisect", "bisect a kernel tree between a good and a bad commit")):
        p = sub.add_parser(name, help=what)
        _test_args(p)
        p.add_argument("--steps-dir", type=Path,
                       help="keep each step's run here, one directory per commit")
        if name == "bisect":
            p.add_argument("--good", required=True)
            p.add_argument("--bad", required=True)
    p = sub.add_parser("build-kernel", help="build a kernel tree for the labs")
    p.add_argument("--kernel-tree", type=Path, required=True)
    p.add_argument("--build-dir", type=Path)
    p.add_argument("--kasan", action="store_true")
    p = sub.add_parser("report", help="rewrite a run's report files and print its summary")
    p.add_argument("run", help="run directory, or a run id under --results")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    p = sub.add_parser("compare", help="compare two runs (baseline A, candidate B)")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("export", help="a run in another format: --kcidb (KernelCI's KCIDB)")
    p.add_argument("--kcidb", action="store_true", required=True,
                   help="a KCIDB I/O JSON document (kcidb-io schema v5), for kcidb-submit")
    p.add_argument("run", help="run directory, or a run id under --results")
    p.add_argument("--origin", default="kvmfpu",
                   help="the KCIDB origin: the CI system submitting (default kvmfpu)")
    p.add_argument("--out", type=Path, help="write it here (default: stdout)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    p = sub.add_parser("merge", help="merge runs of several hosts or kernels into one run")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", type=Path, required=True, help="the merged run's directory "
                   "(new, or empty)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    return ap


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _resolve(run: str, results: str) -> Path:
    path = Path(run)
    return path if path.exists() else Path(results) / run


def cmd_list(opts: argparse.Namespace) -> int:
    cdir = Path(opts.configs)
    try:
        programs = catalog.load(cdir, Path(opts.bin or DEFAULT_BIN))
    except catalog.CatalogError as e:
        print(e, file=sys.stderr)
        return V.EXIT_ERROR
    if opts.profile:
        try:
            profile, matrices = config.load_profile(cdir, opts.profile, programs)
            kvm = opts.kvm_xcr0
            if kvm is None:
                from runner import hostinfo
                kvm = hostinfo.kvm_supported_xcr0()[0]
            instances = plan.expand(profile, matrices, programs, kvm, opts.repeat)
        except config.ConfigError as e:
            print(e, file=sys.stderr)
            return V.EXIT_ERROR
        except plan.PlanError as e:
            print(f"kvmfpu: {e}", file=sys.stderr)
            return V.EXIT_ERROR
        for inst in instances:
            print(f"{inst.id}\t{inst.timeout:g}s\t{' '.join([inst.program] + inst.args)}")
        return V.EXIT_PASS
    for name, p in programs.items():
        print(f"program {name} ({p.source}; options: {' '.join(p.options) or 'none'})")
        for f in p.fixtures:
            print(f"  fixture {f.name}: variants {' '.join(f.variants) or '(none)'}; "
                  f"tests {' '.join(f.tests)}")
    for kind in ("profiles", "matrices"):
        print(f"{kind}: {' '.join(config.names(cdir, kind))}")
    problems = config.validate_all(cdir, programs)
    for line in problems:
        print(line, file=sys.stderr)
    return V.EXIT_ERROR if problems else V.EXIT_PASS


def _load(run_dir: Path) -> runstate.Run | None:
    """The run at @run_dir; None, after one line on stderr, if it cannot be read."""
    try:
        return runstate.load(run_dir)
    except (OSError, ValueError, RecursionError) as e:
        print(f"kvmfpu: cannot read run: {_one_line(e)}", file=sys.stderr)
        return None


def cmd_report(opts: argparse.Namespace) -> int:
    from runner import artifacts
    run_dir = _resolve(opts.run, opts.results)
    run = _load(run_dir)
    if run is None:
        return V.EXIT_ERROR
    if run["status"] == "running" and not runstate.runner_alive(run):
        runstate.mark_runner_died(run)
        mark = str(run.get("options", {}).get("instance_mark", ""))
        if mark.startswith(proctree.MARK + "=") and mark.endswith("/"):
            # what the dead runner could not kill: its instances' processes, on this host
            proctree.kill_all(mark.split("=", 1)[1], prefix=True)
    try:
        artifacts.write_all(run, run_dir if run_dir.is_dir() else run_dir.parent)
        text = artifacts.summary_text(run)
    except OSError as e:
        print(f"kvmfpu: cannot write the report files of {run_dir}: {_one_line(e)}",
              file=sys.stderr)
        return V.EXIT_ERROR
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        print(f"kvmfpu: {run_dir}: corrupt run.json ({type(e).__name__}: {_one_line(e)})",
              file=sys.stderr)
        return V.EXIT_ERROR
    print(text)
    return int(run["summary"]["exit_code"])


def cmd_compare(opts: argparse.Namespace) -> int:
    a = _load(_resolve(opts.run_a, opts.results))
    b = _load(_resolve(opts.run_b, opts.results)) if a is not None else None
    if a is None or b is None:
        return V.EXIT_ERROR
    try:
        result = compare.compare(a, b)
        out = compare.to_json(result) if opts.json else compare.text(result)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # never exit 1 (that means "new failures") on a run.json that is not sound
        print(f"kvmfpu: corrupt run.json ({type(e).__name__}: {_one_line(e)})",
              file=sys.stderr)
        return V.EXIT_ERROR
    print(out)
    return int(result["exit_code"])


def cmd_export(opts: argparse.Namespace) -> int:
    from runner import kcidb
    run_dir = _resolve(opts.run, opts.results)
    run = _load(run_dir)
    if run is None:
        return V.EXIT_ERROR
    try:
        text = kcidb.render(run, run_dir if run_dir.is_dir() else run_dir.parent,
                            opts.origin)
    except kcidb.ExportError as e:
        print(f"kvmfpu: {e}", file=sys.stderr)
        return V.EXIT_ERROR
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        print(f"kvmfpu: {run_dir}: corrupt run.json ({type(e).__name__}: {_one_line(e)})",
              file=sys.stderr)
        return V.EXIT_ERROR
    if opts.out is None:
        sys.stdout.write(text)
        return V.EXIT_PASS
    try:
        opts.out.write_text(text)
    except OSError as e:
        print(f"kvmfpu: cannot write {opts.out}: {e.strerror}", file=sys.stderr)
        return V.EXIT_ERROR
    return V.EXIT_PASS


def cmd_merge(opts: argparse.Namespace) -> int:
    """Writes the merged run and, like `report`, prints its summary and exits with its code."""
    from runner import artifacts, merge
    try:
        run = merge.merge([_resolve(r, opts.results) for r in opts.runs], opts.out,
                          sys.argv)
        artifacts.write_all(run, opts.out)
    except merge.MergeError as e:
        print(f"kvmfpu: {_one_line(e)}", file=sys.stderr)
        return V.EXIT_ERROR
    except OSError as e:
        print(f"kvmfpu: cannot write the merged run {opts.out}: {_one_line(e)}",
              file=sys.stderr)
        return V.EXIT_ERROR
    print(artifacts.summary_text(run))
    return int(run.summary["exit_code"])


def every_program(bin_dir: Path) -> list[str]:
    """The test programs in @bin_dir: every kvmfpu_*_test but the unit tests of the suite's own
    library (kvmfpu_unit_*, tests/unit: they never open /dev/kvm; mk/run-unit.sh runs them),
    which in the bochs lab cost a minute of emulation and checked no KVM code."""
    return sorted(p.name for p in bin_dir.glob("kvmfpu_*_test")
                  if p.is_file() and not p.name.startswith("kvmfpu_unit_"))


def request(opts: argparse.Namespace) -> RunRequest:
    """The typed request of a `run`, `lab`, `bisect` or `bisect-step` command line."""
    results, run_id = Path(opts.results or DEFAULT_RESULTS), opts.run_id
    if opts.cmd != "run" and opts.results is not None:     # lab --results DIR: the run's dir
        results, run_id = results.parent, results.name
    bin_dir = Path(opts.bin or DEFAULT_BIN)
    tests = opts.tests
    if opts.cmd != "run" and not tests and not opts.profile:    # every program in bin_dir
        tests = every_program(bin_dir)
    return RunRequest(
        profile=opts.profile, tests=tests, timeout=opts.timeout, configs=Path(opts.configs),
        bin_dir=bin_dir, results=results, run_id=run_id, repeat=opts.repeat, jobs=opts.jobs,
        filter=opts.filter, kvm_xcr0=opts.kvm_xcr0, require_exercised=opts.require_exercised,
        ktap=opts.ktap, quiet=opts.quiet, via=opts.via, sshloginfile=opts.sshloginfile,
        tier=opts.tier, kmsg=opts.kmsg, kvm_dev=opts.kvm_dev, lab=opts.lab,
        kernel=KernelSpec(opts.kernel, opts.modules, opts.kernel_tree, opts.build_dir,
                          opts.kasan, opts.debian_package),
        append=opts.append, smp=opts.smp, bin_given=opts.bin is not None)


def cmd_build_kernel(opts: argparse.Namespace) -> int:
    from runner.lab import build
    try:
        k = build.build(opts.kernel_tree, opts.build_dir, kasan=opts.kasan)
    except build.BuildError as e:
        print(f"build error: {e}", file=sys.stderr)
        return V.EXIT_ERROR
    print(k.image)
    return V.EXIT_PASS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["bisect", "step"]:   # `kvmfpu bisect step` is `bisect-step`
        argv = ["bisect-step"] + argv[2:]
    opts = parser().parse_args(argv)
    if opts.cmd == "list":
        return cmd_list(opts)
    if opts.cmd in ("run", "lab"):
        from runner import run
        if opts.cmd == "run" and opts.lab is None and (opts.kernel or opts.kernel_tree
                                                       or opts.append or opts.smp):
            print("kvmfpu: --kernel, --kernel-tree, --append and --smp need --lab",
                  file=sys.stderr)
            return V.EXIT_ERROR
        return run.execute(request(opts))
    if opts.cmd in ("bisect", "bisect-step"):
        from runner.lab import bisect
        if opts.cmd == "bisect-step":
            return bisect.step(bisect.BisectRequest(request(opts), opts.kernel_tree,
                                                    opts.steps_dir))
        return bisect.run_bisect(bisect.BisectRequest(request(opts), opts.kernel_tree,
                                                      opts.steps_dir, opts.good, opts.bad))
    if opts.cmd == "build-kernel":
        return cmd_build_kernel(opts)
    if opts.cmd == "report":
        return cmd_report(opts)
    if opts.cmd == "export":
        return cmd_export(opts)
    if opts.cmd == "merge":
        return cmd_merge(opts)
    return cmd_compare(opts)
