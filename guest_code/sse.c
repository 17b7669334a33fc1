// SPDX-License-Identifier: GPL-2.0
/*
 * SSE: XMM0-15 at their legacy-region offsets (160 + 16 * i), one explicit move per register
 * (MXCSR travels with the x87 routines' FXRSTOR/FXSAVE). Legacy SSE moves leave bits 255:128
 * of the YMM registers alone, so SSE is filled before AVX.
 */
#include "guest_code.h"
#include "regs.h"

#define XMM_LOAD(i)	"movdqu 160+16*" #i "(%0), %%xmm" #i "\n\t"
#define XMM_STORE(i)	"movdqu %%xmm" #i ", 160+16*" #i "(%0)\n\t"

void guest_sse_fill(const uint8_t *img)
{
	asm volatile(REP16(XMM_LOAD) : : "r"(img) : "memory");
}

void guest_sse_save(uint8_t *img)
{
	asm volatile(REP16(XMM_STORE) : : "r"(img) : "memory");
}
