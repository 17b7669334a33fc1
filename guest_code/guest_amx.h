/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Plain definitions shared by the AMX guest code (guest_code/amx.c) and the host: the guest's
 * program of operations, its results, and what its #NM handler records. No code here.
 *
 * The AMX guest is an interpreter: the host writes a straight-line program into the guest's
 * arguments, the guest runs it from args->pc, and every AMX_OP_EXIT reports a stage with a
 * 32-bit OUT to KVMFPU_EXIT_PORT. Between operations the guest runs only code of
 * guest_code/ (built with -mgeneral-regs-only), so nothing but the operations themselves
 * touches FPU, vector or tile state.
 */
#ifndef KVMFPU_GUEST_AMX_H
#define KVMFPU_GUEST_AMX_H

#include <stdint.h>

#include "guest_fpu.h"

#define KVMFPU_MSR_IA32_XFD		0x1c4
#define KVMFPU_MSR_IA32_XFD_ERR		0x1c5
#define KVMFPU_NM_VECTOR		7
#define KVMFPU_CR0_TS			(1ull << 3)

/* Stages the AMX guest reports (distinct from enum kvmfpu_stage). */
enum kvmfpu_amx_stage {
	AMX_STAGE_EXIT		= 0x100,	/* AMX_OP_EXIT adds its argument */
	AMX_STAGE_NM		= 0x200,	/* the #NM handler, when args->nm_exit is set */
	AMX_STAGE_END		= 0x300,	/* the program ran to AMX_OP_END */
};

enum kvmfpu_amx_opcode {
	AMX_OP_END = 0,		/* report AMX_STAGE_END, forever */
	AMX_OP_EXIT,		/* report AMX_STAGE_EXIT + a */
	AMX_OP_XSETBV,		/* XCR0 = a */
	AMX_OP_CPUID,		/* CPUID(leaf a, subleaf b) -> out[c..c+3] = EAX, EBX, ECX, EDX */
	AMX_OP_WRMSR,		/* MSR a = b */
	AMX_OP_RDMSR,		/* out[c] = MSR a */
	AMX_OP_LDTILECFG,	/* from the fill image's XTILECFG area */
	AMX_OP_STTILECFG,	/* to the save image's XTILECFG area */
	AMX_OP_TILELOADD,	/* tmm0-7 from the fill image's XTILEDATA area, row stride 64 */
	AMX_OP_TILESTORED,	/* tmm0-7 to the save image's XTILEDATA area, row stride 64 */
	AMX_OP_TILERELEASE,
	AMX_OP_FILL,		/* load the non-AMX components of mask a from the fill image */
	AMX_OP_SAVE,		/* store the non-AMX components of mask a to the save image */
	AMX_OP_SET_TS,		/* CR0.TS = 1 */
	AMX_OP_FNOP,		/* an x87 instruction: #NM while CR0.TS = 1 */
	AMX_OP_XGETBV,		/* out[c] = XCR0 */
};

struct kvmfpu_amx_op {
	uint32_t op;
	uint32_t c;
	uint64_t a;
	uint64_t b;
};

#define KVMFPU_AMX_MAX_OPS	64
#define KVMFPU_AMX_NR_OUT	32

struct kvmfpu_amx_nm {
	uint64_t count;		/* #NM taken */
	uint64_t cr0;		/* CR0 on entry to the handler */
	uint64_t xfd;		/* IA32_XFD on entry */
	uint64_t xfd_err;	/* IA32_XFD_ERR on entry */
	uint64_t xfd_err_after_exit;	/* IA32_XFD_ERR after the AMX_STAGE_NM exit */
};

struct kvmfpu_amx_args {
	uint64_t pc;				/* next operation */
	uint64_t nm_exit;			/* #NM handler exits with AMX_STAGE_NM */
	uint64_t fill_gva;			/* standard-format image: source of loads */
	uint64_t save_gva;			/* standard-format image: target of stores */
	uint32_t offset[KVMFPU_NR_COMPS];	/* standard-format offset of each component */
	uint32_t pad;
	struct kvmfpu_amx_nm nm;
	uint64_t out[KVMFPU_AMX_NR_OUT];
	struct kvmfpu_amx_op ops[KVMFPU_AMX_MAX_OPS];
};

#endif /* KVMFPU_GUEST_AMX_H */
