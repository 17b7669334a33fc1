"""`kvmfpu export --kcidb`: the document validates against the kcidb-io v5 schema
(tests/kcidb/kcidb-io-v5.schema.json, validated with Debian's python3-jsonschema: the
runner itself stays stdlib-only), for a host run, a lab run and a merged run; our verdicts
map to KCIDB statuses as docs/runner.md says; a document missing a required field fails
validation, so the validator is live."""
from __future__ import annotations

import copy
import importlib
import json
import sys
import unittest

from runner import kcidb, kmsg, runstate
from runner.evaluate import Outcome
from runner.plan import Instance
from tests.runner.helpers import AMX_HOST, REPO, TempTree, apt_install

SCHEMA = REPO / "tests" / "kcidb" / "kcidb-io-v5.schema.json"


DEBIAN_DIST = "/usr/lib/python3/dist-packages"     # where python3-jsonschema installs


def validator_or_reason():
    """A JSON Schema validator of the kcidb-io schema, or (None, why not)."""
    try:
        import jsonschema
    except ImportError:
        why = apt_install("python3-jsonschema")
        if why:
            return None, why
        importlib.invalidate_caches()
        if DEBIAN_DIST not in sys.path:    # a python3 other than Debian's (pyenv, venv)
            sys.path.append(DEBIAN_DIST)
        try:
            import jsonschema
        except ImportError as e:
            return None, f"python3-jsonschema installed, but {sys.executable} cannot " \
                         f"import it: {e}"
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema,
                                           format_checker=jsonschema.FormatChecker()), ""


VALIDATOR, WHY_NOT = validator_or_reason()

PASSING = "TAP version 13\n1..1\n#  RUN           swap.avx.guest_image ...\n" \
          "ok 1 swap.avx.guest_image\n"
TWO = ("TAP version 13\n1..2\n#  RUN           swap.avx.guest_image ...\n"
       "# kvmfpu-mismatch: check=guest_image component=avx reg=ymm0.hi\n"
       "not ok 1 swap.avx.guest_image\n#  RUN           swap.avx.host_regs ...\n"
       "ok 2 swap.avx.host_regs # SKIP no AVX in guest CPUID\n")
HOST = AMX_HOST
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LAB = {"hostname": None, "tier": "lab-tcg",
       "cpu": {"model_name": "QEMU TCG CPU version 2.5+", "microcode": None},
       "kernel": {"release": "6.13.0-rc1", "source": "tree:/src/linux",
                  "config_sha256": "ab" * 32, "git_commit": COMMIT,
                  "git_describe": "v6.13-rc1-3-g0123456789ab", "git_dirty": False},
       "kvm": {"module": "kvm_amd", "params": {"kvm_amd.nested": "1"}}}


def instance(n: int, variant: str = "avx") -> Instance:
    return Instance(id=f"kvmfpu_swap_test.{variant}.seed={n}", program="kvmfpu_swap_test",
                    args=["--seed", str(n), "-v", variant], variant=variant, tests=[],
                    params={"seed": n}, timeout=5)


@unittest.skipIf(VALIDATOR is None, WHY_NOT)
class KcidbExport(TempTree):
    def validate(self, doc: dict) -> None:
        errors = sorted(VALIDATOR.iter_errors(doc), key=str)
        self.assertEqual([f"{list(e.absolute_path)}: {e.message}" for e in errors], [])

    def make_run(self, hosts: dict[str, dict], n: int = 6) -> tuple[runstate.Run, list]:
        insts = [instance(i) for i in range(1, n + 1)]
        run = runstate.new_run("r1", "ci", "", {"kernel": "6.12.9", "tier": "host"}, insts,
                               "/bin", {}, {})
        run.hosts = hosts
        (self.root / "logs").mkdir(exist_ok=True)
        return run, insts

    def finish(self, run: runstate.Run, inst: Instance, out: Outcome, log: str,
               host: str) -> None:
        (self.root / "logs" / f"{inst.id}.log").write_text(log)
        runstate.record_start(run, inst.id)
        runstate.record_finish(run, inst, out, log, host_key=host)

    def test_host_run_of_the_fake_program_validates(self) -> None:
        """A real run (the fake program, through the runner) exported by the CLI."""
        self.variants_profile("mix", ["pass", "fail", "skip", "error"])
        proc, run_dir = self.run_profile("mix")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        out = self.root / "kcidb.json"
        exp = self.kvmfpu("export", "--kcidb", str(run_dir), "--out", str(out))
        self.assertEqual((exp.returncode, exp.stderr), (0, ""))
        doc = json.loads(out.read_text())
        self.validate(doc)
        self.assertEqual(doc["version"], {"major": 5, "minor": 3})
        self.assertEqual((doc["checkouts"], doc["builds"]), ([], []))    # a host kernel
        statuses = {t["path"]: t["status"] for t in doc["tests"]}
        self.assertEqual(statuses["kvmfpu_fake_test.fake.fail.guest_image"], "FAIL")
        self.assertEqual(statuses["kvmfpu_fake_test.fake.pass.guest_image"], "PASS")
        self.assertEqual(statuses["kvmfpu_fake_test.fake.skip.guest_image"], "SKIP")
        self.assertIn("ERROR", [t["status"] for t in doc["tests"]
                                if t["path"].startswith("kvmfpu_fake_test.fake.error")])
        key = next(iter(self.load(run_dir)["hosts"]))
        for t in doc["tests"]:
            self.assertEqual(t["build_id"], f"kvmfpu:{run_dir.name}/build/{key}")
            self.assertTrue(t["environment"]["comment"].startswith(key))
            self.assertTrue(t["id"].startswith(f"kvmfpu:{run_dir.name}/kvmfpu_fake_test."))
        # the same run exports the same document (deterministic ids)
        again = self.kvmfpu("export", "--kcidb", str(run_dir))
        self.assertEqual(json.loads(again.stdout), doc)

    def test_each_verdict_maps_to_its_status(self) -> None:
        run, insts = self.make_run({"amx-07": HOST}, 8)
        self.finish(run, insts[0], Outcome(returncode=0, duration=1.5), PASSING, "amx-07")
        self.finish(run, insts[1], Outcome(returncode=1, duration=2.0), TWO, "amx-07")
        self.finish(run, insts[2], Outcome(returncode=2), "TAP version 13\n1..1\n"
                    "# kvmfpu-error: msg=KVM_CREATE_VM failed\n", "amx-07")
        self.finish(run, insts[3], Outcome(returncode=None, timed_out=True, duration=5.0),
                    "TAP version 13\n1..1\n#  RUN           swap.avx.guest_image ...\n",
                    "amx-07")
        runstate.record_start(run, insts[4].id)      # cut short while it ran
        runstate.interrupt_running(run, "started but no result came back")
        # insts[5] never started: pending
        (self.root / "logs" / f"{insts[6].id}.log").write_text(PASSING)
        runstate.record_finish(run, insts[6], Outcome(returncode=0), PASSING,
                               [kmsg.Splat("WARNING: at fpu_swap_kvm_fpstate", 0.0,
                                           [insts[6].id])], host_key="amx-07")
        self.finish(run, insts[7], Outcome(returncode=4), "TAP version 13\n"
                    "1..0 # SKIP /dev/kvm does not exist\n", "amx-07")
        doc = kcidb.export(run, self.root)
        self.validate(doc)
        by_id = {t["id"].split("/", 1)[1]: t for t in doc["tests"]}
        self.assertEqual(by_id[f"{insts[0].id}/swap.avx.guest_image"]["status"], "PASS")
        self.assertEqual(by_id[f"{insts[0].id}/swap.avx.guest_image"]["duration"], 1.5)
        failed = by_id[f"{insts[1].id}/swap.avx.guest_image"]
        self.assertEqual(failed["status"], "FAIL")
        self.assertEqual(failed["path"], "kvmfpu_swap_test.swap.avx.guest_image")
        self.assertIn("kvmfpu-mismatch", failed["log_excerpt"])        # its own lines only
        self.assertNotIn("host_regs", failed["log_excerpt"])
        skipped = by_id[f"{insts[1].id}/swap.avx.host_regs"]
        self.assertEqual((skipped["status"], skipped["comment"]),
                         ("SKIP", "no AVX in guest CPUID"))
        self.assertEqual(by_id[insts[2].id]["status"], "ERROR")        # no test reported
        timed_out = by_id[f"{insts[3].id}/swap.avx.guest_image"]     # the test it hung in
        self.assertEqual((timed_out["status"], timed_out["comment"]),
                         ("FAIL", "timed out while it ran"))
        self.assertEqual(by_id[insts[4].id]["status"], "MISS")         # interrupted
        pending = by_id[insts[5].id]
        self.assertEqual(pending["status"], "MISS")
        self.assertNotIn("start_time", pending)
        self.assertEqual(pending["build_id"], "kvmfpu:r1/build/amx-07")   # the one host
        self.assertEqual(pending["path"], "kvmfpu_swap_test.avx")
        # a splat while its tests passed: the instance fails, shown by its own node
        self.assertEqual(by_id[f"{insts[6].id}/swap.avx.guest_image"]["status"], "PASS")
        self.assertEqual(by_id[insts[6].id]["status"], "FAIL")
        self.assertIn("WARNING: at fpu_swap_kvm_fpstate", by_id[insts[6].id]["comment"])
        self.assertEqual((by_id[insts[7].id]["status"], by_id[insts[7].id]["comment"]),
                         ("SKIP", "/dev/kvm does not exist"))
        env = by_id[insts[0].id + "/swap.avx.guest_image"]["environment"]
        self.assertEqual(env["comment"], "amx-07 Intel(R) Xeon(R) Platinum 8480+")
        self.assertEqual(env["misc"]["cpu"]["microcode"], "0x2b000590")
        self.assertNotIn("config_sha256", env["misc"]["kernel"])      # null: left out
        self.assertIn("config_sha256_why", env["misc"]["kernel"])

    def test_lab_run_has_its_build_and_checkout(self) -> None:
        run, insts = self.make_run({"lab-tcg": LAB}, 1)
        self.finish(run, insts[0], Outcome(returncode=0, duration=3.0), PASSING, "lab-tcg")
        doc = kcidb.export(run, self.root)
        self.validate(doc)
        [build], [checkout] = doc["builds"], doc["checkouts"]
        self.assertEqual(build["architecture"], "x86_64")
        self.assertEqual(build["checkout_id"], checkout["id"])
        self.assertEqual(checkout["git_commit_hash"], COMMIT)
        self.assertEqual([t["build_id"] for t in doc["tests"]], [build["id"]])
        # a tree that is not a git checkout: a build, and no invented checkout
        run.hosts["lab-tcg"] = {**LAB, "kernel": {"release": "6.13.0-rc1",
                                                  "source": "tree:/src/linux"}}
        doc = kcidb.export(run, self.root)
        self.validate(doc)
        self.assertEqual((len(doc["builds"]), doc["checkouts"]), (1, []))

    def test_merged_run_of_two_hosts(self) -> None:
        """A merged run made by hand (kvmfpu merge's shape): two hosts, merged_from."""
        run, insts = self.make_run({"root@amx-07:22": HOST, "lab-tcg": LAB}, 3)
        run.merged_from = [{"run_id": "a", "host": "root@amx-07:22"},
                           {"run_id": "b", "host": "lab-tcg"}]
        self.finish(run, insts[0], Outcome(returncode=0, host="root@amx-07:22"), PASSING,
                    "root@amx-07:22")
        self.finish(run, insts[1], Outcome(returncode=1), TWO, "lab-tcg")
        doc = kcidb.export(run, self.root)
        self.validate(doc)
        builds = {t["build_id"] for t in doc["tests"] if "start_time" in t}
        self.assertEqual(builds, {"kvmfpu:r1/build/root@amx-07:22", "kvmfpu:r1/build/lab-tcg"})
        comments = {t["environment"]["comment"] for t in doc["tests"] if "environment" in t}
        self.assertEqual(comments, {"root@amx-07:22 Intel(R) Xeon(R) Platinum 8480+",
                                    "lab-tcg QEMU TCG CPU version 2.5+"})
        never_ran = [t for t in doc["tests"] if t["id"].endswith(insts[2].id)]
        self.assertEqual([t["build_id"] for t in never_ran], ["kvmfpu:r1/build/unassigned"])

    def test_log_excerpt_is_bounded(self) -> None:
        run, insts = self.make_run({"amx-07": HOST}, 1)
        noise = "".join(f"# line {i} {'x' * 100}\n" for i in range(400))
        self.finish(run, insts[0], Outcome(returncode=1), TWO.replace(
            "# kvmfpu-mismatch", noise + "# kvmfpu-mismatch"), "amx-07")
        doc = kcidb.export(run, self.root)
        self.validate(doc)
        excerpt = doc["tests"][0]["log_excerpt"]
        self.assertEqual(len(excerpt), kcidb.LOG_EXCERPT)
        self.assertTrue(excerpt.endswith("not ok 1 swap.avx.guest_image"))

    def test_the_validator_is_live(self) -> None:
        """Missing required fields, a status outside the enum, a bad origin: each fails."""
        run, insts = self.make_run({"lab-tcg": LAB}, 1)
        self.finish(run, insts[0], Outcome(returncode=0), PASSING, "lab-tcg")
        good = kcidb.export(run, self.root)
        self.validate(good)
        for breaks in (lambda d: d["tests"][0].pop("build_id"),
                       lambda d: d["builds"][0].pop("checkout_id"),
                       lambda d: d.pop("version"),
                       lambda d: d["tests"][0].update(status="INTERRUPTED"),
                       lambda d: d["tests"][0].update(origin="KVM-FPU"),
                       lambda d: d["tests"][0].update(path="a..b"),
                       lambda d: d["tests"][0].update(unknown_field=1),
                       lambda d: d["checkouts"][0].update(git_commit_hash="abc")):
            bad = copy.deepcopy(good)
            breaks(bad)
            self.assertFalse(VALIDATOR.is_valid(bad), bad)

    def test_bad_origin_is_one_line_and_exit_2(self) -> None:
        self.variants_profile("one", ["pass"])
        proc, run_dir = self.run_profile("one")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for argv in (["--origin", "KVM-FPU"], ["--results", str(self.root / "none"),
                                                "no-such-run"]):
            what = argv if "--origin" not in argv else argv + [str(run_dir)]
            exp = self.kvmfpu("export", "--kcidb", *what)
            self.assertEqual(exp.returncode, 2, exp.stderr)
            self.assertEqual(len(exp.stderr.strip().splitlines()), 1, exp.stderr)
            self.assertEqual(exp.stdout, "")

    def test_ids_and_origin(self) -> None:
        run, insts = self.make_run({"amx-07": HOST}, 1)
        self.finish(run, insts[0], Outcome(returncode=0), PASSING, "amx-07")
        doc = kcidb.export(run, self.root, origin="my_ci")
        self.validate(doc)
        self.assertEqual({t["origin"] for t in doc["tests"]}, {"my_ci"})
        self.assertTrue(all(t["id"].startswith("my_ci:r1/") for t in doc["tests"]))
        self.assertEqual(kcidb.export(run, self.root, origin="my_ci"), doc)


if __name__ == "__main__":
    unittest.main()
