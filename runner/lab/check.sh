#!/bin/bash
# The labs' part of `make check`: unit tests on canned logs, then the swap tests in the tcg lab
# (AVX, PKRU through kvm_amd) and the bochs lab (AVX-512 through kvm_intel) on Debian's 6.12
# kernel, each required to have exercised every component its lab can test.
#   runner/lab/check.sh [--unit-only | --skip-unit] [--lab tcg|bochs]...
# The labs run at the same time (each emulator is one thread; Bochs has its own network
# namespace); every line of a lab's output is prefixed with its name.
# Needs runner/lab/deps.sh (root) and `make static` first. Exit: 0 pass, 1 fail, 2 lab error
# (a failing lab outranks one that could not test). KVMFPU_LAB: the lab command (for tests).
set -uo pipefail
cd "$(dirname "$0")/../.."
labs=()
unit_only=0
skip_unit=0
while [ $# -gt 0 ]; do
	case $1 in
	--unit-only) unit_only=1; shift ;;
	--skip-unit) skip_unit=1; shift ;;
	--lab) [ $# -ge 2 ] || { echo "$0: --lab needs a lab name" >&2; exit 2; }
		labs+=("$2"); shift 2 ;;
	*) echo "usage: $0 [--unit-only | --skip-unit] [--lab tcg|bochs]..." >&2; exit 2 ;;
	esac
done
[ ${#labs[@]} -gt 0 ] || labs=(tcg bochs)
lab_cmd=${KVMFPU_LAB:-runner/kvmfpu}
# make check runs the unit tests itself (mk/run-unit.sh), hence --skip-unit.
if [ "$skip_unit" = 0 ]; then
	python3 -m unittest discover -s tests/lab -t . || exit 1
fi
[ "$unit_only" = 1 ] && exit 0

# Each lab is a job of its own (set -m): its own process group, and SIGINT not ignored as it
# is for background commands without job control, so a Ctrl-C here is passed on to the labs
# (stop below), which then stop their emulators. The prefixing sed ignores SIGINT so that a
# lab's last words still get out; the job ends when both have.
run_lab() {
	"$lab_cmd" lab --lab "$1" --test kvmfpu_swap_test --test kvmfpu_xsave_uabi_test \
		--require-exercised 2>&1 | (trap '' INT; exec sed -u "s/^/[$1] /")
	return "${PIPESTATUS[0]}"
}
set -m
declare -A lab_of=()
interrupted=0
stop() {
	interrupted=1
	for pid in "${!lab_of[@]}"; do
		kill -INT -- "-$pid" 2>/dev/null
	done
}
trap stop INT TERM
start=$(date +%s)
for lab in "${labs[@]}"; do
	run_lab "$lab" &
	lab_of[$!]=$lab
done

worst=0
passed=0
failed=0
errors=0
left=${#lab_of[@]}
while [ "$left" -gt 0 ]; do
	wait -n -p pid "${!lab_of[@]}"
	rc=$?
	# A trapped signal interrupts wait: no job has ended then.
	[ -n "${pid:-}" ] || continue
	lab=${lab_of[$pid]}
	left=$((left - 1))
	echo "lab $lab: exit $rc in $(( $(date +%s) - start )) s"
	# Anything but 0 and 1 (a lab error, an interrupted lab) could not test: 2.
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || rc=2
	case $rc in
	0) passed=$((passed + 1)) ;;
	1) failed=$((failed + 1)) ;;
	*) errors=$((errors + 1)) ;;
	esac
	# 1 (a check failed) outranks 2 (could not test), which outranks 0 (passed)
	if [ "$rc" = 1 ] || [ "$worst" = 0 ]; then worst=$rc; fi
	unset "lab_of[$pid]"
	pid=
done
echo "labs: $passed passed, $failed failed, $errors could not test$([ "$interrupted" = 1 ] && echo ' (interrupted)')"
[ "$interrupted" = 1 ] && [ "$worst" = 0 ] && worst=2
exit "$worst"
