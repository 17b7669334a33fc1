/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CPUID leaf 0xD as real CPUs report it, served to xs_layout_from_cpuid() through an
 * xs_cpuid_fn, so the unit tests exercise the library on layouts this machine does not have.
 *
 * Where the numbers come from:
 *  - The meaning of the registers: SDM Vol. 1 §13.2 and Vol. 2A Table 3-8 (CPUID leaf 0DH):
 *    0xD.0 EDX:EAX = supported XCR0 bits, ECX = size for all of them (standard format);
 *    0xD.i EAX = size, EBX = standard-format offset, ECX[1] = 64-byte aligned when compacted
 *    (SDM Vol. 1 §13.4.3), ECX[2] = XFD supported for the component.
 *  - Sizes: Linux checks each one against a C struct at boot (arch/x86/kernel/fpu/xstate.c,
 *    check_xstate_against_struct(): AVX 256, BNDREGS 64, BNDCSR 64, opmask 64, ZMM_Hi256 512,
 *    Hi16_ZMM 1024, PKRU 8, XTILECFG 64; XTILEDATA = 8 tiles x 1024 bytes, from CPUID 0x1D
 *    in check_xtile_data_against_struct()). KVM applies ECX[1] the same way when it computes
 *    0xD.0 EBX (arch/x86/kvm/cpuid.c, xstate_required_size()).
 *  - Intel's standard-format offsets (AVX 576, BNDREGS 960, BNDCSR 1024, opmask 1088,
 *    ZMM_Hi256 1152, Hi16_ZMM 1664, PKRU 2688, XTILECFG 2752, XTILEDATA 2816): the values
 *    issue 2 gives, and the layout QEMU's x86 CPU models assume for Intel (its APX patch:
 *    MPX "state component indices 3 and 4 ... located at an offset of 960 bytes into an
 *    un-compacted XSAVE buffer"). Derived, not copied from a CPUID dump: each table's 0xD.0
 *    ECX is its last component's offset + size (2688 + 8 = 2696; 2816 + 8192 = 11008),
 *    XTILECFG at 2752 is 2696 rounded up to 64, and 0xD.0 EBX is set to ECX (XCR0 = all
 *    supported). Which CPUs have which components: Skylake-SP has MPX, AVX-512 and PKU;
 *    Intel dropped MPX from Ice Lake on; Sapphire Rapids adds AMX.
 *  - Sapphire Rapids' ECX bits for 17 and 18 (ECX[1] set for both, ECX[2] = XFD for
 *    XTILEDATA, the state XFD exists to arm): derived from the SDM's description of AMX and
 *    XFD, not read from a dump.
 *  - The AMD table is what CPUID returned on this project's host (AMD EPYC, Zen 4, as the
 *    kvm_pvm hypervisor shows it; KNOWLEDGE.md §4) on 2026-11-26, copied verbatim but for
 *    the all-zero subleaves. It packs AVX-512 right after AVX (opmask at 832, not 1088),
 *    which is why the library must read offsets, not assume them.
 */
#ifndef KVMFPU_UNIT_CPUID_TABLES_H
#define KVMFPU_UNIT_CPUID_TABLES_H

#include <stdint.h>
#include <string.h>

#include "xstate.h"

struct cpuid_0xd_leaf {
	uint32_t subleaf, eax, ebx, ecx, edx;
};

struct test_cpu {
	const char *name;
	const struct cpuid_0xd_leaf *leaves;
	unsigned int nr_leaves;
};

enum test_cpu_id {
	CPU_ICELAKE,		/* AVX-512 + PKRU, no MPX (Ice Lake and later) */
	CPU_SKYLAKE_SP,		/* AVX-512 + PKRU + MPX */
	CPU_SAPPHIRE_RAPIDS,	/* AVX-512 + PKRU + AMX */
	CPU_ZEN4_HOST,		/* this project's host: AMD layout, PKRU hidden by the hypervisor */
	NR_TEST_CPUS,
};

#define LEAVES(a)	a, sizeof(a) / sizeof((a)[0])

static inline const struct test_cpu *test_cpu(enum test_cpu_id id)
{
	static const struct cpuid_0xd_leaf icelake[] = {
		{ 0, 0x2e7, 2696, 2696, 0 },
		{ 2, 256, 576, 0, 0 },
		{ 5, 64, 1088, 0, 0 },
		{ 6, 512, 1152, 0, 0 },
		{ 7, 1024, 1664, 0, 0 },
		{ 9, 8, 2688, 0, 0 },
	};
	static const struct cpuid_0xd_leaf skylake_sp[] = {
		{ 0, 0x2ff, 2696, 2696, 0 },
		{ 2, 256, 576, 0, 0 },
		{ 3, 64, 960, 0, 0 },
		{ 4, 64, 1024, 0, 0 },
		{ 5, 64, 1088, 0, 0 },
		{ 6, 512, 1152, 0, 0 },
		{ 7, 1024, 1664, 0, 0 },
		{ 9, 8, 2688, 0, 0 },
	};
	static const struct cpuid_0xd_leaf sapphire_rapids[] = {
		{ 0, 0x602e7, 11008, 11008, 0 },
		{ 2, 256, 576, 0, 0 },
		{ 5, 64, 1088, 0, 0 },
		{ 6, 512, 1152, 0, 0 },
		{ 7, 1024, 1664, 0, 0 },
		{ 9, 8, 2688, 0, 0 },
		{ 17, 64, 2752, 0x2, 0 },
		{ 18, 8192, 2816, 0x6, 0 },
	};
	static const struct cpuid_0xd_leaf zen4_host[] = {
		{ 0, 0xe7, 0x980, 0x980, 0 },
		{ 1, 0xf, 0x9a8, 0x1800, 0 },
		{ 2, 0x100, 0x240, 0, 0 },
		{ 5, 0x40, 0x340, 0, 0 },
		{ 6, 0x200, 0x380, 0, 0 },
		{ 7, 0x400, 0x580, 0, 0 },
		/* CET_U and CET_S: IA32_XSS components (ECX[0]), not XCR0 ones. */
		{ 11, 0x10, 0, 1, 0 },
		{ 12, 0x18, 0, 1, 0 },
	};
	static const struct test_cpu cpus[NR_TEST_CPUS] = {
		[CPU_ICELAKE] = { "icelake", LEAVES(icelake) },
		[CPU_SKYLAKE_SP] = { "skylake_sp", LEAVES(skylake_sp) },
		[CPU_SAPPHIRE_RAPIDS] = { "sapphire_rapids", LEAVES(sapphire_rapids) },
		[CPU_ZEN4_HOST] = { "zen4_host", LEAVES(zen4_host) },
	};

	return &cpus[id];
}

/* An xs_cpuid_fn over a table; @ctx is the struct test_cpu. Absent subleaves read as 0. */
static inline void test_cpu_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	const struct test_cpu *cpu = ctx;
	unsigned int i;

	memset(regs, 0, 4 * sizeof(regs[0]));
	if (leaf != 0xd)
		return;
	for (i = 0; i < cpu->nr_leaves; i++) {
		if (cpu->leaves[i].subleaf != subleaf)
			continue;
		regs[0] = cpu->leaves[i].eax;
		regs[1] = cpu->leaves[i].ebx;
		regs[2] = cpu->leaves[i].ecx;
		regs[3] = cpu->leaves[i].edx;
	}
}

static inline void test_cpu_layout(struct xs_layout *l, enum test_cpu_id id)
{
	xs_layout_from_cpuid(l, test_cpu_cpuid, (void *)test_cpu(id));
}

#endif /* KVMFPU_UNIT_CPUID_TABLES_H */
