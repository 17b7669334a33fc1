"""mk/check.sh, the KVM tiers of `make check`, with a fake runner command (KVMFPU): the host
tier and the labs run at the same time, every line says which tier it came from, the verdicts
combine as fail > could not test > pass, a SIGINT stops every tier, and no tier that ran is
"no KVM test ran"."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest
from pathlib import Path

from runner.lab.labs import REPO

CHECK = REPO / "mk" / "check.sh"

# `run [--lab NAME] ...` (host without --lab): says it started, waits (10 s at most) until
# every tier in FAKE_LABS has started, then exits with FAKE_RC_<NAME> (default 0). Tiers run
# one after the other never all start: each then exits 3, which must not pass. With FAKE_HANG
# it waits for a signal.
FAKE = textwrap.dedent("""\
    #!/bin/bash
    [ "$1" = run ] || { echo "not a run: $*"; exit 3; }
    lab=host
    [ "$2" = --lab ] && lab=$3
    echo "$*" > "$FAKE_DIR/args.$lab"
    dir=$FAKE_DIR
    trap 'echo "$lab: SIGINT"; touch "$dir/int.$lab"; exit 130' INT
    touch "$dir/started.$lab"
    echo "$lab: started"
    echo "$lab: a line on stderr" >&2
    for _ in $(seq 100); do
        all=1
        for l in $FAKE_LABS; do [ -e "$dir/started.$l" ] || all=0; done
        [ $all = 1 ] && break
        sleep 0.1
    done
    [ $all = 1 ] || { echo "$lab: the other labs never started"; exit 3; }
    if [ -n "${FAKE_HANG:-}" ]; then
        while :; do sleep 0.1; done
    fi
    rc=FAKE_RC_$lab
    exit ${!rc:-0}
    """)


class CheckShTest(unittest.TestCase):
    def setUp(self):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        self.dir = Path(d.name)
        self.fake = self.dir / "kvmfpu"
        self.fake.write_text(FAKE)
        self.fake.chmod(0o755)

    def env(self, kvm: bool = False, **rcs: int) -> dict[str, str]:
        env = dict(os.environ, KVMFPU=str(self.fake), FAKE_DIR=str(self.dir),
                   FAKE_LABS="tcg bochs", KVMFPU_KVM_DEV=str(self.dir / "kvm"))
        if kvm:
            (self.dir / "kvm").touch()
        env.update({f"FAKE_RC_{k}": str(v) for k, v in rcs.items()})
        return env

    def check(self, *labs: str, env: dict[str, str] | None = None,
              **rcs: int) -> subprocess.CompletedProcess:
        for f in self.dir.glob("started.*"):
            f.unlink()
        return subprocess.run([str(CHECK), "--skip-unit", "/bin-dir", *(labs or ("tcg", "bochs"))],
                              env=env or self.env(**rcs), capture_output=True, text=True,
                              timeout=60, check=False)

    def test_labs_run_at_the_same_time_and_say_who_speaks(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout.splitlines()
        for lab in ("tcg", "bochs"):
            self.assertIn(f"[{lab}] {lab}: started", out)
            self.assertIn(f"[{lab}] {lab}: a line on stderr", out)
            self.assertTrue(any(ln.startswith(f"tier {lab}: exit 0 in ") for ln in out), out)
            self.assertEqual((self.dir / f"args.{lab}").read_text().split(),
                             ["run", "--lab", lab, "--profile", "check", "--require-exercised",
                              "--bin", "/bin-dir"])
        self.assertIn("host tier: SKIP", r.stdout)
        self.assertEqual(out[-1], "tiers: 2 passed, 0 failed, 0 could not test, 1 absent")

    def test_the_host_tier_runs_the_check_profile_beside_the_labs(self):
        r = self.check(env=dict(self.env(kvm=True), FAKE_LABS="host tcg bochs"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("[host] host: started", r.stdout.splitlines())
        self.assertEqual((self.dir / "args.host").read_text().split(),
                         ["run", "--profile", "check", "--bin", "/bin-dir"])
        self.assertEqual(r.stdout.splitlines()[-1],
                         "tiers: 3 passed, 0 failed, 0 could not test, 0 absent")

    def test_verdicts_combine_fail_over_error_over_pass(self):
        for rcs, want in (({"tcg": 0, "bochs": 0}, 0), ({"tcg": 0, "bochs": 2}, 2),
                          ({"tcg": 2, "bochs": 0}, 2), ({"tcg": 1, "bochs": 2}, 1),
                          ({"tcg": 2, "bochs": 1}, 1), ({"tcg": 0, "bochs": 1}, 1),
                          ({"tcg": 130, "bochs": 0}, 2), ({"tcg": 0, "bochs": 137}, 2)):
            with self.subTest(**rcs):
                r = self.check(**rcs)
                self.assertEqual(r.returncode, want, r.stdout + r.stderr)

    def test_one_lab(self):
        r = self.check("tcg", env=dict(self.env(tcg=1), FAKE_LABS="tcg"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1],
                         "tiers: 0 passed, 1 failed, 0 could not test, 1 absent")

    def test_no_tier_at_all_is_no_pass(self):
        r = subprocess.run([str(CHECK), "--skip-unit", "/bin-dir"], env=self.env(),
                           capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no KVM test ran", r.stderr)

    def test_sigint_reaches_every_lab_and_is_not_a_pass(self):
        p = subprocess.Popen([str(CHECK), "--skip-unit", "/bin-dir", "tcg", "bochs"],
                             env=dict(self.env(), FAKE_HANG="1"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True,
                             # a shell cannot trap a signal ignored when it starts, as SIGINT
                             # is under a non-interactive `cmd &`: give check.sh the default
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.addCleanup(lambda: p.poll() is None and os.killpg(p.pid, signal.SIGKILL))
        deadline = time.monotonic() + 30
        while not all((self.dir / f"started.{lab}").exists() for lab in ("tcg", "bochs")):
            self.assertLess(time.monotonic(), deadline, "the fake labs never started")
            time.sleep(0.1)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 2, out)
        for lab in ("tcg", "bochs"):
            self.assertTrue((self.dir / f"int.{lab}").exists(), f"{lab} got no SIGINT: {out}")
            self.assertIn(f"[{lab}] {lab}: SIGINT", out)
        self.assertIn("(interrupted)", out)
        left = subprocess.run(["pgrep", "-f", str(self.fake)], capture_output=True, text=True)
        self.assertEqual(left.stdout, "", "a lab outlived check.sh")


class KernelFetchTest(unittest.TestCase):
    """Labs started together fetch and unpack Debian's kernel once, not over each other."""

    def test_concurrent_labs_fetch_once(self):
        import threading
        from runner.lab import kernel as K
        calls = []

        def fetch(package: str, log) -> K.Kernel:
            calls.append(package)
            time.sleep(0.5)  # both threads are past the unlocked check by now
            boot = K.CACHE / "kernels" / package / "boot"
            boot.mkdir(parents=True)
            (boot / "vmlinuz-6.12.0-test").write_bytes(b"")
            return K._unpacked(package)

        with tempfile.TemporaryDirectory() as d:
            saved = K.CACHE, K._fetch
            K.CACHE, K._fetch = Path(d), fetch
            try:
                got = []
                ts = [threading.Thread(target=lambda: got.append(
                    K.debian_kernel(package="linux-image-test", log=lambda s: None)))
                    for _ in range(2)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
            finally:
                K.CACHE, K._fetch = saved
        self.assertEqual(calls, ["linux-image-test"])
        self.assertEqual(len(got), 2)
        self.assertTrue(all(k is not None for k in got))


if __name__ == "__main__":
    unittest.main()
