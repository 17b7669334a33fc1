"""Planning: profile x matrix -> instances with explicit arguments."""
from __future__ import annotations

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
        self.assertEqual(p.tests, ["guest_image", "host_regs"])
        self.assertIn("flaky", p.variants)
        self.assertEqual(p.fixture, "fake")


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
        variants, tests, fixtures = catalog.parse_listing(text)
        self.assertEqual(variants, ["legacy", "x87_sse", "a_very_long_variant_name_indeed",
                                    "max", "only"])
        self.assertEqual(tests, ["guest_image", "xstate_bv", "host_regs", "other_test"])
        self.assertEqual(fixtures["guest_image"], "swap")
        self.assertEqual(fixtures["other_test"], "a_fixture_name_longer_than_20")
