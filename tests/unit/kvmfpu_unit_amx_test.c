// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_amx_test: the AMX logic of lib/amx.c on synthetic data (issue 5, item 8). No
 * /dev/kvm and no AMX hardware needed: this is what makes the AMX programs right by
 * construction on machines that cannot run them.
 *
 * Covered: CPUID 0xD/0x1D/0x1E parsing from a Sapphire Rapids table; the 64-byte tile
 * configuration (encoding, and what LDTILECFG accepts); what TILELOADD leaves in a tile under
 * a configuration; the AMX components' offsets in the standard and the compacted format
 * (64-byte alignment); expected images with tiles; the diff naming a tile byte; what the
 * guest's tile stores must leave in a canary-prepared save area; replay arguments.
 *
 * The Sapphire Rapids table:
 *  - Register layout of leaves 1DH and 1EH: SDM Vol. 2A, CPUID, Table 3-8 "Information
 *    Returned by CPUID Instruction": 1DH.0 EAX = max palette; 1DH.1 EAX[15:0]
 *    total_tile_bytes, EAX[31:16] bytes_per_tile, EBX[15:0] bytes_per_row, EBX[31:16]
 *    max_names, ECX[15:0] max_rows; 1EH.0 EBX[7:0] tmul_maxk, EBX[23:8] tmul_maxn.
 *  - Values of palette 1 (8 tiles of 16 rows x 64 bytes = 1024 bytes, 8192 in all; TMUL K 16,
 *    N 64 bytes): SDM Vol. 1, Chapter 18 "Programming with Intel AMX", palette 1 and the TMUL
 *    parameters; the same numbers are asserted on real hardware by the kernel's own
 *    tools/testing/selftests/kvm/x86_64/amx_test.c (check_xtile_info(): max_names 8,
 *    bytes_per_tile 1024, bytes_per_row 64, max_rows 16, XTILEDATA offset 2816 size 8192).
 *  - Leaf 0xD: as tests/unit/cpuid_tables.h derives it for Sapphire Rapids (XCR0 0x602e7,
 *    XTILECFG 64 bytes at 2752, XTILEDATA 8192 at 2816, ECX[1] set for both, ECX[2] (XFD)
 *    for XTILEDATA); 0xD.1 EAX 0x1f (XSAVEOPT, XSAVEC, XGETBV1, XSAVES, XFD: bits 0-4).
 */
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"

#include "amx.h"
#include "report.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

struct leaf {
	uint32_t leaf, subleaf, r[4];
};

struct table {
	const struct leaf *leaves;
	unsigned int n;
};

static const struct leaf spr[] = {
	{ 0xd, 0, { 0x602e7, 11008, 11008, 0 } },
	{ 0xd, 1, { 0x1f, 0, 0, 0 } },
	{ 0xd, 2, { 256, 576, 0, 0 } },
	{ 0xd, 5, { 64, 1088, 0, 0 } },
	{ 0xd, 6, { 512, 1152, 0, 0 } },
	{ 0xd, 7, { 1024, 1664, 0, 0 } },
	{ 0xd, 9, { 8, 2688, 0, 0 } },
	{ 0xd, 17, { 64, 2752, 0x2, 0 } },
	{ 0xd, 18, { 8192, 2816, 0x6, 0 } },
	{ 0x1d, 0, { 1, 0, 0, 0 } },
	{ 0x1d, 1, { 0x04002000, 0x00080040, 0x00000010, 0 } },
	{ 0x1e, 0, { 0, 0x00004010, 0, 0 } },
};

/* An xs_cpuid_fn over a table; absent leaves read as zeros. */
static void table_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	const struct table *t = ctx;
	unsigned int i;

	memset(r, 0, 4 * sizeof(r[0]));
	for (i = 0; i < t->n; i++)
		if (t->leaves[i].leaf == leaf && t->leaves[i].subleaf == subleaf)
			memcpy(r, t->leaves[i].r, 4 * sizeof(r[0]));
}

static const struct table spr_table = { spr, ARRAY_LEN(spr) };

static void spr_info(struct amx_info *info, struct xs_layout *l)
{
	char why[256];

	if (!amx_info_from_cpuid(info, table_cpuid, (void *)&spr_table, why, sizeof(why))) {
		printf("# %s\n", why);
		abort();
	}
	xs_layout_from_cpuid(l, table_cpuid, (void *)&spr_table);
}

TEST(cpuid_sapphire_rapids)
{
	struct amx_info info;
	char why[256] = "";

	ASSERT_TRUE(amx_info_from_cpuid(&info, table_cpuid, (void *)&spr_table, why,
					sizeof(why))) {
		TH_LOG("%s", why);
	}
	EXPECT_EQ(1, info.max_palette);
	EXPECT_EQ(8192, info.total_tile_bytes);
	EXPECT_EQ(1024, info.bytes_per_tile);
	EXPECT_EQ(64, info.bytes_per_row);
	EXPECT_EQ(8, info.max_names);
	EXPECT_EQ(16, info.max_rows);
	EXPECT_EQ(16, info.tmul_maxk);
	EXPECT_EQ(64, info.tmul_maxn);
	EXPECT_EQ(64, info.tilecfg_size);
	EXPECT_EQ(8192, info.tiledata_size);
	EXPECT_TRUE(info.xfd);
	EXPECT_TRUE(info.tiledata_xfd);
}

/* Copy the SPR table, with one register of one leaf replaced. */
static void patched(struct leaf *out, uint32_t leaf, uint32_t subleaf, unsigned int reg,
		    uint32_t val)
{
	unsigned int i;

	memcpy(out, spr, sizeof(spr));
	for (i = 0; i < ARRAY_LEN(spr); i++)
		if (out[i].leaf == leaf && out[i].subleaf == subleaf)
			out[i].r[reg] = val;
}

TEST(cpuid_rejects_what_kvmfpu_cannot_drive)
{
	static const struct {
		uint32_t leaf, subleaf, reg, val;
		const char *why;
	} cases[] = {
		{ 0x1d, 0, 0, 0, "max palette" },			/* no palette 1 */
		{ 0x1d, 1, 0, 0x08002000, "contradicts" },		/* 2048 bytes per tile */
		{ 0x1d, 1, 1, 0x00080020, "contradicts" },		/* 32 bytes per row */
		{ 0x1d, 1, 1, 0x00100040, "1-8 tiles" },		/* 16 tiles */
		{ 0x1d, 1, 2, 0x20, "1-8 tiles" },			/* 32 rows */
		{ 0xd, 18, 0, 4096, "0xD.18 size" },			/* XSAVE size disagrees */
		{ 0xd, 17, 0, 128, "0xD.17 size" },
	};
	struct leaf t[ARRAY_LEN(spr)];
	struct table tab = { t, ARRAY_LEN(t) };
	struct amx_info info;
	unsigned int i;
	char why[256];

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		patched(t, cases[i].leaf, cases[i].subleaf, cases[i].reg, cases[i].val);
		why[0] = '\0';
		EXPECT_FALSE(amx_info_from_cpuid(&info, table_cpuid, &tab, why, sizeof(why))) {
			TH_LOG("case %u accepted", i);
		}
		EXPECT_NE(NULL, strstr(why, cases[i].why)) {
			TH_LOG("case %u: reason '%s' lacks '%s'", i, why, cases[i].why);
		}
	}
}

TEST(tilecfg_encoding)
{
	struct amx_tilecfg c = { .palette = 1, .start_row = 3 }, back;
	uint8_t raw[AMX_TILECFG_SIZE];
	unsigned int i;

	for (i = 0; i < AMX_NR_TILES; i++) {
		c.rows[i] = 1 + i;
		c.colsb[i] = 0x104 + 4 * i;	/* > 255: both bytes of the field matter */
	}
	amx_tilecfg_encode(&c, raw);
	/* SDM Vol. 2, LDTILECFG, Table 3-10 (the 64-byte configuration; STTILECFG stores the
	 * same): byte 0 palette, 1 start_row, 2-15 reserved, 16-47 colsb of tiles 0-15 (16 bits,
	 * little endian), 48-63 rows of tiles 0-15. */
	EXPECT_EQ(1, raw[0]);
	EXPECT_EQ(3, raw[1]);
	for (i = 2; i < 16; i++)
		EXPECT_EQ(0, raw[i]);
	for (i = 0; i < AMX_NR_TILES; i++) {
		EXPECT_EQ((0x104 + 4 * i) & 0xff, raw[16 + 2 * i]);
		EXPECT_EQ(0x01, raw[17 + 2 * i]);
		EXPECT_EQ(1 + i, raw[48 + i]);
	}
	for (i = AMX_NR_TILES; i < AMX_CFG_TILES; i++) {
		EXPECT_EQ(0, raw[16 + 2 * i]);
		EXPECT_EQ(0, raw[17 + 2 * i]);
		EXPECT_EQ(0, raw[48 + i]);
	}
	amx_tilecfg_decode(raw, &back);
	EXPECT_EQ(0, memcmp(&c, &back, sizeof(c)));
}

static void full_cfg(uint8_t raw[AMX_TILECFG_SIZE])
{
	struct amx_tilecfg c = { .palette = 1 };
	unsigned int i;

	for (i = 0; i < AMX_NR_TILES; i++) {
		c.rows[i] = 16;
		c.colsb[i] = 64;
	}
	amx_tilecfg_encode(&c, raw);
}

TEST(tilecfg_valid_accepts)
{
	struct amx_info info;
	struct xs_layout l;
	uint8_t raw[AMX_TILECFG_SIZE];
	struct amx_tilecfg c = { .palette = 1 };
	char why[256] = "";
	unsigned int seed;

	spr_info(&info, &l);
	full_cfg(raw);
	EXPECT_TRUE(amx_tilecfg_valid(raw, &info, why, sizeof(why))) TH_LOG("%s", why);

	/* Palette 0 is LDTILECFG's way to put the tiles in init state. */
	memset(raw, 0, sizeof(raw));
	EXPECT_TRUE(amx_tilecfg_valid(raw, &info, why, sizeof(why))) TH_LOG("%s", why);

	/* Unused tiles (rows and colsb zero) next to the smallest usable one. */
	c.rows[3] = 1;
	c.colsb[3] = 4;
	amx_tilecfg_encode(&c, raw);
	EXPECT_TRUE(amx_tilecfg_valid(raw, &info, why, sizeof(why))) TH_LOG("%s", why);

	/* Every configuration the pattern generator makes must load (property over seeds). */
	for (seed = 0; seed < 256; seed++) {
		struct pattern_key k = { .seed = seed, .round = seed % 7, .salt = seed % 3 };
		struct ximage img;

		ASSERT_EQ(0, ximage_alloc(&img, &l, XS_MASK_FPSSE | XS_MASK_AMX, false));
		pattern_fill_image(&img, XS_MASK_AMX, &k);
		EXPECT_TRUE(amx_tilecfg_valid(ximage_comp(&img, XS_XTILECFG), &info, why,
					      sizeof(why))) {
			TH_LOG("seed %u: %s", seed, why);
		}
		ximage_free(&img);
	}
}

TEST(tilecfg_valid_rejects)
{
	static const struct {
		unsigned int byte;
		uint8_t val;
		const char *why;
	} cases[] = {
		{ 0, 2, "palette 2" },			/* > max palette 1: #GP */
		{ 1, 1, "start_row" },
		{ 5, 1, "reserved byte 5" },		/* reserved bytes 2-15: #GP */
		{ 15, 0x80, "reserved byte 15" },
		{ 48, 17, "exceeds" },			/* tmm0 rows 17 > max_rows 16 */
		{ 16, 68, "exceeds" },			/* tmm0 colsb 68 > bytes_per_row 64 */
		{ 16 + 2 * 8, 4, "slot 8" },		/* colsb of slot 8 >= max_names */
		{ 48 + 15, 1, "slot 15" },		/* rows of slot 15 */
		{ 16, 6, "multiple of 4" },		/* tmm0 colsb 6 */
	};
	struct amx_info info;
	struct xs_layout l;
	uint8_t raw[AMX_TILECFG_SIZE];
	char why[256];
	unsigned int i;

	spr_info(&info, &l);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		full_cfg(raw);
		raw[cases[i].byte] = cases[i].val;
		why[0] = '\0';
		EXPECT_FALSE(amx_tilecfg_valid(raw, &info, why, sizeof(why))) {
			TH_LOG("case %u (byte %u = 0x%x) accepted", i, cases[i].byte, cases[i].val);
		}
		EXPECT_NE(NULL, strstr(why, cases[i].why)) {
			TH_LOG("case %u: reason '%s' lacks '%s'", i, why, cases[i].why);
		}
	}
	/* rows without colsb: a tile that could never be used. */
	full_cfg(raw);
	raw[16] = raw[17] = 0;
	EXPECT_FALSE(amx_tilecfg_valid(raw, &info, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "both"));
}

/*
 * TILELOADD (SDM Vol. 2, pseudocode: write_row_and_zero, zero_upper_rows): colsb bytes of
 * each of the first rows rows come from memory, the rest of every row and every further row
 * up to max_rows is zeroed.
 */
TEST(tiles_apply_cfg)
{
	struct amx_tilecfg c = { .palette = 1 };
	struct amx_info info;
	struct xs_layout l;
	static uint8_t data[8192];
	unsigned int t, r, b;

	spr_info(&info, &l);
	c.rows[0] = 3;
	c.colsb[0] = 8;
	/* tmm1 unused */
	c.rows[2] = 16;
	c.colsb[2] = 4;
	c.rows[7] = 16;
	c.colsb[7] = 64;
	for (t = 3; t < 7; t++) {
		c.rows[t] = t;
		c.colsb[t] = 4 * t;
	}
	memset(data, 0xab, sizeof(data));
	amx_tiles_apply_cfg(data, &c, &info);
	for (t = 0; t < 8; t++) {
		unsigned int rows = c.rows[t], colsb = c.colsb[t];

		for (r = 0; r < 16; r++)
			for (b = 0; b < 64; b++) {
				uint8_t want = r < rows && b < colsb ? 0xab : 0;

				ASSERT_EQ(want, data[t * 1024 + r * 64 + b]) {
					TH_LOG("tmm%u row %u byte %u", t, r, b);
				}
			}
	}

	/* Palette 0: no tile configured, all zero. */
	memset(data, 0xab, sizeof(data));
	c.palette = 0;
	amx_tiles_apply_cfg(data, &c, &info);
	for (b = 0; b < sizeof(data); b++)
		ASSERT_EQ(0, data[b]);
}

/*
 * On an image the configuration that counts is the image's own XTILECFG, and only while its
 * XSTATE_BV bit says it is in use: with XSTATE_BV[17] clear the configuration is in its
 * initial state (palette 0), whatever bytes the area holds, so no tile is configured.
 */
TEST(apply_cfg_follows_xstate_bv)
{
	struct pattern_key k = { .seed = 3 };
	struct amx_info info;
	struct xs_layout l;
	struct ximage img;
	uint8_t *data;
	unsigned int b, nonzero = 0;

	spr_info(&info, &l);
	ASSERT_EQ(0, ximage_alloc(&img, &l, XS_MASK_FPSSE | XS_MASK_AMX, false));
	pattern_fill_image(&img, XS_MASK_AMX, &k);
	ximage_set_xstate_bv(&img, XS_BIT(XS_XTILEDATA));
	amx_image_apply_cfg(&img, &info);
	data = ximage_comp(&img, XS_XTILEDATA);
	for (b = 0; b < 8192; b++)
		nonzero += data[b] != 0;
	EXPECT_EQ(0, nonzero);

	pattern_fill_image(&img, XS_MASK_AMX, &k);
	amx_image_apply_cfg(&img, &info);
	for (b = 0; b < 8192; b++)
		nonzero += data[b] != 0;
	EXPECT_LT(0, nonzero);
	ximage_free(&img);
}

/*
 * Where the AMX components sit. Standard format: CPUID 0xD.17/18 EBX (2752, 2816). Compacted
 * (SDM Vol. 1, 13.4.3): after the previous present component, rounded up to 64 because
 * 0xD.17/18 ECX[1] is set; worked out by hand:
 *   x87|SSE|AMX (0x60003):       XTILECFG 576 (already aligned) .. 640, XTILEDATA 640 .. 8832
 *   x87|SSE|PKRU|AMX (0x60203):  PKRU 576 .. 584, XTILECFG 640 .. 704, XTILEDATA 704 .. 8896
 *   x87|SSE|AVX|AMX (0x60007):   AVX 576 .. 832, XTILECFG 832 .. 896, XTILEDATA 896 .. 9088
 *   all of SPR (0x602e7):        ... PKRU 2432 .. 2440, XTILECFG 2496 .. 2560,
 *                                XTILEDATA 2560 .. 10752
 * (Without the alignment rule the PKRU case would put XTILECFG at 584: the case that catches
 * a size computation that ignores ECX[1], KNOWLEDGE.md §2.4.)
 */
TEST(amx_layout_both_formats)
{
	static const struct {
		uint64_t mask;
		uint32_t cfg, data, compacted;
	} cases[] = {
		{ 0x60003, 576, 640, 8832 },
		{ 0x60203, 640, 704, 8896 },
		{ 0x60007, 832, 896, 9088 },
		{ 0x602e7, 2496, 2560, 10752 },
	};
	struct amx_info info;
	struct xs_layout l;
	unsigned int i;

	spr_info(&info, &l);
	EXPECT_EQ(2752, l.offset[XS_XTILECFG]);
	EXPECT_EQ(2816, l.offset[XS_XTILEDATA]);
	EXPECT_EQ(11008, xs_size_standard(&l, 0x602e7));
	EXPECT_EQ(11008, xs_size_standard(&l, 0x60003));
	EXPECT_EQ(2696, xs_size_standard(&l, 0x2e7));
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t xcomp = cases[i].mask & ~XS_MASK_FPSSE;
		struct ximage img;

		EXPECT_EQ(cases[i].cfg, xs_offset(&l, XS_XTILECFG, true, xcomp)) TH_LOG("case %u", i);
		EXPECT_EQ(cases[i].data, xs_offset(&l, XS_XTILEDATA, true, xcomp)) TH_LOG("case %u", i);
		EXPECT_EQ(cases[i].compacted, xs_size_compacted(&l, cases[i].mask)) TH_LOG("case %u", i);
		EXPECT_EQ(2752, xs_offset(&l, XS_XTILECFG, false, 0));
		EXPECT_EQ(2816, xs_offset(&l, XS_XTILEDATA, false, 0));

		ASSERT_EQ(0, ximage_alloc(&img, &l, cases[i].mask, true));
		EXPECT_EQ(cases[i].compacted, img.size);
		EXPECT_EQ(img.buf + cases[i].data, ximage_comp(&img, XS_XTILEDATA));
		EXPECT_EQ(img.buf + cases[i].cfg, ximage_comp(&img, XS_XTILECFG));
		ximage_free(&img);
	}
}

static unsigned int count_reports;
static struct xs_mismatch last;

static void count_report(void *ctx, const struct xs_mismatch *m)
{
	count_reports++;
	last = *m;
}

/*
 * The expected image after the guest loads tiles: the pattern inside each tile's rows x colsb
 * and zeros outside, a loadable configuration, XSTATE_BV = the mask; the same in the
 * compacted format after a copy; deterministic per key.
 */
TEST(expected_image_with_tiles)
{
	struct pattern_key k = { .seed = 0x1234, .round = 2 }, k2 = k;
	struct ximage exp, raw, again, comp;
	struct amx_tilecfg c;
	struct amx_info info;
	struct xs_layout l;
	uint64_t mask = XS_MASK_FPSSE | XS_BIT(XS_AVX) | XS_MASK_AMX;
	unsigned int t, r, b, outside = 0, inside = 0;
	uint8_t *e, *u;
	char why[256];

	spr_info(&info, &l);
	ASSERT_EQ(0, ximage_alloc(&exp, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&raw, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&again, &l, mask, false));
	amx_expected_image(&exp, mask, &k, &info);
	pattern_fill_image(&raw, mask, &k);
	EXPECT_EQ(mask, ximage_xstate_bv(&exp));
	ASSERT_TRUE(amx_tilecfg_valid(ximage_comp(&exp, XS_XTILECFG), &info, why, sizeof(why)));
	amx_tilecfg_decode(ximage_comp(&exp, XS_XTILECFG), &c);
	EXPECT_EQ(1, c.palette);
	e = ximage_comp(&exp, XS_XTILEDATA);
	u = ximage_comp(&raw, XS_XTILEDATA);
	for (t = 0; t < 8; t++)
		for (r = 0; r < 16; r++)
			for (b = 0; b < 64; b++) {
				unsigned int o = t * 1024 + r * 64 + b;

				if (r < c.rows[t] && b < c.colsb[t]) {
					ASSERT_EQ(u[o], e[o]);
					inside++;
				} else {
					ASSERT_EQ(0, e[o]);
					outside += u[o] != 0;
				}
			}
	/* The pattern really had bytes there to zero, and the tiles are not trivially empty. */
	EXPECT_LT(0, outside);
	EXPECT_LT(0, inside);

	/* Same key, same image; another salt, other tiles. */
	amx_expected_image(&again, mask, &k, &info);
	EXPECT_EQ(0, memcmp(exp.buf, again.buf, exp.size));
	k2.salt = 1;
	amx_expected_image(&again, mask, &k2, &info);
	EXPECT_NE(0, memcmp(ximage_comp(&exp, XS_XTILEDATA), ximage_comp(&again, XS_XTILEDATA),
			    8192));

	/* Into the compacted format and compared back: nothing differs. */
	ASSERT_EQ(0, ximage_alloc(&comp, &l, mask, true));
	ximage_copy_comps(&comp, &exp, mask);
	count_reports = 0;
	EXPECT_EQ(0, ximage_diff(&exp, &comp, mask, "unit", count_report, NULL));
	EXPECT_EQ(0, memcmp(ximage_comp(&comp, XS_XTILEDATA), e, 8192));

	ximage_free(&exp);
	ximage_free(&raw);
	ximage_free(&again);
	ximage_free(&comp);
}

/* One wrong byte in tmm3, row 2, byte 5: the diff names the tile, the byte and the offset. */
TEST(diff_names_tile_byte)
{
	struct pattern_key k = { .seed = 7 };
	struct ximage exp, act;
	struct amx_info info;
	struct xs_layout l;
	uint8_t *p;

	spr_info(&info, &l);
	ASSERT_EQ(0, ximage_alloc(&exp, &l, XS_MASK_FPSSE | XS_MASK_AMX, false));
	ASSERT_EQ(0, ximage_alloc(&act, &l, XS_MASK_FPSSE | XS_MASK_AMX, false));
	amx_expected_image(&exp, XS_MASK_AMX, &k, &info);
	memcpy(act.buf, exp.buf, exp.size);
	p = ximage_comp(&act, XS_XTILEDATA) + 3 * 1024 + 2 * 64 + 5;
	*p ^= 0x10;
	count_reports = 0;
	EXPECT_EQ(1, ximage_diff(&exp, &act, XS_MASK_AMX, "unit", count_report, NULL));
	EXPECT_EQ(1, count_reports);
	EXPECT_EQ(XS_XTILEDATA, last.comp);
	EXPECT_STREQ("tmm3", last.reg);
	EXPECT_EQ(2 * 64 + 5, last.first_byte);
	EXPECT_EQ(2816 + 3 * 1024, last.offset);
	ximage_free(&exp);
	ximage_free(&act);
}

/*
 * After TILERELEASE KVM may report the tile components with XSTATE_BV bits clear, or set
 * with all-zero data (XSAVE may save a component that is in its initial configuration): the
 * diff treats both as init state, and live tiles as not.
 */
TEST(init_tiles_either_way)
{
	struct pattern_key k = { .seed = 9 };
	struct ximage init, zeros, live;
	struct amx_info info;
	struct xs_layout l;
	uint64_t mask = XS_MASK_FPSSE | XS_MASK_AMX;

	spr_info(&info, &l);
	ASSERT_EQ(0, ximage_alloc(&init, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&zeros, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&live, &l, mask, false));
	ximage_init_state(&init, XS_MASK_AMX);
	ximage_set_xstate_bv(&zeros, XS_MASK_AMX);	/* bits set, data all zero */
	amx_expected_image(&live, XS_MASK_AMX, &k, &info);
	count_reports = 0;
	EXPECT_EQ(0, ximage_diff(&init, &zeros, XS_MASK_AMX, "unit", count_report, NULL));
	EXPECT_LT(0, ximage_diff(&init, &live, XS_MASK_AMX, "unit", count_report, NULL));
	ximage_free(&init);
	ximage_free(&zeros);
	ximage_free(&live);
}

/* What the guest's STTILECFG and TILESTORED of tmm0-7 write into @save, from @regs. */
static void guest_stores(struct ximage *save, const struct ximage *regs,
			 const struct amx_info *info)
{
	const uint8_t *cfg_raw = ximage_comp(regs, XS_XTILECFG);
	const uint8_t *src = ximage_comp(regs, XS_XTILEDATA);
	uint8_t *dst = ximage_comp(save, XS_XTILEDATA);
	struct amx_tilecfg c;
	unsigned int t, r;

	memcpy(ximage_comp(save, XS_XTILECFG), cfg_raw, AMX_TILECFG_SIZE);
	amx_tilecfg_decode(cfg_raw, &c);
	for (t = 0; t < info->max_names; t++)
		for (r = 0; r < c.rows[t]; r++)
			memcpy(dst + t * info->bytes_per_tile + r * info->bytes_per_row,
			       src + t * info->bytes_per_tile + r * info->bytes_per_row,
			       c.colsb[t]);
}

/*
 * Issue 9, item 7: a check of what the guest stored must be able to fail. The guest's tiles
 * are in init state (all zero) under a live configuration, as after XFD disarms a tile
 * component KVM reverted: with a zeroed save area (the old check) a guest that stored
 * nothing at all compares equal, 0 differences; with the canary-prepared area and the
 * stored view, the missing store is seen in every tile, a correct store compares equal, and
 * a byte written outside a tile's rows x colsb is seen too.
 */
TEST(store_check_sees_a_missing_store)
{
	struct pattern_key k = { .seed = 5 };
	struct ximage regs, view, save;
	struct amx_tilecfg c;
	struct amx_info info;
	struct xs_layout l;
	uint64_t mask = XS_MASK_FPSSE | XS_MASK_AMX;
	unsigned int t;

	spr_info(&info, &l);
	ASSERT_EQ(0, ximage_alloc(&regs, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&view, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&save, &l, mask, false));
	amx_expected_image(&regs, XS_MASK_AMX, &k, &info);
	memset(ximage_comp(&regs, XS_XTILEDATA), 0, 8192);	/* init tiles, same config */
	ximage_set_xstate_bv(&save, XS_MASK_AMX);

	/* The old check: zeroed save area, the guest stored no tile. Indistinguishable. */
	memcpy(ximage_comp(&save, XS_XTILECFG), ximage_comp(&regs, XS_XTILECFG), 64);
	count_reports = 0;
	EXPECT_EQ(0, ximage_diff(&regs, &save, XS_BIT(XS_XTILEDATA), "unit", count_report,
				 NULL));

	/* The canary: the same missing store differs in every tile the config uses. */
	memcpy(view.buf, regs.buf, regs.size);
	amx_image_stored_view(&view, &info);
	amx_image_prepare_store(&save);
	amx_tilecfg_decode(ximage_comp(&regs, XS_XTILECFG), &c);
	for (t = 0; t < 8; t++)
		ASSERT_NE(0, c.rows[t]);	/* the pattern's config uses every tile */
	EXPECT_EQ(8, ximage_diff(&view, &save, XS_BIT(XS_XTILEDATA), "unit", count_report,
				 NULL));
	EXPECT_LT(0, ximage_diff(&view, &save, XS_BIT(XS_XTILECFG), "unit", count_report,
				 NULL));

	/* The guest stores: equal, the configuration too. */
	guest_stores(&save, &regs, &info);
	EXPECT_EQ(0, ximage_diff(&view, &save, XS_MASK_AMX, "unit", count_report, NULL));

	/* A byte beyond tmm0's colsb in its first row was written: seen. */
	if (c.colsb[0] < 64) {
		ximage_comp(&save, XS_XTILEDATA)[c.colsb[0]] = 0;
		EXPECT_EQ(1, ximage_diff(&view, &save, XS_MASK_AMX, "unit", count_report, NULL));
		EXPECT_STREQ("tmm0", last.reg);
	}
	ximage_free(&regs);
	ximage_free(&view);
	ximage_free(&save);
}

/*
 * Issue 9, item 4: the replay arguments name the test as the harness's -r matches it
 * (fixture.variant.test, or fixture.test for a fixture without variants: kselftest_harness.h
 * test_enabled()), with the seed in the hex form --seed takes.
 */
TEST(replay_args)
{
	char buf[128];

	kvmfpu_replay_args(buf, sizeof(buf), 0x1234, "xfd", "host_set", "xstate_bv_armed");
	EXPECT_STREQ("--seed 0x1234 -r xfd.host_set.xstate_bv_armed", buf);
	kvmfpu_replay_args(buf, sizeof(buf), 1, "perm", "", "request_grows");
	EXPECT_STREQ("--seed 0x1 -r perm.request_grows", buf);
	kvmfpu_replay_args(buf, sizeof(buf), 1, "global", NULL, "restore_without_amx");
	EXPECT_STREQ("--seed 0x1 -r global.restore_without_amx", buf);
}

TEST_HARNESS_MAIN
