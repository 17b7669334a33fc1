// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_host_regs_test: host_regs_syscall() on this machine's own registers, without
 * KVM. Around a plain system call the kernel keeps a task's registers, so what the call stores
 * must be the pattern it loaded, register for register. host_regs_syscall() keeps the
 * caller's registers in a buffer on its stack, of which XSAVE writes only XSTATE_BV in the
 * header: a stack full of ones before each call checks that the rest of the header is cleared
 * (else restoring the caller's registers raises #GP, SDM Vol. 1, 13.8.1). No /dev/kvm needed;
 * skipped where the OS has not enabled XSAVE.
 */
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "host_regs.h"
#include "pattern.h"
#include "ximage.h"

/* Leave ones where host_regs_syscall()'s frame will be. */
static void __attribute__((noinline)) dirty_stack(void)
{
	volatile uint8_t junk[8192];

	memset((void *)junk, 0xff, sizeof(junk));
}

TEST(syscall_keeps_pattern)
{
	uint64_t mask = host_check_mask();
	struct ximage fill, out;
	struct xs_layout l;
	unsigned int round, bad = 0;
	long pid;

	if (!mask)
		SKIP(return, "XSAVE is not enabled here (CPUID.1:ECX.OSXSAVE = 0)");
	xs_layout_host(&l);
	ASSERT_EQ(0, ximage_alloc(&fill, &l, mask, false));
	ASSERT_EQ(0, ximage_alloc(&out, &l, mask, false));

	for (round = 0; round < 64; round++) {
		struct pattern_key k = { .seed = 0x4057, .vcpu = PATTERN_HOST, .round = round };

		pattern_fill_image(&fill, mask, &k);
		memset(out.buf, 0, out.size);
		dirty_stack();
		pid = host_regs_syscall(SYS_getpid, 0, 0, 0, &fill, &out, mask);
		ASSERT_EQ(getpid(), pid);
		bad += ximage_report_diff(&fill, &out, mask, "host_regs", 8, false);
	}
	EXPECT_EQ(0, bad);
	ximage_free(&fill);
	ximage_free(&out);
}

TEST_HARNESS_MAIN
