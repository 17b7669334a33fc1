/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Plain definitions shared by the XCR0 guest (guest_code/xcr0.c) and kvmfpu_xcr0_test: the
 * operation the host asks for, and what the guest reports after it. No code here.
 *
 * The guest loops: do args->op (XSETBV of args->value, or set CR4.OSXSAVE), then read what
 * it sees (XGETBV(0) when CR4.OSXSAVE is set, CPUID leaves 1, 0xD.0 and 0xD.1, CR4) into
 * args->seen and report KVMFPU_XCR0_STAGE_REPORT with a 32-bit OUT to KVMFPU_EXIT_PORT.
 * A #GP on the XSETBV is counted and the guest goes on; a #GP anywhere else is reported as
 * KVMFPU_XCR0_STAGE_STRAY_GP, forever.
 */
#ifndef KVMFPU_GUEST_XCR0_H
#define KVMFPU_GUEST_XCR0_H

#include <stdint.h>

#include "guest_fpu.h"

#define KVMFPU_GP_VECTOR	13
#define KVMFPU_CR4_OSXSAVE	(1ull << 18)

enum kvmfpu_xcr0_stage {
	KVMFPU_XCR0_STAGE_REPORT	= 0x400,
	KVMFPU_XCR0_STAGE_STRAY_GP	= 0x401,
};

enum kvmfpu_xcr0_op {
	KVMFPU_XCR0_OP_REPORT = 0,	/* only report */
	KVMFPU_XCR0_OP_XSETBV,		/* XSETBV(XCR0 = value), then report */
	KVMFPU_XCR0_OP_OSXSAVE,		/* MOV CR4 |= OSXSAVE, then report */
};

struct kvmfpu_xcr0_seen {
	uint64_t xcr0;		/* XGETBV(0); 0 while CR4.OSXSAVE is clear (XGETBV would #UD) */
	uint64_t cr4;
	uint32_t leaf1[4];	/* CPUID.1: EAX, EBX, ECX, EDX */
	uint32_t d0[4];		/* CPUID.(0xD,0) */
	uint32_t d1[4];		/* CPUID.(0xD,1) */
};

struct kvmfpu_xcr0_args {
	uint64_t op;			/* enum kvmfpu_xcr0_op; the guest resets it to REPORT */
	uint64_t value;
	uint64_t gp_count;		/* #GP taken by the XSETBV */
	uint64_t gp_rip;		/* RIP of a #GP elsewhere */
	uint64_t reports;
	struct kvmfpu_xcr0_seen seen;
};

/*
 * The part of the selftest library's struct ex_regs (include/x86_64/processor.h, the same
 * from 6.1 to 6.12) that the #GP handler uses; guest code cannot include processor.h (it is
 * not built for -mgeneral-regs-only). kvmfpu_xcr0_test checks the offsets at build time.
 */
struct kvmfpu_ex_regs {
	uint64_t gpr[15];	/* rax, rcx, rdx, rbx, rbp, rsi, rdi, r8-r15 */
	uint64_t vector;
	uint64_t error_code;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
};

struct ex_regs;
/* Registered with vm_install_exception_handler(vm, KVMFPU_GP_VECTOR, ...). */
void kvmfpu_guest_xcr0_gp_handler(struct ex_regs *regs);
void kvmfpu_guest_xcr0_main(struct kvmfpu_xcr0_args *args);

#endif /* KVMFPU_GUEST_XCR0_H */
