// SPDX-License-Identifier: GPL-2.0
/*
 * Host register fill and check around KVM_RUN.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/kvm.h>

#include "host_regs.h"

uint64_t host_xcr0(void)
{
	uint32_t a, b, c, d;

	/* XGETBV faults unless the OS enabled XSAVE (CPUID.1:ECX.OSXSAVE[27]). */
	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 27)))
		return 0;
	asm volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
	return a | ((uint64_t)d << 32);
}

/*
 * Not AMX: tile data needs a permission and an fpstate of its own. Not MPX: a pattern in
 * BNDCFGU would turn on bound checking, with a made-up table, in the host process itself.
 */
uint64_t host_check_mask(void)
{
	return host_xcr0() & XS_MASK_KNOWN & ~XS_MASK_AMX & ~XS_MASK_MPX;
}

/* The caller's registers while the pattern is loaded: x87 to PKRU fit (2696 bytes). */
#define SAVED_ON_STACK	4096

long host_regs_syscall(long nr, long a0, long a1, long a2, const struct ximage *fill,
		       struct ximage *out, uint64_t rfbm)
{
	uint8_t on_stack[SAVED_ON_STACK] __attribute__((aligned(64)));
	uint32_t lo = rfbm, hi = rfbm >> 32;
	struct ximage saved = { .buf = on_stack };
	long ret;

	/*
	 * XSAVE writes XSTATE_BV and the areas, never XCOMP_BV or the reserved header bytes,
	 * which standard-form XRSTOR requires to be zero (SDM Vol. 1, 13.7 and 13.8.1): the
	 * header is cleared, the rest XSAVE fills before XRSTOR reads it.
	 */
	if (xs_size_standard(fill->layout, rfbm) <= sizeof(on_stack))
		memset(on_stack + XS_HEADER_OFFSET, 0, XS_HEADER_SIZE);
	else if (ximage_alloc(&saved, fill->layout, rfbm, false))
		return -ENOMEM;

	/*
	 * XSAVE/XRSTOR take the requested-feature bitmap in EDX:EAX and the syscall clobbers
	 * RAX, RCX and R11, so the bitmap is reloaded before each instruction. The caller's state
	 * (@saved) is restored last, so the compiler sees no register change at all.
	 */
	asm volatile(
		"mov %[lo], %%eax\n\t"
		"mov %[hi], %%edx\n\t"
		"xsave64 (%[saved])\n\t"
		"mov %[lo], %%eax\n\t"
		"mov %[hi], %%edx\n\t"
		"xrstor64 (%[fill])\n\t"
		"mov %[nr], %%rax\n\t"
		"mov %[a0], %%rdi\n\t"
		"mov %[a1], %%rsi\n\t"
		"mov %[a2], %%rdx\n\t"
		"syscall\n\t"
		"mov %%rax, %[ret]\n\t"
		"mov %[lo], %%eax\n\t"
		"mov %[hi], %%edx\n\t"
		"xsave64 (%[out])\n\t"
		"mov %[lo], %%eax\n\t"
		"mov %[hi], %%edx\n\t"
		"xrstor64 (%[saved])\n\t"
		: [ret] "=&r"(ret)
		: [lo] "r"(lo), [hi] "r"(hi), [saved] "r"(saved.buf), [fill] "r"(fill->buf),
		  [out] "r"(out->buf), [nr] "m"(nr), [a0] "m"(a0), [a1] "m"(a1), [a2] "m"(a2)
		: "rax", "rcx", "rdx", "rdi", "rsi", "r11", "memory", "cc");

	if (saved.buf != on_stack)
		ximage_free(&saved);
	return ret;
}

long host_regs_kvm_run(int vcpu_fd, const struct ximage *fill, struct ximage *out, uint64_t rfbm)
{
	return host_regs_syscall(SYS_ioctl, vcpu_fd, KVM_RUN, 0, fill, out, rfbm);
}
