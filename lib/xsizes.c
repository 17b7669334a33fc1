// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's XCR0 rules and the XCR0 values the matrix tries: see xsizes.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsizes.h"

#define BIT64(n)	(1ull << (n))

#define MASK_YMM	XS_BIT(XS_AVX)
#define MASK_SSE	XS_BIT(XS_SSE)
#define MASK_FP		XS_BIT(XS_X87)

/*
 * __kvm_set_xcr(), arch/x86/kvm/x86.c (6.12), in its order:
 *	if (!(xcr0 & XFEATURE_MASK_FP)) return 1;
 *	if ((xcr0 & XFEATURE_MASK_YMM) && !(xcr0 & XFEATURE_MASK_SSE)) return 1;
 *	valid_bits = vcpu->arch.guest_supported_xcr0 | XFEATURE_MASK_FP;
 *	if (xcr0 & ~valid_bits) return 1;
 *	if ((!(xcr0 & XFEATURE_MASK_BNDREGS)) != (!(xcr0 & XFEATURE_MASK_BNDCSR))) return 1;
 *	if (xcr0 & XFEATURE_MASK_AVX512) {
 *		if (!(xcr0 & XFEATURE_MASK_YMM)) return 1;
 *		if ((xcr0 & XFEATURE_MASK_AVX512) != XFEATURE_MASK_AVX512) return 1;
 *	}
 *	if ((xcr0 & XFEATURE_MASK_XTILE) &&
 *	    ((xcr0 & XFEATURE_MASK_XTILE) != XFEATURE_MASK_XTILE)) return 1;
 * A guest XSETBV that breaks one takes #GP (kvm_emulate_xsetbv()); KVM_SET_XCRS returns
 * EINVAL (kvm_vcpu_ioctl_x86_set_xcrs()). These are the SDM's XSETBV rules (Vol. 1, 13.3),
 * which xs_xcr0_valid() holds (the one copy of them), plus "only what the guest's CPUID
 * enumerates".
 */
bool xsz_kvm_accepts_xcr0(uint64_t xcr0, uint64_t guest_supported, char *why, size_t len)
{
	uint64_t extra = xcr0 & ~(guest_supported | MASK_FP);

	if (extra) {
		snprintf(why, len, "XCR0 0x%llx: bit %d is not in the guest's supported XCR0 0x%llx",
			 (unsigned long long)xcr0, __builtin_ctzll(extra),
			 (unsigned long long)guest_supported);
		return false;
	}
	return xs_xcr0_valid(xcr0, why, len);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

unsigned int xsz_valid_xcr0s(uint64_t guest_supported, uint64_t *out, unsigned int max)
{
	uint64_t bits = (guest_supported | MASK_FP) & ~MASK_FP, xcr0;
	unsigned int n = 0, nbits = __builtin_popcountll(bits), j, b;
	char why[160];
	uint64_t s;

	/* Every subset of the optional bits, with x87 (which XCR0 always has). */
	if (nbits > 20)
		return 0;
	for (s = 0; s < BIT64(nbits) && n < max; s++) {
		xcr0 = MASK_FP;
		for (j = 0, b = 0; b < XS_NR_SUBLEAVES; b++) {
			if (!(bits & BIT64(b)))
				continue;
			if (s & BIT64(j))
				xcr0 |= BIT64(b);
			j++;
		}
		if (xsz_kvm_accepts_xcr0(xcr0, guest_supported, why, sizeof(why)))
			out[n++] = xcr0;
	}
	qsort(out, n, sizeof(*out), cmp_u64);
	return n;
}

static void add_bad(struct xsz_bad_xcr0 *out, unsigned int *n, unsigned int max, uint64_t xcr0,
		    const char *what)
{
	unsigned int i;

	for (i = 0; i < *n; i++)
		if (out[i].xcr0 == xcr0)
			return;
	if (*n < max)
		out[(*n)++] = (struct xsz_bad_xcr0){ xcr0, what };
}

unsigned int xsz_invalid_xcr0s(uint64_t guest_supported, struct xsz_bad_xcr0 *out,
			       unsigned int max)
{
	static const uint64_t avx512_partial[] = { 0x20, 0x40, 0x80, 0x60, 0xa0, 0xc0 };
	uint64_t all = guest_supported | MASK_FP;
	uint64_t base = all & (MASK_FP | MASK_SSE);
	unsigned int n = 0, i, b;

	add_bad(out, &n, max, 0, "bit 0 (x87) clear");
	add_bad(out, &n, max, all & ~MASK_FP, "bit 0 (x87) clear, every other bit allowed");
	add_bad(out, &n, max, MASK_FP | MASK_YMM, "YMM without SSE");
	if (all & MASK_YMM)
		add_bad(out, &n, max, all & ~MASK_SSE, "YMM without SSE, every other bit allowed");
	for (i = 0; i < sizeof(avx512_partial) / sizeof(avx512_partial[0]); i++)
		add_bad(out, &n, max, base | MASK_YMM | avx512_partial[i],
			"AVX-512 components not all together");
	add_bad(out, &n, max, (all & ~XS_MASK_AVX512) | XS_BIT(XS_OPMASK),
		"AVX-512 opmask alone, every other bit allowed");
	add_bad(out, &n, max, base | XS_MASK_AVX512, "AVX-512 without YMM");
	add_bad(out, &n, max, base | XS_BIT(XS_BNDREGS), "BNDREGS without BNDCSR");
	add_bad(out, &n, max, base | XS_BIT(XS_BNDCSR), "BNDCSR without BNDREGS");
	add_bad(out, &n, max, base | XS_BIT(XS_XTILECFG), "XTILECFG without XTILEDATA");
	add_bad(out, &n, max, base | XS_BIT(XS_XTILEDATA), "XTILEDATA without XTILECFG");
	for (b = 1; b < XS_NR_SUBLEAVES; b++)
		if (!(all & BIT64(b)))
			add_bad(out, &n, max, base | BIT64(b),
				"a bit the guest's CPUID 0xD.0 and KVM do not both allow");
	add_bad(out, &n, max, all | BIT64(63), "reserved bit 63, every other bit allowed");
	return n;
}
