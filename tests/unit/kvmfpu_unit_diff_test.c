// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_diff_test: the checker checks. A one-byte difference anywhere in a register of
 * any component is caught by ximage_diff() and reported exactly once, with the component,
 * the register's name, its image offset, the differing byte and both values; bytes that are
 * not compared state (x87 pointers, MXCSR_MASK, padding, reserved legacy bytes, components
 * outside the mask) are never reported.
 *
 * A swap test that passes says nothing if its diff could miss a byte, so this flips bytes of
 * every register run of every component's table (xs_desc(comp)->regs) in patterned images
 * of AVX-512 + AMX, AVX-512 + MPX and this host's AMD layout, in both formats. Driven by the
 * component tables, so a component added to lib/xstate.c is covered without a new test.
 * No /dev/kvm needed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "cpuid_tables.h"
#include "mismatch_log.h"
#include "pattern.h"
#include "ximage.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))
#define FLIP		0xff	/* XOR: every bit of the byte changes */
#define MAX_LOGGED	10	/* failures printed per test */

FIXTURE(diff) {
	struct xs_layout l;
	struct ximage expected;		/* a pattern */
	struct ximage actual;		/* the same, but for the flipped byte */
	struct mismatch_log log;
	unsigned int failures;
};

FIXTURE_VARIANT(diff) {
	enum test_cpu_id cpu;
	uint64_t mask;
	bool compacted;
};

FIXTURE_VARIANT_ADD(diff, amx_avx512_standard) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .mask = 0x602e7, .compacted = false,
};
FIXTURE_VARIANT_ADD(diff, amx_avx512_compacted) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .mask = 0x602e7, .compacted = true,
};
/* AVX-512 left out: PKRU and the AMX areas move, XTILECFG is padded to 64 bytes. */
FIXTURE_VARIANT_ADD(diff, amx_sparse_compacted) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .mask = 0x60207, .compacted = true,
};
FIXTURE_VARIANT_ADD(diff, mpx_avx512_standard) {
	.cpu = CPU_SKYLAKE_SP, .mask = 0x2ff, .compacted = false,
};
FIXTURE_VARIANT_ADD(diff, mpx_avx512_compacted) {
	.cpu = CPU_SKYLAKE_SP, .mask = 0x2ff, .compacted = true,
};
FIXTURE_VARIANT_ADD(diff, zen4_host_standard) {
	.cpu = CPU_ZEN4_HOST, .mask = 0xe7, .compacted = false,
};

FIXTURE_SETUP(diff)
{
	static const struct pattern_key k = { .seed = 0xd1ff, .vcpu = 0, .round = 1 };

	test_cpu_layout(&self->l, variant->cpu);
	ASSERT_EQ(variant->mask, self->l.supported & variant->mask);
	ASSERT_EQ(0, ximage_alloc(&self->expected, &self->l, variant->mask, variant->compacted));
	ASSERT_EQ(0, ximage_alloc(&self->actual, &self->l, variant->mask, variant->compacted));
	pattern_fill_image(&self->expected, variant->mask, &k);
	memcpy(self->actual.buf, self->expected.buf, self->expected.size);
}

FIXTURE_TEARDOWN(diff)
{
	ximage_free(&self->expected);
	ximage_free(&self->actual);
}

/* Record a failure; print only the first few, so a broken checker does not flood the log. */
#define FAILED(self, fmt, ...) do {						\
	if ((self)->failures++ < MAX_LOGGED)					\
		TH_LOG(fmt, ##__VA_ARGS__);					\
} while (0)

/* Byte positions to flip in a register of @size bytes: all of them, or 3 for a tile. */
static unsigned int flip_positions(uint32_t size, uint32_t pos[3])
{
	if (size <= 64)
		return size;
	pos[0] = 0;
	pos[1] = size / 2;
	pos[2] = size - 1;
	return 3;
}

/* Run the diff over @mask; returns the number of mismatches, details in self->log. */
static unsigned int run_diff(FIXTURE_DATA(diff) *self, uint64_t mask)
{
	mismatch_log_clear(&self->log);
	return ximage_diff(&self->expected, &self->actual, mask, "flip", mismatch_log_report,
			   &self->log);
}

/*
 * Flip byte @byte of register @idx of @r, which must come back as exactly one mismatch
 * describing that byte. Returns false (and says why) if it did not.
 */
static bool check_flip(struct __test_metadata *_metadata, FIXTURE_DATA(diff) *self,
		       uint64_t mask, unsigned int comp, const struct xs_regs *r,
		       unsigned int idx, uint32_t byte)
{
	uint32_t off = ximage_reg_offset(&self->actual, comp, r, idx);
	uint8_t *p = self->actual.buf + off + byte;
	const struct logged_mismatch *m = &self->log.m[0];
	uint8_t orig = *p;
	char name[32], buf[256];
	const char *bad = NULL;
	unsigned int n;

	ximage_reg_name(r, idx, name, sizeof(name));
	*p ^= FLIP;
	n = run_diff(self, mask);
	if (n != 1)
		bad = "not exactly one mismatch";
	else if (m->comp != comp)
		bad = "wrong component";
	else if (strcmp(m->reg, name))
		bad = "wrong register name";
	else if (m->offset != off)
		bad = "wrong image offset";
	else if (m->size != r->size)
		bad = "wrong register size";
	else if (m->first_byte != byte)
		bad = "wrong first_byte";
	else if (m->expected[byte] != orig || m->actual[byte] != (uint8_t)(orig ^ FLIP))
		bad = "wrong byte values";
	else if (memcmp(m->expected, self->expected.buf + off, r->size))
		bad = "expected value is not the expected image's register";
	else if (memcmp(m->actual, self->actual.buf + off, r->size))
		bad = "actual value is not the actual image's register";
	else if (!m->check || strcmp(m->check, "flip"))
		bad = "check name not passed through";
	*p = orig;

	if (bad)
		FAILED(self, "%s: flipped %s %s byte %u (image offset 0x%x, 0x%02x -> 0x%02x): "
		       "%u mismatch(es), first: %s", bad, xs_name(comp), name, byte, off + byte,
		       orig, orig ^ FLIP, n, n ? mismatch_str(m, buf, sizeof(buf)) : "none");
	return !bad;
}

/*
 * Every register of every component's table (all of each run, all bytes but of tiles, whose
 * first, middle and last bytes stand for the rest): one flip, one exact report.
 */
TEST_F(diff, one_byte_flip_reported_exactly)
{
	unsigned int comp, idx, i, flips = 0, runs = 0;
	uint64_t covered = 0;

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		const struct xs_regs *r;

		if (!(variant->mask & XS_BIT(comp)) || !d)
			continue;
		for (r = d->regs; r < d->regs + d->nr_regs; r++) {
			uint32_t pos[3], nr_pos = flip_positions(r->size, pos);

			if (r->kind == XR_IGNORED)
				continue;
			runs++;
			for (idx = 0; idx < r->count; idx++) {
				for (i = 0; i < nr_pos; i++) {
					uint32_t byte = r->size <= 64 ? i : pos[i];

					check_flip(_metadata, self, variant->mask, comp, r, idx,
						   byte);
					flips++;
				}
			}
		}
		covered |= XS_BIT(comp);
	}
	EXPECT_EQ(0, self->failures) {
		TH_LOG("%u of %u one-byte flips were not reported exactly", self->failures,
		       flips);
	}
	/* Every component of the mask was exercised. */
	EXPECT_EQ(variant->mask, covered);
	EXPECT_LT(0, runs);
}

/* The same flip in a mask without the component is not reported; with it, it is. */
TEST_F(diff, flip_outside_mask_not_reported)
{
	unsigned int comp, n_out, n_in;

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		const struct xs_regs *r;
		uint8_t *p;

		if (!(variant->mask & XS_BIT(comp)) || !d)
			continue;
		/* The first compared register of the component, its last byte. */
		for (r = d->regs; r->kind == XR_IGNORED; r++)
			;
		p = self->actual.buf + ximage_reg_offset(&self->actual, comp, r, 0) + r->size - 1;
		*p ^= FLIP;
		n_out = run_diff(self, variant->mask & ~XS_BIT(comp));
		n_in = run_diff(self, variant->mask);
		*p ^= FLIP;
		if (n_out)
			FAILED(self, "%s %s: a flip was reported although %s is outside the mask",
			       xs_name(comp), self->log.m[0].reg, xs_name(comp));
		if (n_in != 1)
			FAILED(self, "%s: a flip was reported %u times with it in the mask",
			       xs_name(comp), n_in);
	}
	EXPECT_EQ(0, self->failures);
}

/*
 * fop, fip, fdp and mxcsr_mask (XR_IGNORED: not state, or not saved on every CPU) are never
 * compared: flipping any of their bytes is not reported.
 */
TEST_F(diff, ignored_registers_not_reported)
{
	static const char *const must_see[] = { "fop", "fip", "fdp", "mxcsr_mask" };
	unsigned int comp, idx, i, seen = 0;
	char name[32];

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		const struct xs_regs *r;

		if (!(variant->mask & XS_BIT(comp)) || !d)
			continue;
		for (r = d->regs; r < d->regs + d->nr_regs; r++) {
			if (r->kind != XR_IGNORED)
				continue;
			for (idx = 0; idx < r->count; idx++) {
				uint8_t *p = self->actual.buf +
					     ximage_reg_offset(&self->actual, comp, r, idx);

				ximage_reg_name(r, idx, name, sizeof(name));
				for (i = 0; i < ARRAY_LEN(must_see); i++)
					if (!strcmp(name, must_see[i]))
						seen |= 1u << i;
				for (i = 0; i < r->size; i++) {
					p[i] ^= FLIP;
					if (run_diff(self, variant->mask))
						FAILED(self, "%s %s byte %u (%s) was compared",
						       xs_name(comp), name, i, r->why_ignored);
					p[i] ^= FLIP;
				}
			}
		}
	}
	EXPECT_EQ(0, self->failures);
	for (i = 0; i < ARRAY_LEN(must_see); i++) {
		EXPECT_TRUE(seen & (1u << i)) {
			TH_LOG("%s is not in the component tables as an ignored register",
			       must_see[i]);
		}
	}
}

/*
 * Every byte outside the header that is not part of a compared register of the mask (x87
 * pointers, MXCSR_MASK, byte 5, the 6 bytes after each ST value, legacy bytes 416-511, PKRU's
 * padding, gaps between standard-format areas, compacted alignment padding, areas of
 * components outside the mask): flipping it is not reported. Together with the test above,
 * ximage_diff() compares exactly the register bytes.
 */
TEST_F(diff, bytes_outside_registers_not_reported)
{
	uint8_t *in_reg = calloc(1, self->actual.size);
	unsigned int comp, idx, free_bytes = 0;
	uint32_t b;

	ASSERT_TRUE(in_reg != NULL);
	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		const struct xs_regs *r;

		if (!(variant->mask & XS_BIT(comp)) || !d)
			continue;
		for (r = d->regs; r < d->regs + d->nr_regs; r++)
			for (idx = 0; r->kind != XR_IGNORED && idx < r->count; idx++)
				memset(in_reg + ximage_reg_offset(&self->actual, comp, r, idx), 1,
				       r->size);
	}
	/* XSTATE_BV changes what a component means: the header has its own checks. */
	memset(in_reg + XS_HEADER_OFFSET, 1, XS_HEADER_SIZE);

	for (b = 0; b < self->actual.size; b++) {
		if (in_reg[b])
			continue;
		free_bytes++;
		self->actual.buf[b] ^= FLIP;
		if (run_diff(self, variant->mask))
			FAILED(self, "image byte 0x%x is in no compared register, yet reported as "
			       "%s %s byte %u", b, xs_name(self->log.m[0].comp),
			       self->log.m[0].reg, self->log.m[0].first_byte);
		self->actual.buf[b] ^= FLIP;
	}
	EXPECT_EQ(0, self->failures);
	/* At least the legacy region's unused bytes were tried. */
	EXPECT_LT(96, free_bytes);
	free(in_reg);
}

/* Several differing registers: each reported once, in component and register order. */
TEST_F(diff, several_flips_reported_in_order)
{
	unsigned int comp, n, nr_flips = 0;
	unsigned int comps[MISMATCH_LOG_KEEP];

	for (comp = XS_NR; comp-- > 0 && nr_flips < MISMATCH_LOG_KEEP; ) {
		const struct xs_comp_desc *d = xs_desc(comp);
		const struct xs_regs *r;

		if (!(variant->mask & XS_BIT(comp)) || !d)
			continue;
		/* The last register of the component's last compared run. */
		for (r = d->regs + d->nr_regs - 1; r->kind == XR_IGNORED; r--)
			;
		self->actual.buf[ximage_reg_offset(&self->actual, comp, r, r->count - 1)] ^= FLIP;
		comps[MISMATCH_LOG_KEEP - 1 - nr_flips++] = comp;
	}
	n = run_diff(self, variant->mask);
	EXPECT_EQ(nr_flips, n);
	for (comp = 0; comp < n && comp < nr_flips; comp++) {
		EXPECT_EQ(comps[MISMATCH_LOG_KEEP - nr_flips + comp], self->log.m[comp].comp) {
			TH_LOG("report %u is for %s", comp, xs_name(self->log.m[comp].comp));
		}
	}
}

/* The reports of two diffs agree: count, and every kept report field by field. */
static const char *same_reports(const struct mismatch_log *a, const struct mismatch_log *b)
{
	unsigned int i;

	if (a->count != b->count)
		return "different numbers of mismatches";
	for (i = 0; i < a->count && i < MISMATCH_LOG_KEEP; i++) {
		const struct logged_mismatch *x = &a->m[i], *y = &b->m[i];

		if (x->comp != y->comp || strcmp(x->reg, y->reg) || x->offset != y->offset ||
		    x->size != y->size || x->first_byte != y->first_byte || x->note != y->note ||
		    strcmp(x->check, y->check))
			return "a report differs in its register, offset, byte or note";
		if (memcmp(x->expected, y->expected, x->size) ||
		    memcmp(x->actual, y->actual, x->size))
			return "a report differs in its values";
	}
	return NULL;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * ximage_diff() compares the registers run by run first and walks them only on a difference:
 * that shortcut must never hide one. Over random changes to the actual image (any byte but the
 * XCOMP_BV and reserved header bytes, XSTATE_BV bits of the mask, on one side or on both, and
 * against an image of the other format holding the same state), ximage_diff() reports exactly
 * what the walk alone, ximage_diff_explain(), reports: the same count and the same reports.
 */
TEST_F(diff, fast_path_agrees_with_walk)
{
	struct ximage orig, other;
	struct mismatch_log walk;
	uint64_t x = 0x9e3779b97f4a7c15ull, comps[XS_NR];
	unsigned int it, i, nr_comps = 0, equal = 0, unequal = 0;
	const char *why;

	for (i = 0; i < XS_NR; i++)
		if ((variant->mask & XS_BIT(i)) && xs_desc(i))
			comps[nr_comps++] = XS_BIT(i);
	ASSERT_EQ(0, ximage_alloc(&orig, &self->l, variant->mask, variant->compacted));
	ASSERT_EQ(0, ximage_alloc(&other, &self->l, variant->mask, !variant->compacted));
	memcpy(orig.buf, self->expected.buf, orig.size);

	for (it = 0; it < 20000; it++) {
		struct ximage *act = it % 4 == 3 ? &other : &self->actual;
		unsigned int nr_changes = next_rand(&x) % 3;
		uint64_t bv;

		memcpy(self->expected.buf, orig.buf, orig.size);
		memcpy(self->actual.buf, orig.buf, orig.size);
		if (act == &other) {
			memset(other.buf, 0, other.size);
			if (other.compacted)
				ximage_set_xcomp_bv(&other, XS_XCOMP_BV_COMPACTED | variant->mask);
			ximage_copy_comps(&other, &orig, variant->mask);
		}
		for (i = 0; i < nr_changes; i++) {
			uint64_t r = next_rand(&x), bit = comps[(r >> 8) % nr_comps];
			uint32_t b = (r >> 16) % act->size;
			bool in_header = b >= XS_HEADER_OFFSET &&
					 b < XS_HEADER_OFFSET + XS_HEADER_SIZE;

			switch (r % 4) {
			case 0:		/* one byte, not XCOMP_BV or the reserved header bytes */
				if (!in_header || b < XS_HEADER_OFFSET + 8)
					act->buf[b] ^= 1 << (r >> 40) % 8;
				break;
			case 1:		/* a component's XSTATE_BV bit, actual only */
				ximage_set_xstate_bv(act, ximage_xstate_bv(act) ^ bit);
				break;
			case 2:		/* the same bit cleared on both sides */
				bv = ximage_xstate_bv(&self->expected);
				ximage_set_xstate_bv(&self->expected, bv & ~bit);
				ximage_set_xstate_bv(act, ximage_xstate_bv(act) & ~bit);
				break;
			default:	/* a byte of the expected image's registers or padding */
				if (!in_header && b < self->expected.size)
					self->expected.buf[b] ^= 0x80;
				break;
			}
		}
		mismatch_log_clear(&self->log);
		mismatch_log_clear(&walk);
		ximage_diff(&self->expected, act, variant->mask, "fast", mismatch_log_report,
			    &self->log);
		ximage_diff_explain(&self->expected, act, variant->mask, "fast",
				    mismatch_log_report, &walk);
		why = same_reports(&self->log, &walk);
		if (why)
			FAILED(self, "change set %u (%u changes, %s format): %s: %u mismatch(es) "
			       "with the shortcut, %u by the walk", it, nr_changes,
			       act == &other ? "other" : "same", why, self->log.count, walk.count);
		if (walk.count)
			unequal++;
		else
			equal++;
	}
	EXPECT_EQ(0, self->failures);
	/* Both outcomes came up, in numbers. */
	EXPECT_LT(1000, equal);
	EXPECT_LT(1000, unequal);
	ximage_free(&orig);
	ximage_free(&other);
}

/*
 * What the shortcut must get right by the XSTATE_BV semantics rather than by bytes: with the
 * same bytes, a component's XSTATE_BV bit clear on the actual side only is a difference
 * (every register of the component reported, with the init-state note); with the bit clear on
 * both sides, differing bytes in the component's area are not (XRSTOR loads init values),
 * except MXCSR in the standard format, which XRSTOR loads from memory whatever XSTATE_BV says.
 */
TEST_F(diff, xstate_bv_meaning_kept)
{
	static const char init_note[] =
		"actual image has the component in init state (XSTATE_BV bit clear)";
	unsigned int comp, n, regs;

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		const struct xs_regs *r;
		uint64_t bv = ximage_xstate_bv(&self->expected);
		bool mxcsr = false;

		if (!(variant->mask & XS_BIT(comp)) || !d)
			continue;
		for (r = d->regs, regs = 0; r < d->regs + d->nr_regs; r++)
			regs += r->kind == XR_IGNORED ? 0 : r->count;

		ximage_set_xstate_bv(&self->actual, bv & ~XS_BIT(comp));
		n = run_diff(self, variant->mask);
		/* Registers whose pattern is their init value (x87 FSW = 0) do not differ. */
		if (n == 0 || n > regs || !self->log.m[0].note ||
		    strcmp(self->log.m[0].note, init_note))
			FAILED(self, "%s: XSTATE_BV bit cleared in the actual image only: %u of %u "
			       "registers reported", xs_name(comp), n, regs);

		ximage_set_xstate_bv(&self->expected, bv & ~XS_BIT(comp));
		for (r = d->regs; r < d->regs + d->nr_regs; r++) {
			bool from_memory = r->kind == XR_MXCSR && !variant->compacted;
			uint8_t *p;

			if (r->kind == XR_IGNORED)
				continue;
			p = self->actual.buf + ximage_reg_offset(&self->actual, comp, r, 0);
			p[0] ^= FLIP;
			n = run_diff(self, variant->mask);
			p[0] ^= FLIP;
			mxcsr |= from_memory;
			if (n != from_memory)
				FAILED(self, "%s %s: XSTATE_BV bit clear on both sides, a flip "
				       "gave %u mismatch(es), expected %u", xs_name(comp), r->name,
				       n, from_memory);
		}
		ximage_set_xstate_bv(&self->expected, bv);
		ximage_set_xstate_bv(&self->actual, bv);
		if (comp == XS_SSE)
			EXPECT_EQ(!variant->compacted, mxcsr);
	}
	EXPECT_EQ(0, self->failures);
}

TEST_HARNESS_MAIN
