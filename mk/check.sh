#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: the project's own tests, then the KVM tests (profile check: the swap and uabi
# tests) through the runner on every tier this machine offers: the host's /dev/kvm, and each
# lab in LABS (a kernel under test booted in an emulator, required to exercise every component
# it can test).
#
#   mk/check.sh [--skip-unit] BINDIR [LAB...]
#
# The tiers run at the same time (each emulator is one thread; Bochs has its own network
# namespace); every line of a tier's output is prefixed with its name. Each tier's verdict is
# the runner's exit code (runner/verdicts.py: a failure outranks an error, an error a pass);
# this script only combines them: 1 when a check failed anywhere, else 2 when a tier could not
# test or no KVM test ran on any tier, else 0. A machine without /dev/kvm still tests KVM in
# the labs; its host tier is reported absent, with the reason, never as passed.
# Needs runner/lab/deps.sh (root) for the labs; every tier runs the programs in BINDIR.
# KVMFPU (the runner command) and KVMFPU_KVM_DEV (/dev/kvm) are for the tests.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
skip_unit=0
if [ "${1:-}" = --skip-unit ]; then
	skip_unit=1
	shift
fi
[ $# -ge 1 ] || { echo "usage: $0 [--skip-unit] BINDIR [LAB...]" >&2; exit 2; }
bindir=$1
shift
kvmfpu=${KVMFPU:-$top/runner/kvmfpu}
kvm_dev=${KVMFPU_KVM_DEV:-/dev/kvm}

if [ "$skip_unit" = 0 ]; then
	"$top/mk/run-unit.sh" "$bindir" || exit 1
fi

# Each tier is a job of its own (set -m): its own process group, and SIGINT not ignored as it
# is for background commands without job control, so a Ctrl-C here is passed on to the
# runners (stop below), which then stop their emulators. The prefixing sed ignores SIGINT so
# that a tier's last words still get out; the job ends when both have.
run_tier() {	# run_tier NAME RUNNER-ARGS...
	local name=$1
	shift
	"$kvmfpu" run "$@" 2>&1 | (trap '' INT; exec sed -u "s/^/[$name] /")
	return "${PIPESTATUS[0]}"
}
set -m
declare -A tier_of=()
interrupted=0
stop() {
	interrupted=1
	for pid in "${!tier_of[@]}"; do
		kill -INT -- "-$pid" 2>/dev/null
	done
}
trap stop INT TERM
start=$(date +%s)
absent=0
if [ -e "$kvm_dev" ]; then
	run_tier host --profile check --bin "$bindir" &
	tier_of[$!]=host
else
	echo "kvmfpu: host tier: SKIP $kvm_dev does not exist: no KVM on this machine"
	absent=1
fi
for lab in "$@"; do
	run_tier "$lab" --lab "$lab" --profile check --require-exercised --bin "$bindir" &
	tier_of[$!]=$lab
done

worst=0
passed=0
failed=0
errors=0
left=${#tier_of[@]}
while [ "$left" -gt 0 ]; do
	wait -n -p pid "${!tier_of[@]}"
	rc=$?
	# A trapped signal interrupts wait: no job has ended then.
	[ -n "${pid:-}" ] || continue
	tier=${tier_of[$pid]}
	left=$((left - 1))
	echo "tier $tier: exit $rc in $(( $(date +%s) - start )) s"
	# Anything but 0 and 1 (a harness or lab error, an interrupted run) could not test: 2.
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || rc=2
	case $rc in
	0) passed=$((passed + 1)) ;;
	1) failed=$((failed + 1)) ;;
	*) errors=$((errors + 1)) ;;
	esac
	if [ "$rc" = 1 ] || [ "$worst" = 0 ]; then worst=$rc; fi
	unset "tier_of[$pid]"
	pid=
done
note=
[ "$interrupted" = 1 ] && note=' (interrupted)'
echo "tiers: $passed passed, $failed failed, $errors could not test, $absent absent$note"
[ "$interrupted" = 1 ] && [ "$worst" = 0 ] && worst=2
if [ "$worst" = 0 ] && [ "$passed" = 0 ]; then
	echo "kvmfpu: no KVM test ran: no $kvm_dev here and no lab (LABS=$*)" >&2
	exit 2
fi
exit "$worst"
