/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which XCR0 values KVM must accept, and the lists of valid and invalid ones the XCR0 matrix
 * tries (kvmfpu_xcr0_test). Pure functions, unit-tested without /dev/kvm
 * (tests/unit/kvmfpu_unit_sizes_test.c).
 *
 * What CPUID leaf 0xD must report for an XCR0 (and IA32_XSS) is read from a CPUID source by
 * xs_layout_from_cpuid() and computed by xs_size_standard() and xs_size_compacted()
 * (lib/xstate.h; SDM Vol. 1, 13.4.3, and Vol. 2A, CPUID leaf 0DH):
 *  - CPUID.(0xD,0).EBX: the standard-format XSAVE area for the features enabled in XCR0:
 *    the end of the highest enabled user component, at least 512 + 64 (legacy region and
 *    header). ECX: the same for every feature CPUID.(0xD,0).EDX:EAX supports.
 *  - CPUID.(0xD,1).EBX: the compacted area for XCR0 | IA32_XSS: 512 + 64, then each enabled
 *    component i >= 2 in ascending order, first rounded up to a multiple of 64 when
 *    CPUID.(0xD,i).ECX[1] is set. Defined only when XSAVEC or XSAVES exists
 *    (CPUID.(0xD,1).EAX[1] or [3]: xs_has_compacted()).
 * KVM computes both in xstate_required_size() (arch/x86/kvm/cpuid.c) and stores them in the
 * guest's CPUID whenever XCR0 changes (__kvm_update_cpuid_runtime()).
 */
#ifndef KVMFPU_XSIZES_H
#define KVMFPU_XSIZES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xstate.h"

/*
 * KVM's XCR0 rules, __kvm_set_xcr() in arch/x86/kvm/x86.c, for a guest whose CPUID allows
 * @guest_supported (guest CPUID.(0xD,0).EDX:EAX & what KVM supports). Returns false and says
 * which rule @xcr0 breaks.
 */
bool xsz_kvm_accepts_xcr0(uint64_t xcr0, uint64_t guest_supported, char *why, size_t len);

/* Every XCR0 KVM must accept for @guest_supported, ascending. Returns how many (<= @max). */
unsigned int xsz_valid_xcr0s(uint64_t guest_supported, uint64_t *out, unsigned int max);

/*
 * XCR0 values KVM must refuse for @guest_supported, one or more per rule of __kvm_set_xcr()
 * and one per bit 1..63 the guest may not have, each with the rule it breaks. Every entry
 * is rejected by xsz_kvm_accepts_xcr0(). Returns how many (<= @max).
 */
struct xsz_bad_xcr0 {
	uint64_t xcr0;
	const char *what;
};
unsigned int xsz_invalid_xcr0s(uint64_t guest_supported, struct xsz_bad_xcr0 *out,
			       unsigned int max);

#endif /* KVMFPU_XSIZES_H */
