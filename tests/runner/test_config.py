"""Config validation: every kind of problem gives one clear one-line error."""
from __future__ import annotations

import unittest

from runner import catalog, config, xcr0
from tests.runner.helpers import PROGRAM, REPO, TempTree


class Xcr0Rules(unittest.TestCase):
    def test_valid_masks(self) -> None:
        for mask in (0x1, 0x3, 0x7, 0xe7, 0x207, 0x2e7, 0x602e7, 0x1f, 0x60207):
            self.assertEqual(xcr0.problems(mask), [], hex(mask))

    def test_each_rule(self) -> None:
        cases = {
            0x103: "bit(s) 8 are not defined",
            0x800003: "bit(s) 23 are not defined",
            0x80003: "bit(s) 19 are not defined",   # APX: not in lib/xstate.c's table
            0x2: "bit 0 (x87) must be set",
            0x5: "AVX (bit 2) needs SSE (bit 1)",
            0x67: "AVX-512 bits 5, 6, 7 must be set together",
            0xe3: "AVX-512 (bits 5-7) needs AVX (bit 2)",
            0xb: "MPX bits 3 and 4 must be set together",
            0x20003: "AMX bits 17 and 18 must be set together",
        }
        for mask, text in cases.items():
            found = xcr0.problems(mask)
            self.assertEqual(len(found), 1, (hex(mask), found))
            self.assertIn(text, found[0])
            self.assertNotIn("\n", found[0])

    def test_valid_subsets(self) -> None:
        self.assertEqual(xcr0.valid_subsets(0xe7), [0x1, 0x3, 0x7, 0xe7])
        self.assertEqual(len(xcr0.valid_subsets(0x602e7)), 16)
        self.assertTrue(all(xcr0.is_valid(m) for m in xcr0.valid_subsets(0xfffff)))


class Validation(TempTree):
    def programs(self) -> dict[str, catalog.Program]:
        return catalog.load(self.configs, self.bin)

    def problems_of(self, profile: str) -> list[str]:
        self.profile("p", profile)
        with self.assertRaises(config.ConfigError) as cm:
            config.load_profile(self.configs, "p", self.programs())
        for line in cm.exception.problems:
            self.assertNotIn("\n", line)
        return cm.exception.problems

    def assert_one(self, profile: str, *texts: str) -> None:
        found = self.problems_of(profile)
        self.assertEqual(len(found), 1, found)
        for text in texts:
            self.assertIn(text, found[0])

    def test_unknown_profile_key(self) -> None:
        self.assert_one(f'timeot = 3\n[[run]]\nprogram = "{PROGRAM}"\n',
                        "unknown key 'timeot'")

    def test_unknown_run_key(self) -> None:
        self.assert_one(f'[[run]]\nprogram = "{PROGRAM}"\nvariant = ["pass"]\n',
                        "run[0]", "unknown key 'variant'")

    def test_unknown_program(self) -> None:
        self.assert_one('[[run]]\nprogram = "kvmfpu_nope_test"\n',
                        "unknown program 'kvmfpu_nope_test'")

    def test_unknown_variant_and_test(self) -> None:
        found = self.problems_of(f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["avx9"]\n'
                                 'tests = ["guest_image", "nosuch"]\n')
        self.assertEqual(len(found), 2, found)
        self.assertIn("unknown variant 'avx9'", found[0])
        self.assertIn("unknown test 'nosuch'", found[1])

    def test_unknown_fixture(self) -> None:
        self.assert_one(f'[[run]]\nprogram = "{PROGRAM}"\nfixtures = ["solo", "duo"]\n',
                        "unknown fixture 'duo'")

    def test_no_runs(self) -> None:
        self.assert_one('description = "x"\n', "at least one [[run]]")

    def test_bad_numbers(self) -> None:
        found = self.problems_of(f'timeout = -1\nrepeat = 0\n[[run]]\nprogram = "{PROGRAM}"\n'
                                 'split = "fixture"\n')
        self.assertEqual(len(found), 3, found)

    def test_lab_cpus(self) -> None:
        self.assert_one(f'lab_cpus = 0\n[[run]]\nprogram = "{PROGRAM}"\n',
                        "lab_cpus: expected an integer >= 1")
        self.profile("p", f'lab_cpus = 2\n[[run]]\nprogram = "{PROGRAM}"\n')
        self.assertEqual(config.load_profile(self.configs, "p", self.programs())[0].lab_cpus, 2)

    def test_toml_syntax_error(self) -> None:
        self.assert_one("[[run]\n", "TOML syntax error")

    def test_missing_matrix(self) -> None:
        self.assert_one(f'matrix = "nope"\n[[run]]\nprogram = "{PROGRAM}"\n', "no such file")

    def matrix_problems(self, text: str) -> list[str]:
        self.matrix("m", text)
        with self.assertRaises(config.ConfigError) as cm:
            config.load_matrix(self.configs, "m")
        return cm.exception.problems

    def test_matrix_unknown_key(self) -> None:
        found = self.matrix_problems("seeds = [1]\n")
        self.assertEqual(len(found), 1, found)
        self.assertIn("unknown key 'seeds'", found[0])

    def test_matrix_undefined_xcr0_bit(self) -> None:
        found = self.matrix_problems('xcr0 = ["0x103"]\n')
        self.assertEqual(len(found), 1, found)
        self.assertIn("bit(s) 8 are not defined by any CPU", found[0])

    def test_matrix_invalid_xcr0_combination(self) -> None:
        found = self.matrix_problems('xcr0 = ["0x7", "0x5", "0x67"]\n')
        self.assertEqual(len(found), 2, found)
        self.assertIn("AVX (bit 2) needs SSE", found[0])
        self.assertIn("AVX-512 bits 5, 6, 7", found[1])

    def test_matrix_bad_values(self) -> None:
        found = self.matrix_problems('seed = [1, "two"]\nrounds = { first = 1 }\n'
                                     'xcr0 = "everything"\n')
        self.assertEqual(len(found), 3, found)

    def test_matrix_axis_program_lacks(self) -> None:
        self.matrix("m", "vcpus = [1, 2]\n")
        self.assert_one(f'matrix = "m"\n[[run]]\nprogram = "{PROGRAM}"\n',
                        "axis 'vcpus'", "has no --vcpus option")

    def test_xcr0_axis_without_its_variant(self) -> None:
        self.matrix("m", 'xcr0 = ["0x3"]\n')
        self.assert_one(f'matrix = "m"\n[[run]]\nprogram = "{PROGRAM}"\nvariants = ["fail"]\n',
                        "only affects variant 'pass'")

    def test_inline_matrix_errors_name_file_and_key(self) -> None:
        path = self.configs / "profiles" / "p.toml"
        found = self.problems_of(f'matrix = {{ seed = [0], rounds = [1] }}\n[[run]]\n'
                                 f'program = "{PROGRAM}"\n'
                                 f'[[run]]\nprogram = "{PROGRAM}"\n'
                                 'matrix = { xcr0 = ["0x5"], vcpus = [2], seeds = [1] }\n')
        self.assertEqual(found[:2], [f"{path}: matrix: seed: 0 is not an integer >= 1",
                                     f"{path}: run[1].matrix: unknown key 'seeds' (known: "
                                     "description, duration, round, rounds, seed, vcpus, "
                                     "xcr0)"])
        self.assertIn(f"{path}: run[1].matrix: xcr0: XCR0 0x5: AVX (bit 2) needs SSE",
                      found[2])
        self.assertIn(f"{path}: run[1]: matrix 'run[1] matrix' axis 'vcpus': "
                      f"{PROGRAM} has no --vcpus option", found[3])
        self.assertEqual(len(found), 4, found)

    def test_inline_matrices(self) -> None:
        self.profile("p", f'matrix = {{ seed = [5, 6] }}\n[[run]]\nprogram = "{PROGRAM}"\n'
                          'variants = ["fail"]\n'
                          f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n'
                          'matrix = { seed = { first = 1, count = 2 }, xcr0 = ["0x7"] }\n')
        profile, matrices = config.load_profile(self.configs, "p", self.programs())
        self.assertEqual(matrices["profile matrix"].axes, {"seed": [5, 6]})
        self.assertEqual(matrices["run[1] matrix"].axes, {"seed": [1, 2], "xcr0": [0x7]})
        self.assertEqual([r.matrix for r in profile.runs], [None, "run[1] matrix"])

    def test_valid_profile(self) -> None:
        self.matrix("m", 'seed = { first = 5, count = 3 }\nxcr0 = "kvm-valid-subsets"\n')
        self.profile("p", f'matrix = "m"\ntimeout = 5\n[[run]]\nprogram = "{PROGRAM}"\n'
                          'variants = ["pass"]\n')
        profile, matrices = config.load_profile(self.configs, "p", self.programs())
        self.assertEqual(matrices["m"].axes["seed"], [5, 6, 7])
        self.assertEqual(profile.timeout, 5.0)


class ShippedConfigs(unittest.TestCase):
    def test_repo_configs_are_valid(self) -> None:
        programs = catalog.load(REPO / "configs", None)
        self.assertEqual(config.validate_all(REPO / "configs", programs), [])
        for name in ("smoke", "ci", "stress", "soak"):
            self.assertIn(name, config.names(REPO / "configs", "profiles"))

    @unittest.skipUnless((REPO / "out" / "bin" / "kvmfpu_swap_test").exists(),
                         "out/bin: run make first")
    def test_repo_configs_name_what_the_binaries_list(self) -> None:
        programs = catalog.load(REPO / "configs", REPO / "out" / "bin")
        self.assertTrue(all(p.listed for p in programs.values()),
                        [p.source for p in programs.values()])
        self.assertEqual(config.validate_all(REPO / "configs", programs), [])


class NotBuilt(TempTree):
    """Fixtures, variants and tests come from the binaries only: without one, no plan."""

    def test_list_says_not_built(self) -> None:
        self.profile("p", f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n')
        proc = self.kvmfpu("list", "--configs", str(self.configs), "--bin",
                           str(self.root / "nobin"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"program {PROGRAM} (not built", proc.stdout)
        self.assertNotIn("fixture", proc.stdout)

    def test_no_plan_without_the_binary(self) -> None:
        """Before, the planner used programs.toml's copy of the listing."""
        self.profile("p", f'[[run]]\nprogram = "{PROGRAM}"\nvariants = ["pass"]\n')
        proc = self.kvmfpu("list", "--profile", "p", "--configs", str(self.configs),
                           "--bin", str(self.root / "nobin"), "--kvm-xcr0", "0x7")
        self.assertEqual(proc.returncode, 2, proc.stdout)
        self.assertIn(f"{PROGRAM}: not built", proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_listing_in_programs_toml_is_refused(self) -> None:
        path = self.configs / "programs.toml"
        path.write_text(f'[{PROGRAM}]\n[{PROGRAM}.fixtures]\nsolo = {{ tests = ["alone"] }}\n')
        with self.assertRaises(catalog.CatalogError) as cm:
            catalog.load(self.configs, self.bin)
        self.assertIn(f"{path}: {PROGRAM}.fixtures: fixtures, variants and tests come from "
                      "the binary's -l", str(cm.exception))

    def test_xcr0_variant_the_binary_lacks(self) -> None:
        path = self.configs / "programs.toml"
        path.write_text(f'[{PROGRAM}]\noptions = ["xcr0"]\nxcr0_variant = "maxx"\n')
        with self.assertRaises(catalog.CatalogError) as cm:
            catalog.load(self.configs, self.bin)
        self.assertIn(f"{path}: {PROGRAM}.xcr0_variant: 'maxx' is not a variant",
                      str(cm.exception))



class ValueTypes(TempTree):
    """A wrong value type is one line naming the file and the key, never a traceback."""

    def list_problems(self) -> list[str]:
        proc = self.kvmfpu("list", "--configs", str(self.configs), "--bin",
                           str(self.root / "nobin"))
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        return proc.stderr.strip().splitlines()

    def test_programs_toml(self) -> None:
        bad = {"timeout = \"soon\"": "kvmfpu_fake_test.timeout",
               "options = \"seed\"": "kvmfpu_fake_test.options",
               "variants = \"pass\"": "kvmfpu_fake_test.variants",
               "tests = [1]": "kvmfpu_fake_test.tests",
               "fixture = 3": "kvmfpu_fake_test.fixture",
               "xcr0_variant = [\"pass\"]": "kvmfpu_fake_test.xcr0_variant",
               "xcr0_drivable = \"lots\"": "kvmfpu_fake_test.xcr0_drivable"}
        path = self.configs / "programs.toml"
        for line, key in bad.items():
            with self.subTest(line=line):
                path.write_text(f"[{PROGRAM}]\n{line}\n")
                problems = self.list_problems()
                self.assertEqual(len(problems), 1, problems)
                self.assertIn(f"{path}: {key}", problems[0])

    def test_profiles_and_matrices(self) -> None:
        cases = {"program = [\"x\"]": "run[0].program",
                 f"program = \"{PROGRAM}\"\nmatrix = 5": "run[0].matrix",
                 f"program = \"{PROGRAM}\"\ntimeout = \"1\"": "run[0].timeout"}
        path = self.configs / "profiles" / "p.toml"
        for body, key in cases.items():
            with self.subTest(body=body):
                path.write_text(f"[[run]]\n{body}\n")
                problems = self.list_problems()
                self.assertEqual(len(problems), 1, problems)
                self.assertIn(f"{path}: {key}", problems[0])
        path.write_text(f"description = 1\nmatrix = []\n[[run]]\nprogram = \"{PROGRAM}\"\n")
        problems = self.list_problems()
        self.assertEqual(len(problems), 2, problems)
        self.assertTrue(all(str(path) in p for p in problems), problems)
        path.unlink()
        self.matrix("m", "description = 2\nseed = [1]\n")
        problems = self.list_problems()
        self.assertEqual(problems, [f"{self.configs / 'matrices' / 'm.toml'}: description: "
                                    "expected a string, got 2"])

    def test_no_xfd_axis(self) -> None:
        """No program takes --xfd: the axis is not offered."""
        self.assertNotIn("xfd", catalog.OPTION_FLAGS)
        self.matrix("m", "xfd = [0]\n")
        problems = self.list_problems()
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("unknown key 'xfd'", problems[0])

if __name__ == "__main__":
    unittest.main()
