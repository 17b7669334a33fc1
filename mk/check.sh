#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make check: the project's own tests, then the KVM tests on every tier this machine offers:
# the host's own /dev/kvm, and each lab in LABS (a kernel under test booted in an emulator).
#
#   mk/check.sh BINDIR [LAB...]
#
# A machine without /dev/kvm still tests KVM in the labs; its host tier is reported as skipped,
# with the reason, never as passed. Exit: 1 when a check failed anywhere (a failure outranks an
# error), 2 on a harness or environment error or when no KVM test ran on any tier, else 0.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bindir=$1
shift
labs=$*

"$top/mk/run-unit.sh" "$bindir" || exit 1

worst=0
ran=0
judge() {	# judge EXIT: 0 ran and passed, 1 failed, 4 tier absent (it said why), else error
	case $1 in
	0) ran=$((ran + 1)) ;;
	1) worst=1 ;;
	4) ;;
	*) [ $worst = 1 ] || worst=2 ;;
	esac
}

"$top/mk/run-selftests.sh" "$bindir"
judge $?

if [ -n "$labs" ]; then
	set --
	for l in $labs; do set -- "$@" --lab "$l"; done
	"$top/runner/lab/check.sh" --skip-unit "$@"
	judge $?
fi

if [ $worst = 0 ] && [ $ran = 0 ]; then
	echo "kvmfpu: no KVM test ran: no /dev/kvm here and no lab (LABS=$labs)" >&2
	exit 2
fi
exit $worst
