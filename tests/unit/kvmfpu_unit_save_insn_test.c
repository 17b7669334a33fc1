// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_save_insn_test: what XSAVE, XSAVEOPT and XSAVEC really write, read through
 * lib/ximage, on this machine's own CPU (no /dev/kvm).
 *
 * swap.*.xsaveopt_view and xsavec_view compare the image the guest saved with one of these
 * instructions with KVM_GET_XSAVE2 and the pattern. Neither lab gives a guest XSAVEC (the tcg
 * CPU lacks it, the bochs lab hides it with clearcpuid=), so the reading of a compacted image
 * those checks rest on is checked here against the hardware: the process loads a pattern
 * with XRSTOR and saves it with each instruction in one asm block; every image must mean the
 * pattern (ximage_diff()), have a valid header for its format, and XSAVEC's XCOMP_BV must be
 * bit 63 | (RFBM & XCR0) (SDM Vol. 1, 13.10). Also with AVX in its initial configuration
 * (XSAVEC writes no AVX area and clears its XSTATE_BV bit, the components after it keep the
 * offsets XCOMP_BV gives them) and with AVX out of RFBM (they move down).
 */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"

#include "host_regs.h"
#include "pattern.h"
#include "ximage.h"

FIXTURE(save) {
	struct xs_layout layout;
	uint64_t mask;		/* what the process may load: host_check_mask() */
	uint64_t xcr0;
	struct ximage fill, xsave, xsaveopt, xsavec, own;
};

FIXTURE_SETUP(save)
{
	uint32_t a, b, c, d;

	memset(self, 0, sizeof(*self));
	self->xcr0 = host_xcr0();
	self->mask = host_check_mask();
	if (!self->mask)
		SKIP(return, "CPUID.1:ECX.OSXSAVE[27] clear: the OS did not enable XSAVE");
	__cpuid_count(0xd, 1, a, b, c, d);
	if ((a & 3) != 3)
		SKIP(return, "this CPU lacks XSAVEOPT or XSAVEC: CPUID.(0xD,1):EAX = 0x%x", a);
	xs_layout_host(&self->layout);
	ASSERT_EQ(0, ximage_alloc(&self->fill, &self->layout, self->mask, false));
	ASSERT_EQ(0, ximage_alloc(&self->xsave, &self->layout, self->mask, false));
	ASSERT_EQ(0, ximage_alloc(&self->xsaveopt, &self->layout, self->mask, false));
	ASSERT_EQ(0, ximage_alloc(&self->xsavec, &self->layout, self->mask, true));
	ASSERT_EQ(0, ximage_alloc(&self->own, &self->layout, self->mask, false));
	printf("# RFBM 0x%llx, XCR0 0x%llx\n", (unsigned long long)self->mask,
	       (unsigned long long)self->xcr0);
}

FIXTURE_TEARDOWN(save)
{
	ximage_free(&self->fill);
	ximage_free(&self->xsave);
	ximage_free(&self->xsaveopt);
	ximage_free(&self->xsavec);
	ximage_free(&self->own);
}

/*
 * XRSTOR @fill, then XSAVE, XSAVEOPT and XSAVEC of the same registers, all with @rfbm, in one
 * asm block so no compiler-generated code touches them in between; the process's own state
 * (self->mask) is saved first and restored last. XSAVEOPT's modified optimization cannot skip
 * anything: the last XRSTOR was not from its address (SDM Vol. 1, 13.9).
 */
static void save_all(FIXTURE_DATA(save) *self, uint64_t rfbm)
{
	uint32_t lo = self->mask, hi = self->mask >> 32, rlo = rfbm, rhi = rfbm >> 32;

	memset(self->xsave.buf, 0, self->xsave.size);
	memset(self->xsaveopt.buf, 0, self->xsaveopt.size);
	memset(self->xsavec.buf, 0, self->xsavec.size);
	asm volatile(
		"mov %[lo], %%eax\n\t"
		"mov %[hi], %%edx\n\t"
		"xsave64 (%[own])\n\t"
		"mov %[rlo], %%eax\n\t"
		"mov %[rhi], %%edx\n\t"
		"xrstor64 (%[fill])\n\t"
		"xsave64 (%[xs])\n\t"
		"xsaveopt64 (%[xo])\n\t"
		"xsavec64 (%[xc])\n\t"
		"mov %[lo], %%eax\n\t"
		"mov %[hi], %%edx\n\t"
		"xrstor64 (%[own])\n\t"
		: : [lo] "r"(lo), [hi] "r"(hi), [rlo] "r"(rlo), [rhi] "r"(rhi),
		    [own] "r"(self->own.buf), [fill] "r"(self->fill.buf),
		    [xs] "r"(self->xsave.buf), [xo] "r"(self->xsaveopt.buf),
		    [xc] "r"(self->xsavec.buf)
		: "rax", "rdx", "memory");
}

/* Every image means @self->fill for @rfbm, its header valid; returns what differs. */
static unsigned int check_all(FIXTURE_DATA(save) *self, uint64_t rfbm)
{
	uint64_t want_xcomp = XS_XCOMP_BV_COMPACTED | (rfbm & self->xcr0);
	struct ximage *imgs[] = { &self->xsave, &self->xsaveopt, &self->xsavec };
	static const char * const names[] = { "xsave", "xsaveopt", "xsavec" };
	unsigned int i, bad = 0;

	for (i = 0; i < 3; i++) {
		bad += ximage_diff(&self->fill, imgs[i], rfbm, names[i], ximage_report_ktap, NULL);
		bad += ximage_check_header(imgs[i], rfbm & self->xcr0, 0, names[i],
					   ximage_report_ktap, NULL);
	}
	if (ximage_xcomp_bv(&self->xsavec) != want_xcomp) {
		printf("# xsavec: XCOMP_BV 0x%llx, expected 0x%llx\n",
		       (unsigned long long)ximage_xcomp_bv(&self->xsavec),
		       (unsigned long long)want_xcomp);
		bad++;
	}
	return bad;
}

TEST_F(save, all_in_use)
{
	struct pattern_key k = { .seed = 0x5a7e, .round = 1 };

	pattern_fill_image(&self->fill, self->mask, &k);
	save_all(self, self->mask);
	EXPECT_EQ(0, check_all(self, self->mask));
	/* The pattern is in use everywhere: XSAVEC reports every component. */
	EXPECT_EQ(self->mask, ximage_xstate_bv(&self->xsavec) & self->mask);
}

TEST_F(save, avx_in_init_state)
{
	struct pattern_key k = { .seed = 0x5a7e, .round = 2 };

	if (!(self->mask & XS_BIT(XS_AVX)))
		SKIP(return, "XCR0 0x%llx without AVX", (unsigned long long)self->xcr0);
	pattern_fill_image(&self->fill, self->mask & ~XS_BIT(XS_AVX), &k);
	save_all(self, self->mask);
	EXPECT_EQ(0, check_all(self, self->mask));
	EXPECT_EQ(0, ximage_xstate_bv(&self->xsavec) & XS_BIT(XS_AVX));
}

/*
 * RFBM without AVX: XSAVEC leaves AVX out of XCOMP_BV, so every later component moves down
 * by AVX's size in the compacted image, away from its standard-format offset (which, with
 * every component present and none aligned, can coincide with the compacted one).
 */
TEST_F(save, rfbm_without_avx)
{
	struct pattern_key k = { .seed = 0x5a7e, .round = 3 };
	uint64_t rfbm = self->mask & ~XS_BIT(XS_AVX);

	if (!(self->mask & XS_BIT(XS_AVX)) || !(self->mask & ~XS_MASK_FPSSE & ~XS_BIT(XS_AVX)))
		SKIP(return, "XCR0 0x%llx: no component after AVX to move",
		     (unsigned long long)self->xcr0);
	pattern_fill_image(&self->fill, self->mask, &k);
	save_all(self, rfbm);
	EXPECT_EQ(0, check_all(self, rfbm));
}

TEST_HARNESS_MAIN
