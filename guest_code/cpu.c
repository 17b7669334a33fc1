// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's own accessors of CPU state that is not FPU data: the stage report (a 32-bit OUT
 * to KVMFPU_EXIT_PORT, guest_fpu.h; never the library's ucall(), guest_code/README.md), CPUID,
 * and CR0 and CR4, which the AMX guest (CR0.TS) and the XCR0 guest (CR4.OSXSAVE) change.
 */
#include "guest_code.h"

void guest_exit(uint32_t stage)
{
	asm volatile("outl %%eax, %%dx" : : "a"(stage), "d"(KVMFPU_EXIT_PORT) : "memory");
}

void guest_cpuid_count(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
		     : "a"(leaf), "c"(subleaf));
}

uint64_t guest_read_cr0(void)
{
	uint64_t cr0;

	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	return cr0;
}

void guest_write_cr0(uint64_t cr0)
{
	asm volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
}

uint64_t guest_read_cr4(void)
{
	uint64_t cr4;

	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	return cr4;
}

void guest_write_cr4(uint64_t cr4)
{
	asm volatile("mov %0, %%cr4" : : "r"(cr4) : "memory");
}
