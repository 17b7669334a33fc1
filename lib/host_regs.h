/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The host process's own FPU registers around KVM_RUN. KVM swaps the guest's fpstate in and
 * the task's out on entry and restores the task's registers lazily on return to user space;
 * a missed or wrong restore shows as *host process* registers changing across the ioctl.
 *
 * host_regs_kvm_run() loads a pattern image with XRSTOR, issues the KVM_RUN syscall, and stores
 * the registers with XSAVE, all in one asm block: no compiler-generated code runs between the
 * load, the ioctl and the store, so nothing but the kernel can have touched the registers.
 */
#ifndef KVMFPU_HOST_REGS_H
#define KVMFPU_HOST_REGS_H

#include "ximage.h"

/* What the host process can load and check: its XCR0 without AMX and MPX. */
uint64_t host_xcr0(void);
uint64_t host_check_mask(void);

/*
 * System call @nr(@a0, @a1, @a2) with the registers of @rfbm loaded from @fill and stored into
 * @out (standard-format images of the host layout). Returns the call's return value (-errno
 * on failure). The caller's own register state is saved and restored around all of it.
 */
long host_regs_syscall(long nr, long a0, long a1, long a2, const struct ximage *fill,
		       struct ximage *out, uint64_t rfbm);

/* KVM_RUN on @vcpu_fd the same way. */
long host_regs_kvm_run(int vcpu_fd, const struct ximage *fill, struct ximage *out, uint64_t rfbm);

#endif /* KVMFPU_HOST_REGS_H */
