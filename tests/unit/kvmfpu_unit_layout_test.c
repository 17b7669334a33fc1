// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_layout_test: the xstate layout the library derives from CPUID leaf 0xD.
 *
 * Every test of this suite trusts xs_layout_from_cpuid(), xs_size_*() and xs_offset() to say
 * where a register lives; a wrong offset would make the checker compare the wrong bytes and
 * pass. So this feeds the CPUID tables of real CPUs (cpuid_tables.h) and checks offsets,
 * sizes in both formats, and the compacted format's 64-byte alignment against values worked
 * out by hand below. It also checks the XCR0 rules (xs_xcr0_valid) and the --xcr0 syntax
 * (xs_parse_mask). No /dev/kvm needed.
 */
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"

#include "cpuid_tables.h"
#include "xstate.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))
#define TABLE(a)	a, ARRAY_LEN(a)

struct comp_expect {
	unsigned int comp;
	uint32_t offset, size;
	bool align64;
};

struct size_expect {
	uint64_t mask;
	uint32_t standard, compacted;
};

/* Offset of @comp in a compacted image whose XCOMP_BV is bit 63 | @xcomp_bv. */
struct offset_expect {
	unsigned int comp;
	uint64_t xcomp_bv;
	uint32_t offset;
};

/* x87 and SSE live in the legacy region, at the same place on every CPU. */
#define LEGACY_COMPS	{ XS_X87, 0, 160 }, { XS_SSE, 160, 256 }

/* --- AVX-512 + PKRU, no MPX (Intel offsets; see cpuid_tables.h) --- */
static const struct comp_expect icelake_comps[] = {
	LEGACY_COMPS,
	{ XS_AVX, 576, 256 },
	{ XS_OPMASK, 1088, 64 },
	{ XS_ZMM_HI256, 1152, 512 },
	{ XS_HI16_ZMM, 1664, 1024 },
	{ XS_PKRU, 2688, 8 },
};

/*
 * Standard: the end of the highest component present. Compacted: 576, then each present
 * component in order (no component of this CPU asks for 64-byte alignment):
 *   0xe7:  576 + 256 (AVX) + 64 (opmask) + 512 (ZMM_Hi256) + 1024 (Hi16_ZMM) = 2432
 *   0x207: 576 + 256 + 8 (PKRU) = 840
 *   0x2e7: 2432 + 8 = 2440
 */
static const struct size_expect icelake_sizes[] = {
	{ 0x1, 576, 576 },
	{ 0x3, 576, 576 },
	{ 0x7, 832, 832 },
	{ 0xe7, 2688, 2432 },
	{ 0x207, 2696, 840 },
	{ 0x2e7, 2696, 2440 },
};

static const struct offset_expect icelake_offsets[] = {
	{ XS_X87, 0x2e7, 0 },
	{ XS_SSE, 0x2e7, 160 },
	{ XS_AVX, 0x2e7, 576 },
	{ XS_OPMASK, 0x2e7, 832 },		/* 576 + 256 */
	{ XS_ZMM_HI256, 0x2e7, 896 },		/* 832 + 64 */
	{ XS_HI16_ZMM, 0x2e7, 1408 },		/* 896 + 512 */
	{ XS_PKRU, 0x2e7, 2432 },		/* 1408 + 1024 */
	{ XS_PKRU, 0x207, 832 },		/* only AVX before it */
	{ XS_PKRU, 0x203, 576 },		/* nothing before it */
	{ XS_OPMASK, 0xe3, 576 },		/* AVX absent from XCOMP_BV */
};

/* --- AVX-512 + PKRU + MPX --- */
static const struct comp_expect skylake_sp_comps[] = {
	LEGACY_COMPS,
	{ XS_AVX, 576, 256 },
	{ XS_BNDREGS, 960, 64 },
	{ XS_BNDCSR, 1024, 64 },
	{ XS_OPMASK, 1088, 64 },
	{ XS_ZMM_HI256, 1152, 512 },
	{ XS_HI16_ZMM, 1664, 1024 },
	{ XS_PKRU, 2688, 8 },
};

/*
 *   0x1b:  576 + 64 (BNDREGS) + 64 (BNDCSR) = 704; standard ends with BNDCSR: 1024 + 64
 *   0x1f:  576 + 256 + 64 + 64 = 960
 *   0xff:  960 + 64 + 512 + 1024 = 2560
 *   0x2ff: 2560 + 8 = 2568
 */
static const struct size_expect skylake_sp_sizes[] = {
	{ 0x1b, 1088, 704 },
	{ 0x1f, 1088, 960 },
	{ 0xff, 2688, 2560 },
	{ 0x2ff, 2696, 2568 },
};

static const struct offset_expect skylake_sp_offsets[] = {
	{ XS_BNDREGS, 0x2ff, 832 },		/* 576 + 256 */
	{ XS_BNDCSR, 0x2ff, 896 },		/* 832 + 64 */
	{ XS_OPMASK, 0x2ff, 960 },		/* 896 + 64 */
	{ XS_ZMM_HI256, 0x2ff, 1024 },		/* 960 + 64 */
	{ XS_HI16_ZMM, 0x2ff, 1536 },		/* 1024 + 512 */
	{ XS_PKRU, 0x2ff, 2560 },		/* 1536 + 1024 */
	{ XS_BNDREGS, 0x1b, 576 },
	{ XS_BNDCSR, 0x1b, 640 },
};

/* --- AVX-512 + PKRU + AMX; XTILECFG and XTILEDATA 64-byte aligned when compacted --- */
static const struct comp_expect sapphire_rapids_comps[] = {
	LEGACY_COMPS,
	{ XS_AVX, 576, 256 },
	{ XS_OPMASK, 1088, 64 },
	{ XS_ZMM_HI256, 1152, 512 },
	{ XS_HI16_ZMM, 1664, 1024 },
	{ XS_PKRU, 2688, 8 },
	{ XS_XTILECFG, 2752, 64, true },
	{ XS_XTILEDATA, 2816, 8192, true },
};

/*
 * Compacted, with align(x) = x rounded up to a multiple of 64 for XTILECFG and XTILEDATA:
 *   0x602e7: 2440 (as 0x2e7 above); XTILECFG at align(2440) = 2496 (39 * 64), ends 2560;
 *            XTILEDATA at align(2560) = 2560 (40 * 64), ends 2560 + 8192 = 10752
 *   0x60003: XTILECFG at align(576) = 576 (9 * 64), ends 640; XTILEDATA at 640,
 *            ends 8832
 *   0x60007: XTILECFG at align(832) = 832 (13 * 64), ends 896; XTILEDATA at 896,
 *            ends 9088
 *   0x60207: PKRU ends 840; XTILECFG at align(840) = 896 (alignment pads 56 bytes),
 *            ends 960; XTILEDATA at align(960) = 960 (15 * 64), ends 9152
 *   0x20207: XTILECFG at 896, ends 960; standard ends with XTILECFG: 2752 + 64 = 2816
 *   0x40207: XTILEDATA alone at align(840) = 896, ends 9088
 */
static const struct size_expect sapphire_rapids_sizes[] = {
	{ 0x3, 576, 576 },
	{ 0x7, 832, 832 },
	{ 0xe7, 2688, 2432 },
	{ 0x2e7, 2696, 2440 },
	{ 0x602e7, 11008, 10752 },
	{ 0x60003, 11008, 8832 },
	{ 0x60007, 11008, 9088 },
	{ 0x60207, 11008, 9152 },
	{ 0x20207, 2816, 960 },
	{ 0x40207, 11008, 9088 },
};

static const struct offset_expect sapphire_rapids_offsets[] = {
	{ XS_PKRU, 0x602e7, 2432 },
	{ XS_XTILECFG, 0x602e7, 2496 },
	{ XS_XTILEDATA, 0x602e7, 2560 },
	{ XS_XTILECFG, 0x60207, 896 },
	{ XS_XTILEDATA, 0x60207, 960 },
	{ XS_XTILECFG, 0x60007, 832 },
	{ XS_XTILEDATA, 0x60007, 896 },
	{ XS_XTILECFG, 0x60003, 576 },
	{ XS_XTILEDATA, 0x60003, 640 },
	{ XS_XTILEDATA, 0x40207, 896 },
};

/* --- this project's AMD host: AVX-512 packed right after AVX --- */
static const struct comp_expect zen4_host_comps[] = {
	LEGACY_COMPS,
	{ XS_AVX, 576, 256 },
	{ XS_OPMASK, 832, 64 },
	{ XS_ZMM_HI256, 896, 512 },
	{ XS_HI16_ZMM, 1408, 1024 },
	/*
	 * IA32_XSS components (CPUID.(0xD,1).ECX 0x1800), read too: their sizes count in the
	 * compacted size of XCR0 | IA32_XSS. CET_U and CET_S: no standard offset (supervisor).
	 */
	{ 11, 0, 16 },
	{ 12, 0, 24 },
};

/* No gaps in the standard format, so both formats have the same size. */
static const struct size_expect zen4_host_sizes[] = {
	{ 0x3, 576, 576 },
	{ 0x7, 832, 832 },
	{ 0xe7, 2432, 2432 },
};

static const struct offset_expect zen4_host_offsets[] = {
	{ XS_OPMASK, 0xe7, 832 },
	{ XS_ZMM_HI256, 0xe7, 896 },
	{ XS_HI16_ZMM, 0xe7, 1408 },
	{ XS_OPMASK, 0xe3, 576 },
};

FIXTURE(layout) {
	struct xs_layout l;
};

FIXTURE_VARIANT(layout) {
	enum test_cpu_id cpu;
	uint64_t supported;
	uint32_t size_max;
	const struct comp_expect *comps;
	unsigned int nr_comps;
	const struct size_expect *sizes;
	unsigned int nr_sizes;
	const struct offset_expect *offsets;
	unsigned int nr_offsets;
};

FIXTURE_VARIANT_ADD(layout, icelake) {
	.cpu = CPU_ICELAKE, .supported = 0x2e7, .size_max = 2696,
	.comps = TABLE(icelake_comps), .sizes = TABLE(icelake_sizes),
	.offsets = TABLE(icelake_offsets),
};

FIXTURE_VARIANT_ADD(layout, skylake_sp) {
	.cpu = CPU_SKYLAKE_SP, .supported = 0x2ff, .size_max = 2696,
	.comps = TABLE(skylake_sp_comps), .sizes = TABLE(skylake_sp_sizes),
	.offsets = TABLE(skylake_sp_offsets),
};

FIXTURE_VARIANT_ADD(layout, sapphire_rapids) {
	.cpu = CPU_SAPPHIRE_RAPIDS, .supported = 0x602e7, .size_max = 11008,
	.comps = TABLE(sapphire_rapids_comps), .sizes = TABLE(sapphire_rapids_sizes),
	.offsets = TABLE(sapphire_rapids_offsets),
};

FIXTURE_VARIANT_ADD(layout, zen4_host) {
	.cpu = CPU_ZEN4_HOST, .supported = 0xe7, .size_max = 2432,
	.comps = TABLE(zen4_host_comps), .sizes = TABLE(zen4_host_sizes),
	.offsets = TABLE(zen4_host_offsets),
};

#define CPU_NAME	(test_cpu(variant->cpu)->name)

FIXTURE_SETUP(layout)
{
	test_cpu_layout(&self->l, variant->cpu);
}

FIXTURE_TEARDOWN(layout)
{
}

static const struct comp_expect *find_comp(const FIXTURE_VARIANT(layout) *variant,
					   unsigned int comp)
{
	unsigned int i;

	for (i = 0; i < variant->nr_comps; i++)
		if (variant->comps[i].comp == comp)
			return &variant->comps[i];
	return NULL;
}

/*
 * Each component's offset, size and alignment as CPUID reports them, for every subleaf
 * (XCR0's and IA32_XSS's, described by kvmfpu or not); absent ones are 0.
 */
TEST_F(layout, components)
{
	const struct comp_expect none = { 0 };
	unsigned int comp;

	EXPECT_EQ(variant->supported, self->l.supported);
	EXPECT_EQ(variant->size_max, self->l.size_max);

	for (comp = 0; comp < XS_NR_SUBLEAVES; comp++) {
		const struct comp_expect *e = find_comp(variant, comp);
		bool aligned = self->l.align64 & XS_BIT(comp);

		if (!e)
			e = &none;
		EXPECT_EQ(e->offset, self->l.offset[comp]) {
			TH_LOG("%s: component %u (%s): standard offset", CPU_NAME,
			       comp, xs_name(comp));
		}
		EXPECT_EQ(e->size, self->l.size[comp]) {
			TH_LOG("%s: component %u (%s): size", CPU_NAME, comp,
			       xs_name(comp));
		}
		EXPECT_EQ(e->align64, aligned) {
			TH_LOG("%s: component %u (%s): 64-byte alignment when compacted "
			       "(CPUID ECX[1])", CPU_NAME, comp, xs_name(comp));
		}
	}
}

/* The full standard size of what CPUID supports is what 0xD.0 ECX says. */
TEST_F(layout, size_max_matches_components)
{
	EXPECT_EQ(self->l.size_max, xs_size_standard(&self->l, self->l.supported));
}

TEST_F(layout, sizes)
{
	unsigned int i;

	for (i = 0; i < variant->nr_sizes; i++) {
		const struct size_expect *e = &variant->sizes[i];

		EXPECT_EQ(e->standard, xs_size_standard(&self->l, e->mask)) {
			TH_LOG("%s: standard-format size for mask 0x%llx",
			       CPU_NAME, (unsigned long long)e->mask);
		}
		EXPECT_EQ(e->compacted, xs_size_compacted(&self->l, e->mask)) {
			TH_LOG("%s: compacted size for mask 0x%llx", CPU_NAME,
			       (unsigned long long)e->mask);
		}
	}
}

TEST_F(layout, compacted_offsets)
{
	unsigned int i;

	for (i = 0; i < variant->nr_offsets; i++) {
		const struct offset_expect *e = &variant->offsets[i];
		uint64_t xcomp_bv = XS_XCOMP_BV_COMPACTED | e->xcomp_bv;

		EXPECT_EQ(e->offset, xs_offset(&self->l, e->comp, true, xcomp_bv)) {
			TH_LOG("%s: compacted offset of %s with XCOMP_BV 0x%llx",
			       CPU_NAME, xs_name(e->comp),
			       (unsigned long long)xcomp_bv);
		}
	}
}

/*
 * In a compacted image each component starts where the previous present one ends (rounded up
 * when aligned), and the last one ends at the compacted size.
 */
TEST_F(layout, compacted_offsets_chain)
{
	unsigned int i, comp;

	for (i = 0; i < variant->nr_sizes; i++) {
		uint64_t mask = variant->sizes[i].mask & self->l.supported;
		uint64_t xcomp_bv = XS_XCOMP_BV_COMPACTED | mask;
		uint32_t end = XS_EXTENDED_OFFSET;

		for (comp = 2; comp < XS_NR; comp++) {
			uint32_t start = end;

			if (!(mask & XS_BIT(comp)))
				continue;
			if (self->l.align64 & XS_BIT(comp))
				start = (start + 63) & ~63u;
			EXPECT_EQ(start, xs_offset(&self->l, comp, true, xcomp_bv)) {
				TH_LOG("%s: %s with XCOMP_BV 0x%llx should follow the previous "
				       "component, which ends at %u", CPU_NAME,
				       xs_name(comp), (unsigned long long)xcomp_bv, end);
			}
			end = start + self->l.size[comp];
		}
		EXPECT_EQ(end, xs_size_compacted(&self->l, mask)) {
			TH_LOG("%s: compacted size of 0x%llx should be where its last "
			       "component ends", CPU_NAME, (unsigned long long)mask);
		}
	}
}

/* The standard format has fixed offsets: XCOMP_BV plays no part. */
TEST_F(layout, standard_offsets_ignore_xcomp_bv)
{
	static const uint64_t xcomp_bvs[] = { 0, 0x3, 0x7, 0x602e7, XS_XCOMP_BV_COMPACTED | 0x7 };
	unsigned int i, comp;

	for (comp = 0; comp < XS_NR; comp++) {
		if (!(self->l.supported & XS_BIT(comp)))
			continue;
		for (i = 0; i < ARRAY_LEN(xcomp_bvs); i++) {
			EXPECT_EQ(self->l.offset[comp],
				  xs_offset(&self->l, comp, false, xcomp_bvs[i])) {
				TH_LOG("%s: standard offset of %s with XCOMP_BV 0x%llx",
				       CPU_NAME, xs_name(comp),
				       (unsigned long long)xcomp_bvs[i]);
			}
		}
	}
}

/*
 * XSETBV's rules for XCR0 (SDM Vol. 1 §13.3; KVM enforces the same ones for a guest's XSETBV
 * in __kvm_set_xcr(), arch/x86/kvm/x86.c).
 */
static const uint64_t xcr0_good[] = {
	0x1,		/* x87 alone */
	0x3,		/* + SSE */
	0x7,		/* + AVX */
	0x1f,		/* + MPX */
	0xe7,		/* + AVX-512 */
	0x203,		/* PKRU needs nothing but x87 */
	0x2e7,
	0x2ff,
	0x60003,	/* AMX does not need AVX */
	0x602e7,
};

static const struct {
	uint64_t xcr0;
	const char *why;	/* the rule the error text must name */
} xcr0_bad[] = {
	{ 0x0, "bit 0 (x87) must be set" },
	{ 0x2, "bit 0 (x87) must be set" },
	{ 0x6, "bit 0 (x87) must be set" },
	{ 0x5, "AVX (bit 2) requires SSE (bit 1)" },
	{ 0x27, "AVX-512 bits 5-7 must be set together" },	/* opmask alone */
	{ 0x67, "AVX-512 bits 5-7 must be set together" },	/* no Hi16_ZMM */
	{ 0xe3, "only with AVX" },				/* AVX-512 without AVX */
	{ 0x9, "MPX bits 3 and 4 must be set together" },
	{ 0x11, "MPX bits 3 and 4 must be set together" },
	{ 0x20003, "AMX bits 17 and 18 must be set together" },
	{ 0x40003, "AMX bits 17 and 18 must be set together" },
	{ 0x103, "bit 8 is not an XCR0 state component" },	/* PT: an IA32_XSS component */
	{ 0x100, "bit 8 is not an XCR0 state component" },
	{ 0x403, "bit 10 is not an XCR0 state component" },	/* PASID: IA32_XSS */
	{ 0x1803, "bit 11 is not an XCR0 state component" },	/* CET: IA32_XSS */
	{ 1ull << 63, "bit 63 is not an XCR0 state component" },
	{ (1ull << 63) | 0x3, "bit 63 is not an XCR0 state component" },
	{ (1ull << 19) | 0x3, "bit 19 (APX) is an XCR0 component kvmfpu does not support" },
};

TEST(xcr0_valid_accepts)
{
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(xcr0_good); i++) {
		char why[256] = "";

		EXPECT_TRUE(xs_xcr0_valid(xcr0_good[i], why, sizeof(why))) {
			TH_LOG("XCR0 0x%llx is valid but was rejected: %s",
			       (unsigned long long)xcr0_good[i], why);
		}
	}
}

TEST(xcr0_valid_rejects)
{
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(xcr0_bad); i++) {
		char why[256] = "", value[32];

		bool valid = xs_xcr0_valid(xcr0_bad[i].xcr0, why, sizeof(why));

		/* (No break/continue inside a handler block: it is the harness's own loop.) */
		snprintf(value, sizeof(value), "0x%llx", (unsigned long long)xcr0_bad[i].xcr0);
		EXPECT_FALSE(valid) {
			TH_LOG("XCR0 %s breaks \"%s\" but was accepted", value, xcr0_bad[i].why);
		}
		if (valid)
			continue;
		EXPECT_NE(NULL, strstr(why, xcr0_bad[i].why)) {
			TH_LOG("XCR0 %s: expected the reason \"%s\", got \"%s\"", value,
			       xcr0_bad[i].why, why);
		}
		EXPECT_NE(NULL, strstr(why, value)) {
			TH_LOG("XCR0 %s: the reason should name the value: \"%s\"", value, why);
		}
	}
}

static const struct {
	const char *s;
	uint64_t mask;
} parse_good[] = {
	{ "0x7", 0x7 },
	{ "7", 0x7 },
	{ "0x602e7", 0x602e7 },
	{ "0", 0 },
	{ "x87", 0x1 },
	{ "x87,sse,avx", 0x7 },
	{ "avx,sse,x87", 0x7 },				/* order does not matter */
	{ "x87,sse,bndregs,bndcsr", 0x1b },
	{ "x87,sse,avx,opmask,zmm_hi256,hi16_zmm", 0xe7 },
	{ "x87,sse,pkru", 0x203 },
	{ "x87,sse,avx,opmask,zmm_hi256,hi16_zmm,pkru,xtilecfg,xtiledata", 0x602e7 },
};

static const char *const parse_bad[] = {
	"",
	"bogus",
	"x87,bogus",
	"X87",			/* names are lower case */
	"avx512",		/* AVX-512 is three components, named separately */
	"amx",
	"unknown",		/* what xs_name() says for a hole in the table */
	"bit8",			/* how xs_mask_str() prints an unknown bit */
	"0x7z",
	"7 ",
	"-1",			/* strtoull() would wrap it to all ones */
	"0x10000000000000000",	/* overflows 64 bits */
	"x87,sse,",		/* empty items */
	",x87",
	"x87,,sse",
};

TEST(parse_mask_accepts_numbers_and_names)
{
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(parse_good); i++) {
		uint64_t mask = ~0ull;
		bool ok = xs_parse_mask(parse_good[i].s, &mask);

		EXPECT_TRUE(ok) {
			TH_LOG("\"%s\" was rejected", parse_good[i].s);
		}
		if (!ok)
			continue;
		EXPECT_EQ(parse_good[i].mask, mask) {
			TH_LOG("\"%s\" parsed as 0x%llx", parse_good[i].s,
			       (unsigned long long)mask);
		}
	}
}

TEST(parse_mask_rejects_unknown_names)
{
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(parse_bad); i++) {
		uint64_t mask = 0;

		EXPECT_FALSE(xs_parse_mask(parse_bad[i], &mask)) {
			TH_LOG("\"%s\" was accepted as 0x%llx", parse_bad[i],
			       (unsigned long long)mask);
		}
	}
}

/* What xs_mask_str() prints for a known mask, xs_parse_mask() reads back. */
TEST(mask_str_round_trip)
{
	static const uint64_t masks[] = {
		0x1, 0x3, 0x7, 0x1f, 0xe7, 0x2ff, 0x602e7, XS_MASK_KNOWN,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(masks); i++) {
		char names[256];
		uint64_t back = 0;

		bool ok = xs_parse_mask(xs_mask_str(masks[i], names, sizeof(names)), &back);

		EXPECT_TRUE(ok) {
			TH_LOG("0x%llx printed as \"%s\", which does not parse",
			       (unsigned long long)masks[i], names);
		}
		if (!ok)
			continue;
		EXPECT_EQ(masks[i], back) {
			TH_LOG("0x%llx printed as \"%s\", read back as 0x%llx",
			       (unsigned long long)masks[i], names, (unsigned long long)back);
		}
	}
}

/* Every bit of XS_MASK_KNOWN has a description; the holes between them have none. */
TEST(component_table)
{
	unsigned int comp;

	for (comp = 0; comp < 64; comp++) {
		bool known = XS_MASK_KNOWN & XS_BIT(comp);
		const struct xs_comp_desc *d = xs_desc(comp);

		EXPECT_EQ(known, d != NULL) {
			TH_LOG("component %u: in XS_MASK_KNOWN %d, described %d", comp, known,
			       d != NULL);
		}
		if (d) {
			EXPECT_STREQ(d->name, xs_name(comp));
			EXPECT_NE(0, d->nr_regs) {
				TH_LOG("component %s has no registers", d->name);
			}
		}
	}
}

TEST_HARNESS_MAIN
