// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_cpuid_kept_test: the decision whether KVM kept the guest CPUID set with
 * KVM_SET_CPUID2 (kvmfpu_vm_cpuid_kept()), on synthetic KVM_SET_CPUID2 / KVM_GET_CPUID2 tables.
 *
 * The swap and uABI checks take the guest's permitted xfeatures from the CPUID they set. A KVM
 * that does not keep it (kvm_pvm returns the host's leaves 1 and 0xD from KVM_GET_CPUID2)
 * would otherwise be judged against a guest it never ran, or, with the expected value read
 * back from KVM, against itself; those checks must skip there and run everywhere else. So:
 * an unchanged table is kept, a change in any bit the checks rest on is not (and is named),
 * and bits KVM rewrites by design (OSXSAVE, OSPKE follow CR4; 0xD.0 EBX follows XCR0:
 * kvm_update_cpuid_runtime()) or that kvmfpu does not set do not count. No /dev/kvm needed.
 */
#include <stdlib.h>
#include <string.h>

#include "kvmfpu_vm.h"

#include "kselftest_harness.h"

struct leaf {
	uint32_t function, index, eax, ebx, ecx, edx;
};

/*
 * Other bits of CPUID.1:ECX and .7.0:EBX/ECX, set as a host's would be: only the bits
 * kvmfpu decides may matter, so these must not.
 */
#define ECX1_BASE	(0x76f8320bu & ~(XSAVE | OSXSAVE | AVX))
#define EBX7_BASE	(0x219c07a9u & ~(1u << 16 | 1u << 17 | 1u << 30 | 1u << 31))
#define ECX7_BASE	(0x0040069cu & ~(1u << 3 | 1u << 4))
#define XSAVE		(1u << 26)
#define OSXSAVE		(1u << 27)
#define AVX		(1u << 28)

/* A guest with XSAVE and AVX, no AVX-512, no PKU: what kvmfpu sets for XCR0 0x7. */
static const struct leaf avx_guest[] = {
	{ 0x1, 0, 0x00a20f10, 0x00000800, ECX1_BASE | XSAVE | AVX, 0x178bfbff },
	{ 0x7, 0, 0, EBX7_BASE, ECX7_BASE,
	  0 },
	{ 0xd, 0, 0x7, 0x340, 0x340, 0 },
	{ 0xd, 1, 0xf, 0, 0, 0 },
};

struct cpuid_case {
	const char *name;
	struct leaf change;	/* replaces the leaf of the same function/index in "got" */
	bool drop;		/* "got" lacks the leaf instead */
	bool kept;
	const char *named;	/* in the reason when not kept */
};

static const struct cpuid_case cases[] = {
	/* KVM updates these from CR4 and XCR0 itself. */
	{ "osxsave", { 0x1, 0, 0x00a20f10, 0x00000800,
		       ECX1_BASE | XSAVE | OSXSAVE | AVX, 0x178bfbff }, false, true },
	{ "ospke", { 0x7, 0, 0, EBX7_BASE,
		     ECX7_BASE | 1u << 4, 0 }, false, true },
	{ "0xd.0 ebx", { 0xd, 0, 0x7, 0x240, 0x340, 0 }, false, true },
	/* Not set by kvmfpu, not rested on. */
	{ "0xd.1", { 0xd, 1, 0x1, 0, 0, 0 }, false, true },
	{ "leaf 1 edx", { 0x1, 0, 0x00a20f10, 0x00000800, ECX1_BASE | XSAVE | AVX, 0 },
	  false, true },
	/* kvm_pvm: the host's 0xD.0 (Zen 4: x87, SSE, AVX, AVX-512, PKRU). */
	{ "host xcr0", { 0xd, 0, 0x2e7, 0x988, 0x988, 0 }, false, false, "0xd.0:eax" },
	{ "xcr0 high", { 0xd, 0, 0x7, 0x340, 0x340, 1 }, false, false, "0xd.0:edx" },
	/* 0xD.0 ECX, the size for all of 0xD.0 EDX:EAX: KVM passes it through. */
	{ "0xd.0 ecx", { 0xd, 0, 0x7, 0x340, 0x988, 0 }, false, false,
	  "0xd.0:ecx size of XCR0[63:0] set 0x340 got 0x988" },
	{ "xsave dropped", { 0x1, 0, 0x00a20f10, 0x00000800, ECX1_BASE | AVX, 0x178bfbff },
	  false, false, "0x1.0:ecx XSAVE, AVX set 0x14000000 got 0x10000000" },
	{ "avx512 added", { 0x7, 0, 0, EBX7_BASE | 1u << 16, ECX7_BASE, 0 }, false, false,
	  "0x7.0:ebx AVX-512" },
	{ "pku added", { 0x7, 0, 0, EBX7_BASE,
			 ECX7_BASE | 8u, 0 }, false, false, "0x7.0:ecx PKU" },
	{ "amx added", { 0x7, 0, 0, EBX7_BASE,
			 ECX7_BASE, 1u << 24 }, false, false, "0x7.0:edx AMX-TILE" },
	/* A leaf that is gone reads as zeros: its bits were lost. */
	{ "leaf 0xd gone", { 0xd, 0 }, true, false, "0xd.0:eax XCR0[31:0] set 0x7 got 0x0" },
};

static struct kvm_cpuid2 *table(const struct leaf *l, unsigned int n,
				 const struct cpuid_case *c)
{
	struct kvm_cpuid2 *t = calloc(1, sizeof(*t) + n * sizeof(t->entries[0]));
	unsigned int i;

	for (i = 0; t && i < n; i++) {
		struct leaf x = l[i];

		if (c && c->change.function == x.function && c->change.index == x.index) {
			if (c->drop)
				continue;
			x = c->change;
		}
		t->entries[t->nent++] = (struct kvm_cpuid_entry2){
			.function = x.function, .index = x.index, .eax = x.eax, .ebx = x.ebx,
			.ecx = x.ecx, .edx = x.edx,
		};
	}
	return t;
}

TEST(unchanged_is_kept)
{
	struct kvm_cpuid2 *set = table(avx_guest, ARRAY_SIZE(avx_guest), NULL);
	struct kvm_cpuid2 *got = table(avx_guest, ARRAY_SIZE(avx_guest), NULL);
	char why[256] = "x";

	ASSERT_TRUE(set && got);
	EXPECT_TRUE(kvmfpu_vm_cpuid_kept(set, got, why, sizeof(why)));
	EXPECT_STREQ("", why);
	free(set);
	free(got);
}

TEST(each_change)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct cpuid_case *c = &cases[i];
		struct kvm_cpuid2 *set = table(avx_guest, ARRAY_SIZE(avx_guest), NULL);
		struct kvm_cpuid2 *got = table(avx_guest, ARRAY_SIZE(avx_guest), c);
		char why[256] = "";
		bool kept;

		ASSERT_TRUE(set && got);
		kept = kvmfpu_vm_cpuid_kept(set, got, why, sizeof(why));
		EXPECT_EQ(c->kept, kept)
			TH_LOG("%s: %s", c->name, why);
		if (!c->kept) {
			EXPECT_NE(NULL, strstr(why, c->named))
				TH_LOG("%s: \"%s\" does not name \"%s\"", c->name, why, c->named);
			EXPECT_NE(NULL, strstr(why, "KVM_GET_CPUID2"))
				TH_LOG("%s: %s", c->name, why);
		} else {
			EXPECT_STREQ("", why);
		}
		free(set);
		free(got);
	}
}

/* Several lost leaves are all named; a short buffer is truncated, never overrun. */
TEST(several_and_short_buffer)
{
	static const struct cpuid_case pvm = { "pvm", { 0xd, 0, 0x2e7, 0x988, 0x988, 0 } };
	struct kvm_cpuid2 *set = table(avx_guest, ARRAY_SIZE(avx_guest), NULL);
	struct kvm_cpuid2 *got = table(avx_guest, ARRAY_SIZE(avx_guest), &pvm);
	char why[256], small[24];

	ASSERT_TRUE(set && got);
	got->entries[1].ecx |= 8u;	/* leaf 7: PKU too */
	EXPECT_FALSE(kvmfpu_vm_cpuid_kept(set, got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "0x7.0:ecx PKU"));
	EXPECT_NE(NULL, strstr(why, "0xd.0:eax XCR0[31:0] set 0x7 got 0x2e7"));
	memset(small, 'z', sizeof(small));
	EXPECT_FALSE(kvmfpu_vm_cpuid_kept(set, got, small, sizeof(small) - 4));
	EXPECT_EQ(strlen(small), sizeof(small) - 5);
	EXPECT_EQ('z', small[sizeof(small) - 1]);
	free(set);
	free(got);
}

TEST_HARNESS_MAIN
