// SPDX-License-Identifier: GPL-2.0
/*
 * AVX-512: the opmask registers k0-k7 (8 bytes each; KMOVQ needs AVX512BW), bits 511:256 of
 * ZMM0-15 (ZMM_Hi256, 32 bytes each) and all of ZMM16-31 (Hi16_ZMM, 64 bytes each).
 * VINSERTI64X4 keeps bits 255:0, which the SSE and AVX fills loaded.
 */
#include "guest_code.h"
#include "regs.h"

#define K_LOAD(i)	"kmovq 8*" #i "(%0), %%k" #i "\n\t"
#define K_STORE(i)	"kmovq %%k" #i ", 8*" #i "(%0)\n\t"
#define ZMMH_LOAD(i)	"vinserti64x4 $1, 32*" #i "(%0), %%zmm" #i ", %%zmm" #i "\n\t"
#define ZMMH_STORE(i)	"vextracti64x4 $1, %%zmm" #i ", 32*" #i "(%0)\n\t"
#define ZMM_LOAD(i)	"vmovdqu64 64*(" #i "-16)(%0), %%zmm" #i "\n\t"
#define ZMM_STORE(i)	"vmovdqu64 %%zmm" #i ", 64*(" #i "-16)(%0)\n\t"

void guest_opmask_fill(const uint8_t *area)
{
	asm volatile(REP8(K_LOAD) : : "r"(area) : "memory");
}

void guest_opmask_save(uint8_t *area)
{
	asm volatile(REP8(K_STORE) : : "r"(area) : "memory");
}

void guest_zmm_hi256_fill(const uint8_t *area)
{
	asm volatile(REP16(ZMMH_LOAD) : : "r"(area) : "memory");
}

void guest_zmm_hi256_save(uint8_t *area)
{
	asm volatile(REP16(ZMMH_STORE) : : "r"(area) : "memory");
}

void guest_hi16_zmm_fill(const uint8_t *area)
{
	asm volatile(REP16_HI(ZMM_LOAD) : : "r"(area) : "memory");
}

void guest_hi16_zmm_save(uint8_t *area)
{
	asm volatile(REP16_HI(ZMM_STORE) : : "r"(area) : "memory");
}
