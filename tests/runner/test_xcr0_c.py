"""runner/xcr0.py against its source, lib/xstate.c: the same verdict on every XCR0 mask tried,
the same component names.

The oracle is a built program's own --xcr0 validation (lib/options.c parse_value ->
xs_xcr0_valid), which refuses an invalid XCR0 with exit 2 before touching KVM; `-l` lists
and exits 0 without KVM. kvmfpu_swap_test also refuses, with exit 2 and another message,
a valid XCR0 with components its guest code does not drive: that message names them with
xs_mask_str, so it checks the names too.
"""
from __future__ import annotations

import itertools
import re
import subprocess
import unittest
from pathlib import Path

from runner import xcr0

REPO = Path(__file__).resolve().parents[2]
SWAP = REPO / "out" / "bin" / "kvmfpu_swap_test"
NOT_DRIVEN = re.compile(r"--xcr0 0x[0-9a-f]+: this test's guest code does not drive (\S+)$")
INVALID = re.compile(r"--xcr0: XCR0 0x[0-9a-f]+: ")


def c_verdict(mask: int) -> tuple[bool, str | None]:
    """(valid per xs_xcr0_valid, names of the components swap does not drive, if any)."""
    proc = subprocess.run([str(SWAP), "--xcr0", f"{mask:#x}", "-l"], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if proc.returncode == 0:
        return True, None
    if proc.returncode == 2 and (m := NOT_DRIVEN.search(last)):
        return True, m.group(1)
    if proc.returncode == 2 and INVALID.search(last):
        return False, None
    raise AssertionError(f"--xcr0 {mask:#x}: exit {proc.returncode}, stderr {proc.stderr!r}")


def masks() -> list[int]:
    """Every single bit (alone, and over x87 and x87|SSE|AVX, since a missing x87 or SSE
    hides other rules), every pair of known components over x87, and reserved mixtures."""
    out = set()
    for b in range(64):
        out.update({1 << b, 0x1 | 1 << b, 0x7 | 1 << b})
    for a, b in itertools.combinations(sorted(xcr0.COMPONENTS), 2):
        out.update({1 << a | 1 << b, 0x1 | 1 << a | 1 << b})
    out.update({0x80003, 0x602e7 | 1 << 19, 0x103, 0x2e7 | 1 << 8, 0x1 | 1 << 63,
                0xffffffffffffffff, 0x7 | 0x60 | 0x80, 0x3 | 0xe0, 0x1 | 0x18 | 0x60000,
                0x602ff, 0x602e7})
    return sorted(out)


@unittest.skipUnless(SWAP.exists(), f"{SWAP}: run make first")
class Xcr0AgainstC(unittest.TestCase):
    def test_every_mask_gets_the_c_verdict(self) -> None:
        tried = masks()
        self.assertGreater(len(tried), 250)
        for mask in tried:
            valid, not_driven = c_verdict(mask)
            with self.subTest(mask=hex(mask)):
                self.assertEqual(xcr0.is_valid(mask), valid, xcr0.problems(mask))
                if not_driven is not None:   # xs_mask_str of the bits swap does not drive
                    self.assertEqual(xcr0.mask_str(mask & ~0x2e7), not_driven)

    def test_swap_drives_what_programs_toml_says(self) -> None:
        """xcr0_drivable of kvmfpu_swap_test (planning) is FPU_GUEST_COMPS (lib/fpu_vm.h)."""
        import tomllib
        with open(REPO / "configs" / "programs.toml", "rb") as f:
            drivable = int(tomllib.load(f)["kvmfpu_swap_test"]["xcr0_drivable"], 0)
        self.assertEqual(drivable, 0x2e7)
        for b in xcr0.COMPONENTS:
            # The smallest valid XCR0 with bit b: x87|SSE|AVX and b's group.
            group = next((g for g in (xcr0.MPX, xcr0.AVX512, xcr0.AMX) if g >> b & 1), 1 << b)
            with self.subTest(bit=b):
                valid, not_driven = c_verdict(0x7 | group)
                self.assertTrue(valid)
                self.assertEqual(not_driven is None, bool(drivable >> b & 1))


class ComponentTable(unittest.TestCase):
    """The names and bits of lib/xstate.h's enum xs_comp and lib/xstate.c's comp_desc."""

    def test_names_and_bits_match_the_c_table(self) -> None:
        header = (REPO / "lib" / "xstate.h").read_text()
        source = (REPO / "lib" / "xstate.c").read_text()
        bits = {name: int(v) for name, v in re.findall(r"^\t(XS_[A-Z0-9_]+)\s*= (\d+),",
                                                       header, re.M) if name != "XS_NR"}
        names = dict(re.findall(r'DESC\((XS_[A-Z0-9_]+), "([a-z0-9_]+)"', source))
        self.assertTrue(names)
        self.assertEqual({bits[c]: n for c, n in names.items()}, xcr0.COMPONENTS)


class SupportedCpuidReader(unittest.TestCase):
    def test_only_hostinfo_asks_kvm(self) -> None:
        """KVM_GET_SUPPORTED_CPUID is read in one place in Python: runner/hostinfo.py."""
        readers = sorted(str(f.relative_to(REPO)) for f in (REPO / "runner").rglob("*.py")
                         if re.search(r"GET_SUPPORTED_CPUID|0xC008AE05|fcntl\.ioctl",
                                      f.read_text(), re.I))
        self.assertEqual(readers, ["runner/hostinfo.py"])


if __name__ == "__main__":
    unittest.main()
