// SPDX-License-Identifier: GPL-2.0
/*
 * The XCR0 guest (guest_xcr0.h): XSETBV of a value the host chose, catching the #GP an
 * invalid one must raise, and a report of what the guest then sees through XGETBV and CPUID.
 *
 * The XSETBV is in its own asm function with a known address so that the #GP handler can
 * tell it from any other #GP and resume after it (XSETBV is 3 bytes, 0f 01 d1). The handler is
 * reached through the library's IDT stubs and route_exception() (vm_install_exception_handler()
 * by the host), which save and restore general registers only. Like the rest of guest_code/
 * this is built with -mgeneral-regs-only and calls nothing in the KVM selftest library.
 */
#include "guest_code.h"
#include "guest_xcr0.h"

void kvmfpu_xcr0_xsetbv(uint64_t xcr0);
extern const char kvmfpu_xcr0_xsetbv_insn[], kvmfpu_xcr0_xsetbv_resume[];

/* kvmfpu_xcr0_xsetbv(xcr0): XSETBV(ECX = 0, EDX:EAX = xcr0). */
asm(".pushsection .text\n"
    ".global kvmfpu_xcr0_xsetbv\n"
    "kvmfpu_xcr0_xsetbv:\n"
    "	mov %rdi, %rax\n"
    "	mov %rdi, %rdx\n"
    "	shr $32, %rdx\n"
    "	xor %ecx, %ecx\n"
    ".global kvmfpu_xcr0_xsetbv_insn\n"
    "kvmfpu_xcr0_xsetbv_insn:\n"
    "	xsetbv\n"
    ".global kvmfpu_xcr0_xsetbv_resume\n"
    "kvmfpu_xcr0_xsetbv_resume:\n"
    "	ret\n"
    ".popsection\n");

static struct kvmfpu_xcr0_args *xcr0_args;

void kvmfpu_guest_xcr0_gp_handler(struct ex_regs *ex)
{
	struct kvmfpu_ex_regs *regs = (struct kvmfpu_ex_regs *)ex;
	struct kvmfpu_xcr0_args *a = xcr0_args;

	if (regs->rip == (uint64_t)kvmfpu_xcr0_xsetbv_insn) {
		a->gp_count++;
		regs->rip = (uint64_t)kvmfpu_xcr0_xsetbv_resume;
		return;
	}
	a->gp_rip = regs->rip;
	for (;;)
		guest_exit(KVMFPU_XCR0_STAGE_STRAY_GP);
}

void kvmfpu_guest_xcr0_main(struct kvmfpu_xcr0_args *a)
{
	xcr0_args = a;
	for (;;) {
		if (a->op == KVMFPU_XCR0_OP_XSETBV)
			kvmfpu_xcr0_xsetbv(a->value);
		else if (a->op == KVMFPU_XCR0_OP_OSXSAVE)
			guest_write_cr4(guest_read_cr4() | KVMFPU_CR4_OSXSAVE);
		a->op = KVMFPU_XCR0_OP_REPORT;

		a->seen.cr4 = guest_read_cr4();
		a->seen.xcr0 = a->seen.cr4 & KVMFPU_CR4_OSXSAVE ? guest_xgetbv0() : 0;
		guest_cpuid_count(1, 0, a->seen.leaf1);
		guest_cpuid_count(0xd, 0, a->seen.d0);
		guest_cpuid_count(0xd, 1, a->seen.d1);
		a->reports++;
		guest_exit(KVMFPU_XCR0_STAGE_REPORT);
	}
}
