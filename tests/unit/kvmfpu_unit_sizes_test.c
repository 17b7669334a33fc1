// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_sizes_test: what CPUID leaf 0xD must say for an XCR0 (xs_size_standard() and
 * xs_size_compacted() over xs_layout_from_cpuid(), lib/xstate.c), and which XCR0 values KVM
 * must accept (lib/xsizes.c), on the CPUID tables of real CPUs (cpuid_tables.h).
 *
 * kvmfpu_xcr0_test compares KVM's CPUID 0xD.0/0xD.1 EBX with xs_size_standard() and
 * xs_size_compacted(); if those were wrong in the same way as KVM's xstate_required_size() (for
 * instance both ignoring the 64-byte alignment of the compacted format, the bug fixed by
 * "KVM: x86: Fix xstate_required_size() to follow XSTATE alignment rule"), the test would
 * pass. So the expected values here are worked out by hand from the tables, step by step in
 * the comments, not recomputed with the function under test. No /dev/kvm needed.
 */
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"

#include "cpuid_tables.h"
#include "xsizes.h"
#include "xstate.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

struct size_case {
	enum test_cpu_id cpu;
	uint64_t mask;
	uint32_t standard, compacted;
};

/*
 * Standard: the end of the highest enabled component, at least 576. Compacted: 576, then
 * each enabled component i >= 2 in order, rounded up to 64 first when 0xD.i ECX[1] is set.
 *
 * Ice Lake (AVX 576+256, opmask 1088+64, ZMM_Hi256 1152+512, Hi16_ZMM 1664+1024,
 * PKRU 2688+8; nothing asks for alignment):
 *   0x3   standard 576                     compacted 576
 *   0x7   standard 576+256 = 832           compacted 576+256 = 832
 *   0xe7  standard 1664+1024 = 2688        compacted 832+64+512+1024 = 2432
 *   0x207 standard 2688+8 = 2696           compacted 832+8 = 840
 *   0x2e7 standard 2696                    compacted 2432+8 = 2440
 * Sapphire Rapids (as Ice Lake, plus XTILECFG 2752+64 and XTILEDATA 2816+8192, both with
 * ECX[1] set):
 *   0x60207 standard 2816+8192 = 11008
 *           compacted 840 -> aligned 896, +64 = 960 -> aligned 960, +8192 = 9152
 *           (without the alignment: 840+64+8192 = 9096)
 *   0x602e7 standard 11008
 *           compacted 2440 -> aligned 2496, +64 = 2560 -> aligned 2560, +8192 = 10752
 *           (without the alignment: 2440+64+8192 = 10696)
 *   0x60007 compacted 832 (already a multiple of 64) +64 = 896, +8192 = 9088
 * Skylake-SP (as Ice Lake, plus BNDREGS 960+64, BNDCSR 1024+64):
 *   0x1f  standard 1024+64 = 1088          compacted 832+64+64 = 960
 *   0x2ff standard 2696                    compacted 960+64+512+1024+8 = 2568
 * Zen 4 as this project's host saw it (AVX 0x240+0x100, opmask 0x340+0x40, ZMM_Hi256
 * 0x380+0x200, Hi16_ZMM 0x580+0x400; IA32_XSS components CET_U 0x10 and CET_S 0x18 bytes):
 *   0xe7    standard 0x580+0x400 = 2432    compacted 576+256+64+512+1024 = 2432
 *   0x18e7  (XCR0 0xe7 | XSS 0x1800)       compacted 2432+16+24 = 2472 = 0x9a8, which is
 *           what that CPU itself reported in CPUID.(0xD,1).EBX (cpuid_tables.h)
 *   0x1807  compacted 832+16+24 = 872; standard ignores the XSS bits: 832
 */
static const struct size_case size_cases[] = {
	{ CPU_ICELAKE, 0x3, 576, 576 },
	{ CPU_ICELAKE, 0x7, 832, 832 },
	{ CPU_ICELAKE, 0xe7, 2688, 2432 },
	{ CPU_ICELAKE, 0x207, 2696, 840 },
	{ CPU_ICELAKE, 0x2e7, 2696, 2440 },
	{ CPU_SAPPHIRE_RAPIDS, 0x60207, 11008, 9152 },
	{ CPU_SAPPHIRE_RAPIDS, 0x602e7, 11008, 10752 },
	{ CPU_SAPPHIRE_RAPIDS, 0x60007, 11008, 9088 },
	{ CPU_SKYLAKE_SP, 0x1f, 1088, 960 },
	{ CPU_SKYLAKE_SP, 0x2ff, 2696, 2568 },
	{ CPU_ZEN4_HOST, 0x3, 576, 576 },
	{ CPU_ZEN4_HOST, 0xe7, 2432, 2432 },
	{ CPU_ZEN4_HOST, 0x18e7, 2432, 2472 },
	{ CPU_ZEN4_HOST, 0x1807, 832, 872 },
};

static void layout(struct xs_layout *l, enum test_cpu_id id)
{
	xs_layout_from_cpuid(l, test_cpu_cpuid, (void *)test_cpu(id));
}

TEST(sizes_match_hand_computed)
{
	struct xs_layout l;
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(size_cases); i++) {
		const struct size_case *c = &size_cases[i];

		layout(&l, c->cpu);
		EXPECT_EQ(c->standard, xs_size_standard(&l, c->mask)) {
			TH_LOG("%s mask 0x%llx: standard size", test_cpu(c->cpu)->name,
			       (unsigned long long)c->mask);
		}
		EXPECT_EQ(c->compacted, xs_size_compacted(&l, c->mask)) {
			TH_LOG("%s mask 0x%llx: compacted size", test_cpu(c->cpu)->name,
			       (unsigned long long)c->mask);
		}
	}
}

/* 0xD.0 ECX of each table is the standard size of everything it supports. */
TEST(standard_of_all_is_ecx)
{
	static const uint32_t ecx[NR_TEST_CPUS] = {
		[CPU_ICELAKE] = 2696, [CPU_SKYLAKE_SP] = 2696,
		[CPU_SAPPHIRE_RAPIDS] = 11008, [CPU_ZEN4_HOST] = 0x980,
	};
	struct xs_layout l;
	unsigned int id;

	for (id = 0; id < NR_TEST_CPUS; id++) {
		layout(&l, id);
		EXPECT_EQ(ecx[id], xs_size_standard(&l, l.supported)) {
			TH_LOG("%s", test_cpu(id)->name);
		}
	}
}

TEST(layout_reads_xss_and_compacted_support)
{
	struct xs_layout l;

	layout(&l, CPU_ZEN4_HOST);
	EXPECT_EQ(0xe7, l.supported);
	EXPECT_EQ(0x1800, l.xss);
	EXPECT_TRUE(xs_has_compacted(&l));
	EXPECT_EQ(0x10, l.size[11]);
	EXPECT_EQ(0x18, l.size[12]);
	EXPECT_EQ(0, l.align64);

	/* No subleaf 1 in the table: no XSAVEC/XSAVES, so no 0xD.1 EBX to check. */
	layout(&l, CPU_SAPPHIRE_RAPIDS);
	EXPECT_FALSE(xs_has_compacted(&l));
	EXPECT_EQ((1ull << 17) | (1ull << 18), l.align64);
	EXPECT_EQ(8192, l.size[18]);
	EXPECT_EQ(2816, l.offset[18]);
}

struct valid_case {
	uint64_t supported;
	unsigned int n;
	uint64_t xcr0[16];
};

/*
 * x87 always; SSE optional; YMM only with SSE; AVX-512 all three and only with YMM; MPX both
 * or neither; AMX both or neither; PKRU optional. So with base in {0x1, 0x3, 0x7, 0xe7}:
 *   0x207 (the tcg lab):  {0x1, 0x3, 0x7} x {0, PKRU}
 *   0xe7 (the Bochs lab): {0x1, 0x3, 0x7, 0xe7}
 *   0x2ff (Skylake-SP):   {0x1, 0x3, 0x7, 0xe7} x {0, MPX 0x18} x {0, PKRU}
 */
static const struct valid_case valid_cases[] = {
	{ 0x207, 6, { 0x1, 0x3, 0x7, 0x201, 0x203, 0x207 } },
	{ 0xe7, 4, { 0x1, 0x3, 0x7, 0xe7 } },
	{ 0x3, 2, { 0x1, 0x3 } },
	{ 0x2ff, 16, { 0x1, 0x3, 0x7, 0x19, 0x1b, 0x1f, 0xe7, 0xff,
		       0x201, 0x203, 0x207, 0x219, 0x21b, 0x21f, 0x2e7, 0x2ff } },
};

TEST(valid_xcr0s_are_the_hand_listed_ones)
{
	uint64_t got[64];
	unsigned int i, j, n;

	for (i = 0; i < ARRAY_LEN(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];

		n = xsz_valid_xcr0s(c->supported, got, ARRAY_LEN(got));
		ASSERT_EQ(c->n, n) {
			TH_LOG("supported 0x%llx", (unsigned long long)c->supported);
		}
		for (j = 0; j < n; j++) {
			EXPECT_EQ(c->xcr0[j], got[j]) {
				TH_LOG("supported 0x%llx, entry %u", (unsigned long long)c->supported,
				       j);
			}
		}
	}
	/* Sapphire Rapids with AMX permitted: {0x1, 0x3, 0x7, 0xe7} x {0, AMX} x {0, PKRU}. */
	EXPECT_EQ(16, xsz_valid_xcr0s(0x602e7, got, ARRAY_LEN(got)));
}

/* Each rule of __kvm_set_xcr(), with the reason that must be given. */
static const struct {
	uint64_t xcr0, supported;
	const char *why;
} kvm_rejects[] = {
	{ 0x0, 0x207, "bit 0 (x87) must be set" },
	{ 0x206, 0x207, "bit 0 (x87) must be set" },
	{ 0x5, 0x207, "AVX (bit 2) requires SSE (bit 1)" },
	{ 0x205, 0x207, "AVX (bit 2) requires SSE (bit 1)" },
	{ 0x203, 0xe7, "bit 9 is not in the guest's supported XCR0 0xe7" },
	{ 0xf, 0x2ff, "MPX bits 3 and 4 must be set together" },
	{ 0x17, 0x2ff, "MPX bits 3 and 4 must be set together" },
	{ 0xe3, 0xe7, "AVX-512 bits 5-7 must be set together, and only with AVX" },
	{ 0x27, 0xe7, "AVX-512 bits 5-7 must be set together, and only with AVX" },
	{ 0xc7, 0xe7, "AVX-512 bits 5-7 must be set together, and only with AVX" },
	{ 0x20003, 0x602e7, "AMX bits 17 and 18 must be set together" },
	{ 0x40003, 0x602e7, "AMX bits 17 and 18 must be set together" },
	{ 0x8000000000000003ull, 0x207, "bit 63 is not in the guest's supported XCR0" },
	/* AMX bits without permission: KVM's supported XCR0 lacks them. */
	{ 0x60003, 0x2e7, "bit 17 is not in the guest's supported XCR0" },
};

TEST(kvm_rule_rejects_with_reason)
{
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(kvm_rejects); i++) {
		char why[160] = "";
		bool ok = xsz_kvm_accepts_xcr0(kvm_rejects[i].xcr0, kvm_rejects[i].supported,
					       why, sizeof(why));

		EXPECT_FALSE(ok) {
			TH_LOG("XCR0 0x%llx accepted", (unsigned long long)kvm_rejects[i].xcr0);
		}
		EXPECT_NE(NULL, strstr(why, kvm_rejects[i].why)) {
			TH_LOG("XCR0 0x%llx: expected \"%s\", got \"%s\"",
			       (unsigned long long)kvm_rejects[i].xcr0, kvm_rejects[i].why, why);
		}
	}
}

/* Every generated invalid value is invalid, none twice, and each rule is represented. */
TEST(invalid_xcr0s_cover_every_rule)
{
	static const uint64_t must_have[] = {
		0x0, 0x206, 0x5, 0x205, 0x27, 0x47, 0x87, 0x67, 0xa7, 0xc7, 0xe3, 0xb, 0x13,
		0x20003, 0x40003, 0x8000000000000207ull, 0x7 | 0x20, 0x43, 0x403,
	};
	struct xsz_bad_xcr0 bad[128];
	unsigned int n, i, j;
	char why[160];

	n = xsz_invalid_xcr0s(0x207, bad, ARRAY_LEN(bad));
	ASSERT_GT(n, 60);
	for (i = 0; i < n; i++) {
		EXPECT_FALSE(xsz_kvm_accepts_xcr0(bad[i].xcr0, 0x207, why, sizeof(why))) {
			TH_LOG("generated 0x%llx (%s) is valid", (unsigned long long)bad[i].xcr0,
			       bad[i].what);
		}
		for (j = 0; j < i; j++)
			EXPECT_NE(bad[i].xcr0, bad[j].xcr0);
	}
	for (i = 0; i < ARRAY_LEN(must_have); i++) {
		bool found = false;

		for (j = 0; j < n; j++)
			found |= bad[j].xcr0 == must_have[i];
		EXPECT_TRUE(found) {
			TH_LOG("0x%llx missing", (unsigned long long)must_have[i]);
		}
	}
	/* x87|SSE only: "every bit but SSE" would be 0x1, valid, and must not be listed. */
	n = xsz_invalid_xcr0s(0x3, bad, ARRAY_LEN(bad));
	for (i = 0; i < n; i++)
		EXPECT_FALSE(xsz_kvm_accepts_xcr0(bad[i].xcr0, 0x3, why, sizeof(why)));
}

TEST_HARNESS_MAIN
