#!/bin/bash
# A fleet run on one machine: two sshd instances on loopback ports stand in for two test
# hosts, and GNU parallel fans the smoke profile out over them with --sshloginfile.
#
#   tests/runner/fleet_demo.sh [PROFILE] [extra runner args...]
#
# Needs root (sshd), openssh-server and parallel (installed with apt if missing). The test
# programs must be at the same path on every "host"; here they are the same checkout.
# Everything temporary lives in one directory that is removed at the end; only the sshd
# processes this script started are stopped (by their pid files).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-smoke}
shift || true
ports=(2201 2202)

need=()
command -v parallel >/dev/null || need+=(parallel)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 install -y -q "${need[@]}"
fi

tmp=$(mktemp -d /tmp/kvmfpu-fleet.XXXXXX)
cleanup() {
	for p in "${ports[@]}"; do
		[ -f "$tmp/sshd-$p.pid" ] && kill "$(cat "$tmp/sshd-$p.pid")" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/client_key"
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
: > "$tmp/sshloginfile"
for p in "${ports[@]}"; do
	cat > "$tmp/sshd-$p.conf" <<CONF
ListenAddress 127.0.0.1
Port $p
HostKey $tmp/host_key
PidFile $tmp/sshd-$p.pid
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
MaxStartups 50
MaxSessions 50
CONF
	/usr/sbin/sshd -f "$tmp/sshd-$p.conf" -E "$tmp/sshd-$p.log"
	echo "1/ssh -p $p -i $tmp/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes root@127.0.0.1" >> "$tmp/sshloginfile"
done
for i in $(seq 50); do
	[ -f "$tmp/sshd-${ports[0]}.pid" ] && [ -f "$tmp/sshd-${ports[1]}.pid" ] && break
	sleep 0.1
done
for p in "${ports[@]}"; do
	ssh -p "$p" -i "$tmp/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o BatchMode=yes root@127.0.0.1 "echo host on port $p: \$(uname -r)"
done

echo "--- sshloginfile:"; cat "$tmp/sshloginfile"
start=$(date +%s.%N)
rc=0
runner/kvmfpu run --profile "$profile" --sshloginfile "$tmp/sshloginfile" --jobs 1 "$@" || rc=$?
end=$(date +%s.%N)
echo "--- fleet run exit status $rc, wall time $(echo "$end - $start" | bc) s"
echo "--- which host ran what (results/latest/run.json):"
# Each "host" must have been probed for its identity, and every instance that ran must name
# one of them: exit 1 (whatever the run's own status) if not.
python3 - "${ports[@]}" <<'PY' || rc=1
import json
import sys
run = json.load(open("results/latest/run.json"))
for e in run["instances"]:
    print(f"  {e.get('host') or 'local':20} {e['verdict'] or 'pending':7} {e['id']}")
for host, state in run["kernel_log"].get("remote_hosts", {}).items():
    print(f"  {host}: kernel log {state}")
bad = []
want = [f"root@127.0.0.1:{p}" for p in sys.argv[1:]]
for key in want:
    ident = run["hosts"].get(key)
    if not ident or "error" in ident or not ident.get("hostname"):
        bad.append(f"no identity for {key}: {ident}")
        continue
    print(f"  {key}: hostname {ident['hostname']}, cpu {ident['cpu']['model_name']}, "
          f"microcode {ident['cpu']['microcode']}, kernel {ident['kernel']['release']}, "
          f"kvm {ident['kvm']['module']} {ident['kvm']['params']}, tier {ident['tier']}")
ran = [e for e in run["instances"] if e["status"] == "done" and e["verdict"] != "interrupted"]
bad += [f"{e['id']}: host {e['host']!r} has no identity" for e in ran
        if e.get("host") not in run["hosts"]]
used = {e["host"] for e in ran}
bad += [f"{key} ran no instance" for key in want if key not in used]
for line in bad:
    print(f"FLEET IDENTITY: {line}", file=sys.stderr)
sys.exit(1 if bad or not ran else 0)
PY
echo "--- joblog (results/latest/parallel.joblog):"
cut -f1-8 results/latest/parallel.joblog
exit $rc
