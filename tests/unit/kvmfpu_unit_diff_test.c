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

TEST_HARNESS_MAIN
