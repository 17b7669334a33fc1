#!/bin/bash
# The labs' part of `make check`: unit tests on canned logs, then the swap tests in the tcg lab
# (AVX, PKRU through kvm_amd) and the bochs lab (AVX-512 through kvm_intel) on Debian's 6.12
# kernel, each required to have exercised every component its lab can test.
#   runner/lab/check.sh [--unit-only | --skip-unit] [--lab tcg|bochs]...
# Needs runner/lab/deps.sh (root) and `make static` first. Exit: 0 pass, 1 fail, 2 lab error.
set -uo pipefail
cd "$(dirname "$0")/../.."
labs=()
unit_only=0
skip_unit=0
while [ $# -gt 0 ]; do
	case $1 in
	--unit-only) unit_only=1; shift ;;
	--skip-unit) skip_unit=1; shift ;;
	--lab) labs+=("$2"); shift 2 ;;
	*) echo "usage: $0 [--unit-only | --skip-unit] [--lab tcg|bochs]..." >&2; exit 2 ;;
	esac
done
[ ${#labs[@]} -gt 0 ] || labs=(tcg bochs)
# make check runs the unit tests itself (mk/run-unit.sh), hence --skip-unit.
if [ "$skip_unit" = 0 ]; then
	python3 -m unittest discover -s tests/lab -t . || exit 1
fi
[ "$unit_only" = 1 ] && exit 0
worst=0
passed=0
failed=0
for lab in "${labs[@]}"; do
	start=$(date +%s)
	runner/kvmfpu-lab lab --lab "$lab" --test kvmfpu_swap_test --test kvmfpu_xsave_uabi_test \
		--require-exercised
	rc=$?
	echo "lab $lab: exit $rc in $(( $(date +%s) - start )) s"
	if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	# 1 (a check failed) outranks 2 (could not test)
	if [ "$rc" = 1 ] || { [ "$rc" != 0 ] && [ "$worst" = 0 ]; }; then worst=$rc; fi
done
echo "labs: $passed passed, $failed failed"
exit "$worst"
