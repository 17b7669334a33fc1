/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Plain definitions shared by the guest code and the host: the guest's arguments and the
 * stages it reports. No code here: guest and host never share code.
 */
#ifndef KVMFPU_GUEST_FPU_H
#define KVMFPU_GUEST_FPU_H

#include <stdint.h>

#include "xstate.h"

/* The guest reports each stage with a 32-bit OUT of the stage number to this port. */
#define KVMFPU_EXIT_PORT	0x7fe4

enum kvmfpu_stage {
	KVMFPU_STAGE_FILLED = 1,	/* registers hold the fill image */
	KVMFPU_STAGE_SAVED = 2,		/* registers were stored into the save image */
	KVMFPU_STAGE_BARE = 3,		/* the bare loop (bench) */
};

enum kvmfpu_guest_mode {
	KVMFPU_GUEST_SWAP = 0,		/* fill, exit, save, sync; forever */
	KVMFPU_GUEST_BARE = 1,		/* exit, forever: a bare KVM_RUN round trip */
};

/*
 * The instruction the swap guest saves its own view with (after re-entry, into xsave_gva):
 * XSAVE and XSAVEOPT write the standard format, XSAVEC the compacted one with
 * XCOMP_BV = 1 << 63 | (RFBM & XCR0) (SDM Vol. 1, 13.9 to 13.10).
 */
enum kvmfpu_save_insn {
	KVMFPU_SAVE_XSAVE = 0,
	KVMFPU_SAVE_XSAVEOPT = 1,	/* CPUID.(EAX=0xD,ECX=1):EAX[0] */
	KVMFPU_SAVE_XSAVEC = 2,		/* CPUID.(EAX=0xD,ECX=1):EAX[1] */
};

#define KVMFPU_NR_COMPS		XS_NR	/* lib/xstate.h: the component table's size */

/*
 * The components the swap guest fills and saves: those with a routine in guest_code/comps.c.
 * Plain data, callable from the host (it is how the host knows what the guest drives).
 */
uint64_t kvmfpu_guest_comps(void);

struct kvmfpu_guest_args {
	uint64_t mode;
	uint64_t components;		/* XS_BIT() mask of what to fill and save */
	uint64_t xcr0;			/* XSETBV(0, xcr0) first when non-zero */
	uint64_t fill_gva;		/* standard-format image the registers are loaded from */
	uint64_t save_gva;		/* standard-format image the registers are stored to */
	uint64_t xsave_gva;		/* non-zero: XSAVE the components here after the save */
	uint64_t xcr0_seen;		/* XGETBV(0) after re-entry, when xsave_gva is set */
	uint64_t save_insn;		/* enum kvmfpu_save_insn: how to save into xsave_gva */
	uint32_t offset[KVMFPU_NR_COMPS];	/* standard-format offset of each component */
};

#endif /* KVMFPU_GUEST_FPU_H */
