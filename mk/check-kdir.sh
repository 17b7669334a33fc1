#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Refuse a KDIR that cannot build kvmfpu, with one line that says why.
# The KVM selftests live in x86_64/ up to 6.13 and in x86/ from 6.14; probe for either.
set -eu
kdir=$1
die() {
	echo "kvmfpu: KDIR=$kdir $*" >&2
	exit 2
}
[ -d "$kdir" ] || die "does not exist"
[ -f "$kdir/Makefile" ] && [ -d "$kdir/arch/x86" ] || die "is not a kernel tree (no Makefile or arch/x86)"
kvm=$kdir/tools/testing/selftests/kvm
[ -f "$kvm/lib/kvm_util.c" ] || die "has no KVM selftest library (tools/testing/selftests/kvm/lib/kvm_util.c)"
[ -f "$kvm/include/x86/processor.h" ] || [ -f "$kvm/include/x86_64/processor.h" ] ||
	die "has no x86 KVM selftest headers (include/x86/ or include/x86_64/processor.h)"
[ -f "$kdir/usr/include/linux/kvm.h" ] ||
	die "has no exported headers: run 'make -C $kdir headers' first"
exit 0
