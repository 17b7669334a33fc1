// SPDX-License-Identifier: GPL-2.0
/*
 * AVX: bits 255:128 of YMM0-15 (the YMM_Hi128 component, 16 bytes per register). VINSERTF128
 * keeps bits 127:0, which the SSE fill loaded; as a VEX instruction it zeroes bits 511:256,
 * so AVX is filled before the AVX-512 upper halves.
 */
#include "guest_code.h"
#include "regs.h"

#define YMMH_LOAD(i)	"vinsertf128 $1, 16*" #i "(%0), %%ymm" #i ", %%ymm" #i "\n\t"
#define YMMH_STORE(i)	"vextractf128 $1, %%ymm" #i ", 16*" #i "(%0)\n\t"

void guest_avx_fill(const uint8_t *area)
{
	asm volatile(REP16(YMMH_LOAD) : : "r"(area) : "memory");
}

void guest_avx_save(uint8_t *area)
{
	asm volatile(REP16(YMMH_STORE) : : "r"(area) : "memory");
}
