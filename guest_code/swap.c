// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's main loop: load every register of the requested components from the fill
 * image, exit to the host, and after re-entry store every register to the save image.
 *
 * The guest calls no KVM selftest library code (not even ucall()): that code is built without
 * -mgeneral-regs-only and may use SSE itself (6.1's ucall() zeroes its struct with PXOR),
 * which would both disturb the registers under test and fault where XCR0/CR4 forbid SSE/AVX.
 */
#include "guest_code.h"

static void guest_xsetbv(uint64_t xcr0)
{
	asm volatile("xsetbv" : : "a"((uint32_t)xcr0), "d"((uint32_t)(xcr0 >> 32)), "c"(0));
}

void kvmfpu_guest_main(struct kvmfpu_guest_args *a)
{
	if (a->xcr0)
		guest_xsetbv(a->xcr0);

	if (a->mode == KVMFPU_GUEST_BARE) {
		for (;;)
			guest_exit(KVMFPU_STAGE_BARE);
	}

	for (;;) {
		guest_fill_comps(a->components, a->fill_gva, a->offset);
		guest_exit(KVMFPU_STAGE_FILLED);
		guest_save_comps(a->components, a->save_gva, a->offset);
		if (a->xsave_gva) {
			a->xcr0_seen = guest_xgetbv0();
			if (a->save_insn == KVMFPU_SAVE_XSAVEC)
				guest_xsavec((uint8_t *)a->xsave_gva, a->components);
			else if (a->save_insn == KVMFPU_SAVE_XSAVEOPT)
				guest_xsaveopt((uint8_t *)a->xsave_gva, a->components);
			else
				guest_xsave((uint8_t *)a->xsave_gva, a->components);
		}
		guest_exit(KVMFPU_STAGE_SAVED);
	}
}
