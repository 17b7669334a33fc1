"""report.html renders in headless Chromium: no script error, every section present."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from urllib.parse import unquote

from tests.runner import merge_data as D
from tests.runner.helpers import TempTree, apt_install

SECTIONS = ("summary", "kernel-log", "skips", "images", "filters", "instances")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_or_reason() -> tuple[str | None, str]:
    if os.environ.get("KVMFPU_NO_CHROMIUM"):
        return None, "KVMFPU_NO_CHROMIUM is set"
    path = find_chromium()
    if path:
        return path, ""
    reason = apt_install("chromium")
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


@unittest.skipIf(CHROMIUM is None, WHY_NOT)
class MergedMatrix(TempTree):
    """Issue 13's done-when: a fleet run (two ssh hosts with their identity), a tcg-lab run
    and a host run merged into one report with a hosts x tests matrix."""

    def test_matrix(self) -> None:
        out = self.root / "merged"
        proc = self.kvmfpu("merge", str(D.fleet_run(self.root / "fleet")),
                           str(D.tcg_run(self.root / "tcg")),
                           str(D.host_run(self.root / "host")), "--out", str(out))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        dom, log = render(CHROMIUM or "chromium", (out / "report.html").as_uri())
        Render.check(self, dom, log)     # every section of a one-host report is still there
        matrix = re.search(r'<section id="matrix">(.*?)</section>', dom, re.S)
        self.assertIsNotNone(matrix, "no matrix in a merged run's report")
        head, *rows = re.findall(r"<tr>(.*?)</tr>", matrix.group(1), re.S)
        cols = re.findall(r'<th data-host="([^"]*)">', head)
        self.assertEqual(cols, [*D.FLEET_HOSTS, "lab-tcg", "amx-host-1"])
        for text in (D.SPR, D.EMR, "QEMU TCG CPU version 2.5+", "6.13.0-kvm",
                     "6.12.117-gaeb679aef1bb-dirty"):
            self.assertIn(text, head)     # each column says its CPU model and kernel
        table = {}
        for row in rows:
            name = re.search(r"<code>(.*?)</code>", row).group(1)
            table[name] = dict(re.findall(r'<td data-host="([^"]*)"(?: class="muted")?'
                                          r'(?: data-verdict="([^"]*)")?', row))
        self.assertEqual(len(table), 6 + 6 + 2)      # swap legacy, swap pkru, xcr0 global
        self.assertEqual(table["kvmfpu_swap_test.swap.pkru.set_xsave"],
                         {D.FLEET_HOSTS[0]: "", D.FLEET_HOSTS[1]: "fail", "lab-tcg": "fail",
                          "amx-host-1": "pass"})
        self.assertEqual(table["kvmfpu_swap_test.swap.legacy.guest_image"],
                         {D.FLEET_HOSTS[0]: "pass", D.FLEET_HOSTS[1]: "", "lab-tcg": "pass",
                          "amx-host-1": "pass"})
        ids = set(re.findall(r' id="([^"]+)"', dom))
        links = re.findall(r'href="([^"]+)"', matrix.group(1))
        logs = [h for h in links if not h.startswith("#")]
        self.assertEqual(len(logs), 3 * len(table))   # each test ran on one fleet host
        for href in logs:
            self.assertTrue((out / unquote(href)).is_file(), href)
        pictures = [h[1:] for h in links if h.startswith("#")]
        self.assertEqual(len(pictures), 2)    # the failed set_xsave on two hosts
        for anchor in pictures:
            self.assertIn(anchor, ids)
            self.assertRegex(dom, f'<h3 id="{anchor}"><code>[^<]*{D.PKRU}</code>')

    def test_one_host_run_has_no_matrix(self) -> None:
        self.variants_profile("one", ["pass"])
        proc, run_dir = self.run_profile("one")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn('id="matrix"', (run_dir / "report.html").read_text())


if __name__ == "__main__":
    unittest.main()
