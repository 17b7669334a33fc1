#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The project's own tests: the C library's unit tests (synthetic images, no /dev/kvm) and the
# Python runner's tests. Prints one summary line; exit 0 only if all passed.
set -u
bindir=$1
top=$(cd "$(dirname "$0")/.." && pwd)
failed=0 passed=0

for p in $(find -L "$bindir" -maxdepth 1 -name 'kvmfpu_unit_*_test' -type f | sort); do
	if "$p"; then
		passed=$((passed + 1))
	else
		echo "kvmfpu: $(basename "$p") failed" >&2
		failed=$((failed + 1))
	fi
done

for d in tests/cli tests/runner tests/lab; do
	[ -d "$top/$d" ] || continue
	if (cd "$top" && python3 -m unittest discover -s "$d" -t . 2>&1); then
		passed=$((passed + 1))
	else
		echo "kvmfpu: python tests in $d failed" >&2
		failed=$((failed + 1))
	fi
done
echo "unit: $passed passed, $failed failed"
[ $failed -eq 0 ]
