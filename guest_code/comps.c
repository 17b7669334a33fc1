// SPDX-License-Identifier: GPL-2.0
/*
 * Fill or save every register of a set of components, in the order the architecture needs:
 * SSE before AVX before ZMM_Hi256, because VEX/EVEX writes of a narrower register zero the
 * bits above it while legacy SSE writes keep them. AMX is driven separately (amx.c).
 */
#include "guest_code.h"

struct comp_ops {
	void (*fill)(const uint8_t *area);
	void (*save)(uint8_t *area);
};

static const struct comp_ops comp_ops[KVMFPU_NR_COMPS] = {
	[0] = { guest_x87_fill, guest_x87_save },
	[1] = { guest_sse_fill, guest_sse_save },
	[2] = { guest_avx_fill, guest_avx_save },
	[5] = { guest_opmask_fill, guest_opmask_save },
	[6] = { guest_zmm_hi256_fill, guest_zmm_hi256_save },
	[7] = { guest_hi16_zmm_fill, guest_hi16_zmm_save },
	[9] = { guest_pkru_fill, guest_pkru_save },
};

uint64_t kvmfpu_guest_comps(void)
{
	uint64_t mask = 0;
	unsigned int i;

	for (i = 0; i < KVMFPU_NR_COMPS; i++)
		if (comp_ops[i].fill && comp_ops[i].save)
			mask |= 1ull << i;
	return mask;
}

static uint8_t *comp_area(uint64_t image, const uint32_t *offset, unsigned int i)
{
	/* x87 and SSE address the legacy region from the start of the image. */
	return (uint8_t *)image + (i < 2 ? 0 : offset[i]);
}

void guest_fill_comps(uint64_t comps, uint64_t image, const uint32_t *offset)
{
	unsigned int i;

	for (i = 0; i < KVMFPU_NR_COMPS; i++)
		if ((comps & (1ull << i)) && comp_ops[i].fill)
			comp_ops[i].fill(comp_area(image, offset, i));
}

void guest_save_comps(uint64_t comps, uint64_t image, const uint32_t *offset)
{
	unsigned int i;

	for (i = 0; i < KVMFPU_NR_COMPS; i++)
		if ((comps & (1ull << i)) && comp_ops[i].save)
			comp_ops[i].save(comp_area(image, offset, i));
}
