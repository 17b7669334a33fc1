// SPDX-License-Identifier: GPL-2.0
/*
 * x87 (and MXCSR): FXRSTOR loads FCW, FSW, the abridged FTW and ST0-7 from the legacy region
 * of the image, plus MXCSR and XMM0-15; FXSAVE is the only way to read all eight data
 * registers without popping them.
 *
 * FXRSTOR/FXSAVE rather than FLDCW/FLD/LDMXCSR: where KVM cannot run FPU instructions natively
 * (shadow-paging faults, the paravirtual kvm_pvm) it emulates them, and its instruction
 * emulator implements FXSAVE, FXRSTOR and the SSE moves but not the x87 loads or LDMXCSR.
 */
#include "guest_code.h"

void guest_x87_fill(const uint8_t *img)
{
	asm volatile("fxrstor64 (%0)" : : "r"(img) : "memory");
}

void guest_x87_save(uint8_t *img)
{
	asm volatile("fxsave64 (%0)" : : "r"(img) : "memory");
}
