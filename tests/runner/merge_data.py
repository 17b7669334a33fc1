"""Run directories to merge: a real tcg-lab run (data/merge/tcg: three instances of a
`check` run against a kernel with a PKRU bug, trimmed from results/), and two runs derived
from it in the shapes the runner writes: a host run of kvmfpu-run/2 (no `hosts`: the
fallback to `Run.host`) where every test passed, and a fleet run over two ssh hosts with
their identity in `hosts` (kvmfpu-run/3) where PKRU fails on the second host only."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

TCG = Path(__file__).resolve().parent / "data" / "merge" / "tcg"
PKRU = "kvmfpu_swap_test.pkru"
FLEET_HOSTS = ("root@127.0.0.1:2201", "root@127.0.0.1:2202")
SPR = "Intel(R) Xeon(R) Platinum 8480+"
EMR = "INTEL(R) XEON(R) PLATINUM 8580"
FAILURE_RECORDS = ("mismatch", "layout", "replay")    # a failed image comparison's lines


def _identity(hostname: str, model_name: str, model: int, release: str) -> dict[str, Any]:
    """A host identity as runner/hostinfo.py records it (issue 13's fields)."""
    return {"hostname": hostname, "tier": "host",
            "cpu": {"vendor": "GenuineIntel", "family": 6, "model": model, "stepping": 8,
                    "model_name": model_name, "microcode": "0x2b000590"},
            "kernel": {"release": release},
            "kvm": {"module": "kvm_intel", "params": {"enable_xfd": "Y"},
                    "supported_xcr0": "0x602e7"}}


def _load() -> dict[str, Any]:
    with open(TCG / "run.json") as f:
        return json.load(f)


def _write(run: dict[str, Any], dst: Path) -> Path:
    (dst / "logs").mkdir(parents=True)
    for e in run["instances"]:
        shutil.copy(TCG / e["log"], dst / e["log"])
    (dst / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    return dst


def _passed(e: dict[str, Any]) -> dict[str, Any]:
    """The instance as a kernel without the PKRU bug runs it: every test passes."""
    tests = [dict(t, verdict="pass",
                  records=[r for r in t["records"] if r.get("kind") not in FAILURE_RECORDS])
             for t in e["tests"]]
    return dict(e, verdict="pass", diagnostics=[], replay=[], tests=tests,
                exit=dict(e["exit"], returncode=0))


def tcg_run(dst: Path) -> Path:
    shutil.copytree(TCG, dst)
    return dst


def host_run(dst: Path, hostname: str = "amx-host-1", kernel: str = "6.13.0-kvm",
             pkru_fails: bool = False) -> Path:
    run = _load()
    run.update(run_id=dst.name, started="2026-11-29T02:00:00+00:00",
               options={"argv": ["runner/kvmfpu", "run", "--profile", "check"], "via": "local"},
               host={"hostname": hostname, "kernel": kernel, "machine": "x86_64",
                     "tier": "host", "cpu": {"model": SPR, "cpus": 224},
                     "kvm_module": "kvm_intel", "kvm_supported_xcr0": "0x602e7"},
               kernel_log={"watched": True, "path": "/dev/kmsg", "error": None,
                           "splats": [], "unwatched_hosts": []})
    run["instances"] = [dict(e if pkru_fails and e["id"] == PKRU else _passed(e), host=None)
                        for e in run["instances"]]
    return _write(run, dst)


def fleet_run(dst: Path) -> Path:
    run = _load()
    run.update(format="kvmfpu-run/3", run_id=dst.name, started="2026-11-29T02:10:00+00:00",
               options={"argv": ["runner/kvmfpu", "run", "--sshloginfile", "hosts"],
                        "via": "parallel"},
               host=dict(_identity("ci-runner", "AMD EPYC 9654", 17, "6.1.0-28-amd64"),
                         kernel="6.1.0-28-amd64"),
               hosts={FLEET_HOSTS[0]: _identity("spr-1", SPR, 143, "6.13.0-kvm"),
                      FLEET_HOSTS[1]: _identity("emr-1", EMR, 207, "6.13.0-kvm")},
               kernel_log={"watched": True, "path": "/dev/kmsg", "error": None, "splats": [],
                           "remote_hosts": {h: "watched (dmesg before and after each job)"
                                            for h in FLEET_HOSTS},
                           "unwatched_hosts": []})
    # GNU parallel gave each instance to one host: PKRU went to (and failed on) the second
    run["instances"] = [dict(e, host=FLEET_HOSTS[1]) if e["id"] == PKRU
                        else dict(_passed(e), host=FLEET_HOSTS[0]) for e in run["instances"]]
    return _write(run, dst)
