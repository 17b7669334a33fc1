// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_amx_test: AMX tiles in KVM guests: permission, guest fpstate reallocation, tiles
 * across exits, save/restore into a new VM, AVX-512 and AMX together.
 *
 * Checks, by item of issue 5 (the rule each asserts is in the comment above each test):
 *   1 permission   perm.request_grows, perm.ebusy_after_vcpu
 *   2 realloc      realloc.xsave2_cap, realloc.set_cpuid, realloc.guest_cpuid_sizes
 *   3 tiles        tiles.guest_image, tiles.reentry, tiles.set_xsave, tiles.release_init
 *   6 migration    migrate.{intercept,passthrough,nm_pending}.tiles_survive,
 *                  global.restore_without_amx
 *   7 AVX-512+AMX  mixed.{avx512_amx,amx_only,avx512_no_amx}.image_and_reentry
 * (items 4 and 5, XFD and #NM, are in kvmfpu_xfd_test.)
 * Every failure prints "# kvmfpu-replay: args=--seed 0x.. -r FIXTURE[.VARIANT].TEST".
 * Expected values never come from what the test itself gave KVM to echo: sizes and layouts
 * from the host CPU's own CPUID and the SDM, tiles from the bytes the guest loaded (as
 * TILELOADD leaves them) and from a canary-filled save area for what the guest stores
 * (amx.h, AMX_STORE_CANARY). perm.*, realloc.xsave2_cap and realloc.guest_cpuid_sizes move
 * no tile data through KVM and say so (# kvmfpu-exercised: components=none).
 *
 * Regressions guarded (KNOWLEDGE.md §2; fix subjects quoted from memory of the kernel's git
 * history, which the Debian source tree here does not carry, anchored by the code comment
 * each fix left in 6.12 where there is one):
 *   - "x86/fpu/xstate: Fix the ARCH_REQ_XCOMP_PERM implementation" (a request replaced the
 *     permission instead of OR-ing into it): perm.request_grows.
 *   - "KVM: x86: Filter out XTILE_CFG if XTILE_DATA isn't permitted" (KVM reported XTILE_CFG
 *     without XTILE_DATA to a process without the AMX permission; 6.12 kvm_get_filtered_xcr0():
 *     "Treat XTILE_CFG as unsupported if the current process isn't allowed to use
 *     XTILE_DATA"): perm.request_grows, perm.ebusy_after_vcpu.
 *   - "kvm: x86: Fix xstate_required_size() to follow XSTATE alignment rule" (CPUID 0xD.1 EBX
 *     ignored the 64-byte alignment of compacted components): realloc.guest_cpuid_sizes;
 *     a guest fpstate or uABI size that does not match the layout: realloc.xsave2_cap,
 *     realloc.set_cpuid.
 *   - WARN in __copy_xstate_uabi_buf() when tile data is in init state (KNOWLEDGE.md §2.11;
 *     fix subject not confirmed here): tiles.release_init (any WARN sets the kernel's W
 *     taint, which the test checks).
 *
 * Everything skips, naming what is missing, unless the host CPU and kernel have AMX, KVM
 * offers AMX_TILE, XTILECFG/XTILEDATA and XFD, and the ARCH_REQ_XCOMP_GUEST_PERM prctl works.
 * Each test runs in its own process (the kselftest harness forks), so each gets a fresh
 * permission state: the parent never requests one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kernel_env.h"
#include "kvmfpu_vm.h"
#include "options.h"
#include "report.h"

#include "kvmfpu_harness.h"

static uint64_t opt_seed = 1;

#define XTILEDATA	XS_BIT(XS_XTILEDATA)
#define XCR0_BASE	(XS_MASK_FPSSE | XS_BIT(XS_AVX))
#define XCR0_TILES	(XCR0_BASE | XS_MASK_AMX)

static uint32_t uabi_size_for(uint64_t xcr0, const struct xs_layout *l)
{
	uint32_t size = xs_size_standard(l, xcr0);

	/* KVM_CAP_XSAVE2 is never below sizeof(struct kvm_xsave) (x86.c, KVM_CAP_XSAVE2). */
	return size < sizeof(struct kvm_xsave) ? sizeof(struct kvm_xsave) : size;
}

/* ------------------------------------------------------------------------------------------
 * Item 1: permission.
 */

/* A VM and vCPU made with bare ioctls: nothing cached, nothing of the library's set up. */
struct raw_vcpu {
	int kvm, vm, vcpu;
};

static void raw_vcpu_create(struct raw_vcpu *r)
{
	r->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (r->kvm < 0)
		kvmfpu_error("open /dev/kvm: %s", strerror(errno));
	r->vm = ioctl(r->kvm, KVM_CREATE_VM, 0);
	if (r->vm < 0)
		kvmfpu_error("KVM_CREATE_VM: %s", strerror(errno));
	r->vcpu = ioctl(r->vm, KVM_CREATE_VCPU, 0);
	if (r->vcpu < 0)
		kvmfpu_error("KVM_CREATE_VCPU: %s", strerror(errno));
}

static void raw_vcpu_close(struct raw_vcpu *r)
{
	close(r->vcpu);
	close(r->vm);
	close(r->kvm);
}

static int cap_xsave2(int fd)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
}

/*
 * XCR0 rule (SDM Vol. 1, 13.3: XSETBV #GPs if XCR0[17] != XCR0[18]) applied to what KVM
 * offers: KVM_GET_SUPPORTED_CPUID.0xD.0 must hold both tile components or neither.
 */
static bool tile_pair_ok(uint64_t xcr0)
{
	return !(xcr0 & XS_MASK_AMX) || (xcr0 & XS_MASK_AMX) == XS_MASK_AMX;
}

FIXTURE(perm) {
};

FIXTURE_SETUP(perm)
{
	char why[512];
	uint64_t perm;
	int err;

	KVMFPU_REPLAY(opt_seed, "");
	if (!kvmfpu_vm_amx_supported(why, sizeof(why)))
		SKIP(return, "%s", why);
	err = amx_guest_perm_get(&perm);
	if (err == -EINVAL)
		SKIP(return, "arch_prctl(ARCH_GET_XCOMP_GUEST_PERM) is missing: kernel older "
		     "than 5.17");
	if (err)
		kvmfpu_error("ARCH_GET_XCOMP_GUEST_PERM: %s", strerror(-err));
	if (perm & XTILEDATA)
		SKIP(return, "guest permission for XTILEDATA was granted before the test started "
		     "(inherited by fork: ARCH_GET_XCOMP_GUEST_PERM = 0x%llx)",
		     (unsigned long long)perm);
}

FIXTURE_TEARDOWN(perm)
{
}

/*
 * perm.request_grows (item 1). Kernel behaviour (arch/x86/kernel/fpu/xstate.c,
 * xstate_request_perm/__xstate_request_perm): ARCH_REQ_XCOMP_GUEST_PERM(XTILEDATA) sets the
 * permission to old | requested, so the permitted set only grows, and a repeated request is a
 * no-op returning 0. KVM (x86.h kvm_get_filtered_xcr0): KVM_GET_SUPPORTED_CPUID.0xD.0 offers
 * the dynamic XTILEDATA only with the permission, and XTILECFG only together with it; and
 * KVM_CAP_XSAVE2 is the standard-format size of that filtered XCR0 (at least 4096), the
 * layout taken from the host CPU's own CPUID 0xD.i (independent of KVM). No tile data.
 */
KVMFPU_TEST_F(perm, request_grows)
{
	uint64_t before, after, again, xcr0_before, xcr0_after;
	struct xs_layout l;
	int cap_before, cap_after, kvm, err;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		kvmfpu_error("open /dev/kvm: %s", strerror(errno));

	amx_guest_perm_get(&before);
	xcr0_before = kvmfpu_vm_supported_xcr0();
	cap_before = cap_xsave2(kvm);
	printf("# before: guest perm 0x%llx, KVM XCR0 0x%llx, KVM_CAP_XSAVE2 %d\n",
	       (unsigned long long)before, (unsigned long long)xcr0_before, cap_before);
	if (xcr0_before & XS_MASK_AMX)
		kvmfpu_fail("perm.request_grows: without permission KVM_GET_SUPPORTED_CPUID.0xD.0 "
			    "= 0x%llx offers %s", (unsigned long long)xcr0_before,
			    (xcr0_before & XS_MASK_AMX) == XS_MASK_AMX ? "XTILECFG and XTILEDATA" :
			    (xcr0_before & XTILEDATA) ? "XTILEDATA without XTILECFG" :
			    "XTILECFG without XTILEDATA");
	xs_layout_from_cpuid(&l, xs_host_cpuid, NULL);
	if (cap_before != (int)uabi_size_for(xcr0_before, &l))
		kvmfpu_fail("perm.request_grows: KVM_CAP_XSAVE2 without permission is %d, the "
			    "layout of XCR0 0x%llx needs %u", cap_before,
			    (unsigned long long)xcr0_before, uabi_size_for(xcr0_before, &l));

	err = amx_guest_perm_request(XS_XTILEDATA);
	if (err)
		kvmfpu_fail("perm.request_grows: ARCH_REQ_XCOMP_GUEST_PERM(XTILEDATA) before any "
			    "vCPU exists failed: %s", strerror(-err));
	amx_guest_perm_get(&after);
	if ((after & before) != before || !(after & XTILEDATA))
		kvmfpu_fail("perm.request_grows: permission 0x%llx after requesting XTILEDATA is "
			    "not a superset of 0x%llx | XTILEDATA: a request must never shrink "
			    "what was granted", (unsigned long long)after,
			    (unsigned long long)before);
	err = amx_guest_perm_request(XS_XTILEDATA);
	amx_guest_perm_get(&again);
	if (err || again != after)
		kvmfpu_fail("perm.request_grows: repeating the request returned %s and changed the "
			    "permission 0x%llx -> 0x%llx", err ? strerror(-err) : "0",
			    (unsigned long long)after, (unsigned long long)again);

	xcr0_after = kvmfpu_vm_supported_xcr0();
	xs_layout_from_cpuid(&l, xs_host_cpuid, NULL);
	cap_after = cap_xsave2(kvm);
	printf("# after: guest perm 0x%llx, KVM XCR0 0x%llx, KVM_CAP_XSAVE2 %d\n",
	       (unsigned long long)after, (unsigned long long)xcr0_after, cap_after);
	if (!tile_pair_ok(xcr0_after) || !(xcr0_after & XTILEDATA))
		kvmfpu_fail("perm.request_grows: with permission KVM_GET_SUPPORTED_CPUID.0xD.0 = "
			    "0x%llx; it must offer XTILECFG and XTILEDATA together",
			    (unsigned long long)xcr0_after);
	if ((xcr0_after & xcr0_before) != xcr0_before)
		kvmfpu_fail("perm.request_grows: KVM's XCR0 lost bits: 0x%llx -> 0x%llx",
			    (unsigned long long)xcr0_before, (unsigned long long)xcr0_after);
	if (cap_after != (int)uabi_size_for(xcr0_after, &l))
		kvmfpu_fail("perm.request_grows: KVM_CAP_XSAVE2 with permission is %d, the layout "
			    "of XCR0 0x%llx (CPUID 0xD.17/0xD.18) needs %u", cap_after,
			    (unsigned long long)xcr0_after, uabi_size_for(xcr0_after, &l));
	close(kvm);
	kvmfpu_print_exercised(0);	/* no tile data went through KVM */
}

/*
 * perm.ebusy_after_vcpu (item 1). Kernel behaviour (fpu/core.c fpu_init_guest_permissions,
 * xstate.c xstate_request_perm): the first guest fpstate allocation, at KVM_CREATE_VCPU, locks
 * the process's guest permission (FPU_GUEST_PERM_LOCKED); afterwards a request for something
 * not yet permitted fails with EBUSY and changes nothing, even once the vCPU is gone. KVM keeps
 * offering neither tile component.
 */
KVMFPU_TEST_F(perm, ebusy_after_vcpu)
{
	struct raw_vcpu r;
	uint64_t before, after, xcr0;
	int err;

	amx_guest_perm_get(&before);
	raw_vcpu_create(&r);
	err = amx_guest_perm_request(XS_XTILEDATA);
	amx_guest_perm_get(&after);
	if (err != -EBUSY)
		kvmfpu_fail("perm.ebusy_after_vcpu: ARCH_REQ_XCOMP_GUEST_PERM(XTILEDATA) after "
			    "KVM_CREATE_VCPU returned %s, expected EBUSY",
			    err ? strerror(-err) : "0 (granted)");
	if (after != before)
		kvmfpu_fail("perm.ebusy_after_vcpu: the refused request changed the permission "
			    "0x%llx -> 0x%llx", (unsigned long long)before,
			    (unsigned long long)after);
	xcr0 = kvmfpu_vm_supported_xcr0();
	if (xcr0 & XS_MASK_AMX)
		kvmfpu_fail("perm.ebusy_after_vcpu: KVM_GET_SUPPORTED_CPUID.0xD.0 = 0x%llx offers "
			    "tile components without permission", (unsigned long long)xcr0);
	raw_vcpu_close(&r);
	err = amx_guest_perm_request(XS_XTILEDATA);
	if (err != -EBUSY)
		kvmfpu_fail("perm.ebusy_after_vcpu: after closing the vCPU and VM the request "
			    "returned %s; the lock is for the life of the process (EBUSY)",
			    err ? strerror(-err) : "0");
	kvmfpu_print_exercised(0);	/* no tile data went through KVM */
}

/* ------------------------------------------------------------------------------------------
 * Item 2: reallocation.
 */

FIXTURE(realloc) {
};

FIXTURE_SETUP(realloc)
{
	char why[512];

	KVMFPU_REPLAY(opt_seed, "");
	if (!kvmfpu_vm_amx_require(why, sizeof(why)))
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(realloc)
{
}

/*
 * KVM's supported CPUID with or without the tile components: XTILECFG/XTILEDATA cleared in
 * 0xD.0 (and its sizes recomputed), their 0xD subleaves zeroed, AMX_TILE/AMX_INT8/AMX_BF16
 * (CPUID.7.0:EDX[24,25,22]) cleared.
 */
static struct kvm_cpuid2 *guest_cpuid(bool amx, const struct xs_layout *l)
{
	struct kvm_cpuid2 *c = kvmfpu_vm_supported_cpuid();
	int i;

	if (!c)
		kvmfpu_error("KVM_GET_SUPPORTED_CPUID failed");
	for (i = 0; i < (int)c->nent && !amx; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 7 && e->index == 0)
			e->edx &= ~((1u << 22) | (1u << 24) | (1u << 25));
		if (e->function == 0xd && e->index == 0) {
			uint64_t xcr0 = (e->eax | ((uint64_t)e->edx << 32)) & ~XS_MASK_AMX;

			e->eax = (uint32_t)xcr0;
			e->ecx = xs_size_standard(l, xcr0);
			e->ebx = e->ecx;
		}
		if (e->function == 0xd && (e->index == XS_XTILECFG || e->index == XS_XTILEDATA))
			e->eax = e->ebx = e->ecx = e->edx = 0;
	}
	return c;
}

/*
 * realloc.xsave2_cap (item 2). KVM (x86.c, KVM_CAP_XSAVE2): the capability, on /dev/kvm and on
 * a VM fd alike, is the standard-format size of the XCR0 KVM offers this process (with the
 * permission: including XTILEDATA), i.e. the end of the last component by CPUID 0xD.i EBX+EAX
 * (SDM Vol. 1, 13.4.1) as the host CPU's own CPUID reports them; KVM_GET_SUPPORTED_CPUID.0xD.0
 * EBX and ECX say the same (cpuid.c).
 * It depends on the process's permission, not on a vCPU's CPUID: the same before and after a
 * KVM_SET_CPUID2 that exposes AMX (the per-vCPU size is realloc.set_cpuid's business).
 */
KVMFPU_TEST_F(realloc, xsave2_cap)
{
	struct xs_layout l;
	struct raw_vcpu r;
	uint32_t d[4], want;
	uint64_t xcr0;
	struct kvm_cpuid2 *c;
	int sys, vm_before, vm_after;

	xs_layout_from_cpuid(&l, xs_host_cpuid, NULL);
	xcr0 = kvmfpu_vm_supported_xcr0();
	want = uabi_size_for(xcr0, &l);
	kvmfpu_vm_supported_leaf(0xd, 0, d);
	raw_vcpu_create(&r);
	sys = cap_xsave2(r.kvm);
	vm_before = cap_xsave2(r.vm);
	c = guest_cpuid(true, &l);
	if (ioctl(r.vcpu, KVM_SET_CPUID2, c))
		kvmfpu_fail("realloc.xsave2_cap: KVM_SET_CPUID2 with KVM's own supported CPUID: %s",
			    strerror(errno));
	vm_after = cap_xsave2(r.vm);
	free(c);
	raw_vcpu_close(&r);
	printf("# XCR0 0x%llx: layout size %u, KVM_CAP_XSAVE2 %d (/dev/kvm) %d -> %d (VM fd, "
	       "before -> after KVM_SET_CPUID2), CPUID.0xD.0 EBX %u ECX %u\n",
	       (unsigned long long)xcr0, want, sys, vm_before, vm_after, d[1], d[2]);
	if (sys != (int)want || vm_before != (int)want || vm_after != (int)want)
		kvmfpu_fail("realloc.xsave2_cap: KVM_CAP_XSAVE2 is not the layout size %u of XCR0 "
			    "0x%llx", want, (unsigned long long)xcr0);
	if (d[1] != xs_size_standard(&l, xcr0) || d[2] != xs_size_standard(&l, xcr0))
		kvmfpu_fail("realloc.xsave2_cap: KVM_GET_SUPPORTED_CPUID.0xD.0 EBX %u / ECX %u, "
			    "the layout of XCR0 0x%llx needs %u", d[1], d[2],
			    (unsigned long long)xcr0, xs_size_standard(&l, xcr0));
	kvmfpu_print_exercised(0);	/* no tile data went through KVM */
}

/* How many bytes of @buf (filled with @canary before) the kernel wrote: the last non-canary. */
static uint32_t bytes_written(const uint8_t *buf, uint32_t size, uint8_t canary)
{
	while (size && buf[size - 1] == canary)
		size--;
	return size;
}

/*
 * realloc.set_cpuid (item 2). Kernel behaviour (cpuid.c kvm_check_cpuid ->
 * fpu_enable_guest_xfd_features -> __xfd_enable_feature -> fpstate_realloc): the vCPU's
 * fpstate grows, and its uABI size with it, at the KVM_SET_CPUID2 whose 0xD.0 has XTILEDATA,
 * not at the guest's first tile instruction. Observable: before it, legacy KVM_GET_XSAVE
 * works and KVM_GET_XSAVE2 writes 4096 bytes; after it, KVM_GET_XSAVE fails with EINVAL
 * (x86.c: uabi_size > sizeof(struct kvm_xsave)) and KVM_GET_XSAVE2 writes the full layout
 * size; KVM_SET_XSAVE then takes a full image with live tiles (beyond 4 KiB) and
 * KVM_GET_XSAVE2 returns it unchanged.
 */
KVMFPU_TEST_F(realloc, set_cpuid)
{
	struct kvm_xsave legacy;
	struct xs_layout l;
	struct raw_vcpu r;
	struct kvm_cpuid2 *c;
	struct ximage img, back;
	struct pattern_key k = { .seed = opt_seed };
	struct amx_info info;
	uint64_t xcr0, mask;
	uint32_t size, n;
	char why[256];
	unsigned int bad;

	xs_layout_from_cpuid(&l, xs_host_cpuid, NULL);
	xcr0 = kvmfpu_vm_supported_xcr0();
	size = uabi_size_for(xcr0, &l);
	if (!amx_info_from_cpuid(&info, kvmfpu_vm_supported_fn, NULL, why, sizeof(why)))
		kvmfpu_error("%s", why);
	raw_vcpu_create(&r);

	c = guest_cpuid(false, &l);
	if (ioctl(r.vcpu, KVM_SET_CPUID2, c))
		kvmfpu_fail("realloc.set_cpuid: KVM_SET_CPUID2 without AMX: %s", strerror(errno));
	free(c);
	if (ioctl(r.vcpu, KVM_GET_XSAVE, &legacy))
		kvmfpu_fail("realloc.set_cpuid: KVM_GET_XSAVE on a vCPU without AMX failed: %s",
			    strerror(errno));
	if (ximage_alloc(&img, &l, xcr0, false) || ximage_alloc(&back, &l, xcr0, false))
		kvmfpu_error("cannot allocate images");
	memset(back.buf, 0xa5, back.size);
	if (ioctl(r.vcpu, KVM_GET_XSAVE2, back.buf))
		kvmfpu_fail("realloc.set_cpuid: KVM_GET_XSAVE2: %s", strerror(errno));
	n = bytes_written(back.buf, back.size, 0xa5);
	printf("# without AMX in CPUID: KVM_GET_XSAVE2 wrote %u bytes\n", n);
	if (n > sizeof(struct kvm_xsave))
		kvmfpu_fail("realloc.set_cpuid: KVM_GET_XSAVE2 wrote %u bytes for a vCPU whose "
			    "CPUID lacks AMX: its fpstate was reallocated before KVM_SET_CPUID2 "
			    "asked", n);

	c = guest_cpuid(true, &l);
	if (ioctl(r.vcpu, KVM_SET_CPUID2, c))
		kvmfpu_fail("realloc.set_cpuid: KVM_SET_CPUID2 with AMX: %s", strerror(errno));
	free(c);
	errno = 0;
	if (!ioctl(r.vcpu, KVM_GET_XSAVE, &legacy) || errno != EINVAL)
		kvmfpu_fail("realloc.set_cpuid: legacy KVM_GET_XSAVE after KVM_SET_CPUID2 with AMX "
			    "returned %s, expected EINVAL: the 4 KiB struct cannot hold the state",
			    errno ? strerror(errno) : "success");
	memset(back.buf, 0xa5, back.size);
	if (ioctl(r.vcpu, KVM_GET_XSAVE2, back.buf))
		kvmfpu_fail("realloc.set_cpuid: KVM_GET_XSAVE2: %s", strerror(errno));
	n = bytes_written(back.buf, back.size, 0xa5);
	printf("# with AMX in CPUID: KVM_GET_XSAVE2 wrote %u bytes (layout size %u)\n", n, size);
	/* The tail of XTILEDATA is zero in init state, so every byte up to @size is written. */
	if (n != size)
		kvmfpu_fail("realloc.set_cpuid: KVM_GET_XSAVE2 wrote %u bytes, the reallocated "
			    "fpstate's uABI size must be the layout size %u", n, size);

	mask = xcr0 & (KVMFPU_VM_GUEST_COMPS | XS_MASK_AMX);
	amx_expected_image(&img, mask, &k, &info);
	if (ioctl(r.vcpu, KVM_SET_XSAVE, img.buf))
		kvmfpu_fail("realloc.set_cpuid: KVM_SET_XSAVE of a full image (XSTATE_BV 0x%llx, "
			    "%u bytes) failed: %s", (unsigned long long)mask, size,
			    strerror(errno));
	memset(back.buf, 0, back.size);
	if (ioctl(r.vcpu, KVM_GET_XSAVE2, back.buf))
		kvmfpu_fail("realloc.set_cpuid: KVM_GET_XSAVE2: %s", strerror(errno));
	bad = kvmfpu_vm_diff(&img, &back, mask, "realloc.set_cpuid");
	ximage_free(&img);
	ximage_free(&back);
	raw_vcpu_close(&r);
	if (bad)
		kvmfpu_fail("realloc.set_cpuid: %u register(s) differ after KVM_SET_XSAVE and "
			    "KVM_GET_XSAVE2 of the full image", bad);
	kvmfpu_print_exercised(mask);
}

/*
 * realloc.guest_cpuid_sizes (item 2). KVM (cpuid.c kvm_update_cpuid_runtime, run on every
 * XCR0 change): the guest's CPUID.0xD.0 EBX is the standard-format size of its current XCR0;
 * 0xD.1 EBX (with XSAVEC or XSAVES) is the compacted size of XCR0 | IA32_XSS, where each
 * component with 0xD.i ECX[1] starts at the next 64-byte boundary (SDM Vol. 1, 13.4.3).
 * Read by the guest before and after it enables AMX with XSETBV. The expected sizes come from
 * the host CPU's own CPUID 0xD.i (native CPUID, not KVM's table, which is what the guest's
 * CPUID was installed from). Also from the installed table, so checked against the host CPU
 * and the SDM rather than against the table: 0xD.0 ECX (KVM_GET_SUPPORTED_CPUID's size for
 * all of its XCR0) and 0xD.17/0xD.18, which KVM copies from the host CPU (cpuid.c,
 * __do_cpuid_func, case 0xd: do_host_cpuid() for each subleaf): EAX, EBX, ECX equal to the
 * host CPU's, and by the SDM (Vol. 1, 13.2 and the AMX state components) XTILECFG is 64
 * bytes, XTILEDATA is 0x1D.1 total_tile_bytes of the host CPU, neither is a supervisor
 * component (ECX[0] = 0), and XTILEDATA can be disabled by XFD (ECX[2] = 1). No tile data.
 */
KVMFPU_TEST_F(realloc, guest_cpuid_sizes)
{
	struct kvmfpu_vm v;
	struct xs_layout hl;
	struct amx_info hinfo;
	uint64_t *o, before_xcr0, after_xcr0;
	uint32_t h17[4], h18[4];
	char why[256];
	bool compacted;
	unsigned int bad = 0;

	xs_layout_from_cpuid(&hl, xs_host_cpuid, NULL);
	if (!amx_info_from_cpuid(&hinfo, xs_host_cpuid, NULL, why, sizeof(why)))
		kvmfpu_fail("realloc.guest_cpuid_sizes: the host CPU's AMX CPUID leaves: %s", why);
	xs_host_cpuid(NULL, 0xd, 17, h17);
	xs_host_cpuid(NULL, 0xd, 18, h18);
	kvmfpu_vm_create(&v, &kvmfpu_vm_amx_config);
	before_xcr0 = XCR0_BASE;
	after_xcr0 = XCR0_TILES;
	KVMFPU_VM_PROGRAM(&v,
			  OP(XSETBV, .a = before_xcr0),
			  OP(CPUID, .a = 0xd, .b = 0, .c = 0),
			  OP(CPUID, .a = 0xd, .b = 1, .c = 4),
			  OP(XSETBV, .a = after_xcr0),
			  OP(CPUID, .a = 0xd, .b = 0, .c = 8),
			  OP(CPUID, .a = 0xd, .b = 1, .c = 12),
			  OP(CPUID, .a = 0xd, .b = 17, .c = 16),
			  OP(CPUID, .a = 0xd, .b = 18, .c = 20),
			  OP(EXIT, .a = 1));
	v.guest_xcr0 = after_xcr0;
	kvmfpu_vm_print_env(&v);
	kvmfpu_vm_run_until(&v, AMX_STAGE_EXIT + 1, "realloc.guest_cpuid_sizes");
	o = v.amx->out;
	/* XSAVEC (0xD.1:EAX[1]) or XSAVES (EAX[3]) make EBX the compacted size. */
	compacted = o[4] & ((1u << 1) | (1u << 3));
	printf("# guest CPUID.0xD.0 EBX %llu -> %llu, ECX %llu; 0xD.1 EBX %llu -> %llu%s\n",
	       (unsigned long long)o[1], (unsigned long long)o[9], (unsigned long long)o[10],
	       (unsigned long long)o[5], (unsigned long long)o[13],
	       compacted ? "" : " (no XSAVEC/XSAVES: not compared)");
#define EXPECT_SIZE(got, want, what)							\
	do {										\
		if ((got) != (want)) {							\
			printf("# realloc.guest_cpuid_sizes: %s is %llu, expected %u\n",	\
			       what, (unsigned long long)(got), (unsigned)(want));	\
			bad++;								\
		}									\
	} while (0)
	EXPECT_SIZE(o[1], xs_size_standard(&hl, before_xcr0), "0xD.0 EBX before XSETBV(AMX)");
	EXPECT_SIZE(o[9], xs_size_standard(&hl, after_xcr0), "0xD.0 EBX after XSETBV(AMX)");
	EXPECT_SIZE(o[10], xs_size_standard(&hl, v.kvm_xcr0), "0xD.0 ECX");
	if (compacted) {
		EXPECT_SIZE(o[5], xs_size_compacted(&hl, before_xcr0),
			    "0xD.1 EBX before XSETBV(AMX), IA32_XSS 0");
		EXPECT_SIZE(o[13], xs_size_compacted(&hl, after_xcr0),
			    "0xD.1 EBX after XSETBV(AMX), IA32_XSS 0");
	}
	EXPECT_SIZE(o[16], h17[0], "guest 0xD.17 EAX (size) vs the host CPU's");
	EXPECT_SIZE(o[17], h17[1], "guest 0xD.17 EBX (offset) vs the host CPU's");
	EXPECT_SIZE(o[18], h17[2], "guest 0xD.17 ECX (flags) vs the host CPU's");
	EXPECT_SIZE(o[20], h18[0], "guest 0xD.18 EAX (size) vs the host CPU's");
	EXPECT_SIZE(o[21], h18[1], "guest 0xD.18 EBX (offset) vs the host CPU's");
	EXPECT_SIZE(o[22], h18[2], "guest 0xD.18 ECX (flags) vs the host CPU's");
	EXPECT_SIZE(o[16], AMX_TILECFG_SIZE, "guest 0xD.17 EAX (XTILECFG size, SDM)");
	EXPECT_SIZE(o[20], hinfo.total_tile_bytes,
		    "guest 0xD.18 EAX (XTILEDATA size, host 0x1D.1 total_tile_bytes)");
	EXPECT_SIZE(o[18] & 1, 0, "guest 0xD.17 ECX[0] (supervisor component)");
	EXPECT_SIZE(o[22] & 1, 0, "guest 0xD.18 ECX[0] (supervisor component)");
	EXPECT_SIZE((o[22] >> 2) & 1, 1, "guest 0xD.18 ECX[2] (XFD-capable)");
#undef EXPECT_SIZE
	kvmfpu_vm_destroy(&v);
	if (bad)
		kvmfpu_fail("realloc.guest_cpuid_sizes: %u CPUID value(s) differ from the host "
			    "CPU's layout or the SDM", bad);
	kvmfpu_print_exercised(0);
}

/* ------------------------------------------------------------------------------------------
 * Item 3: tiles across exits.
 */

FIXTURE(tiles) {
	struct kvmfpu_vm v;
	struct ximage expected;
};

KVMFPU_AMX_FIXTURE(tiles, XCR0_TILES, opt_seed, "", , )

/* Load all tiles, exit; then store them and the configuration, exit. */
static void tiles_program(struct kvmfpu_vm *v)
{
	KVMFPU_VM_PROGRAM(v,
			  OP(XSETBV, .a = XCR0_TILES),
			  OP(LDTILECFG),
			  OP(TILELOADD),
			  OP(EXIT, .a = 1),
			  OP(TILESTORED),
			  OP(STTILECFG),
			  OP(EXIT, .a = 2));
}

/* The tiles and configuration the guest stored are those of @regs (kvmfpu_vm_check_stored()). */
static unsigned int check_saved(struct kvmfpu_vm *v, const struct ximage *regs, const char *check)
{
	return kvmfpu_vm_check_stored(v, regs, XS_MASK_AMX, check);
}

/*
 * tiles.guest_image (item 3). After the guest configured palette 1 (8 tiles, rows and colsb
 * varied by the pattern) and loaded all tiles, KVM_GET_XSAVE2 holds exactly that
 * configuration (start_row 0 once TILELOADD completed) and the tiles as TILELOADD left them
 * (loaded bytes inside rows x colsb, zeros elsewhere: amx.h). Rule: the image is the guest's
 * register state (KVM saves the guest fpstate with XSAVES on the way out).
 */
KVMFPU_TEST_F(tiles, guest_image)
{
	struct ximage img;
	unsigned int bad;

	tiles_program(&self->v);
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 1, "tiles.guest_image");
	kvmfpu_vm_get_image(&self->v, &img);
	bad = kvmfpu_vm_diff(&self->expected, &img, XS_MASK_AMX, "tiles.guest_image");
	ximage_free(&img);
	if (bad)
		kvmfpu_fail("tiles.guest_image: %u tile register(s) differ in KVM_GET_XSAVE2", bad);
	kvmfpu_print_exercised(XS_MASK_AMX);
}

/*
 * tiles.reentry (item 3). After the exit to user space and re-entry, TILESTORED of every tile
 * and STTILECFG give back exactly what was loaded. Rule: KVM restores the guest fpstate it
 * saved (fpu_swap_kvm_fpstate), and the exit does not touch guest tiles.
 */
KVMFPU_TEST_F(tiles, reentry)
{
	unsigned int bad;

	tiles_program(&self->v);
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 1, "tiles.reentry");
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 2, "tiles.reentry");
	bad = check_saved(&self->v, &self->expected, "tiles.reentry");
	if (bad)
		kvmfpu_fail("tiles.reentry: %u tile register(s) differ in what the guest stored "
			    "after re-entry", bad);
	kvmfpu_print_exercised(XS_MASK_AMX);
}

/*
 * tiles.set_xsave (item 3). KVM_SET_XSAVE of a new configuration and new tile data (valid for
 * palette 1, zeros outside rows x colsb as TILELOADD would leave them) is read back unchanged
 * by KVM_GET_XSAVE2, and is what the guest stores with TILESTORED/STTILECFG after re-entry.
 * Rule: the uABI image replaces the guest's state (fpu_copy_uabi_to_guest_fpstate).
 */
KVMFPU_TEST_F(tiles, set_xsave)
{
	struct pattern_key k2 = { .seed = opt_seed, .salt = 1 };
	struct ximage img, back;
	uint64_t bv;
	unsigned int bad;
	char why[256];
	int r;

	tiles_program(&self->v);
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 1, "tiles.set_xsave");
	kvmfpu_vm_get_image(&self->v, &img);
	bv = ximage_xstate_bv(&img);
	amx_expected_image(&img, XS_MASK_AMX, &k2, &self->v.info);
	ximage_set_xstate_bv(&img, bv | XS_MASK_AMX);
	if (!amx_tilecfg_valid(ximage_comp(&img, XS_XTILECFG), &self->v.info, why, sizeof(why)))
		kvmfpu_error("pattern tile configuration would not load: %s", why);
	r = kvmfpu_vm_set_image(&self->v, &img);
	if (r)
		kvmfpu_fail("tiles.set_xsave: KVM_SET_XSAVE of new tiles failed: %s", strerror(-r));
	kvmfpu_vm_get_image(&self->v, &back);
	bad = kvmfpu_vm_diff(&img, &back, XS_MASK_AMX, "tiles.set_xsave.readback");
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 2, "tiles.set_xsave");
	bad += check_saved(&self->v, &img, "tiles.set_xsave");
	ximage_free(&img);
	ximage_free(&back);
	if (bad)
		kvmfpu_fail("tiles.set_xsave: %u tile register(s) differ from what KVM_SET_XSAVE "
			    "wrote", bad);
	kvmfpu_print_exercised(XS_MASK_AMX);
}

/*
 * tiles.release_init (item 3; guards the WARN in __copy_xstate_uabi_buf with tile data in
 * init state). After TILERELEASE both tile components are in their initial configuration
 * (SDM Vol. 2, TILERELEASE: "returns TILECFG and TILEDATA to the INIT state"), so
 * KVM_GET_XSAVE2 shows them as init (XSTATE_BV bits clear or all-zero data), STTILECFG stores
 * 64 zero bytes (SDM Vol. 2, STTILECFG: tiles not configured), and copying that image out
 * (twice) raises no kernel WARN (the W taint flag stays as it was).
 */
KVMFPU_TEST_F(tiles, release_init)
{
	struct ximage img, init;
	uint64_t taint0 = 0, taint1 = 0;
	bool taint_ok;
	unsigned int bad, i;
	uint8_t *cfg;

	KVMFPU_VM_PROGRAM(&self->v,
			  OP(XSETBV, .a = XCR0_TILES),
			  OP(LDTILECFG),
			  OP(TILELOADD),
			  OP(EXIT, .a = 1),
			  OP(TILERELEASE),
			  OP(STTILECFG),
			  OP(EXIT, .a = 2));
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 1, "tiles.release_init");
	cfg = ximage_comp(&self->v.save, XS_XTILECFG);
	memset(cfg, 0xff, AMX_TILECFG_SIZE);
	taint_ok = kernel_env_taint(&taint0);
	kvmfpu_vm_run_until(&self->v, AMX_STAGE_EXIT + 2, "tiles.release_init");
	for (i = 0; i < AMX_TILECFG_SIZE; i++)
		if (cfg[i])
			kvmfpu_fail("tiles.release_init: STTILECFG after TILERELEASE stored 0x%02x "
				    "at byte %u, expected 64 zero bytes", cfg[i], i);
	kvmfpu_vm_get_image(&self->v, &img);
	ximage_free(&img);
	kvmfpu_vm_get_image(&self->v, &img);
	if (ximage_alloc(&init, &self->v.layout, self->v.kvm_xcr0, false))
		kvmfpu_error("cannot allocate the init image");
	ximage_init_state(&init, XS_MASK_AMX);
	bad = kvmfpu_vm_diff(&init, &img, XS_MASK_AMX, "tiles.release_init");
	printf("# after TILERELEASE: XSTATE_BV 0x%llx\n",
	       (unsigned long long)ximage_xstate_bv(&img));
	ximage_free(&img);
	ximage_free(&init);
	if (bad)
		kvmfpu_fail("tiles.release_init: %u tile register(s) not in init state after "
			    "TILERELEASE", bad);
	if (taint_ok && kernel_env_taint(&taint1) && !(taint0 & KERNEL_ENV_TAINT_WARN) &&
	    (taint1 & KERNEL_ENV_TAINT_WARN))
		kvmfpu_fail("tiles.release_init: the kernel WARNed (taint W set) while KVM saved "
			    "and copied out init-state tiles: see dmesg");
	if (taint0 & KERNEL_ENV_TAINT_WARN)
		printf("# kernel already tainted W before the test: WARN detection by taint off "
		       "(the runner's dmesg scan still sees it)\n");
	kvmfpu_print_exercised(XS_MASK_AMX);
}

/* ------------------------------------------------------------------------------------------
 * Item 6: save/restore into a new VM.
 */

enum xfd_mode {
	MODE_INTERCEPT,		/* XFD never written non-zero: KVM intercepts WRMSR(XFD) */
	MODE_PASSTHROUGH,	/* armed once and disarmed: WRMSR(XFD) passed through, #NM trapped */
	MODE_NM_PENDING,	/* moved while the guest is inside its XFD #NM handler */
};

FIXTURE(migrate) {
	struct kvmfpu_vm v;
	struct ximage expected;
};

FIXTURE_VARIANT(migrate) {
	const char *name;	/* for the replay line */
	enum xfd_mode mode;
};

FIXTURE_VARIANT_ADD(migrate, intercept) {
	.name = "intercept",
	.mode = MODE_INTERCEPT,
};
FIXTURE_VARIANT_ADD(migrate, passthrough) {
	.name = "passthrough",
	.mode = MODE_PASSTHROUGH,
};
FIXTURE_VARIANT_ADD(migrate, nm_pending) {
	.name = "nm_pending",
	.mode = MODE_NM_PENDING,
};

KVMFPU_AMX_FIXTURE(migrate, XCR0_TILES, opt_seed, variant->name, , )

static void expect_msr(struct kvmfpu_vm *v, uint32_t msr, uint64_t want, const char *check,
		       const char *when)
{
	uint64_t got = kvmfpu_vm_msr(v, msr);

	if (got != want)
		kvmfpu_fail("%s: %s %s is 0x%llx, expected 0x%llx", check,
			    msr == KVMFPU_MSR_IA32_XFD ? "IA32_XFD" : "IA32_XFD_ERR", when,
			    (unsigned long long)got, (unsigned long long)want);
}

/*
 * migrate.*.tiles_survive (item 6). What live migration does, on one host: the vCPU's full
 * state (KVM_GET_XSAVE2 image with live tiles and XTILECFG, XCR0, MSRs including IA32_XFD and
 * IA32_XFD_ERR, registers) is saved, the VM closed, and the state loaded into a new VM's vCPU
 * (vcpu_save_state/vcpu_load_state: KVM_SET_MSRS before KVM_SET_XSAVE, the new vCPU's CPUID
 * already has AMX, so its fpstate was reallocated at KVM_SET_CPUID2). Rule: the restored
 * vCPU continues as if nothing happened: KVM_GET_XSAVE2 of the new vCPU equals the old image,
 * XFD and XFD_ERR are the saved values, and the guest stores exactly the tiles it loaded.
 * In both XFD modes (KVM intercepting WRMSR(XFD), or passing it through and trapping #NM after
 * the first non-zero write, vmx.c vmx_set_msr), and in the middle of an XFD #NM handler: the
 * pending XFD_ERR must reach the new vCPU (the guest reads it there) before the handler
 * clears XFD and the retried TILELOADD loads the data.
 */
KVMFPU_TEST_F(migrate, tiles_survive)
{
	struct kvmfpu_vm *v = &self->v;
	struct ximage before, after;
	unsigned int bad;

	switch (variant->mode) {
	case MODE_INTERCEPT:
		tiles_program(v);
		break;
	case MODE_PASSTHROUGH:
		KVMFPU_VM_PROGRAM(v,
				  OP(XSETBV, .a = XCR0_TILES),
				  OP(WRMSR, .a = KVMFPU_MSR_IA32_XFD, .b = XTILEDATA),
				  OP(WRMSR, .a = KVMFPU_MSR_IA32_XFD, .b = 0),
				  OP(LDTILECFG),
				  OP(TILELOADD),
				  OP(EXIT, .a = 1),
				  OP(TILESTORED),
				  OP(STTILECFG),
				  OP(EXIT, .a = 2));
		break;
	case MODE_NM_PENDING:
		v->amx->nm_exit = 1;
		KVMFPU_VM_PROGRAM(v,
				  OP(XSETBV, .a = XCR0_TILES),
				  OP(WRMSR, .a = KVMFPU_MSR_IA32_XFD, .b = XTILEDATA),
				  OP(LDTILECFG),
				  OP(TILELOADD),
				  OP(EXIT, .a = 1),
				  OP(TILESTORED),
				  OP(STTILECFG),
				  OP(EXIT, .a = 2));
		kvmfpu_vm_run_until(v, AMX_STAGE_NM, "migrate.nm_pending.tiles_survive");
		expect_msr(v, KVMFPU_MSR_IA32_XFD, XTILEDATA, "migrate.tiles_survive", "in #NM");
		expect_msr(v, KVMFPU_MSR_IA32_XFD_ERR, XTILEDATA, "migrate.tiles_survive",
			   "in #NM");
		kvmfpu_vm_migrate(v);
		expect_msr(v, KVMFPU_MSR_IA32_XFD, XTILEDATA, "migrate.tiles_survive",
			   "in #NM, new VM");
		expect_msr(v, KVMFPU_MSR_IA32_XFD_ERR, XTILEDATA, "migrate.tiles_survive",
			   "in #NM, new VM");
		break;
	}
	kvmfpu_vm_run_until(v, AMX_STAGE_EXIT + 1, "migrate.tiles_survive");
	if (variant->mode == MODE_NM_PENDING &&
	    (v->amx->nm.count != 1 || v->amx->nm.xfd_err_after_exit != XTILEDATA))
		kvmfpu_fail("migrate.nm_pending.tiles_survive: the guest's #NM handler read "
			    "IA32_XFD_ERR 0x%llx in the new VM (expected 0x%llx), #NM count %llu",
			    (unsigned long long)v->amx->nm.xfd_err_after_exit,
			    (unsigned long long)XTILEDATA, (unsigned long long)v->amx->nm.count);

	kvmfpu_vm_get_image(v, &before);
	bad = kvmfpu_vm_diff(&self->expected, &before, XS_MASK_AMX, "migrate.tiles_survive.source");
	kvmfpu_vm_migrate(v);
	expect_msr(v, KVMFPU_MSR_IA32_XFD, 0, "migrate.tiles_survive", "in the new VM");
	expect_msr(v, KVMFPU_MSR_IA32_XFD_ERR, 0, "migrate.tiles_survive", "in the new VM");
	kvmfpu_vm_get_image(v, &after);
	bad += kvmfpu_vm_diff(&before, &after, v->kvm_xcr0, "migrate.tiles_survive.restored_image");
	kvmfpu_vm_run_until(v, AMX_STAGE_EXIT + 2, "migrate.tiles_survive");
	bad += check_saved(v, &self->expected, "migrate.tiles_survive.guest");
	ximage_free(&before);
	ximage_free(&after);
	if (bad)
		kvmfpu_fail("migrate.tiles_survive: %u register(s) differ across the move to a new "
			    "VM", bad);
	kvmfpu_print_exercised(XS_MASK_AMX);
}

/*
 * global.restore_without_amx (item 6). Restoring an image with live tiles into a vCPU whose CPUID
 * lacks AMX. What 6.12 does (read, not assumed): the vCPU's fpstate was never reallocated
 * (kvm_check_cpuid saw no XTILEDATA), so its uABI size is 4096 and KVM_SET_XSAVE reads only
 * the first 4 KiB (x86.c, memdup_user(argp, uabi_size)); the header there has XSTATE_BV[18]
 * set, which is outside the fpstate's user_xfeatures, so validate_user_xstate_header()
 * rejects the image: KVM_SET_XSAVE fails with EINVAL (fpu_copy_uabi_to_guest_fpstate ->
 * copy_uabi_from_kernel_to_xstate). Rule asserted: rejected with an error, never accepted
 * with the tiles silently dropped (a VMM checking the error can refuse the migration).
 */
TEST(restore_without_amx)
{
	struct ximage expected, img;
	struct kvm_cpuid2 *c;
	struct raw_vcpu r;
	struct kvmfpu_vm v;
	char why[512];
	int ret, err;

	KVMFPU_REPLAY(opt_seed, "");
	if (!kvmfpu_vm_amx_setup(&v, XCR0_TILES, opt_seed, &expected, why, sizeof(why)))
		SKIP(return, "%s", why);
	KVMFPU_VM_PROGRAM(&v,
			  OP(XSETBV, .a = XCR0_TILES),
			  OP(LDTILECFG),
			  OP(TILELOADD),
			  OP(EXIT, .a = 1));
	kvmfpu_vm_run_until(&v, AMX_STAGE_EXIT + 1, "restore_without_amx");
	kvmfpu_vm_get_image(&v, &img);
	if ((ximage_xstate_bv(&img) & XS_MASK_AMX) != XS_MASK_AMX)
		kvmfpu_fail("restore_without_amx: source image has XSTATE_BV 0x%llx: live tiles "
			    "expected (tiles.guest_image explains)",
			    (unsigned long long)ximage_xstate_bv(&img));

	raw_vcpu_create(&r);
	c = guest_cpuid(false, &v.layout);
	if (ioctl(r.vcpu, KVM_SET_CPUID2, c))
		kvmfpu_fail("restore_without_amx: KVM_SET_CPUID2 without AMX: %s", strerror(errno));
	free(c);
	ret = ioctl(r.vcpu, KVM_SET_XSAVE, img.buf);
	err = errno;
	printf("# KVM_SET_XSAVE of a %u-byte image with XSTATE_BV 0x%llx into a vCPU without AMX: "
	       "%s\n", img.size, (unsigned long long)ximage_xstate_bv(&img),
	       ret ? strerror(err) : "accepted");
	if (!ret)
		kvmfpu_fail("restore_without_amx: KVM_SET_XSAVE accepted live tile state into a "
			    "vCPU whose CPUID lacks AMX; its uABI image (4096 bytes) cannot hold "
			    "XTILEDATA, so the tiles were dropped silently");
	raw_vcpu_close(&r);
	ximage_free(&img);
	kvmfpu_vm_amx_teardown(&v, &expected);
	kvmfpu_print_exercised(XS_MASK_AMX);
}

/* ------------------------------------------------------------------------------------------
 * Item 7: AVX-512 and AMX in one vCPU.
 */

FIXTURE(mixed) {
	struct kvmfpu_vm v;
	struct ximage expected;
	uint64_t xcr0;
};

FIXTURE_VARIANT(mixed) {
	const char *name;	/* for the replay line */
	uint64_t xcr0;
};

FIXTURE_VARIANT_ADD(mixed, avx512_amx) {
	.name = "avx512_amx",
	.xcr0 = XCR0_BASE | XS_MASK_AVX512 | XS_MASK_AMX,
};
FIXTURE_VARIANT_ADD(mixed, amx_only) {
	.name = "amx_only",
	.xcr0 = XCR0_BASE | XS_MASK_AMX,
};
FIXTURE_VARIANT_ADD(mixed, avx512_no_amx) {
	.name = "avx512_no_amx",
	.xcr0 = XCR0_BASE | XS_MASK_AVX512,
};

/* AMX first, so that the skip names AMX where both are missing (as in the other fixtures). */
FIXTURE_SETUP(mixed)
{
	struct kvmfpu_vm_config cfg = { .xcr0 = variant->xcr0 & ~XS_MASK_AMX };
	char why[512];

	KVMFPU_REPLAY(opt_seed, variant->name);
	if (!kvmfpu_vm_amx_require(why, sizeof(why)))
		SKIP(return, "%s", why);
	if (!kvmfpu_vm_config_supported(&cfg, why, sizeof(why)))
		SKIP(return, "%s", why);
	if (!kvmfpu_vm_amx_setup(&self->v, variant->xcr0, opt_seed, &self->expected, why,
				 sizeof(why)))
		SKIP(return, "%s", why);
	self->xcr0 = variant->xcr0;
}

FIXTURE_TEARDOWN(mixed)
{
	kvmfpu_vm_amx_teardown(&self->v, &self->expected);
}

/*
 * mixed.*.image_and_reentry (item 7). With XCR0 including AVX-512 and AMX, only one of them,
 * the guest loads every register of every enabled component (x87, SSE, AVX, opmask,
 * ZMM_Hi256, Hi16_ZMM, tiles and their configuration) and exits: KVM_GET_XSAVE2 holds all of
 * them and shows every component outside XCR0 in init state with its XSTATE_BV bit clear
 * (XSAVE* never set XSTATE_BV[i] for i not in XCR0, SDM Vol. 1, 13.7; PKRU excepted: KVM
 * reports the vCPU's PKRU whenever its CPUID has PKU); after re-entry the guest stores
 * exactly what it loaded. Tile instructions do not touch vector registers and vice versa.
 */
KVMFPU_TEST_F(mixed, image_and_reentry)
{
	struct kvmfpu_vm *v = &self->v;
	uint64_t vec = self->xcr0 & ~XS_MASK_AMX, amx = self->xcr0 & XS_MASK_AMX;
	uint64_t allowed = self->xcr0 | XS_BIT(XS_PKRU), mask;
	struct ximage img;
	unsigned int bad;

	if (amx)
		KVMFPU_VM_PROGRAM(v,
				  OP(XSETBV, .a = self->xcr0),
				  OP(FILL, .a = vec),
				  OP(LDTILECFG),
				  OP(TILELOADD),
				  OP(EXIT, .a = 1),
				  OP(SAVE, .a = vec),
				  OP(TILESTORED),
				  OP(STTILECFG),
				  OP(EXIT, .a = 2));
	else
		KVMFPU_VM_PROGRAM(v,
				  OP(XSETBV, .a = self->xcr0),
				  OP(FILL, .a = vec),
				  OP(EXIT, .a = 1),
				  OP(SAVE, .a = vec),
				  OP(EXIT, .a = 2));
	mask = v->kvm_xcr0 & (KVMFPU_VM_GUEST_COMPS | XS_MASK_AMX) & ~XS_BIT(XS_PKRU);
	/* Components outside XCR0 are expected in init state. */
	ximage_set_xstate_bv(&self->expected, self->xcr0);

	kvmfpu_vm_run_until(v, AMX_STAGE_EXIT + 1, "mixed.image_and_reentry");
	kvmfpu_vm_get_image(v, &img);
	bad = kvmfpu_vm_diff(&self->expected, &img, mask, "mixed.guest_image");
	if (ximage_xstate_bv(&img) & ~allowed) {
		printf("# mixed.guest_image: XSTATE_BV 0x%llx has bits outside XCR0 0x%llx (| PKRU)\n",
		       (unsigned long long)ximage_xstate_bv(&img),
		       (unsigned long long)self->xcr0);
		bad++;
	}
	ximage_free(&img);
	kvmfpu_vm_run_until(v, AMX_STAGE_EXIT + 2, "mixed.image_and_reentry");
	bad += kvmfpu_vm_check_stored(v, &self->expected, self->xcr0, "mixed.guest_reentry");
	if (bad)
		kvmfpu_fail("mixed.image_and_reentry: %u register(s) differ with XCR0 0x%llx", bad,
			    (unsigned long long)self->xcr0);
	kvmfpu_print_exercised(self->xcr0);
}

/* ------------------------------------------------------------------------------------------ */

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
};

KVMFPU_MAIN(opts, NULL)
