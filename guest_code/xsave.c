// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's own view of its state: XGETBV(0) is the XCR0 the hardware runs the guest with,
 * and XSAVE stores every component of RFBM & XCR0 that is in use, setting XSTATE_BV (and
 * leaving the rest of the header alone) in the standard format (SDM Vol. 1, 13.7). XSAVEOPT
 * stores the same image but may skip components in their initial configuration or unmodified
 * since the last XRSTOR from the same address (13.9); XSAVEC writes the compacted format,
 * skipping components in their initial configuration, and sets XCOMP_BV (13.10).
 */
#include "guest_code.h"

uint64_t guest_xgetbv0(void)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return lo | ((uint64_t)hi << 32);
}

void guest_xsave(uint8_t *img, uint64_t rfbm)
{
	asm volatile("xsave64 (%0)"
		     : : "r"(img), "a"((uint32_t)rfbm), "d"((uint32_t)(rfbm >> 32)) : "memory");
}

void guest_xsaveopt(uint8_t *img, uint64_t rfbm)
{
	asm volatile("xsaveopt64 (%0)"
		     : : "r"(img), "a"((uint32_t)rfbm), "d"((uint32_t)(rfbm >> 32)) : "memory");
}

void guest_xsavec(uint8_t *img, uint64_t rfbm)
{
	asm volatile("xsavec64 (%0)"
		     : : "r"(img), "a"((uint32_t)rfbm), "d"((uint32_t)(rfbm >> 32)) : "memory");
}
