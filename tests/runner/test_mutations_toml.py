"""tests/mutations/mutations.toml stays runnable: each entry is complete, names a profile and
labs that exist, and its `old` text occurs exactly once in Debian's 6.12 source (what run.py
mutates), so that no mutation silently stops applying."""
from __future__ import annotations

import tomllib
import unittest
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
SOURCE = TOP / ".cache" / "kdir" / "linux-source-6.12"


def mutations() -> list[dict]:
    return tomllib.loads((TOP / "tests/mutations/mutations.toml").read_text())["mutation"]


class MutationsToml(unittest.TestCase):
    def test_entries_are_complete_and_unique(self):
        names = [m["name"] for m in mutations()]
        self.assertEqual(len(names), len(set(names)))
        for m in mutations():
            for key in ("what", "file", "old", "new"):
                self.assertTrue(m.get(key), f"{m['name']}: no {key}")
            # empty where no check is expected to catch it here (said in its comment)
            self.assertIsInstance(m.get("caught_by"), list, m["name"])
            self.assertNotEqual(m["old"], m["new"], m["name"])

    def test_profiles_and_labs_exist(self):
        labs = {p.stem for p in (TOP / "configs/labs").glob("*.toml")} - {"quirks"}
        for m in mutations():
            profile = m.get("profile", "check")
            self.assertTrue((TOP / "configs/profiles" / f"{profile}.toml").is_file(),
                            f"{m['name']}: no profile {profile}")
            self.assertLessEqual(set(m.get("labs", ["tcg"])), labs, m["name"])

    def test_old_text_occurs_once_in_the_source(self):
        if not (SOURCE / "Makefile").is_file():
            self.skipTest(f"{SOURCE} not prepared (make builds it)")
        for m in mutations():
            text = (SOURCE / m["file"]).read_text()
            self.assertEqual(text.count(m["old"]), 1, f"{m['name']}: in {m['file']}")


if __name__ == "__main__":
    unittest.main()
