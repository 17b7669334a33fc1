#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run every kvmfpu test program in BINDIR against this machine's /dev/kvm, print their KTAP and
# a closing summary line. Exit 0 when everything that ran passed (skips allowed, but not a run
# where nothing ran), 1 when a check failed, 2 on a harness or environment error, 4 when this
# machine has no /dev/kvm at all (the host tier is absent: a skip, as in kselftest).
set -u
bindir=$1
shift
if [ ! -e /dev/kvm ]; then
	echo "kvmfpu: host tier: SKIP /dev/kvm does not exist: no KVM on this machine"
	exit 4
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT

progs=$(find -L "$bindir" -maxdepth 1 -name 'kvmfpu_*_test' ! -name 'kvmfpu_unit_*' -type f | sort)
[ -n "$progs" ] || { echo "kvmfpu: no test programs in $bindir (run make first)" >&2; exit 2; }

worst=0
for p in $progs; do
	"$p" "$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	case $rc in
	0|4) ;;
	1) [ $worst -lt 1 ] && worst=1 ;;
	*) worst=2; echo "# kvmfpu: $(basename "$p") exited $rc (harness or environment error)" ;;
	esac
	grep -q '^# kvmfpu-error:' "$log" && worst=2
	cat "$log" >>"$log.all"
done

pass=$(grep -Ec '^ok [0-9]+ [^#]*$' "$log.all")
skip=$(grep -Ec '^ok [0-9]+ .*# SKIP' "$log.all")
fail=$(grep -Ec '^not ok [0-9]+' "$log.all")
rm -f "$log.all"
echo "kvmfpu: $pass passed, $fail failed, $skip skipped"
if [ "$pass" -eq 0 ] && [ $worst -eq 0 ]; then
	echo "kvmfpu: nothing ran: every test was skipped" >&2
	exit 2
fi
exit $worst
