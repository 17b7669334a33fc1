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

struct comp_ops {
	void (*fill)(const uint8_t *area);
	void (*save)(uint8_t *area);
};

/*
 * In fill order: SSE before AVX before ZMM_Hi256, because VEX/EVEX writes of a narrower
 * register zero the bits above it while legacy SSE writes keep them.
 */
static const struct comp_ops comp_ops[KVMFPU_NR_COMPS] = {
	[0] = { guest_x87_fill, guest_x87_save },
	[1] = { guest_sse_fill, guest_sse_save },
	[2] = { guest_avx_fill, guest_avx_save },
	[5] = { guest_opmask_fill, guest_opmask_save },
	[6] = { guest_zmm_hi256_fill, guest_zmm_hi256_save },
	[7] = { guest_hi16_zmm_fill, guest_hi16_zmm_save },
	[9] = { guest_pkru_fill, guest_pkru_save },
};

static uint8_t *comp_area(const struct kvmfpu_guest_args *a, uint64_t image, unsigned int i)
{
	/* x87 and SSE address the legacy region from the start of the image. */
	return (uint8_t *)image + (i < 2 ? 0 : a->offset[i]);
}

static void guest_exit(uint32_t stage)
{
	asm volatile("outl %%eax, %%dx" : : "a"(stage), "d"(KVMFPU_EXIT_PORT) : "memory");
}

static void guest_xsetbv(uint64_t xcr0)
{
	asm volatile("xsetbv" : : "a"((uint32_t)xcr0), "d"((uint32_t)(xcr0 >> 32)), "c"(0));
}

void kvmfpu_guest_main(struct kvmfpu_guest_args *a)
{
	unsigned int i;

	if (a->xcr0)
		guest_xsetbv(a->xcr0);

	if (a->mode == KVMFPU_GUEST_BARE) {
		for (;;)
			guest_exit(KVMFPU_STAGE_BARE);
	}

	for (;;) {
		for (i = 0; i < KVMFPU_NR_COMPS; i++)
			if ((a->components & (1ull << i)) && comp_ops[i].fill)
				comp_ops[i].fill(comp_area(a, a->fill_gva, i));
		guest_exit(KVMFPU_STAGE_FILLED);
		for (i = 0; i < KVMFPU_NR_COMPS; i++)
			if ((a->components & (1ull << i)) && comp_ops[i].save)
				comp_ops[i].save(comp_area(a, a->save_gva, i));
		if (a->xsave_gva) {
			a->xcr0_seen = guest_xgetbv0();
			guest_xsave((uint8_t *)a->xsave_gva, a->components);
		}
		guest_exit(KVMFPU_STAGE_SAVED);
	}
}
