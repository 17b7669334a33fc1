// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_xcr0_test: which XCR0 values KVM accepts, and the CPUID leaf 0xD sizes it reports
 * for each.
 *
 * Sizes (KNOWLEDGE §2 classes 4 and 16). CPUID.(0xD,0).EBX is the standard-format XSAVE size
 * for what XCR0 enables, CPUID.(0xD,1).EBX the compacted size for XCR0 | IA32_XSS, with each
 * component 64-byte aligned when CPUID.(0xD,i).ECX[1] says so (SDM Vol. 1, 13.4.3; lib/
 * xsizes.h). KVM recomputes both in xstate_required_size() (arch/x86/kvm/cpuid.c) whenever
 * XCR0 or CR4.OSXSAVE changes (__kvm_update_cpuid_runtime()), and a VMM that repeats
 * KVM_SET_CPUID2 after KVM_RUN with the CPUID it created the vCPU with must be accepted
 * (kvm_set_cpuid() applies the same runtime updates to the new CPUID before
 * kvm_cpuid_check_equal()).
 *   kvm_supported   KVM_GET_SUPPORTED_CPUID.(0xD,0) EBX and ECX are the standard size of
 *                   everything it supports, 0xD.1 EBX the compacted size with XSS (when
 *                   XSAVEC/XSAVES exist), and its XCR0 is itself a valid XCR0 (never XTILECFG
 *                   without XTILEDATA: "KVM: x86: Filter out XTILE_CFG if XTILE_DATA isn't
 *                   permitted", class 10)
 *   sizes_xcrs      for every valid XCR0 of the guest's CPUID, set with KVM_SET_XCRS, the
 *   sizes_xsetbv    ...and with the guest's XSETBV: the guest's XGETBV, KVM_GET_XCRS and the
 *                   guest's CPUID 0xD.0 EBX (and 0xD.1 EBX when the guest has XSAVEC/XSAVES)
 *                   match.
 *   sizes_compacted the same, skipping where the guest has neither XSAVEC nor XSAVES (so
 *                   0xD.1 EBX is undefined: both labs) instead of passing silently. Guards "KVM: x86: Fix xstate_required_size() to follow XSTATE
 *                   alignment rule" (class 4) and the runtime update itself.
 *   set_cpuid_again after the guest set CR4.OSXSAVE and a new XCR0, KVM_SET_CPUID2 with the
 *                   very CPUID the vCPU was created with is accepted (0), the sizes still
 *                   follow XCR0 and a different CPUID is still refused. Guards "KVM: x86:
 *                   Fix KVM_SET_CPUID2 after KVM_RUN ..." / "KVM: x86: Allow KVM_SET_CPUID{2}
 *                   after KVM_RUN with identical..." (class 16).
 *   fpstate_size    the guest fpstate's sizes agree everywhere (class 15; the fix "x86/fpu:
 *                   Fix guest FPU state buffer allocation size", 1937e18cc3cf, sized it from
 *                   the kernel's layout instead of the user's): KVM_CHECK_EXTENSION(
 *                   KVM_CAP_XSAVE2) on the VM fd and on /dev/kvm is max(sizeof(struct
 *                   kvm_xsave), the standard size of KVM's XCR0) (kvm_vm_ioctl_check_extension(),
 *                   xstate_required_size(kvm_get_filtered_xcr0())); the guest's own CPUID
 *                   0xD.0 EBX is the standard size of its XCR0; KVM_GET_XSAVE2 writes
 *                   guest_fpu.uabi_size bytes, which must be at least sizeof(struct kvm_xsave)
 *                   (fpu_alloc_guest_fpstate()) and at most the capability (a canary past it
 *                   stays), zero past the guest's components (__copy_xstate_to_uabi_buf()),
 *                   whose XSTATE_BV names only components of the guest's CPUID 0xD.0. Before
 *                   the first KVM_RUN, after it and after KVM_SET_CPUID2 is repeated. Every
 *                   expected size comes from the host CPU's own CPUID 0xD (xs_host_cpuid()),
 *                   never from KVM's leaves. The AMX half (the permission grows the capability,
 *                   KVM_SET_CPUID2 with AMX grows the vCPU's fpstate) is kvmfpu_amx_test's
 *                   realloc.xsave2_cap and realloc.set_cpuid (AMX hosts only).
 * XCR0 validity (class 10). __kvm_set_xcr() (arch/x86/kvm/x86.c) refuses XCR0 without x87,
 * YMM without SSE, a bit the guest's CPUID 0xD.0 or KVM does not allow, BNDREGS and BNDCSR
 * apart, AVX-512 without YMM or not all three together, XTILECFG and XTILEDATA apart
 * (quoted in lib/xsizes.c): KVM_SET_XCRS fails with EINVAL, the guest's XSETBV takes #GP.
 *   rejects_xcrs    every invalid XCR0 of xsz_invalid_xcr0s() (one or more per rule, every
 *   rejects_xsetbv  unsupported bit 1..63): refused, and XCR0 (KVM_GET_XCRS and the guest's
 *                   XGETBV) and the 0xD.0 EBX the guest sees are unchanged
 *   amx_permission  the same rules with the AMX components, without and with the AMX
 *                   permission (an AMX host only)
 * Variants: "all", the guest's CPUID 0xD.0 advertises every XCR0 bit KVM supports; "narrow",
 * only x87, SSE and AVX, so KVM-supported components the guest lacks must be refused too.
 * The XSETBV halves skip where the lab's emulator does not intercept XSETBV (quirk
 * xsetbv_not_intercepted): KVM never sees the instruction there.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvmfpu_vm.h"
#include "guest_xcr0.h"
#include "options.h"
#include "report.h"
#include "xsizes.h"

#include "kvmfpu_harness.h"

#define MAX_XCR0S		1024
#define MAX_BAD			128
#define CPUID_1_ECX_OSXSAVE	(1u << 27)

#define XSETBV_QUIRK_SKIP						\
	"lab quirk xsetbv_not_intercepted: the emulator runs the guest's XSETBV without a "  \
	"VM exit, so KVM's XSETBV handling cannot be observed (the *_xcrs tests cover the "  \
	"same rules through KVM_SET_XCRS)"

/*
 * The XCR0 guest (lib/kvmfpu_vm.h) whose CPUID.(0xD,0) advertises @cpuid_xcr0. False, with
 * the reason for a skip, when KVM cannot run it or did not keep the guest CPUID the expected
 * values rest on (kvm_pvm reports its own leaf 0xD): every check would then judge KVM against
 * its own view.
 */
static bool xcr0_vm_create(struct kvmfpu_vm *v, uint64_t cpuid_xcr0, char *why, size_t len)
{
	const struct kvmfpu_vm_config cfg = {
		.guest = KVMFPU_VM_GUEST_XCR0, .xcr0 = cpuid_xcr0,
	};

	if (!kvmfpu_vm_config_supported(&cfg, why, len))
		return false;
	kvmfpu_vm_create(v, &cfg);
	if (!v->cpuid_kept) {
		snprintf(why, len, "%s: the sizes would be checked against KVM's own view",
			 v->cpuid_lost);
		kvmfpu_vm_destroy(v);
		return false;
	}
	return true;
}

static unsigned int check_u32(const char *name, const char *step, uint64_t xcr0,
			      const char *reg, uint32_t expected, uint32_t actual, const char *rule)
{
	if (expected == actual)
		return 0;
	printf("# %s: %s: XCR0 0x%llx: %s expected %u (0x%x), actual %u (0x%x): %s\n", name,
	       step, (unsigned long long)xcr0, reg, expected, expected, actual, actual, rule);
	return 1;
}

/*
 * After the guest's last report, with XCR0 = @xcr0: XGETBV in the guest and KVM_GET_XCRS
 * read it, and the guest's CPUID 0xD follows it. Expected values come from the CPUID the test
 * set (v->cfg.xcr0) and KVM's leaf 0xD layout (v->layout), never from the guest's view.
 */
static unsigned int check_seen(struct kvmfpu_vm *v, const char *name, const char *step,
			       uint64_t xcr0)
{
	const struct kvmfpu_xcr0_seen *s = &v->xcr0_args->seen;
	uint64_t kvm_xcr0 = kvmfpu_vm_xcr0(v), cpuid_xcr0 = v->cfg.xcr0;
	unsigned int bad = 0;

	if (s->xcr0 != xcr0 || kvm_xcr0 != xcr0) {
		printf("# %s: %s: XCR0 expected 0x%llx, guest XGETBV(0) 0x%llx, KVM_GET_XCRS "
		       "0x%llx\n", name, step, (unsigned long long)xcr0,
		       (unsigned long long)s->xcr0, (unsigned long long)kvm_xcr0);
		bad++;
	}
	bad += check_u32(name, step, xcr0, "CPUID.(0xD,0).EBX", xs_size_standard(&v->layout, xcr0),
			 s->d0[1], "the standard-format size of XCR0's components "
			 "(xstate_required_size(xcr0, false))");
	bad += check_u32(name, step, xcr0, "CPUID.(0xD,0).EAX", (uint32_t)cpuid_xcr0, s->d0[0],
			 "the XCR0 bits the guest CPUID advertises, as set");
	bad += check_u32(name, step, xcr0, "CPUID.(0xD,0).EDX", cpuid_xcr0 >> 32, s->d0[3],
			 "the XCR0 bits the guest CPUID advertises, as set");
	bad += check_u32(name, step, xcr0, "CPUID.(0xD,0).ECX",
			 xs_size_standard(&v->layout, cpuid_xcr0), s->d0[2],
			 "the size for every advertised component, as set");
	/* IA32_XSS is never written here: its reset value 0. */
	if (xs_has_compacted(&v->layout))
		bad += check_u32(name, step, xcr0, "CPUID.(0xD,1).EBX",
				 xs_size_compacted(&v->layout, xcr0), s->d1[1],
				 "the compacted size of XCR0 | IA32_XSS, each component aligned "
				 "to 64 bytes when CPUID.(0xD,i).ECX[1] says so "
				 "(xstate_required_size(xcr0, true))");
	if (!(s->leaf1[2] & CPUID_1_ECX_OSXSAVE) != !(s->cr4 & KVMFPU_CR4_OSXSAVE)) {
		printf("# %s: %s: CPUID.1:ECX.OSXSAVE[27] is %d but CR4.OSXSAVE is %d: KVM must "
		       "mirror CR4 there\n", name, step, !!(s->leaf1[2] & CPUID_1_ECX_OSXSAVE),
		       !!(s->cr4 & KVMFPU_CR4_OSXSAVE));
		bad++;
	}
	return bad;
}

/* The env line, and what the guest's CPUID leaves out of the checks. */
static void print_env(const struct kvmfpu_vm *v)
{
	kvmfpu_vm_print_env(v);
	if (!xs_has_compacted(&v->layout))
		printf("# note: the guest's CPUID.(0xD,1).EAX has neither XSAVEC nor XSAVES, so "
		       "0xD.1 EBX is not defined for it and is not checked\n");
	fflush(stdout);
}

FIXTURE(xcr0) {
	struct kvmfpu_vm v;
	char name[96];
	uint64_t valid[MAX_XCR0S];
	unsigned int nr_valid;
	struct xsz_bad_xcr0 bad[MAX_BAD];
	unsigned int nr_bad;
};

FIXTURE_VARIANT(xcr0) {
	const char *name;
	bool narrow;	/* guest CPUID 0xD.0: x87, SSE, AVX only */
};

FIXTURE_VARIANT_ADD(xcr0, all) {
	.name = "all",
};
FIXTURE_VARIANT_ADD(xcr0, narrow) {
	.name = "narrow", .narrow = true,
};

FIXTURE_SETUP(xcr0)
{
	uint64_t cpuid_xcr0 = kvmfpu_vm_supported_xcr0();
	char why[512];

	/* kvmfpu_fail() prints "# kvmfpu-replay: args=-r xcr0.<variant>.<test>" first. */
	KVMFPU_REPLAY_NAME(variant->name);
	snprintf(self->name, sizeof(self->name), "xcr0.%s.%s", variant->name, _metadata->name);
	if (variant->narrow)
		cpuid_xcr0 &= XS_MASK_FPSSE | XS_BIT(XS_AVX);
	if (!xcr0_vm_create(&self->v, cpuid_xcr0, why, sizeof(why)))
		SKIP(return, "%s", why);
	self->nr_valid = xsz_valid_xcr0s(self->v.allowed, self->valid, MAX_XCR0S);
	self->nr_bad = xsz_invalid_xcr0s(self->v.allowed, self->bad, MAX_BAD);
	if (!self->nr_valid)
		kvmfpu_error("%s: no valid XCR0 for allowed 0x%llx", self->name,
			     (unsigned long long)self->v.allowed);
	print_env(&self->v);
}

FIXTURE_TEARDOWN(xcr0)
{
	kvmfpu_vm_destroy(&self->v);
}

/* Every valid XCR0 ascending, then back to the smallest: KVM must follow shrinking too. */
static void sizes(FIXTURE_DATA(xcr0) *self, bool by_guest)
{
	struct kvmfpu_vm *v = &self->v;
	unsigned int i, bad = 0;
	int err;
	char step[64];
	uint64_t xcr0;

	for (i = 0; i <= self->nr_valid; i++) {
		xcr0 = self->valid[i < self->nr_valid ? i : 0];
		snprintf(step, sizeof(step), "%s(0x%llx)", by_guest ? "XSETBV" : "KVM_SET_XCRS",
			 (unsigned long long)xcr0);
		if (by_guest) {
			kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_XSETBV, xcr0);
			if (v->xcr0_args->gp_count) {
				printf("# %s: %s: the guest took #GP on a valid XCR0 (allowed "
				       "0x%llx)\n", self->name, step, (unsigned long long)v->allowed);
				kvmfpu_fail("%s: 1 check failed", self->name);
			}
		} else {
			err = kvmfpu_vm_set_xcr0(v, xcr0);
			if (err) {
				printf("# %s: %s failed: %s (allowed 0x%llx)\n", self->name, step,
				       strerror(-err), (unsigned long long)v->allowed);
				kvmfpu_fail("%s: 1 check failed", self->name);
			}
			kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
		}
		bad += check_seen(v, self->name, step, xcr0);
	}
	printf("# %u valid XCR0 values of 0x%llx checked\n", self->nr_valid,
	       (unsigned long long)v->allowed);
	if (bad)
		kvmfpu_fail("%s: %u check(s) failed", self->name, bad);
	kvmfpu_print_exercised(v->allowed);
}

KVMFPU_TEST_F(xcr0, sizes_xcrs)
{
	sizes(self, false);
}

/*
 * The compacted size has its own test only so that a tier where it cannot be observed says so
 * with a SKIP (sizes_xcrs checks it too where the guest has XSAVEC or XSAVES). The 64-byte
 * alignment rule matters only where a component asks for it (AMX's on Intel).
 */
KVMFPU_TEST_F(xcr0, sizes_compacted)
{
	if (!xs_has_compacted(&self->v.layout))
		SKIP(return, "KVM_GET_SUPPORTED_CPUID.(0xD,1).EAX 0x%x has neither XSAVEC[1] nor "
		     "XSAVES[3]: CPUID.(0xD,1).EBX (the compacted size) is not defined for the "
		     "guest", self->v.layout.d1_eax);
	sizes(self, false);
}

KVMFPU_TEST_F(xcr0, sizes_xsetbv)
{
	if (kvmfpu_vm_quirk("xsetbv_not_intercepted"))
		SKIP(return, XSETBV_QUIRK_SKIP);
	sizes(self, true);
}

/*
 * Start from the largest valid XCR0 (so "unchanged" is not the reset value), then try every
 * invalid one: refused, and nothing changed.
 */
static void rejects(FIXTURE_DATA(xcr0) *self, bool by_guest)
{
	uint64_t known = self->valid[self->nr_valid - 1], gp;
	struct kvmfpu_vm *v = &self->v;
	unsigned int i, bad = 0;
	char step[256], rule[160];
	int err;

	if (by_guest)
		kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_XSETBV, known);
	else if ((err = kvmfpu_vm_set_xcr0(v, known)))
		kvmfpu_fail("%s: KVM_SET_XCRS(0x%llx), valid, failed: %s", self->name,
			    (unsigned long long)known, strerror(-err));
	if (!by_guest)
		kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
	if (v->xcr0_args->gp_count || check_seen(v, self->name, "the valid starting XCR0", known))
		kvmfpu_fail("%s: 1 check failed", self->name);

	for (i = 0; i < self->nr_bad; i++) {
		uint64_t x = self->bad[i].xcr0;

		xsz_kvm_accepts_xcr0(x, v->allowed, rule, sizeof(rule));
		snprintf(step, sizeof(step), "%s(0x%llx) [%s]", by_guest ? "XSETBV" :
			 "KVM_SET_XCRS", (unsigned long long)x, rule);
		if (by_guest) {
			gp = v->xcr0_args->gp_count;
			kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_XSETBV, x);
			if (v->xcr0_args->gp_count != gp + 1) {
				printf("# %s: %s: expected #GP, the guest took %llu\n", self->name, step,
				       (unsigned long long)(v->xcr0_args->gp_count - gp));
				bad++;
			}
		} else {
			err = kvmfpu_vm_set_xcr0(v, x);
			if (err != -EINVAL) {
				printf("# %s: %s: expected EINVAL, got %s\n", self->name, step,
				       err ? strerror(-err) : "success");
				bad++;
			}
			kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
		}
		/* Unchanged: XGETBV, KVM_GET_XCRS and the sizes still say @known. */
		if (check_seen(v, self->name, step, known)) {
			bad++;
			/* Put the known XCR0 back so the next case starts from it. */
			kvmfpu_vm_set_xcr0(v, known);
		}
	}
	printf("# %u invalid XCR0 values refused (allowed 0x%llx, kept 0x%llx)\n",
	       self->nr_bad, (unsigned long long)v->allowed, (unsigned long long)known);
	if (bad)
		kvmfpu_fail("%s: %u check(s) failed", self->name, bad);
	kvmfpu_print_exercised(v->allowed);
}

KVMFPU_TEST_F(xcr0, rejects_xcrs)
{
	rejects(self, false);
}

KVMFPU_TEST_F(xcr0, rejects_xsetbv)
{
	if (kvmfpu_vm_quirk("xsetbv_not_intercepted"))
		SKIP(return, XSETBV_QUIRK_SKIP);
	rejects(self, true);
}

/*
 * Class 16. The vCPU runs with CR4.OSXSAVE clear and XCR0 at reset; the guest sets
 * CR4.OSXSAVE itself (MOV to CR4: KVM updates CPUID.1:ECX.OSXSAVE), then XCR0 changes to the
 * largest valid value (KVM updates CPUID.(0xD,0).EBX). Now the CPUID KVM holds differs from
 * the one the vCPU was created with in exactly those runtime bits, and KVM_SET_CPUID2 with
 * the creation CPUID must still succeed (kvm_set_cpuid(): __kvm_update_cpuid_runtime() on
 * the new entries, then kvm_cpuid_check_equal()), as QEMU does when it re-plugs a vCPU.
 */
KVMFPU_TEST_F(xcr0, set_cpuid_again)
{
	uint64_t target = self->valid[self->nr_valid - 1], xcr0;
	struct kvmfpu_vm *v = &self->v;
	struct kvm_cpuid_entry2 *e;
	struct kvm_cpuid2 *other;
	struct kvm_sregs sregs;
	unsigned int bad = 0;
	int err;

	/* The fixture set CR4.OSXSAVE: clear it before the first run. */
	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 &= ~X86_CR4_OSXSAVE;
	vcpu_sregs_set(v->vcpu, &sregs);

	kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_OSXSAVE, 0);
	xcr0 = kvmfpu_vm_xcr0(v);
	if (!(v->xcr0_args->seen.cr4 & KVMFPU_CR4_OSXSAVE))
		kvmfpu_fail("%s: the guest's MOV to CR4 did not set CR4.OSXSAVE (CR4 0x%llx)",
			    self->name, (unsigned long long)v->xcr0_args->seen.cr4);
	bad += check_seen(v, self->name, "guest set CR4.OSXSAVE", xcr0);
	if (target == xcr0)
		target = self->valid[0];

	if (kvmfpu_vm_quirk("xsetbv_not_intercepted")) {
		printf("# kvmfpu-quirk: name=xsetbv_not_intercepted action=set_xcrs\n");
		if ((err = kvmfpu_vm_set_xcr0(v, target)))
			kvmfpu_fail("%s: KVM_SET_XCRS(0x%llx) failed: %s", self->name,
				    (unsigned long long)target, strerror(-err));
		kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
	} else {
		kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_XSETBV, target);
	}
	bad += check_seen(v, self->name, "XCR0 changed after the first run", target);

	err = kvmfpu_vm_set_cpuid(v, v->cpuid);
	if (err) {
		printf("# %s: KVM_SET_CPUID2 with the CPUID the vCPU was created with, after "
		       "KVM_RUN with CR4.OSXSAVE 1 and XCR0 0x%llx, failed: %s. It differs from "
		       "KVM's copy only in what KVM updates at runtime (CPUID.1:ECX.OSXSAVE, "
		       "CPUID.(0xD,0).EBX %u as created, %u now), which KVM must apply to the "
		       "new CPUID before comparing (kvm_set_cpuid())\n", self->name,
		       (unsigned long long)target, strerror(-err),
		       kvmfpu_vm_cpuid_entry(v->cpuid, 0xd, 0)->ebx,
		       xs_size_standard(&v->layout, target));
		bad++;
	}
	kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += check_seen(v, self->name, "after KVM_SET_CPUID2 again", target);

	/* Not a KVM that accepts anything: a CPUID that really differs is still refused. */
	other = kvmfpu_vm_cpuid_dup(v->cpuid);
	e = kvmfpu_vm_cpuid_entry(other, 0xd, 0);
	e->ecx += 64;
	err = kvmfpu_vm_set_cpuid(v, other);
	free(other);
	if (err != -EINVAL) {
		printf("# %s: KVM_SET_CPUID2 after KVM_RUN with a different CPUID.(0xD,0).ECX "
		       "returned %s, expected EINVAL (kvm_cpuid_check_equal())\n", self->name,
		       err ? strerror(-err) : "success");
		bad++;
	}
	kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += check_seen(v, self->name, "after the refused KVM_SET_CPUID2", target);
	if (bad)
		kvmfpu_fail("%s: %u check(s) failed", self->name, bad);
	kvmfpu_print_exercised(target);
}

#define FPSTATE_CANARY		0xa5
#define FPSTATE_CANARY_LEN	4096

/*
 * One step of fpstate_size: the capability, the guest's CPUID 0xD.0 EBX (when it has
 * reported since @xcr0 was set: @guest_ran) and what KVM_GET_XSAVE2 writes, against the
 * host CPU's layout @host.
 */
static unsigned int fpstate_size_check(struct kvmfpu_vm *v, const char *name,
				       const struct xs_layout *host, const char *step, uint64_t xcr0,
				       bool guest_ran)
{
	uint64_t kvm_xcr0 = kvmfpu_vm_supported_xcr0(), guest = v->allowed | XS_MASK_FPSSE;
	uint32_t want_cap = xs_size_standard(host, kvm_xcr0), std_guest = xs_size_standard(host, guest);
	int cap_vm = vm_check_cap(v->vm, KVM_CAP_XSAVE2), cap_sys = kvm_check_cap(KVM_CAP_XSAVE2);
	uint32_t ebx = v->xcr0_args->seen.d0[1], written, i;
	unsigned int bad = 0;
	uint64_t bv, xcomp;
	uint8_t *buf;

	if (want_cap < sizeof(struct kvm_xsave))
		want_cap = sizeof(struct kvm_xsave);
	if (cap_vm != (int)want_cap || cap_sys != (int)want_cap) {
		printf("# %s: %s: KVM_CAP_XSAVE2 %d on the VM fd, %d on /dev/kvm, expected %u: "
		       "max(sizeof(struct kvm_xsave), the standard size of KVM's XCR0 0x%llx from "
		       "the host's CPUID 0xD)\n", name, step, cap_vm, cap_sys, want_cap,
		       (unsigned long long)kvm_xcr0);
		bad++;
	}
	if (guest_ran && (ebx != xs_size_standard(host, xcr0) || (int)ebx > cap_vm)) {
		printf("# %s: %s: the guest's CPUID.(0xD,0).EBX %u for XCR0 0x%llx, expected %u "
		       "(the standard size from the host's CPUID 0xD), at most KVM_CAP_XSAVE2 %d\n",
		       name, step, ebx, (unsigned long long)xcr0, xs_size_standard(host, xcr0),
		       cap_vm);
		bad++;
	}
	if (cap_vm < (int)sizeof(struct kvm_xsave) || std_guest > (uint32_t)cap_vm) {
		/* The canary would sit where KVM must write: the capability is already wrong. */
		printf("# %s: %s: KVM_CAP_XSAVE2 %d cannot hold the uABI image (%zu bytes at "
		       "least, %u for the guest's components 0x%llx); KVM_GET_XSAVE2 not run\n",
		       name, step, cap_vm, sizeof(struct kvm_xsave), std_guest,
		       (unsigned long long)guest);
		return bad + 1;
	}

	buf = malloc(cap_vm + FPSTATE_CANARY_LEN);
	if (!buf)
		kvmfpu_error("%s: cannot allocate %d bytes", name, cap_vm + FPSTATE_CANARY_LEN);
	memset(buf, FPSTATE_CANARY, cap_vm + FPSTATE_CANARY_LEN);
	if (ioctl(v->vcpu->fd, KVM_GET_XSAVE2, buf))
		kvmfpu_fail("%s: %s: KVM_GET_XSAVE2 failed: %s", name, step, strerror(errno));
	memcpy(&bv, buf + 512, sizeof(bv));
	memcpy(&xcomp, buf + 520, sizeof(xcomp));
	if ((bv & ~guest) || xcomp) {
		printf("# %s: %s: KVM_GET_XSAVE2 header XSTATE_BV 0x%llx XCOMP_BV 0x%llx: expected "
		       "XSTATE_BV within the guest's 0x%llx (so every component ends within its "
		       "CPUID 0xD.0 ECX %u) and XCOMP_BV 0\n", name, step,
		       (unsigned long long)bv, (unsigned long long)xcomp,
		       (unsigned long long)guest, std_guest);
		bad++;
	}
	/* Zeros from the guest's last component to what KVM wrote, the canary after it. */
	for (written = std_guest; written < (uint32_t)cap_vm + FPSTATE_CANARY_LEN; written++)
		if (buf[written])
			break;
	for (i = written; i < (uint32_t)cap_vm + FPSTATE_CANARY_LEN; i++)
		if (buf[i] != FPSTATE_CANARY)
			break;
	if (i < (uint32_t)cap_vm + FPSTATE_CANARY_LEN) {
		printf("# %s: %s: KVM_GET_XSAVE2 byte %u is 0x%02x: past the guest's components "
		       "(%u bytes) KVM writes zeros, then nothing\n", name, step, i, buf[i],
		       std_guest);
		bad++;
	} else if (written < sizeof(struct kvm_xsave) || written > (uint32_t)cap_vm) {
		printf("# %s: %s: KVM_GET_XSAVE2 wrote %u bytes: expected at least sizeof(struct "
		       "kvm_xsave) %zu and at most KVM_CAP_XSAVE2 %d (the vCPU's uabi_size)\n",
		       name, step, written, sizeof(struct kvm_xsave), cap_vm);
		bad++;
	}
	if (guest_ran)
		printf("# %s: KVM_CAP_XSAVE2 %d, guest 0xD.0 EBX %u for XCR0 0x%llx, ", step,
		       cap_vm, ebx, (unsigned long long)xcr0);
	else
		printf("# %s: KVM_CAP_XSAVE2 %d, the guest has not run, ", step, cap_vm);
	printf("KVM_GET_XSAVE2 wrote %u bytes, guest components 0x%llx end at %u\n", written,
	       (unsigned long long)guest, std_guest);
	free(buf);
	return bad;
}

KVMFPU_TEST_F(xcr0, fpstate_size)
{
	uint64_t target = self->valid[self->nr_valid - 1];
	struct kvmfpu_vm *v = &self->v;
	struct xs_layout host;
	unsigned int bad;
	int err;

	xs_layout_from_cpuid(&host, xs_host_cpuid, NULL);
	bad = fpstate_size_check(v, self->name, &host, "before KVM_RUN", XS_BIT(XS_X87), false);
	if ((err = kvmfpu_vm_set_xcr0(v, target)))
		kvmfpu_fail("%s: KVM_SET_XCRS(0x%llx), valid, failed: %s", self->name,
			    (unsigned long long)target, strerror(-err));
	kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += fpstate_size_check(v, self->name, &host, "after KVM_RUN", target, true);
	if ((err = kvmfpu_vm_set_cpuid(v, v->cpuid))) {
		printf("# %s: KVM_SET_CPUID2 with the vCPU's own CPUID after KVM_RUN failed: %s\n",
		       self->name, strerror(-err));
		bad++;
	}
	kvmfpu_vm_xcr0_op(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += fpstate_size_check(v, self->name, &host, "after KVM_SET_CPUID2 again", target, true);
	if (bad)
		kvmfpu_fail("%s: %u check(s) failed", self->name, bad);
	kvmfpu_print_exercised(target);
}

/* KVM_GET_SUPPORTED_CPUID's own leaf 0xD. */
static const struct kvmfpu_vm_config xcr0_guest = { .guest = KVMFPU_VM_GUEST_XCR0 };

TEST(kvm_supported)
{
	struct kvm_cpuid_entry2 *d0, *d1;
	struct kvm_cpuid2 *c;
	unsigned int bad = 0;
	struct xs_layout l;
	char why[512];

	KVMFPU_REPLAY_NAME("");
	if (!kvmfpu_vm_config_supported(&xcr0_guest, why, sizeof(why)))
		SKIP(return, "%s", why);
	c = kvmfpu_vm_supported_cpuid();
	if (!c)
		kvmfpu_error("kvm_supported: KVM_GET_SUPPORTED_CPUID failed");
	xs_layout_from_cpuid(&l, kvmfpu_vm_table_fn, c);
	d0 = kvmfpu_vm_cpuid_entry(c, 0xd, 0);
	d1 = kvmfpu_vm_cpuid_entry(c, 0xd, 1);
	if (!d0)
		kvmfpu_fail("kvm_supported: KVM_GET_SUPPORTED_CPUID has XSAVE but no leaf 0xD.0");
	kvmfpu_vm_print_kvm_env();

	if (d0->ebx != xs_size_standard(&l, l.supported) || d0->ecx != xs_size_standard(&l, l.supported)) {
		printf("# kvm_supported: XCR0 0x%llx: KVM_GET_SUPPORTED_CPUID.(0xD,0) EBX %u, "
		       "ECX %u, expected both %u: the standard-format size of every supported "
		       "component (offset + size from 0xD.i)\n", (unsigned long long)l.supported,
		       d0->ebx, d0->ecx, xs_size_standard(&l, l.supported));
		bad++;
	}
	if (xs_has_compacted(&l)) {
		uint32_t want = xs_size_compacted(&l, l.supported | l.xss);

		if (!d1 || d1->ebx != want) {
			printf("# kvm_supported: XCR0|XSS 0x%llx: KVM_GET_SUPPORTED_CPUID.(0xD,1) EBX "
			       "%u, expected %u: the compacted size, components 64-byte aligned "
			       "where 0xD.i ECX[1] says so\n",
			       (unsigned long long)(l.supported | l.xss), d1 ? d1->ebx : 0, want);
			bad++;
		}
	} else {
		printf("# note: KVM_GET_SUPPORTED_CPUID.(0xD,1).EAX 0x%x has neither XSAVEC nor "
		       "XSAVES: its EBX is not defined and is not checked\n", l.d1_eax);
	}
	if (!xsz_kvm_accepts_xcr0(l.supported, l.supported, why, sizeof(why))) {
		printf("# kvm_supported: KVM_GET_SUPPORTED_CPUID.(0xD,0) is not a valid XCR0: "
		       "%s\n", why);
		bad++;
	}
	free(c);
	if (bad)
		kvmfpu_fail("kvm_supported: %u check(s) failed", bad);
	kvmfpu_print_exercised(l.supported);
}

/*
 * The XCR0 rules with the AMX components: without the guest permission KVM supports neither
 * (and never XTILECFG alone); with it both, and only together. Needs an AMX host.
 */
TEST(amx_permission)
{
	struct xsz_bad_xcr0 bad_list[MAX_BAD];
	uint64_t before, after, valid[MAX_XCR0S];
	unsigned int n, i, bad = 0;
	char why[512], step[160];
	struct kvmfpu_vm v;
	int err;

	KVMFPU_REPLAY_NAME("");
	if (!kvmfpu_vm_amx_supported(why, sizeof(why)))
		SKIP(return, "%s", why);
	before = kvmfpu_vm_supported_xcr0();
	if ((before & XS_MASK_AMX) && (before & XS_MASK_AMX) != XS_MASK_AMX) {
		printf("# amx_permission: KVM_GET_SUPPORTED_CPUID.(0xD,0) 0x%llx without permission "
		       "has one AMX bit without the other\n", (unsigned long long)before);
		bad++;
	}
	if (!kvmfpu_vm_amx_require(why, sizeof(why)))
		SKIP(return, "%s", why);
	after = kvmfpu_vm_supported_xcr0();
	if ((after & XS_MASK_AMX) != XS_MASK_AMX) {
		printf("# amx_permission: KVM_GET_SUPPORTED_CPUID.(0xD,0) 0x%llx with permission "
		       "lacks AMX\n", (unsigned long long)after);
		bad++;
	}
	if (!xcr0_vm_create(&v, after, why, sizeof(why)))
		SKIP(return, "%s", why);
	print_env(&v);
	n = xsz_valid_xcr0s(v.allowed, valid, MAX_XCR0S);
	for (i = 0; i < n; i++) {
		err = kvmfpu_vm_set_xcr0(&v, valid[i]);
		if (err) {
			printf("# amx_permission: KVM_SET_XCRS(0x%llx) failed: %s\n",
			       (unsigned long long)valid[i], strerror(-err));
			bad++;
			continue;
		}
		kvmfpu_vm_xcr0_op(&v, KVMFPU_XCR0_OP_REPORT, 0);
		snprintf(step, sizeof(step), "KVM_SET_XCRS(0x%llx)", (unsigned long long)valid[i]);
		bad += check_seen(&v, "global.amx_permission", step, valid[i]);
	}
	n = xsz_invalid_xcr0s(v.allowed, bad_list, MAX_BAD);
	for (i = 0; i < n; i++) {
		err = kvmfpu_vm_set_xcr0(&v, bad_list[i].xcr0);
		if (err != -EINVAL) {
			printf("# amx_permission: KVM_SET_XCRS(0x%llx) [%s]: expected EINVAL, got %s\n",
			       (unsigned long long)bad_list[i].xcr0, bad_list[i].what,
			       err ? strerror(-err) : "success");
			bad++;
		}
	}
	kvmfpu_vm_destroy(&v);
	if (bad)
		kvmfpu_fail("amx_permission: %u check(s) failed", bad);
	kvmfpu_print_exercised(after);
}

static const struct kvmfpu_opt opts[] = {};

KVMFPU_MAIN(opts, NULL)
