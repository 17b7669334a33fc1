/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An XSAVE image: the legacy region, the header (XSTATE_BV, XCOMP_BV) and the extended
 * components, in standard or compacted format, with access by component and register, and a
 * diff that explains every difference by component, register and byte.
 *
 * Comparisons are of the state an image *means*, not of its bytes: a component whose
 * XSTATE_BV bit is clear is in its initial configuration whatever its area holds (XRSTOR
 * loads init values for it), except MXCSR in the standard format, which XRSTOR loads from
 * memory whenever SSE or AVX is requested (SDM Vol. 1, 13.8.1; the compacted form initializes
 * it with the rest of SSE state, 13.8.2).
 */
#ifndef KVMFPU_XIMAGE_H
#define KVMFPU_XIMAGE_H

#include "xstate.h"

#define XS_FCW_INIT	0x037f
#define XS_MXCSR_INIT	0x1f80

struct ximage {
	uint8_t *buf;
	uint32_t size;
	bool compacted;
	const struct xs_layout *layout;
};

/* One differing register. @expected/@actual point at @size bytes. */
struct xs_mismatch {
	const char *check;
	unsigned int comp;		/* XS_NR for the header */
	char reg[32];
	uint32_t offset;		/* in the actual image */
	uint32_t size;
	uint32_t first_byte;		/* first differing byte within the register */
	const uint8_t *expected;
	const uint8_t *actual;
	const char *note;		/* what the values mean, when not just bytes */
};

typedef void (*xs_report_fn)(void *ctx, const struct xs_mismatch *m);

/* Zeroed memory aligned for XSAVE (64 bytes); NULL on failure. Free with free(). */
void *ximage_zalloc(size_t size);
/* Allocate a zeroed, 64-byte aligned image large enough for @mask. */
int ximage_alloc(struct ximage *img, const struct xs_layout *l, uint64_t mask, bool compacted);
void ximage_free(struct ximage *img);
/* Wrap a buffer (e.g. guest memory or a kvm_xsave) of @size bytes. */
void ximage_wrap(struct ximage *img, void *buf, uint32_t size, const struct xs_layout *l,
		 bool compacted);

uint64_t ximage_xstate_bv(const struct ximage *img);
uint64_t ximage_xcomp_bv(const struct ximage *img);
void ximage_set_xstate_bv(struct ximage *img, uint64_t bv);
void ximage_set_xcomp_bv(struct ximage *img, uint64_t bv);

/* The component's area, or NULL if it does not fit in the image. */
uint8_t *ximage_comp(const struct ximage *img, unsigned int comp);
/* Byte offset of register @idx of run @r of @comp in the image. */
uint32_t ximage_reg_offset(const struct ximage *img, unsigned int comp, const struct xs_regs *r,
			   unsigned int idx);
void ximage_reg_name(const struct xs_regs *r, unsigned int idx, char *buf, size_t len);

/* All of @mask in the initial configuration: XSTATE_BV=0, FCW and MXCSR at reset values. */
void ximage_init_state(struct ximage *img, uint64_t mask);
/* Copy the state of @mask from @src to @dst (both formats allowed), setting XSTATE_BV. */
void ximage_copy_comps(struct ximage *dst, const struct ximage *src, uint64_t mask);

/*
 * Compare the state of every component in @mask, register by register. Reports each differing
 * register through @report and returns how many differ. The registers are first compared run
 * by run with memcmp(); only when that finds a difference (or cannot decide) does the
 * register-by-register walk, ximage_diff_explain(), run: its verdict and reports are the
 * result, so they are the same as without the first comparison.
 */
unsigned int ximage_diff(const struct ximage *expected, const struct ximage *actual,
			 uint64_t mask, const char *check, xs_report_fn report, void *ctx);
/* The register-by-register walk alone (what ximage_diff() falls back to; for its tests). */
unsigned int ximage_diff_explain(const struct ximage *expected, const struct ximage *actual,
				 uint64_t mask, const char *check, xs_report_fn report, void *ctx);

/*
 * Check the header of an image: XSTATE_BV only within @allowed and including @required,
 * XCOMP_BV as the format requires, the reserved header bytes zero.
 */
unsigned int ximage_check_header(const struct ximage *img, uint64_t allowed, uint64_t required,
				 const char *check, xs_report_fn report, void *ctx);

/* Print a mismatch as an explanation plus a "# kvmfpu-mismatch:" line (docs/test-programs.md). */
void ximage_report_ktap(void *ctx, const struct xs_mismatch *m);
/* Print "# kvmfpu-layout:" lines for the components of @mask in @img. */
void ximage_print_layout(const struct ximage *img, uint64_t mask);

/*
 * The one mismatch reporter (an xs_report_fn, @ctx a struct ximage_reporter): before the first
 * mismatch the layout of @img for @mask, then up to @max_print mismatches through
 * ximage_report_ktap() and a line saying the rest were not printed; nothing when @quiet.
 */
struct ximage_reporter {
	const struct ximage *img;
	uint64_t mask;
	unsigned int max_print;
	bool quiet;
	unsigned int seen;
};

void ximage_report(void *ctx, const struct xs_mismatch *m);
/* ximage_diff() of @expected and @actual through ximage_report(); returns how many differ. */
unsigned int ximage_report_diff(const struct ximage *expected, const struct ximage *actual,
				uint64_t mask, const char *check, unsigned int max_print,
				bool quiet);

#endif /* KVMFPU_XIMAGE_H */
