// SPDX-License-Identifier: GPL-2.0
/*
 * The XSAVE image model and its diff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ximage.h"

#define XSTATE_BV_OFFSET	(XS_HEADER_OFFSET + 0)
#define XCOMP_BV_OFFSET		(XS_HEADER_OFFSET + 8)
#define HEADER_RSVD_OFFSET	(XS_HEADER_OFFSET + 16)
#define HEADER_RSVD_SIZE	48
#define MAX_REG_SIZE		1024

void *ximage_zalloc(size_t size)
{
	void *p;

	size = (size + 63) & ~(size_t)63;
	if (posix_memalign(&p, 64, size))
		return NULL;
	memset(p, 0, size);
	return p;
}

int ximage_alloc(struct ximage *img, const struct xs_layout *l, uint64_t mask, bool compacted)
{
	uint32_t size = compacted ? xs_size_compacted(l, mask) : xs_size_standard(l, mask);

	img->buf = ximage_zalloc(size);
	if (!img->buf)
		return -1;
	img->size = size;
	img->compacted = compacted;
	img->layout = l;
	if (compacted)
		ximage_set_xcomp_bv(img, XS_XCOMP_BV_COMPACTED | mask);
	return 0;
}

void ximage_free(struct ximage *img)
{
	free(img->buf);
	img->buf = NULL;
}

void ximage_wrap(struct ximage *img, void *buf, uint32_t size, const struct xs_layout *l,
		 bool compacted)
{
	img->buf = buf;
	img->size = size;
	img->compacted = compacted;
	img->layout = l;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

uint64_t ximage_xstate_bv(const struct ximage *img)
{
	return get_u64(img->buf + XSTATE_BV_OFFSET);
}

uint64_t ximage_xcomp_bv(const struct ximage *img)
{
	return get_u64(img->buf + XCOMP_BV_OFFSET);
}

void ximage_set_xstate_bv(struct ximage *img, uint64_t bv)
{
	put_u64(img->buf + XSTATE_BV_OFFSET, bv);
}

void ximage_set_xcomp_bv(struct ximage *img, uint64_t bv)
{
	put_u64(img->buf + XCOMP_BV_OFFSET, bv);
}

static uint32_t comp_offset(const struct ximage *img, unsigned int comp)
{
	return xs_offset(img->layout, comp, img->compacted, ximage_xcomp_bv(img));
}

uint8_t *ximage_comp(const struct ximage *img, unsigned int comp)
{
	uint32_t off = comp_offset(img, comp);

	/* x87 and SSE registers are addressed from the start of the image. */
	if (comp < 2)
		return img->buf;
	if (comp >= XS_NR || !img->layout->size[comp] ||
	    off + img->layout->size[comp] > img->size)
		return NULL;
	if (img->compacted && !(ximage_xcomp_bv(img) & XS_BIT(comp)))
		return NULL;
	return img->buf + off;
}

uint32_t ximage_reg_offset(const struct ximage *img, unsigned int comp, const struct xs_regs *r,
			   unsigned int idx)
{
	uint32_t base = comp < 2 ? 0 : comp_offset(img, comp);

	return base + r->offset + idx * r->stride;
}

void ximage_reg_name(const struct xs_regs *r, unsigned int idx, char *buf, size_t len)
{
	if (r->count > 1)
		snprintf(buf, len, r->name, r->first + idx);
	else
		snprintf(buf, len, "%s", r->name);
}

/* The initial configuration of one register (SDM Vol. 1, 13.6: FCW 037FH, MXCSR 1F80H). */
static void reg_init_value(const struct xs_regs *r, uint8_t *out)
{
	memset(out, 0, r->size);
	if (r->kind == XR_FCW) {
		out[0] = XS_FCW_INIT & 0xff;
		out[1] = XS_FCW_INIT >> 8;
	} else if (r->kind == XR_MXCSR) {
		out[0] = XS_MXCSR_INIT & 0xff;
		out[1] = XS_MXCSR_INIT >> 8;
	}
}

/*
 * Whether XRSTOR takes register @r of @comp from @img's bytes. The standard form loads MXCSR
 * from memory whenever SSE or AVX is requested, whatever XSTATE_BV says; the compacted form
 * initializes it to 1F80H with the rest of SSE state when XSTATE_BV[1] = 0 (SDM Vol. 1,
 * 13.8.1 and 13.8.2).
 */
static bool reg_from_memory(const struct ximage *img, unsigned int comp, const struct xs_regs *r)
{
	if (r->kind == XR_MXCSR && !img->compacted)
		return true;
	return ximage_xstate_bv(img) & XS_BIT(comp);
}

/*
 * The value register @idx of @r has in @img: its bytes when the component is in use, its
 * initial value when XSTATE_BV says the component is in its initial configuration.
 */
static void reg_effective(const struct ximage *img, unsigned int comp, const struct xs_regs *r,
			  unsigned int idx, uint8_t *out)
{
	if (!reg_from_memory(img, comp, r) || !ximage_comp(img, comp)) {
		reg_init_value(r, out);
		return;
	}
	memcpy(out, img->buf + ximage_reg_offset(img, comp, r, idx), r->size);
}

void ximage_init_state(struct ximage *img, uint64_t mask)
{
	static const uint8_t fcw[2] = { XS_FCW_INIT & 0xff, XS_FCW_INIT >> 8 };
	uint32_t mxcsr = XS_MXCSR_INIT;

	memset(img->buf, 0, XS_LEGACY_SIZE);
	memcpy(img->buf, fcw, sizeof(fcw));
	if (mask & (XS_BIT(XS_SSE) | XS_BIT(XS_AVX)))
		memcpy(img->buf + 24, &mxcsr, sizeof(mxcsr));
	ximage_set_xstate_bv(img, 0);
}

void ximage_copy_comps(struct ximage *dst, const struct ximage *src, uint64_t mask)
{
	uint8_t val[MAX_REG_SIZE];
	unsigned int comp, i, j;
	uint64_t bv = ximage_xstate_bv(dst);

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);

		if (!(mask & XS_BIT(comp)) || !d || !ximage_comp(dst, comp))
			continue;
		for (i = 0; i < d->nr_regs; i++) {
			const struct xs_regs *r = &d->regs[i];

			for (j = 0; j < r->count; j++) {
				reg_effective(src, comp, r, j, val);
				memcpy(dst->buf + ximage_reg_offset(dst, comp, r, j), val, r->size);
			}
		}
		bv |= XS_BIT(comp);
	}
	ximage_set_xstate_bv(dst, bv);
}

unsigned int ximage_diff_explain(const struct ximage *expected, const struct ximage *actual,
				 uint64_t mask, const char *check, xs_report_fn report, void *ctx)
{
	uint8_t exp[MAX_REG_SIZE], act[MAX_REG_SIZE];
	unsigned int comp, i, j, k, bad = 0;

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);

		if (!(mask & XS_BIT(comp)) || !d)
			continue;
		for (i = 0; i < d->nr_regs; i++) {
			const struct xs_regs *r = &d->regs[i];

			if (r->kind == XR_IGNORED)
				continue;
			for (j = 0; j < r->count; j++) {
				struct xs_mismatch m = { .check = check, .comp = comp };

				reg_effective(expected, comp, r, j, exp);
				reg_effective(actual, comp, r, j, act);
				if (!memcmp(exp, act, r->size))
					continue;
				for (k = 0; exp[k] == act[k]; k++)
					;
				ximage_reg_name(r, j, m.reg, sizeof(m.reg));
				m.offset = ximage_reg_offset(actual, comp, r, j);
				m.size = r->size;
				m.first_byte = k;
				m.expected = exp;
				m.actual = act;
				if (!reg_from_memory(actual, comp, r))
					m.note = "actual image has the component in init state (XSTATE_BV bit clear)";
				else if (!reg_from_memory(expected, comp, r))
					m.note = "expected the component in init state";
				report(ctx, &m);
				bad++;
			}
		}
	}
	return bad;
}

/*
 * Whether every register ximage_diff_explain() compares has the same effective value in both
 * images, tested with one memcmp() per run of registers rather than a copy of each. For each
 * register both sides must come from memory (reg_effective()'s test) and hold the same bytes,
 * or both be in their initial configuration. Any other case, even one the walk would find
 * equal (init state on one side, init values in memory on the other), answers false and
 * leaves the decision and its explanation to the walk: true always means the walk finds
 * nothing.
 */
static bool same_state(const struct ximage *expected, const struct ximage *actual,
		       uint64_t mask)
{
	unsigned int comp, i, j;

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		bool have_e, have_a;

		if (!(mask & XS_BIT(comp)) || !d)
			continue;
		have_e = ximage_comp(expected, comp);
		have_a = ximage_comp(actual, comp);
		for (i = 0; i < d->nr_regs; i++) {
			const struct xs_regs *r = &d->regs[i];
			const uint8_t *e, *a;
			bool mem_e, mem_a;

			if (r->kind == XR_IGNORED)
				continue;
			mem_e = have_e && reg_from_memory(expected, comp, r);
			mem_a = have_a && reg_from_memory(actual, comp, r);
			if (mem_e != mem_a)
				return false;
			if (!mem_e)
				continue;
			e = expected->buf + ximage_reg_offset(expected, comp, r, 0);
			a = actual->buf + ximage_reg_offset(actual, comp, r, 0);
			if (r->size == r->stride) {
				if (memcmp(e, a, r->count * r->size))
					return false;
				continue;
			}
			for (j = 0; j < r->count; j++)
				if (memcmp(e + j * r->stride, a + j * r->stride, r->size))
					return false;
		}
	}
	return true;
}

unsigned int ximage_diff(const struct ximage *expected, const struct ximage *actual,
			 uint64_t mask, const char *check, xs_report_fn report, void *ctx)
{
	if (same_state(expected, actual, mask))
		return 0;
	return ximage_diff_explain(expected, actual, mask, check, report, ctx);
}

static void report_u64(const char *check, const char *reg, uint32_t off, uint64_t exp,
		       uint64_t act, const char *note, xs_report_fn report, void *ctx)
{
	struct xs_mismatch m = {
		.check = check, .comp = XS_NR, .offset = off, .size = 8,
		.expected = (const uint8_t *)&exp, .actual = (const uint8_t *)&act, .note = note,
	};

	snprintf(m.reg, sizeof(m.reg), "%s", reg);
	for (m.first_byte = 0; m.expected[m.first_byte] == m.actual[m.first_byte]; m.first_byte++)
		;
	report(ctx, &m);
}

unsigned int ximage_check_header(const struct ximage *img, uint64_t allowed, uint64_t required,
				 const char *check, xs_report_fn report, void *ctx)
{
	uint64_t bv = ximage_xstate_bv(img), xcomp = ximage_xcomp_bv(img);
	unsigned int i, bad = 0;

	if (bv & ~allowed) {
		report_u64(check, "xstate_bv", XSTATE_BV_OFFSET, bv & allowed, bv,
			   "XSTATE_BV has bits outside what the guest's CPUID/XCR0 allows", report, ctx);
		bad++;
	}
	if ((bv & required) != required) {
		report_u64(check, "xstate_bv", XSTATE_BV_OFFSET, bv | required, bv,
			   "XSTATE_BV lacks components the guest put in non-init state", report, ctx);
		bad++;
	}
	/*
	 * XCOMP_BV is zero in the standard format; in the compacted format bit 63 is set and the
	 * other bits cover XSTATE_BV, x87 and SSE included: compacted XRSTOR #GPs if XSTATE_BV[i]
	 * is set and XCOMP_BV[i] is not, for any i (SDM Vol. 1, 13.8), and XSAVEC/XSAVES write
	 * XCOMP_BV = RFBM with bit 63.
	 */
	if (!img->compacted && xcomp) {
		report_u64(check, "xcomp_bv", XCOMP_BV_OFFSET, 0, xcomp,
			   "standard-format image with non-zero XCOMP_BV", report, ctx);
		bad++;
	} else if (img->compacted && (!(xcomp & XS_XCOMP_BV_COMPACTED) ||
				      (bv & ~xcomp))) {
		report_u64(check, "xcomp_bv", XCOMP_BV_OFFSET,
			   xcomp | XS_XCOMP_BV_COMPACTED | bv, xcomp,
			   "compacted image: XCOMP_BV[63] clear or XSTATE_BV not within XCOMP_BV",
			   report, ctx);
		bad++;
	}
	/* Bytes 16-63 of the header are reserved: XRSTOR #GPs if they are not zero. */
	for (i = 0; i < HEADER_RSVD_SIZE; i += 8) {
		uint64_t v = get_u64(img->buf + HEADER_RSVD_OFFSET + i);
		char reg[32];

		if (!v)
			continue;
		snprintf(reg, sizeof(reg), "header_reserved[%u]", 16 + i);
		report_u64(check, reg, HEADER_RSVD_OFFSET + i, 0, v,
			   "reserved XSAVE header bytes must be zero", report, ctx);
		bad++;
	}
	return bad;
}

static void print_hex(const uint8_t *p, uint32_t size)
{
	int i;

	/* Most significant byte first, as the register value reads. */
	printf("0x");
	for (i = size - 1; i >= 0; i--)
		printf("%02x", p[i]);
}

void ximage_report_ktap(void *ctx, const struct xs_mismatch *m)
{
	const char *comp = m->comp < XS_NR ? xs_name(m->comp) : "header";

	printf("# %s: %s %s differs at byte %u (image offset 0x%x): expected 0x%02x, got 0x%02x%s%s\n",
	       m->check, comp, m->reg, m->first_byte, m->offset + m->first_byte,
	       m->expected[m->first_byte], m->actual[m->first_byte], m->note ? "; " : "",
	       m->note ? m->note : "");
	printf("# kvmfpu-mismatch: check=%s component=%s reg=%s offset=0x%x size=%u first_byte=%u expected=",
	       m->check, comp, m->reg, m->offset, m->size, m->first_byte);
	print_hex(m->expected, m->size);
	printf(" actual=");
	print_hex(m->actual, m->size);
	printf("\n");
	fflush(stdout);
}

void ximage_print_layout(const struct ximage *img, uint64_t mask)
{
	unsigned int comp;

	printf("# kvmfpu-layout: component=header offset=%u size=%u\n", XS_HEADER_OFFSET,
	       XS_HEADER_SIZE);
	for (comp = 0; comp < XS_NR; comp++) {
		if (!(mask & XS_BIT(comp)) || !xs_desc(comp) || !ximage_comp(img, comp))
			continue;
		printf("# kvmfpu-layout: component=%s offset=%u size=%u\n", xs_name(comp),
		       comp < 2 ? img->layout->offset[comp] : comp_offset(img, comp),
		       img->layout->size[comp]);
	}
}

void ximage_report(void *ctx, const struct xs_mismatch *m)
{
	struct ximage_reporter *r = ctx;

	if (r->quiet)
		return;
	if (!r->seen++)
		ximage_print_layout(r->img, r->mask);
	if (r->seen <= r->max_print)
		ximage_report_ktap(NULL, m);
	else if (r->seen == r->max_print + 1)
		printf("# %s: further mismatches not printed\n", m->check);
}

unsigned int ximage_report_diff(const struct ximage *expected, const struct ximage *actual,
				uint64_t mask, const char *check, unsigned int max_print,
				bool quiet)
{
	struct ximage_reporter r = {
		.img = actual, .mask = mask, .max_print = max_print, .quiet = quiet,
	};

	return ximage_diff(expected, actual, mask, check, ximage_report, &r);
}
