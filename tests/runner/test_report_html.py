"""report.html renders in headless Chromium: no script error, every section present."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from tests.runner.helpers import TempTree

SECTIONS = ("summary", "kernel-log", "skips", "images", "filters", "instances")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium() -> str | None:
    """Install Debian's chromium; None on success, else why it could not be installed."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "chromium is not installed and apt-get can't be used here (not root?)"
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", "chromium"]
    proc = subprocess.run(install, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:   # a fresh machine may need its package lists first
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
        proc = subprocess.run(install, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return f"chromium could not be installed with apt: {' '.join(tail)}"
    return None


def chromium_or_reason() -> tuple[str | None, str]:
    if os.environ.get("KVMFPU_NO_CHROMIUM"):
        return None, "KVMFPU_NO_CHROMIUM is set"
    path = find_chromium()
    if path:
        return path, ""
    reason = install_chromium()
    path = find_chromium()
    return path, reason or "chromium not found after installing it"


CHROMIUM, WHY_NOT = chromium_or_reason()


def render(chromium: str, url: str) -> tuple[str, str]:
    """(DOM after scripts ran, browser log) of a page."""
    with tempfile.TemporaryDirectory(prefix="kvmfpu-chromium-") as profile:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return proc.stdout, proc.stderr


@unittest.skipIf(CHROMIUM is None, WHY_NOT)
class Render(TempTree):
    def make_report(self) -> Path:
        self.variants_profile("mix", ["splat", "pass", "fail", "skip", "error"])
        proc, run_dir = self.run_profile("mix", "--jobs", "1")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        return run_dir / "report.html"

    def check(self, dom: str, log: str) -> None:
        errors = re.findall(r'CONSOLE.*"(Uncaught[^"]*)"', log)
        self.assertEqual(errors, [], "script errors in report.html")
        self.assertNotIn("data-jserrors", dom.split("<head>")[0], "window.onerror fired")
        self.assertRegex(dom, r'<body[^>]*data-ready="1"', "report script did not finish")
        for section in SECTIONS:
            self.assertRegex(dom, f'<section id="{section}"', f"missing section {section}")

    def test_renders_without_errors(self) -> None:
        report = self.make_report()
        dom, log = render(CHROMIUM or "chromium", report.as_uri())
        self.check(dom, log)
        self.assertIn("<svg", dom)
        self.assertIn('class="diff"', dom)
        self.assertIn("no AVX in guest CPUID", dom)   # skipped, and why
        self.assertIn("WARNING: CPU: 1 PID: 42", dom)   # the splat

    def test_filter_from_link(self) -> None:
        report = self.make_report()
        dom, log = render(CHROMIUM or "chromium", report.as_uri() + "#verdict=fail")
        self.check(dom, log)
        rows = re.findall(r'<tr class="inst"([^>]*)>', dom)
        self.assertEqual(len(rows), 5)
        shown = [r for r in rows if "hidden" not in r]
        self.assertEqual(len(shown), 2, shown)   # the failed one and the splat one
        self.assertTrue(all('data-verdict="fail"' in r for r in shown))
        self.assertRegex(dom, r'<span id="shown">2</span>')


if __name__ == "__main__":
    unittest.main()
