"""Planning: profile x matrix -> instances with explicit arguments."""
from __future__ import annotations

import unittest
from pathlib import Path

from runner import catalog, config, plan
from tests.runner.helpers import PROGRAM, TempTree


class Planning(TempTree):
    def expand(self, profile: str, kvm_xcr0: int | None = 0xe7,
               repeat: int | None = None) -> list[plan.Instance]:
        self.profile("p", profile)
        programs = catalog.load(self.configs, self.bin)
        p, m = config.load_profile(self.configs, "p", programs)
        return plan.expand(p, m, programs, kvm_xcr0, repeat)

    def test_one_instance_per_variant_and_seed(self) -> None:
        self.matrix("m", "seed = [1, 2]\nrounds = [3]\n")
        inst = self.expand(f'matrix = "m"\n[[run]]\nprogram = "{PROGRAM}"\n'
                           'variants = ["pass", "fail"]\n')
        self.assertEqual([i.id for i in inst], [
            f"{PROGRAM}.pass.seed=1.rounds=3", f"{PROGRAM}.pass.seed=2.rounds=3",
            f"{PROGRAM}.fail.seed=1.rounds=3", f"{PROGRAM}.fail.seed=2.rounds=3"])
        self.assertEqual(inst[1].args, ["--seed", "2", "--rounds", "3", "-v", "pass"])
        self.assertEqual(inst[1].seed, 2)
        self.assertEqual(inst[0].timeout, 30.0)  # from programs.toml

    def test_inline_matrix_beside_a_shared_one(self) -> None:
        self.matrix("shared", 'xcr0 = ["0x3", "0x7"]\n')
        inst = self.expand(f'matrix = {{ seed = [1, 2] }}\n[[run]]\nprogram = "{PROGRAM}"\n'
                           'variants = ["fail"]\n'
                           f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n'
                           'matrix = "shared"\n')
        self.assertEqual([i.id for i in inst], [
            f"{PROGRAM}.fail.seed=1", f"{PROGRAM}.fail.seed=2",
            f"{PROGRAM}.pass.xcr0=0x3", f"{PROGRAM}.pass.xcr0=0x7"])

    def test_split_by_test_uses_full_names(self) -> None:
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n'
                           'split = "test"\ntimeout = 7\n')
        self.assertEqual([i.args for i in inst], [["-r", "fake.pass.guest_image"],
                                                   ["-r", "fake.pass.host_regs"]])
        self.assertEqual(inst[0].timeout, 7.0)

    def test_test_subset_in_one_invocation(self) -> None:
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["fail"]\n'
                           'tests = ["host_regs"]\n')
        self.assertEqual(len(inst), 1)
        self.assertEqual(inst[0].args, ["-r", "fake.fail.host_regs"])

    def test_xcr0_subsets_only_for_the_xcr0_variant(self) -> None:
        self.matrix("m", 'xcr0 = "kvm-valid-subsets"\n')
        inst = self.expand(f'matrix = "m"\n[[run]]\nprogram = "{PROGRAM}"\n'
                           'variants = ["pass", "fail"]\n', kvm_xcr0=0x2e7)
        xs = [i.params.get("xcr0") for i in inst if i.variant == "pass"]
        self.assertEqual(xs, [0x1, 0x3, 0x7, 0xe7, 0x201, 0x203, 0x207, 0x2e7])
        self.assertEqual([i.params for i in inst if i.variant == "fail"], [{}])
        self.assertIn("--xcr0", inst[3].args)
        self.assertEqual(inst[3].args[inst[3].args.index("--xcr0") + 1], "0xe7")

    def test_kvm_xcr0_limits_to_drivable_bits(self) -> None:
        self.matrix("m", 'xcr0 = "kvm-supported"\n')
        inst = self.expand(f'matrix = "m"\n[[run]]\nprogram = "{PROGRAM}"\n'
                           'variants = ["pass"]\n', kvm_xcr0=0x602e7)
        self.assertEqual([i.params["xcr0"] for i in inst], [0x2e7])

    def test_xcr0_subsets_need_kvm_xcr0(self) -> None:
        self.matrix("m", 'xcr0 = "kvm-valid-subsets"\n')
        with self.assertRaises(plan.PlanError) as cm:
            self.expand(f'matrix = "m"\n[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n',
                        kvm_xcr0=None)
        self.assertIn("--kvm-xcr0", str(cm.exception))

    def test_repeat_gives_distinct_ids_same_key(self) -> None:
        inst = self.expand(f'repeat = 2\n[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n')
        self.assertEqual([i.id for i in inst], [f"{PROGRAM}.pass~1", f"{PROGRAM}.pass~2"])
        self.assertEqual({i.key for i in inst}, {f"{PROGRAM}.pass"})
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n', repeat=3)
        self.assertEqual(len(inst), 3)

    def test_duplicates_collapse(self) -> None:
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n'
                           f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass", "skip"]\n')
        self.assertEqual(len(inst), 2)

    def test_discovery_from_binary(self) -> None:
        programs = catalog.load(self.configs, self.bin)
        p = programs[PROGRAM]
        self.assertTrue(p.source.endswith(PROGRAM))
        self.assertTrue(p.filters)
        self.assertEqual(p.fixture_names, ["fake", "solo"])
        self.assertEqual(p.tests, ["guest_image", "host_regs", "alone"])
        self.assertIn("flaky", p.variants)

    def test_fixture_without_variants(self) -> None:
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nfixtures = ["solo"]\n')
        self.assertEqual([(i.id, i.args) for i in inst], [(f"{PROGRAM}.solo", ["-f", "solo"])])
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\n')
        self.assertEqual(len(inst), 13)            # 12 variants of fake, and solo
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n')
        self.assertEqual([i.id for i in inst], [f"{PROGRAM}.pass"])  # naming variants: no solo
        inst = self.expand(f'[[run]]\nprogram = "{PROGRAM}"\nfixtures = ["solo"]\n'
                           'split = "test"\n')
        self.assertEqual([i.args for i in inst], [["-r", "solo.alone"]])

    def test_shared_variant_name_is_selected_exactly(self) -> None:
        (self.configs / "programs.toml").write_text('[kvmfpu_two_test]\noptions = ["seed"]\n')
        rows = [("# FIXTURE", "VARIANT", "TEST"), ("a", "x", "t"), ("", "y", ""),
                ("-" * 20, "", ""), ("b", "x", "t"), ("", "", "u")]
        listing = "".join("%-20s %-25s %s\n" % row for row in rows)
        two = self.bin / "kvmfpu_two_test"   # lists itself; has the harness's filter usage
        two.write_text(f"#!/bin/sh\n# run the test named fixture.variant.test\n"
                       f"printf '%s' '{listing}' >&2\n")
        two.chmod(0o755)
        inst = self.expand('[[run]]\nprogram = "kvmfpu_two_test"\n')
        self.assertEqual([(i.id, i.args) for i in inst], [
            ("kvmfpu_two_test.a.x", ["-r", "a.x.t"]),
            ("kvmfpu_two_test.y", ["-v", "y"]),
            ("kvmfpu_two_test.b.x", ["-r", "b.x.t", "-r", "b.x.u"])])

    def test_harness_without_filters(self) -> None:
        old = self.bin / "kvmfpu_old_test"
        old.write_text(f'#!/bin/sh\nexec {self.bin / PROGRAM} --seed "$2"\n')
        old.chmod(0o755)
        (self.configs / "programs.toml").write_text(
            (self.configs / "programs.toml").read_text().replace(PROGRAM, "kvmfpu_old_test"))
        self.matrix("m", 'seed = [1, 2]\nxcr0 = ["0x3"]\n')
        inst = self.expand('matrix = "m"\n[[run]]\nprogram = "kvmfpu_old_test"\n'
                           'variants = ["pass", "fail"]\n')
        self.assertEqual([(i.id, i.args) for i in inst], [
            ("kvmfpu_old_test.all.seed=1.xcr0=0x3", ["--seed", "1", "--xcr0", "0x3"]),
            ("kvmfpu_old_test.all.seed=2.xcr0=0x3", ["--seed", "2", "--xcr0", "0x3"])])
        self.variants_profile("old", ["pass"])
        (self.configs / "profiles" / "old.toml").write_text(
            '[[run]]\nprogram = "kvmfpu_old_test"\n')
        proc, run_dir = self.run_profile("old")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("has no test filters", proc.stderr)
        self.assertFalse(self.load(run_dir)["programs"]["kvmfpu_old_test"]["filters"])


class Listing(TempTree):
    def test_parse_harness_listing(self) -> None:
        text = ("# FIXTURE            VARIANT                   TEST\n"
                "global                                         \n"
                + "-" * 80 + "\n"
                "swap                 legacy                    guest_image\n"
                "                     x87_sse                   xstate_bv\n"
                "                     a_very_long_variant_name_indeed host_regs\n"
                "                     max                       \n"
                + "-" * 80 + "\n"
                + "%-20s %-25s %s\n" % ("a_fixture_name_longer_than_20", "only", "other_test"))
        fixtures = catalog.parse_listing(text)
        self.assertEqual([f.name for f in fixtures], ["swap", "a_fixture_name_longer_than_20"])
        self.assertEqual(fixtures[0].variants,
                         ["legacy", "x87_sse", "a_very_long_variant_name_indeed", "max"])
        self.assertEqual(fixtures[0].tests, ["guest_image", "xstate_bv", "host_regs"])
        self.assertEqual((fixtures[1].variants, fixtures[1].tests), (["only"], ["other_test"]))

    def test_parse_listing_fixtures_without_variants(self) -> None:
        text = "\n".join([
            "Random seed: 0x6b8b4567",
            "# FIXTURE            VARIANT                   TEST",
            "global                                         restore_without_amx",
            "-" * 80,
            "perm                                           request_grows",
            "                                               ebusy_after_vcpu",
            "-" * 80,
            "migrate              intercept                 tiles_survive",
            "                     passthrough               "])
        fixtures = catalog.parse_listing(text)
        self.assertEqual([(f.name, f.variants, f.tests) for f in fixtures], [
            ("global", [], ["restore_without_amx"]),
            ("perm", [], ["request_grows", "ebusy_after_vcpu"]),
            ("migrate", ["intercept", "passthrough"], ["tiles_survive"])])


BUILT = Path(__file__).resolve().parents[2] / "out" / "bin"


@unittest.skipUnless((BUILT / "kvmfpu_swap_test").exists(), f"{BUILT}: run make first")
class BuiltPrograms(unittest.TestCase):
    """The real programs select tests on every harness version (lib/kvmfpu_harness.h): the
    catalog must see that, or every instance silently runs every test of its program."""

    def test_every_built_program_selects_tests(self) -> None:
        programs = catalog.load(Path(__file__).resolve().parents[2] / "configs", BUILT)
        for name, p in programs.items():
            with self.subTest(program=name):
                self.assertTrue(p.filters, p.source)
                self.assertTrue(p.fixtures, f"{name}: no fixtures listed by -l")

    def test_programs_toml_options_are_the_binaries(self) -> None:
        """programs.toml's matrix axes of a program are the options its -h lists."""
        import re
        import subprocess
        programs = catalog.load(Path(__file__).resolve().parents[2] / "configs", BUILT)
        for name, p in programs.items():
            with self.subTest(program=name):
                usage = subprocess.run([str(BUILT / name), "-h"], capture_output=True,
                                       text=True, timeout=30).stdout
                flags = set(re.findall(r"^  (--[a-z0-9-]+) ", usage, re.M))
                self.assertEqual(set(p.options),
                                 {axis for axis, flag in catalog.OPTION_FLAGS.items()
                                  if flag in flags}, usage)
