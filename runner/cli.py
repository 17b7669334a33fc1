"""Command line of runner/kvmfpu: list, run, report, compare; lab and bisect go to runner.lab."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from runner import catalog, compare, config, plan, proctree, runstate, verdicts as V, xcr0

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = REPO / "configs"
DEFAULT_RESULTS = REPO / "results"
DEFAULT_BIN = REPO / "out" / "bin"
# Subcommands that belong to the labs (runner/lab/cli.py gets argv including the name).
LAB_COMMANDS = ("lab", "bisect", "bisect-step", "build-kernel")


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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--configs", default=str(DEFAULT_CONFIGS), help="configs directory")
    p.add_argument("--bin", default=str(DEFAULT_BIN), help="test binaries (default out/bin)")
    p.add_argument("--kvm-xcr0", type=_xcr0_arg, default=None,
                   help="plan as if KVM supported this XCR0 (default: ask /dev/kvm)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="kvmfpu", description=__doc__,
        epilog=f"lab commands ({', '.join(LAB_COMMANDS)}): see `kvmfpu lab --help`")
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
    p = sub.add_parser("report", help="rewrite a run's report files and print its summary")
    p.add_argument("run", help="run directory, or a run id under --results")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    p = sub.add_parser("compare", help="compare two runs (baseline A, candidate B)")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    p.add_argument("--json", action="store_true")
    return ap


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _resolve(run: str, results: str) -> Path:
    path = Path(run)
    return path if path.exists() else Path(results) / run


def cmd_list(opts: argparse.Namespace) -> int:
    cdir = Path(opts.configs)
    try:
        programs = catalog.load(cdir, Path(opts.bin))
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


def cmd_report(opts: argparse.Namespace) -> int:
    from runner import artifacts
    run_dir = _resolve(opts.run, opts.results)
    try:
        run = runstate.load(run_dir)
    except (OSError, ValueError, RecursionError) as e:
        print(f"kvmfpu: cannot read run: {_one_line(e)}", file=sys.stderr)
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
    try:
        a = runstate.load(_resolve(opts.run_a, opts.results))
        b = runstate.load(_resolve(opts.run_b, opts.results))
    except (OSError, ValueError, RecursionError) as e:
        print(f"kvmfpu: cannot read run: {_one_line(e)}", file=sys.stderr)
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


def lab_dispatch(argv: list[str]) -> int:
    """`lab` and `bisect` belong to runner/lab/cli.py (the labs' own command line)."""
    if importlib.util.find_spec("runner.lab.cli") is None:
        print("kvmfpu: the lab commands are not available: runner/lab/cli.py does not exist "
              "yet", file=sys.stderr)
        return V.EXIT_ERROR
    module = importlib.import_module("runner.lab.cli")
    return int(module.main(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in LAB_COMMANDS:
        return lab_dispatch(argv)
    opts = parser().parse_args(argv)
    if opts.cmd == "list":
        return cmd_list(opts)
    if opts.cmd == "run":
        from runner import run
        return run.execute(opts)
    if opts.cmd == "report":
        return cmd_report(opts)
    return cmd_compare(opts)
