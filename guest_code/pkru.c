// SPDX-License-Identifier: GPL-2.0
/*
 * PKRU: WRPKRU/RDPKRU need CR4.PKE=1 and ECX=0 (EDX=0 for WRPKRU), else #GP/#UD. The guest
 * sees the hardware register, so a missed PKRU switch on entry or exit is visible here.
 */
#include "guest_code.h"

void guest_pkru_fill(const uint8_t *area)
{
	uint32_t pkru = *(const volatile uint32_t *)area;

	asm volatile("wrpkru" : : "a"(pkru), "c"(0), "d"(0) : "memory");
}

void guest_pkru_save(uint8_t *area)
{
	uint32_t pkru, edx;

	asm volatile("rdpkru" : "=a"(pkru), "=d"(edx) : "c"(0));
	*(volatile uint32_t *)area = pkru;
}
