// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_ximage_test: the XSAVE image model and the register patterns, on synthetic
 * images of AVX-512 and AMX layouts in both formats.
 *
 * The swap tests build the image they expect from patterns and compare it with what KVM
 * returns, so this checks the pieces they rely on: where a component and a register sit
 * (ximage_alloc, ximage_comp, ximage_reg_offset), that patterns are deterministic, distinct
 * and loadable (FCW/MXCSR exceptions masked, normal x87 numbers, PKRU key 0 accessible, a
 * valid palette-1 tile configuration), that copying between formats keeps every register,
 * that a component whose XSTATE_BV bit is clear means its init values (SDM Vol. 1 §13.6,
 * §13.8), and that ximage_check_header() reports each bad header field once, by name.
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

#define MXCSR_OFFSET	24
#define HEADER_RSVD	(XS_HEADER_OFFSET + 16)

static const struct pattern_key base_key = { .seed = 0x5eed, .vcpu = 1, .round = 2, .salt = 0 };

/* Where a named register must be: absolute for x87/SSE, else from its component's start. */
struct reg_place {
	unsigned int comp;
	const char *reg;
	uint32_t offset;
	uint32_t size;
};

static const struct reg_place reg_places[] = {
	{ XS_X87, "fcw", 0, 2 },
	{ XS_X87, "ftw", 4, 1 },
	{ XS_X87, "st0", 32, 10 },
	{ XS_X87, "st7", 144, 10 },
	{ XS_SSE, "mxcsr", 24, 4 },
	{ XS_SSE, "xmm0", 160, 16 },
	{ XS_SSE, "xmm15", 400, 16 },
	{ XS_AVX, "ymm0[255:128]", 0, 16 },
	{ XS_AVX, "ymm15[255:128]", 240, 16 },
	{ XS_OPMASK, "k7", 56, 8 },
	{ XS_ZMM_HI256, "zmm15[511:256]", 480, 32 },
	{ XS_HI16_ZMM, "zmm16", 0, 64 },
	{ XS_HI16_ZMM, "zmm31", 960, 64 },
	{ XS_PKRU, "pkru", 0, 4 },
	{ XS_XTILECFG, "palette", 0, 1 },
	{ XS_XTILECFG, "tmm2.colsb", 20, 2 },
	{ XS_XTILECFG, "tmm3.rows", 51, 1 },
	{ XS_XTILECFG, "reserved[56:63]", 56, 8 },
	{ XS_XTILEDATA, "tmm0", 0, 1024 },
	{ XS_XTILEDATA, "tmm7", 7168, 1024 },
};

FIXTURE(image) {
	struct xs_layout l;
	struct ximage img;	/* patterned with base_key */
	struct mismatch_log log;
};

FIXTURE_VARIANT(image) {
	enum test_cpu_id cpu;
	uint64_t mask;
	bool compacted;
	uint32_t size;		/* worked out in kvmfpu_unit_layout_test.c */
};

FIXTURE_VARIANT_ADD(image, amx_standard) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .mask = 0x602e7, .compacted = false, .size = 11008,
};
FIXTURE_VARIANT_ADD(image, amx_compacted) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .mask = 0x602e7, .compacted = true, .size = 10752,
};
/* PKRU then AMX without AVX-512: XTILECFG moves from 840 to 896 for alignment. */
FIXTURE_VARIANT_ADD(image, amx_compacted_sparse) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .mask = 0x60207, .compacted = true, .size = 9152,
};
FIXTURE_VARIANT_ADD(image, avx512_standard) {
	.cpu = CPU_ICELAKE, .mask = 0x2e7, .compacted = false, .size = 2696,
};
FIXTURE_VARIANT_ADD(image, avx512_compacted) {
	.cpu = CPU_ICELAKE, .mask = 0x2e7, .compacted = true, .size = 2440,
};

FIXTURE_SETUP(image)
{
	test_cpu_layout(&self->l, variant->cpu);
	ASSERT_EQ(0, ximage_alloc(&self->img, &self->l, variant->mask, variant->compacted));
	pattern_fill_image(&self->img, variant->mask, &base_key);
}

FIXTURE_TEARDOWN(image)
{
	ximage_free(&self->img);
}

/* A zeroed image of the same layout and mask, in @compacted format. */
static int alloc_like(struct ximage *img, FIXTURE_DATA(image) *self,
		      const FIXTURE_VARIANT(image) *variant, bool compacted)
{
	return ximage_alloc(img, &self->l, variant->mask, compacted);
}

static const char *fmt_name(bool compacted)
{
	return compacted ? "compacted" : "standard";
}

/* Call @fn for every register of every component of @mask. */
#define for_each_reg(mask, comp, d, r, idx)						\
	for (comp = 0; comp < XS_NR; comp++)						\
		if (((mask) & XS_BIT(comp)) && (d = xs_desc(comp)))			\
			for (r = d->regs; r < d->regs + d->nr_regs; r++)		\
				for (idx = 0; idx < r->count; idx++)

static const uint8_t *reg_bytes(const struct ximage *img, unsigned int comp,
				const struct xs_regs *r, unsigned int idx)
{
	return img->buf + ximage_reg_offset(img, comp, r, idx);
}

TEST_F(image, alloc)
{
	uint64_t xcomp_bv = ximage_xcomp_bv(&self->img);
	struct ximage fresh;
	uint32_t i, nonzero = 0;

	EXPECT_EQ(variant->size, self->img.size) {
		TH_LOG("%s image for 0x%llx", fmt_name(variant->compacted),
		       (unsigned long long)variant->mask);
	}
	EXPECT_EQ(0, (uintptr_t)self->img.buf % 64) {
		TH_LOG("XSAVE images must be 64-byte aligned");
	}
	EXPECT_EQ(variant->compacted, self->img.compacted);
	if (variant->compacted) {
		/* Bits 0-1 name the legacy region, which is always there: either value is fine. */
		EXPECT_EQ(XS_XCOMP_BV_COMPACTED | variant->mask, xcomp_bv) {
			TH_LOG("compacted XCOMP_BV must be bit 63 | the components: got 0x%llx",
			       (unsigned long long)xcomp_bv);
		}
	} else {
		EXPECT_EQ(0, xcomp_bv) {
			TH_LOG("standard-format XCOMP_BV must be 0");
		}
	}

	/* A fresh image is zero but for XCOMP_BV. */
	ASSERT_EQ(0, alloc_like(&fresh, self, variant, variant->compacted));
	ximage_set_xcomp_bv(&fresh, 0);
	for (i = 0; i < fresh.size; i++)
		nonzero += fresh.buf[i] != 0;
	EXPECT_EQ(0, nonzero) {
		TH_LOG("%u bytes of a fresh image are not zero", nonzero);
	}
	EXPECT_EQ(0, ximage_xstate_bv(&fresh));
	ximage_free(&fresh);
}

/*
 * ximage_comp() is base + the component's offset in the image's format, and the whole area
 * fits; x87 and SSE registers are addressed from the start of the image, so both give the
 * base. A compacted image has no area for a component outside XCOMP_BV.
 */
TEST_F(image, comp_pointers)
{
	uint64_t xcomp_bv = ximage_xcomp_bv(&self->img);
	unsigned int comp;

	for (comp = 0; comp < XS_NR; comp++) {
		uint8_t *p = ximage_comp(&self->img, comp);
		bool present = variant->mask & XS_BIT(comp);
		uint32_t off;

		if (comp < 2) {
			EXPECT_EQ(0, p - self->img.buf) {
				TH_LOG("%s: legacy registers are addressed from the image base",
				       xs_name(comp));
			}
			continue;
		}
		off = xs_offset(&self->l, comp, variant->compacted, xcomp_bv);
		if (present) {
			bool fits = off + self->l.size[comp] <= self->img.size;

			EXPECT_TRUE(p != NULL) {
				TH_LOG("%s: no area in a %s image for 0x%llx", xs_name(comp),
				       fmt_name(variant->compacted),
				       (unsigned long long)variant->mask);
			}
			if (p) {
				EXPECT_EQ(off, p - self->img.buf) {
					TH_LOG("%s: area at the wrong offset", xs_name(comp));
				}
			}
			EXPECT_TRUE(fits) {
				TH_LOG("%s: area %u+%u is past the image end %u", xs_name(comp),
				       off, self->l.size[comp], self->img.size);
			}
		} else if (variant->compacted || !self->l.size[comp]) {
			EXPECT_TRUE(p == NULL) {
				TH_LOG("%s: not in the image, but has an area at %ld",
				       xs_name(comp), (long)(p - self->img.buf));
			}
		}
	}
}

/* Registers by name, at the offsets of the SDM's tables (Vol. 1 §13.4, §13.5). */
TEST_F(image, reg_offsets)
{
	unsigned int i, comp, idx, found;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;
	char name[32];

	for (i = 0; i < ARRAY_LEN(reg_places); i++) {
		const struct reg_place *p = &reg_places[i];
		uint32_t base = p->comp < 2 ? 0 : (uint32_t)(ximage_comp(&self->img, p->comp) -
							     self->img.buf);

		if (!(variant->mask & XS_BIT(p->comp)))
			continue;
		found = 0;
		for_each_reg(XS_BIT(p->comp), comp, d, r, idx) {
			ximage_reg_name(r, idx, name, sizeof(name));
			if (strcmp(name, p->reg))
				continue;
			found++;
			EXPECT_EQ(base + p->offset, ximage_reg_offset(&self->img, comp, r, idx)) {
				TH_LOG("%s %s", xs_name(comp), name);
			}
			EXPECT_EQ(p->size, r->size) {
				TH_LOG("%s %s", xs_name(comp), name);
			}
		}
		EXPECT_EQ(1, found) {
			TH_LOG("register %s of %s: found %u times", p->reg, xs_name(p->comp),
			       found);
		}
	}
}

TEST_F(image, fill_is_deterministic)
{
	struct ximage again;

	ASSERT_EQ(0, alloc_like(&again, self, variant, variant->compacted));
	/* Whatever the buffer held before, the registers come out the same. */
	memset(again.buf, 0xa5, again.size);
	ximage_set_xcomp_bv(&again, ximage_xcomp_bv(&self->img));
	pattern_fill_image(&again, variant->mask, &base_key);
	EXPECT_EQ(variant->mask, ximage_xstate_bv(&again));
	EXPECT_EQ(0, ximage_diff(&self->img, &again, variant->mask, "again",
				 mismatch_log_report, &self->log)) {
		char buf[256];

		TH_LOG("same key, different registers: %s", mismatch_str(&self->log.m[0], buf,
									    sizeof(buf)));
	}
	ximage_free(&again);
}

/*
 * A failure replays from its key (kvmfpu_swap_test --round N), so a key must keep giving the
 * same values from one version to the next. pattern_u64() is pinned to values worked out by
 * the original per-word code, and pattern_fill_image(), which hashes the key once per image
 * and the register once per register, must write exactly what pattern_u64() says: raw words
 * as they are, the x87 mantissa with its integer bit, PKRU, MXCSR and FCW as constrained.
 */
TEST_F(image, fill_is_pattern_u64)
{
	static const struct pattern_key k = { .seed = 0x5eed, .vcpu = 1, .round = 2, .salt = 3 };
	unsigned int comp, idx, reg, w, bad = 0;
	uint64_t u, got, want, low;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;
	char name[32];

	EXPECT_EQ(0x5ec19a1c4a54fd97ull, pattern_u64(&k, 0, 0, 0));
	EXPECT_EQ(0xd7423117a9678da1ull, pattern_u64(&k, 1, 17, 1));
	EXPECT_EQ(0x165936e26e2037c6ull, pattern_u64(&k, 7, 15, 7));

	for_each_reg(variant->mask, comp, d, r, idx) {
		const uint8_t *p = reg_bytes(&self->img, comp, r, idx);

		/* Registers are numbered across the component's runs, from 0. */
		for (reg = idx, w = 0; &d->regs[w] != r; w++)
			reg += d->regs[w].count;
		for (w = 0; w * 8 < r->size; w++) {
			u = pattern_u64(&base_key, comp, reg, w);
			/* The register's last word may be short: its low bytes then. */
			low = r->size - w * 8 < 8 ? (1ull << 8 * (r->size - w * 8)) - 1 : ~0ull;
			got = 0;
			memcpy(&got, p + w * 8, r->size - w * 8 < 8 ? r->size - w * 8 : 8);
			switch (r->kind) {
			case XR_RAW:
				want = u & low;
				break;
			case XR_ST:
				want = w ? got : u | 1ull << 63;
				break;
			case XR_PKRU:
				want = (uint32_t)u & ~3u;
				break;
			case XR_MXCSR:
				want = 0x1f80 | (u & 0xe07f);
				break;
			case XR_FCW:
				want = 0x7f | (u & 0x0f00);
				break;
			default:
				want = got;	/* constants, or values checked elsewhere */
				break;
			}
			if (got == want)
				continue;
			ximage_reg_name(r, idx, name, sizeof(name));
			if (bad++ < 8)
				TH_LOG("%s %s word %u: 0x%llx, pattern_u64() says 0x%llx",
				       xs_name(comp), name, w, (unsigned long long)got,
				       (unsigned long long)want);
		}
	}
	EXPECT_EQ(0, bad);
}

/* The same key gives the same register values whatever the image format. */
TEST_F(image, fill_is_format_independent)
{
	struct ximage other;

	ASSERT_EQ(0, alloc_like(&other, self, variant, !variant->compacted));
	pattern_fill_image(&other, variant->mask, &base_key);
	EXPECT_EQ(0, ximage_diff(&self->img, &other, variant->mask, "format",
				 mismatch_log_report, &self->log)) {
		char buf[256];

		TH_LOG("%s vs %s image: %s", fmt_name(variant->compacted),
		       fmt_name(!variant->compacted),
		       mismatch_str(&self->log.m[0], buf, sizeof(buf)));
	}
	ximage_free(&other);
}

/*
 * Registers whose pattern has at least 30 random bits: a different key must change every one
 * of them. (FCW, MXCSR and the tile configuration take few values, so they may repeat.)
 */
static bool high_entropy(const struct xs_regs *r)
{
	return (r->kind == XR_RAW && r->size >= 4) || r->kind == XR_ST || r->kind == XR_PKRU;
}

TEST_F(image, fill_key_changes_every_register)
{
	static const struct {
		const char *what;
		struct pattern_key k;
	} keys[] = {
		{ "seed", { .seed = 0x5eee, .vcpu = 1, .round = 2 } },
		{ "vcpu", { .seed = 0x5eed, .vcpu = 2, .round = 2 } },
		{ "host", { .seed = 0x5eed, .vcpu = PATTERN_HOST, .round = 2 } },
		{ "round", { .seed = 0x5eed, .vcpu = 1, .round = 3 } },
		{ "salt", { .seed = 0x5eed, .vcpu = 1, .round = 2, .salt = 1 } },
	};
	unsigned int i, comp, idx, same;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;
	struct ximage other;
	char name[32];

	ASSERT_EQ(0, alloc_like(&other, self, variant, variant->compacted));
	for (i = 0; i < ARRAY_LEN(keys); i++) {
		pattern_fill_image(&other, variant->mask, &keys[i].k);
		same = 0;
		for_each_reg(variant->mask, comp, d, r, idx) {
			if (!high_entropy(r) || memcmp(reg_bytes(&self->img, comp, r, idx),
						       reg_bytes(&other, comp, r, idx), r->size))
				continue;
			same++;
			ximage_reg_name(r, idx, name, sizeof(name));
			TH_LOG("another %s, same %s %s", keys[i].what, xs_name(comp), name);
		}
		EXPECT_EQ(0, same) {
			TH_LOG("%u registers did not change with the %s", same, keys[i].what);
		}
	}
	ximage_free(&other);
}

/* Within one image no two registers (of any component) get the same value. */
TEST_F(image, fill_registers_are_distinct)
{
	unsigned int comp, idx, comp2, idx2, same = 0;
	const struct xs_comp_desc *d, *d2;
	const struct xs_regs *r, *r2;
	char a[32], b[32];

	for_each_reg(variant->mask, comp, d, r, idx) {
		if (!high_entropy(r) || r->size < 8)
			continue;
		for_each_reg(variant->mask, comp2, d2, r2, idx2) {
			const uint8_t *x = reg_bytes(&self->img, comp, r, idx);
			const uint8_t *y = reg_bytes(&self->img, comp2, r2, idx2);

			if (!high_entropy(r2) || r2->size < 8 || x >= y || memcmp(x, y, 8))
				continue;
			same++;
			ximage_reg_name(r, idx, a, sizeof(a));
			ximage_reg_name(r2, idx2, b, sizeof(b));
			TH_LOG("%s %s and %s %s start with the same 8 bytes", xs_name(comp), a,
			       xs_name(comp2), b);
		}
	}
	EXPECT_EQ(0, same);
}

static uint64_t get_le(const uint8_t *p, unsigned int size)
{
	uint64_t v = 0;

	memcpy(&v, p, size < 8 ? size : 8);
	return v;
}

/* NULL if @p is a value a register of @r's kind may hold after XRSTOR, else why not. */
static const char *bad_value(const struct xs_regs *r, const uint8_t *p)
{
	uint64_t v = get_le(p, r->size);
	unsigned int i;

	switch (r->kind) {
	case XR_FCW:
		if ((v & 0x3f) != 0x3f)
			return "FCW must mask all six exceptions (bits 0-5)";
		if (v & ~0x0f7full)
			return "FCW has bits outside 0x0f7f";
		return NULL;
	case XR_FSW:
		return v & 0xb8ff ? "FSW must have no exception flags, ES, B or TOP" : NULL;
	case XR_FTW:
		return v != 0xff ? "abridged FTW must mark all eight registers valid" : NULL;
	case XR_ST:
		if (!(p[7] & 0x80))
			return "x87 value without the integer bit (not normal)";
		v = get_le(p + 8, 2) & 0x7fff;
		return v == 0 || v == 0x7fff ? "x87 value with exponent 0 or all ones" : NULL;
	case XR_MXCSR:
		if ((v & 0x1f80) != 0x1f80)
			return "MXCSR must mask all exceptions (bits 7-12)";
		return v >> 16 ? "MXCSR bits 16-31 are reserved" : NULL;
	case XR_PKRU:
		return v & 3 ? "PKRU must leave key 0 accessible (bits 0-1 clear)" : NULL;
	case XR_TILE_PALETTE:
		return v != 1 ? "tile palette must be 1" : NULL;
	case XR_TILE_ROWS:
		return v < 1 || v > 16 ? "tile rows must be 1..16" : NULL;
	case XR_TILE_COLSB:
		return v < 4 || v > 64 || v % 4 ? "tile colsb must be a multiple of 4 in 4..64" :
						  NULL;
	case XR_ZERO:
		for (i = 0; i < r->size; i++)
			if (p[i])
				return "reserved bytes must be zero";
		return NULL;
	default:
		return NULL;
	}
}

/* Every pattern loads without a fault: checked over 64 rounds, on a buffer of 0xff. */
TEST_F(image, pattern_values_are_valid)
{
	unsigned int round, comp, idx, bad = 0, kinds = 0;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;
	char name[32];

	for (round = 0; round < 64; round++) {
		struct pattern_key k = base_key;

		k.round = round;
		memset(self->img.buf, 0xff, self->img.size);
		ximage_set_xcomp_bv(&self->img, variant->compacted ?
				    XS_XCOMP_BV_COMPACTED | variant->mask : 0);
		pattern_fill_image(&self->img, variant->mask, &k);
		for_each_reg(variant->mask, comp, d, r, idx) {
			const uint8_t *p = reg_bytes(&self->img, comp, r, idx);
			const char *why = bad_value(r, p);

			kinds |= 1u << r->kind;
			if (!why)
				continue;
			if (bad++ < 8) {
				ximage_reg_name(r, idx, name, sizeof(name));
				TH_LOG("round %u: %s %s = 0x%llx: %s", round, xs_name(comp), name,
				       (unsigned long long)get_le(p, r->size), why);
			}
		}
	}
	EXPECT_EQ(0, bad);
	/* The checks above ran for every kind this mask has. */
	EXPECT_TRUE(kinds & (1u << XR_FCW));
	EXPECT_TRUE(kinds & (1u << XR_MXCSR));
	EXPECT_TRUE(kinds & (1u << XR_ST));
	if (variant->mask & XS_BIT(XS_PKRU))
		EXPECT_TRUE(kinds & (1u << XR_PKRU));
	if (variant->mask & XS_BIT(XS_XTILECFG))
		EXPECT_EQ(0xfu, (kinds >> XR_TILE_PALETTE) & 0xf);	/* palette..zero */
}

/*
 * Standard -> compacted -> standard (or the reverse) keeps every register's bytes, and
 * ximage_copy_comps() marks each copied component in use.
 */
TEST_F(image, copy_round_trip)
{
	unsigned int comp, idx, bad = 0;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;
	struct ximage other, back;
	char name[32];

	ASSERT_EQ(0, alloc_like(&other, self, variant, !variant->compacted));
	ASSERT_EQ(0, alloc_like(&back, self, variant, variant->compacted));
	ximage_copy_comps(&other, &self->img, variant->mask);
	ximage_copy_comps(&back, &other, variant->mask);

	EXPECT_EQ(variant->mask, ximage_xstate_bv(&other));
	EXPECT_EQ(variant->mask, ximage_xstate_bv(&back));
	EXPECT_EQ(0, ximage_diff(&self->img, &other, variant->mask, "copy", mismatch_log_report,
				 &self->log)) {
		char buf[256];

		TH_LOG("copy into the %s format: %s", fmt_name(!variant->compacted),
		       mismatch_str(&self->log.m[0], buf, sizeof(buf)));
	}
	/* Byte for byte, not only as ximage_diff() sees it. */
	for_each_reg(variant->mask, comp, d, r, idx) {
		if (r->kind == XR_IGNORED || !memcmp(reg_bytes(&self->img, comp, r, idx),
						     reg_bytes(&back, comp, r, idx), r->size))
			continue;
		bad++;
		ximage_reg_name(r, idx, name, sizeof(name));
		TH_LOG("%s %s changed on the round trip", xs_name(comp), name);
	}
	EXPECT_EQ(0, bad);
	ximage_free(&other);
	ximage_free(&back);
}

/* The init value of a register as ximage_diff() sees a component with XSTATE_BV[i] = 0. */
static void init_value(const struct xs_regs *r, uint8_t *out)
{
	uint32_t mxcsr = XS_MXCSR_INIT;
	uint16_t fcw = XS_FCW_INIT;

	memset(out, 0, r->size);
	if (r->kind == XR_FCW)
		memcpy(out, &fcw, sizeof(fcw));
	if (r->kind == XR_MXCSR)
		memcpy(out, &mxcsr, sizeof(mxcsr));
}

/*
 * Copying a component that is in init state in the source writes its init values and marks it
 * in use; MXCSR follows XRSTOR: from memory in the standard format, 1F80H in the compacted.
 */
TEST_F(image, copy_of_init_component_writes_init_values)
{
	unsigned int c, comp, idx, bad = 0;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;
	uint8_t want[1024];
	struct ximage dst;
	char name[32];

	ASSERT_EQ(0, alloc_like(&dst, self, variant, !variant->compacted));
	for (c = 0; c < XS_NR; c++) {
		if (!(variant->mask & XS_BIT(c)))
			continue;
		ximage_set_xstate_bv(&self->img, variant->mask & ~XS_BIT(c));
		memset(dst.buf, 0xee, dst.size);
		ximage_set_xstate_bv(&dst, 0);
		ximage_set_xcomp_bv(&dst, variant->compacted ? 0 :
				    XS_XCOMP_BV_COMPACTED | variant->mask);
		ximage_copy_comps(&dst, &self->img, XS_BIT(c));
		EXPECT_EQ(XS_BIT(c), ximage_xstate_bv(&dst)) {
			TH_LOG("copy of %s alone", xs_name(c));
		}
		for_each_reg(XS_BIT(c), comp, d, r, idx) {
			if (r->kind == XR_IGNORED)
				continue;
			if (r->kind == XR_MXCSR && !variant->compacted)
				memcpy(want, reg_bytes(&self->img, comp, r, idx), r->size);
			else
				init_value(r, want);
			if (!memcmp(want, reg_bytes(&dst, comp, r, idx), r->size))
				continue;
			bad++;
			ximage_reg_name(r, idx, name, sizeof(name));
			TH_LOG("%s %s: copied from a %s image with XSTATE_BV[%u]=0, not its init "
			       "value (got 0x%llx)", xs_name(comp), name,
			       fmt_name(variant->compacted), comp,
			       (unsigned long long)get_le(reg_bytes(&dst, comp, r, idx), r->size));
		}
	}
	EXPECT_EQ(0, bad);
	ximage_free(&dst);
}

/* Copying some components leaves the others, and their XSTATE_BV bits, as they were. */
TEST_F(image, copy_of_some_components_leaves_the_rest)
{
	uint64_t some = variant->mask & (XS_BIT(XS_SSE) | XS_BIT(XS_PKRU) | XS_BIT(XS_XTILEDATA));
	struct pattern_key other_key = base_key;
	struct ximage src, before;

	ASSERT_EQ(0, alloc_like(&src, self, variant, !variant->compacted));
	ASSERT_EQ(0, alloc_like(&before, self, variant, variant->compacted));
	other_key.salt = 7;
	pattern_fill_image(&src, variant->mask, &other_key);
	ximage_set_xstate_bv(&self->img, variant->mask & ~XS_BIT(XS_AVX));
	memcpy(before.buf, self->img.buf, self->img.size);

	ximage_copy_comps(&self->img, &src, some);
	EXPECT_EQ((variant->mask & ~XS_BIT(XS_AVX)) | some, ximage_xstate_bv(&self->img));
	EXPECT_EQ(0, ximage_diff(&src, &self->img, some, "copied", mismatch_log_report,
				 &self->log)) {
		char buf[256];

		TH_LOG("%s", mismatch_str(&self->log.m[0], buf, sizeof(buf)));
	}
	mismatch_log_clear(&self->log);
	EXPECT_EQ(0, ximage_diff(&before, &self->img, variant->mask & ~some, "kept",
				 mismatch_log_report, &self->log)) {
		char buf[256];

		TH_LOG("not copied, yet changed: %s", mismatch_str(&self->log.m[0], buf,
								   sizeof(buf)));
	}
	ximage_free(&src);
	ximage_free(&before);
}

/* An image holding explicitly the init values of @mask, every component marked in use. */
static void explicit_init(struct ximage *img, uint64_t mask)
{
	unsigned int comp, idx;
	const struct xs_comp_desc *d;
	const struct xs_regs *r;

	for_each_reg(mask, comp, d, r, idx)
		init_value(r, img->buf + ximage_reg_offset(img, comp, r, idx));
	ximage_set_xstate_bv(img, mask);
}

/*
 * ximage_init_state() puts everything in the initial configuration: XSTATE_BV 0, FCW 037FH,
 * MXCSR 1F80H, the rest of the legacy region zero. That image means the same state as one
 * holding the init values explicitly, whatever bytes the extended areas still hold.
 */
TEST_F(image, init_state)
{
	uint32_t fcw = 0, mxcsr = 0, i, nonzero = 0;
	struct ximage explicit;

	ximage_init_state(&self->img, variant->mask);
	EXPECT_EQ(0, ximage_xstate_bv(&self->img));
	memcpy(&fcw, self->img.buf, 2);
	memcpy(&mxcsr, self->img.buf + MXCSR_OFFSET, 4);
	EXPECT_EQ(XS_FCW_INIT, fcw);
	EXPECT_EQ(XS_MXCSR_INIT, mxcsr);
	for (i = 2; i < XS_LEGACY_SIZE; i++)
		nonzero += self->img.buf[i] && (i < MXCSR_OFFSET || i >= MXCSR_OFFSET + 4);
	EXPECT_EQ(0, nonzero) {
		TH_LOG("%u bytes of the legacy region are not zero after ximage_init_state()",
		       nonzero);
	}

	ASSERT_EQ(0, alloc_like(&explicit, self, variant, variant->compacted));
	explicit_init(&explicit, variant->mask);
	EXPECT_EQ(0, ximage_diff(&explicit, &self->img, variant->mask, "init",
				 mismatch_log_report, &self->log)) {
		char buf[256];

		TH_LOG("%s", mismatch_str(&self->log.m[0], buf, sizeof(buf)));
	}
	ximage_free(&explicit);
}

/*
 * A component whose XSTATE_BV bit is clear compares equal to its init values whatever its
 * bytes, except the standard format's MXCSR, which XRSTOR loads from memory anyway; against
 * the patterned values it differs, and the report says the component is in init state.
 */
TEST_F(image, clear_xstate_bv_bit_means_init_values)
{
	unsigned int c, want;
	struct ximage explicit, cleared;

	ASSERT_EQ(0, alloc_like(&explicit, self, variant, variant->compacted));
	ASSERT_EQ(0, alloc_like(&cleared, self, variant, variant->compacted));
	explicit_init(&explicit, variant->mask);

	for (c = 0; c < XS_NR; c++) {
		unsigned int n;

		if (!(variant->mask & XS_BIT(c)))
			continue;
		memcpy(cleared.buf, self->img.buf, self->img.size);
		ximage_set_xstate_bv(&cleared, variant->mask & ~XS_BIT(c));

		want = c == XS_SSE && !variant->compacted;
		mismatch_log_clear(&self->log);
		n = ximage_diff(&explicit, &cleared, XS_BIT(c), "init", mismatch_log_report,
				&self->log);
		EXPECT_EQ(want, n) {
			char buf[256];

			TH_LOG("%s with XSTATE_BV[%u]=0 in a %s image: %s", xs_name(c), c,
			       fmt_name(variant->compacted),
			       n ? mismatch_str(&self->log.m[0], buf, sizeof(buf)) : "no mismatch");
		}
		if (want && n == 1)
			EXPECT_STREQ("mxcsr", self->log.m[0].reg);

		mismatch_log_clear(&self->log);
		n = ximage_diff(&self->img, &cleared, XS_BIT(c), "cleared", mismatch_log_report,
				&self->log);
		EXPECT_LT(0, n) {
			TH_LOG("%s: clearing XSTATE_BV[%u] went unnoticed", xs_name(c), c);
		}
		if (n) {
			EXPECT_TRUE(self->log.m[0].note &&
				    strstr(self->log.m[0].note, "init state")) {
				TH_LOG("%s %s: the report should say the component is in init "
				       "state, note: %s", xs_name(c), self->log.m[0].reg,
				       self->log.m[0].note ? self->log.m[0].note : "(none)");
			}
		}
	}
	ximage_free(&explicit);
	ximage_free(&cleared);
}

/*
 * With SSE in init state in both images, two different MXCSR bytes differ in the standard
 * format (XRSTOR loads MXCSR from memory) and not in the compacted one (XRSTOR sets 1F80H).
 */
TEST_F(image, mxcsr_with_sse_in_init_state)
{
	uint32_t a = 0x1f80, b = 0x1fa0;
	struct ximage other;
	unsigned int n;

	ASSERT_EQ(0, alloc_like(&other, self, variant, variant->compacted));
	memcpy(other.buf, self->img.buf, self->img.size);
	ximage_set_xstate_bv(&self->img, variant->mask & ~XS_BIT(XS_SSE));
	ximage_set_xstate_bv(&other, variant->mask & ~XS_BIT(XS_SSE));
	memcpy(self->img.buf + MXCSR_OFFSET, &a, 4);
	memcpy(other.buf + MXCSR_OFFSET, &b, 4);

	n = ximage_diff(&self->img, &other, XS_BIT(XS_SSE), "mxcsr", mismatch_log_report,
			&self->log);
	EXPECT_EQ(variant->compacted ? 0 : 1, n) {
		TH_LOG("%s format: MXCSR 0x%x vs 0x%x with XSTATE_BV[1]=0",
		       fmt_name(variant->compacted), a, b);
	}
	if (n == 1) {
		EXPECT_STREQ("mxcsr", self->log.m[0].reg);
		EXPECT_EQ(MXCSR_OFFSET, self->log.m[0].offset);
		EXPECT_EQ(0, self->log.m[0].first_byte);
	}
	ximage_free(&other);
}

/* --- ximage_check_header() --- */

#define ALLOWED		0x2e7ull
#define COMPACTED	XS_XCOMP_BV_COMPACTED

struct header_report {
	const char *reg;
	uint32_t offset;
	uint64_t expected, actual;
};

struct header_case {
	const char *what;
	bool compacted;
	uint64_t xstate_bv, xcomp_bv, required;
	int rsvd_byte;		/* header byte (16..63) set to 0x80, or -1 */
	unsigned int nr;
	struct header_report want[4];
};

static const struct header_case header_cases[] = {
	{ "clean standard", false, 0x207, 0, 0x3, -1, 0 },
	{ "clean compacted", true, 0x207, COMPACTED | 0x2e7, 0x3, -1, 0 },
	{ "compacted, x87/SSE in XSTATE_BV but not XCOMP_BV", true, 0x207, COMPACTED | 0x2e4, 0x3,
	  -1, 1, { { "xcomp_bv", 520, COMPACTED | 0x2e7, COMPACTED | 0x2e4 } } },
	{ "init state", false, 0, 0, 0, -1, 0 },
	{ "XSTATE_BV outside allowed", false, 0x20f, 0, 0x3, -1, 1,
	  { { "xstate_bv", 512, 0x207, 0x20f } } },
	{ "XSTATE_BV bit 63", false, (1ull << 63) | 0x3, 0, 0x3, -1, 1,
	  { { "xstate_bv", 512, 0x3, (1ull << 63) | 0x3 } } },
	{ "XSTATE_BV missing required", false, 0x3, 0, 0x207, -1, 1,
	  { { "xstate_bv", 512, 0x207, 0x3 } } },
	{ "standard with XCOMP_BV", false, 0x7, 0x4, 0x3, -1, 1,
	  { { "xcomp_bv", 520, 0, 0x4 } } },
	{ "standard with XCOMP_BV[63]", false, 0x7, COMPACTED | 0x7, 0x3, -1, 1,
	  { { "xcomp_bv", 520, 0, COMPACTED | 0x7 } } },
	{ "compacted without XCOMP_BV[63]", true, 0x7, 0x7, 0x3, -1, 1,
	  { { "xcomp_bv", 520, COMPACTED | 0x7, 0x7 } } },
	{ "compacted, XSTATE_BV outside XCOMP_BV", true, 0x207, COMPACTED | 0x7, 0x3, -1, 1,
	  { { "xcomp_bv", 520, COMPACTED | 0x207, COMPACTED | 0x7 } } },
	{ "everything at once", false, 0x20b, 0x1, 0x7, 40, 4,
	  { { "xstate_bv", 512, 0x203, 0x20b }, { "xstate_bv", 512, 0x20f, 0x20b },
	    { "xcomp_bv", 520, 0, 0x1 }, { "header_reserved[40]", 552, 0, 0x80 } } },
};

TEST(check_header_reports_each_field_once)
{
	static struct mismatch_log log;
	struct xs_layout l;
	struct ximage img;
	unsigned int i, j;

	test_cpu_layout(&l, CPU_ICELAKE);
	for (i = 0; i < ARRAY_LEN(header_cases); i++) {
		const struct header_case *c = &header_cases[i];
		unsigned int n;

		ASSERT_EQ(0, ximage_alloc(&img, &l, ALLOWED, c->compacted));
		ximage_set_xstate_bv(&img, c->xstate_bv);
		ximage_set_xcomp_bv(&img, c->xcomp_bv);
		if (c->rsvd_byte >= 0)
			img.buf[XS_HEADER_OFFSET + c->rsvd_byte] = 0x80;

		mismatch_log_clear(&log);
		n = ximage_check_header(&img, ALLOWED, c->required, "hdr", mismatch_log_report,
					&log);
		EXPECT_EQ(c->nr, n) {
			TH_LOG("%s: %u reports, first %s", c->what, n, n ? log.m[0].reg : "-");
		}
		for (j = 0; j < c->nr && j < n && j < MISMATCH_LOG_KEEP; j++) {
			const struct logged_mismatch *m = &log.m[j];
			uint64_t exp = get_le(m->expected, 8), act = get_le(m->actual, 8);

			EXPECT_STREQ(c->want[j].reg, m->reg) {
				TH_LOG("%s: report %u", c->what, j);
			}
			EXPECT_EQ(XS_NR, m->comp);
			EXPECT_STREQ("hdr", m->check);
			EXPECT_EQ(8, m->size);
			EXPECT_EQ(c->want[j].offset, m->offset) {
				TH_LOG("%s: %s", c->what, m->reg);
			}
			EXPECT_EQ(c->want[j].expected, exp) {
				TH_LOG("%s: %s expected value", c->what, m->reg);
			}
			EXPECT_EQ(c->want[j].actual, act) {
				TH_LOG("%s: %s actual value", c->what, m->reg);
			}
			/* first_byte is the lowest byte where the two values differ. */
			EXPECT_EQ(__builtin_ctzll(exp ^ act) / 8, m->first_byte) {
				TH_LOG("%s: %s", c->what, m->reg);
			}
			EXPECT_TRUE(m->note != NULL);
		}
		ximage_free(&img);
	}
}

/* Each byte of the reserved header (16-63) is reported alone, by its 8-byte word. */
TEST(check_header_reserved_bytes)
{
	static struct mismatch_log log;
	struct xs_layout l;
	struct ximage img;
	unsigned int fmt, pos;

	test_cpu_layout(&l, CPU_SAPPHIRE_RAPIDS);
	for (fmt = 0; fmt < 2; fmt++) {
		ASSERT_EQ(0, ximage_alloc(&img, &l, 0x602e7, fmt));
		ximage_set_xstate_bv(&img, 0x602e7);
		for (pos = 16; pos < XS_HEADER_SIZE; pos++) {
			unsigned int word = 16 + (pos - 16) / 8 * 8, n;
			char name[32];

			snprintf(name, sizeof(name), "header_reserved[%u]", word);
			img.buf[XS_HEADER_OFFSET + pos] = 0x80;
			mismatch_log_clear(&log);
			n = ximage_check_header(&img, 0x602e7, 0, "rsvd", mismatch_log_report,
						&log);
			img.buf[XS_HEADER_OFFSET + pos] = 0;

			EXPECT_EQ(1, n) {
				TH_LOG("%s header byte %u", fmt_name(fmt), pos);
			}
			if (n != 1)
				continue;
			EXPECT_STREQ(name, log.m[0].reg);
			EXPECT_EQ(XS_HEADER_OFFSET + word, log.m[0].offset);
			EXPECT_EQ(pos - word, log.m[0].first_byte) {
				TH_LOG("%s header byte %u", fmt_name(fmt), pos);
			}
			EXPECT_EQ(0x80, log.m[0].actual[pos - word]);
			EXPECT_EQ(0, log.m[0].expected[pos - word]);
		}
		ximage_free(&img);
	}
}

TEST_HARNESS_MAIN
