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
#include "guest_code.h"
#include "guest_xcr0.h"
#include "host_regs.h"
#include "options.h"
#include "report.h"
#include "xsizes.h"

#include "kvmfpu_harness.h"

_Static_assert(offsetof(struct ex_regs, rip) == offsetof(struct kvmfpu_ex_regs, rip),
	       "guest_xcr0.h's struct kvmfpu_ex_regs must match the library's struct ex_regs");
_Static_assert(offsetof(struct ex_regs, vector) == offsetof(struct kvmfpu_ex_regs, vector),
	       "guest_xcr0.h's struct kvmfpu_ex_regs must match the library's struct ex_regs");

#define ARGS_MIN_GVA		0x10000
#define MAX_XCR0S		1024
#define MAX_BAD			128
#define CPUID_1_ECX_XSAVE	(1u << 26)
#define CPUID_1_ECX_OSXSAVE	(1u << 27)

struct xvm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct kvmfpu_xcr0_args *args;	/* in guest memory */
	struct xs_layout kvm;		/* KVM_GET_SUPPORTED_CPUID leaf 0xD */
	uint64_t cpuid_xcr0;		/* the guest's CPUID.(0xD,0).EDX:EAX as set */
	uint64_t allowed;		/* & KVM's: what __kvm_set_xcr() lets this guest have */
	uint32_t d0_ecx;		/* the guest's CPUID.(0xD,0).ECX as set */
	bool compacted;			/* the guest's CPUID.(0xD,1).EAX has XSAVEC or XSAVES */
	struct kvm_cpuid2 *created;	/* the CPUID given to KVM_SET_CPUID2 at creation */
	const char *name;		/* fixture.variant.test, for messages and replay */
};

#define XSETBV_QUIRK_SKIP						\
	"lab quirk xsetbv_not_intercepted: the emulator runs the guest's XSETBV without a "  \
	"VM exit, so KVM's XSETBV handling cannot be observed (the *_xcrs tests cover the "  \
	"same rules through KVM_SET_XCRS)"

static struct kvm_cpuid_entry2 *find_entry(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t sub)
{
	int i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf && c->entries[i].index == sub)
			return &c->entries[i];
	return NULL;
}

/* Why this KVM cannot run the test, or NULL. */
static const char *xcr0_unsupported(char *why, size_t len)
{
	if (!kvmfpu_vm_kvm_has(KVMFPU_FEATURE_XSAVE)) {
		snprintf(why, len, "KVM lacks XSAVE: CPUID.1:ECX.XSAVE[26] is not in "
			 "KVM_GET_SUPPORTED_CPUID, so no guest has XCR0 or leaf 0xD");
		return why;
	}
	return NULL;
}

static struct kvm_cpuid2 *cpuid_dup(const struct kvm_cpuid2 *c)
{
	size_t size = kvm_cpuid2_size(c->nent);
	struct kvm_cpuid2 *d = malloc(size);

	if (!d)
		kvmfpu_error("cannot allocate %zu bytes for a CPUID copy", size);
	memcpy(d, c, size);
	return d;
}

/*
 * The guest's CPUID as a VMM builds it: KVM's supported CPUID, leaf 0xD.0 advertising
 * @cpuid_xcr0 with ECX its standard size and EBX the size for the reset XCR0 (x87), XSAVE on
 * and OSXSAVE off in leaf 1 (OSXSAVE mirrors CR4, which KVM fills in at runtime).
 * Returns false (with @why) if KVM did not keep leaf 0xD.0 (kvm_pvm ignores guest CPUID):
 * every expected value here would then be KVM's own.
 */
static bool xvm_create(struct xvm *v, uint64_t cpuid_xcr0, bool osxsave, const char *name,
		       char *why, size_t len)
{
	struct kvm_cpuid_entry2 *e1, *d0, *d1;
	struct kvm_cpuid2 *back;
	struct kvm_sregs sregs;
	vm_vaddr_t gva;

	memset(v, 0, sizeof(*v));
	v->name = name;
	v->vm = vm_create_with_one_vcpu(&v->vcpu, kvmfpu_guest_xcr0_main);
	kvmfpu_init_descriptor_tables(v->vm, v->vcpu);
	vm_install_exception_handler(v->vm, KVMFPU_GP_VECTOR, kvmfpu_guest_xcr0_gp_handler);
	v->created = kvmfpu_vm_supported_cpuid();
	if (!v->created)
		kvmfpu_error("%s: KVM_GET_SUPPORTED_CPUID failed", name);
	xs_layout_from_cpuid(&v->kvm, kvmfpu_vm_table_fn, v->created);
	e1 = find_entry(v->created, 1, 0);
	d0 = find_entry(v->created, 0xd, 0);
	d1 = find_entry(v->created, 0xd, 1);
	if (!e1 || !d0)
		kvmfpu_fail("%s: KVM_GET_SUPPORTED_CPUID has XSAVE but no leaf %s", name,
			    e1 ? "0xD.0" : "1");
	v->cpuid_xcr0 = cpuid_xcr0;
	v->allowed = cpuid_xcr0 & v->kvm.supported;
	v->d0_ecx = xs_size_standard(&v->kvm, cpuid_xcr0);
	e1->ecx = (e1->ecx | CPUID_1_ECX_XSAVE) & ~CPUID_1_ECX_OSXSAVE;
	d0->eax = (uint32_t)cpuid_xcr0;
	d0->edx = cpuid_xcr0 >> 32;
	d0->ecx = v->d0_ecx;
	d0->ebx = xs_size_standard(&v->kvm, XS_BIT(XS_X87));
	v->compacted = d1 && (d1->eax & (XS_D1_XSAVEC | XS_D1_XSAVES));
	if (__vcpu_ioctl(v->vcpu, KVM_SET_CPUID2, v->created))
		kvmfpu_fail("%s: KVM_SET_CPUID2 (leaf 0xD.0 EDX:EAX 0x%llx) before KVM_RUN failed: "
			    "%s", name, (unsigned long long)cpuid_xcr0, strerror(errno));

	back = cpuid_dup(v->created);
	if (__vcpu_ioctl(v->vcpu, KVM_GET_CPUID2, back))
		kvmfpu_fail("%s: KVM_GET_CPUID2 failed: %s", name, strerror(errno));
	d0 = find_entry(back, 0xd, 0);
	if (!d0 || (d0->eax | ((uint64_t)d0->edx << 32)) != cpuid_xcr0 || d0->ecx != v->d0_ecx) {
		snprintf(why, len, "KVM did not keep the guest CPUID leaf 0xD.0 that was set "
			 "(EDX:EAX 0x%llx, ECX %u; KVM_GET_CPUID2 reads 0x%llx, %u): the sizes "
			 "would be checked against KVM's own view", (unsigned long long)cpuid_xcr0,
			 v->d0_ecx, d0 ? (unsigned long long)(d0->eax | (uint64_t)d0->edx << 32) : 0,
			 d0 ? d0->ecx : 0);
		free(back);
		return false;
	}
	free(back);

	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 &= ~X86_CR4_OSXSAVE;
	if (osxsave)
		sregs.cr4 |= X86_CR4_OSXSAVE;
	vcpu_sregs_set(v->vcpu, &sregs);

	gva = vm_vaddr_alloc(v->vm, sizeof(*v->args), ARGS_MIN_GVA);
	v->args = addr_gva2hva(v->vm, gva);
	memset(v->args, 0, sizeof(*v->args));
	vcpu_args_set(v->vcpu, 1, gva);
	return true;
}

static void xvm_destroy(struct xvm *v)
{
	if (v->vm)
		kvm_vm_free(v->vm);
	free(v->created);
	v->vm = NULL;
	v->created = NULL;
}

static void replay_and_fail(const struct xvm *v, unsigned int bad)
{
	printf("# kvmfpu-replay: args=-r %s\n", v->name);
	kvmfpu_fail("%s: %u check(s) failed", v->name, bad);
}

/* One operation of the guest, then its report; any other exit fails the test, explained. */
static void xvm_run(struct xvm *v, enum kvmfpu_xcr0_op op, uint64_t value)
{
	struct kvm_run *run = v->vcpu->run;
	uint64_t reports = v->args->reports;
	struct kvm_regs regs;
	uint32_t stage;
	int r;

	v->args->op = op;
	v->args->value = value;
	do {
		r = ioctl(v->vcpu->fd, KVM_RUN, NULL) ? errno : 0;
	} while (r == EINTR);
	if (r)
		kvmfpu_fail("%s: KVM_RUN failed: %s", v->name, strerror(r));

	if (run->exit_reason == KVM_EXIT_IO && run->io.port == KVMFPU_EXIT_PORT &&
	    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4) {
		stage = *(uint32_t *)((uint8_t *)run + run->io.data_offset);
		if (stage == KVMFPU_XCR0_STAGE_REPORT && v->args->reports == reports + 1)
			return;
		if (stage == KVMFPU_XCR0_STAGE_STRAY_GP)
			kvmfpu_fail("%s: the guest took #GP at RIP 0x%llx, not at its XSETBV "
				    "(operation %u, value 0x%llx)", v->name,
				    (unsigned long long)v->args->gp_rip, op,
				    (unsigned long long)value);
		kvmfpu_fail("%s: the guest reported stage 0x%x after %llu reports", v->name, stage,
			    (unsigned long long)v->args->reports);
	}
	vcpu_regs_get(v->vcpu, &regs);
	if (run->exit_reason == KVM_EXIT_IO)
		kvmfpu_fail("%s: unexpected I/O exit, port 0x%x, at guest RIP 0x%llx (operation "
			    "%u, value 0x%llx): an exception the guest does not handle (the "
			    "library reports those through its ucall port)", v->name, run->io.port,
			    regs.rip, op, (unsigned long long)value);
	kvmfpu_fail("%s: unexpected exit %s (%u) at guest RIP 0x%llx (operation %u, value 0x%llx)",
		    v->name, exit_reason_str(run->exit_reason), run->exit_reason, regs.rip, op,
		    (unsigned long long)value);
}

/* KVM_SET_XCRS of XCR0: 0 or the errno. */
static int xvm_set_xcr0(struct xvm *v, uint64_t xcr0)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = xcr0 } };

	return __vcpu_ioctl(v->vcpu, KVM_SET_XCRS, &xcrs) ? errno : 0;
}

static uint64_t xvm_get_xcr0(struct xvm *v)
{
	struct kvm_xcrs xcrs = { 0 };
	unsigned int i;

	if (__vcpu_ioctl(v->vcpu, KVM_GET_XCRS, &xcrs))
		kvmfpu_fail("%s: KVM_GET_XCRS failed: %s", v->name, strerror(errno));
	for (i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (xcrs.xcrs[i].xcr == 0)
			return xcrs.xcrs[i].value;
	kvmfpu_fail("%s: KVM_GET_XCRS returned no XCR0 (%u entries)", v->name, xcrs.nr_xcrs);
}

static unsigned int check_u32(const struct xvm *v, const char *step, uint64_t xcr0,
			      const char *reg, uint32_t expected, uint32_t actual, const char *rule)
{
	if (expected == actual)
		return 0;
	printf("# %s: %s: XCR0 0x%llx: %s expected %u (0x%x), actual %u (0x%x): %s\n", v->name,
	       step, (unsigned long long)xcr0, reg, expected, expected, actual, actual, rule);
	return 1;
}

/*
 * After the guest's last report, with XCR0 = @xcr0: XGETBV in the guest and KVM_GET_XCRS
 * read it, and the guest's CPUID 0xD follows it.
 */
static unsigned int check_seen(struct xvm *v, const char *step, uint64_t xcr0)
{
	const struct kvmfpu_xcr0_seen *s = &v->args->seen;
	uint64_t kvm_xcr0 = xvm_get_xcr0(v);
	unsigned int bad = 0;

	if (s->xcr0 != xcr0 || kvm_xcr0 != xcr0) {
		printf("# %s: %s: XCR0 expected 0x%llx, guest XGETBV(0) 0x%llx, KVM_GET_XCRS "
		       "0x%llx\n", v->name, step, (unsigned long long)xcr0,
		       (unsigned long long)s->xcr0, (unsigned long long)kvm_xcr0);
		bad++;
	}
	bad += check_u32(v, step, xcr0, "CPUID.(0xD,0).EBX", xs_size_standard(&v->kvm, xcr0),
			 s->d0[1], "the standard-format size of XCR0's components "
			 "(xstate_required_size(xcr0, false))");
	bad += check_u32(v, step, xcr0, "CPUID.(0xD,0).EAX", (uint32_t)v->cpuid_xcr0, s->d0[0],
			 "the XCR0 bits the guest CPUID advertises, as set");
	bad += check_u32(v, step, xcr0, "CPUID.(0xD,0).EDX", v->cpuid_xcr0 >> 32, s->d0[3],
			 "the XCR0 bits the guest CPUID advertises, as set");
	bad += check_u32(v, step, xcr0, "CPUID.(0xD,0).ECX", v->d0_ecx, s->d0[2],
			 "the size for every advertised component, as set");
	/* IA32_XSS is never written here: its reset value 0. */
	if (v->compacted)
		bad += check_u32(v, step, xcr0, "CPUID.(0xD,1).EBX",
				 xs_size_compacted(&v->kvm, xcr0), s->d1[1],
				 "the compacted size of XCR0 | IA32_XSS, each component aligned "
				 "to 64 bytes when CPUID.(0xD,i).ECX[1] says so "
				 "(xstate_required_size(xcr0, true))");
	if (!(s->leaf1[2] & CPUID_1_ECX_OSXSAVE) != !(s->cr4 & KVMFPU_CR4_OSXSAVE)) {
		printf("# %s: %s: CPUID.1:ECX.OSXSAVE[27] is %d but CR4.OSXSAVE is %d: KVM must "
		       "mirror CR4 there\n", v->name, step, !!(s->leaf1[2] & CPUID_1_ECX_OSXSAVE),
		       !!(s->cr4 & KVMFPU_CR4_OSXSAVE));
		bad++;
	}
	return bad;
}

static void print_env(const struct xvm *v)
{
	const char *tier = getenv("KVMFPU_TIER");

	printf("# kvmfpu-env: kvm_xcr0=0x%llx kvm_xss=0x%llx host_xcr0=0x%llx "
	       "guest_cpuid_0xd=0x%llx allowed=0x%llx compacted_size_checked=%d "
	       "kvm_0xd_1_eax=0x%x tier=%s\n", (unsigned long long)v->kvm.supported,
	       (unsigned long long)v->kvm.xss, (unsigned long long)host_xcr0(),
	       (unsigned long long)v->cpuid_xcr0, (unsigned long long)v->allowed, v->compacted,
	       v->kvm.d1_eax, tier && *tier ? tier : "host");
	if (!v->compacted)
		printf("# note: the guest's CPUID.(0xD,1).EAX has neither XSAVEC nor XSAVES, so "
		       "0xD.1 EBX is not defined for it and is not checked\n");
	fflush(stdout);
}

FIXTURE(xcr0) {
	struct xvm v;
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
	struct xs_layout l;
	struct kvm_cpuid2 *c;
	uint64_t cpuid_xcr0;
	char why[512];

	snprintf(self->name, sizeof(self->name), "xcr0.%s.%s", variant->name, _metadata->name);
	if (xcr0_unsupported(why, sizeof(why)))
		SKIP(return, "%s", why);
	c = kvmfpu_vm_supported_cpuid();
	xs_layout_from_cpuid(&l, kvmfpu_vm_table_fn, c);
	free(c);
	cpuid_xcr0 = l.supported;
	if (variant->narrow)
		cpuid_xcr0 &= XS_MASK_FPSSE | XS_BIT(XS_AVX);
	if (!xvm_create(&self->v, cpuid_xcr0, true, self->name, why, sizeof(why))) {
		xvm_destroy(&self->v);
		SKIP(return, "%s", why);
	}
	self->nr_valid = xsz_valid_xcr0s(self->v.allowed, self->valid, MAX_XCR0S);
	self->nr_bad = xsz_invalid_xcr0s(self->v.allowed, self->bad, MAX_BAD);
	if (!self->nr_valid)
		kvmfpu_error("%s: no valid XCR0 for allowed 0x%llx", self->name,
			     (unsigned long long)self->v.allowed);
	print_env(&self->v);
}

FIXTURE_TEARDOWN(xcr0)
{
	xvm_destroy(&self->v);
}

/* Every valid XCR0 ascending, then back to the smallest: KVM must follow shrinking too. */
static void sizes(FIXTURE_DATA(xcr0) *self, bool by_guest)
{
	struct xvm *v = &self->v;
	unsigned int i, bad = 0, err;
	char step[64];
	uint64_t xcr0;

	for (i = 0; i <= self->nr_valid; i++) {
		xcr0 = self->valid[i < self->nr_valid ? i : 0];
		snprintf(step, sizeof(step), "%s(0x%llx)", by_guest ? "XSETBV" : "KVM_SET_XCRS",
			 (unsigned long long)xcr0);
		if (by_guest) {
			xvm_run(v, KVMFPU_XCR0_OP_XSETBV, xcr0);
			if (v->args->gp_count) {
				printf("# %s: %s: the guest took #GP on a valid XCR0 (allowed "
				       "0x%llx)\n", v->name, step, (unsigned long long)v->allowed);
				replay_and_fail(v, 1);
			}
		} else {
			err = xvm_set_xcr0(v, xcr0);
			if (err) {
				printf("# %s: %s failed: %s (allowed 0x%llx)\n", v->name, step,
				       strerror(err), (unsigned long long)v->allowed);
				replay_and_fail(v, 1);
			}
			xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
		}
		bad += check_seen(v, step, xcr0);
	}
	printf("# %u valid XCR0 values of 0x%llx checked\n", self->nr_valid,
	       (unsigned long long)v->allowed);
	if (bad)
		replay_and_fail(v, bad);
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
	if (!self->v.compacted)
		SKIP(return, "KVM_GET_SUPPORTED_CPUID.(0xD,1).EAX 0x%x has neither XSAVEC[1] nor "
		     "XSAVES[3]: CPUID.(0xD,1).EBX (the compacted size) is not defined for the "
		     "guest", self->v.kvm.d1_eax);
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
	struct xvm *v = &self->v;
	unsigned int i, bad = 0;
	char step[256], rule[160];
	int err;

	if (by_guest)
		xvm_run(v, KVMFPU_XCR0_OP_XSETBV, known);
	else if ((err = xvm_set_xcr0(v, known)))
		kvmfpu_fail("%s: KVM_SET_XCRS(0x%llx), valid, failed: %s", v->name,
			    (unsigned long long)known, strerror(err));
	if (!by_guest)
		xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
	if (v->args->gp_count || check_seen(v, "the valid starting XCR0", known))
		replay_and_fail(v, 1);

	for (i = 0; i < self->nr_bad; i++) {
		uint64_t x = self->bad[i].xcr0;

		xsz_kvm_accepts_xcr0(x, v->allowed, rule, sizeof(rule));
		snprintf(step, sizeof(step), "%s(0x%llx) [%s]", by_guest ? "XSETBV" :
			 "KVM_SET_XCRS", (unsigned long long)x, rule);
		if (by_guest) {
			gp = v->args->gp_count;
			xvm_run(v, KVMFPU_XCR0_OP_XSETBV, x);
			if (v->args->gp_count != gp + 1) {
				printf("# %s: %s: expected #GP, the guest took %llu\n", v->name, step,
				       (unsigned long long)(v->args->gp_count - gp));
				bad++;
			}
		} else {
			err = xvm_set_xcr0(v, x);
			if (err != EINVAL) {
				printf("# %s: %s: expected EINVAL, got %s\n", v->name, step,
				       err ? strerror(err) : "success");
				bad++;
			}
			xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
		}
		/* Unchanged: XGETBV, KVM_GET_XCRS and the sizes still say @known. */
		if (check_seen(v, step, known)) {
			bad++;
			/* Put the known XCR0 back so the next case starts from it. */
			xvm_set_xcr0(v, known);
		}
	}
	printf("# %u invalid XCR0 values refused (allowed 0x%llx, kept 0x%llx)\n",
	       self->nr_bad, (unsigned long long)v->allowed, (unsigned long long)known);
	if (bad)
		replay_and_fail(v, bad);
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
	struct xvm *v = &self->v;
	struct kvm_cpuid_entry2 *e;
	struct kvm_cpuid2 *other;
	struct kvm_sregs sregs;
	unsigned int bad = 0;
	int err;

	/* The fixture set CR4.OSXSAVE: clear it before the first run. */
	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 &= ~X86_CR4_OSXSAVE;
	vcpu_sregs_set(v->vcpu, &sregs);

	xvm_run(v, KVMFPU_XCR0_OP_OSXSAVE, 0);
	xcr0 = xvm_get_xcr0(v);
	if (!(v->args->seen.cr4 & KVMFPU_CR4_OSXSAVE))
		kvmfpu_fail("%s: the guest's MOV to CR4 did not set CR4.OSXSAVE (CR4 0x%llx)",
			    v->name, (unsigned long long)v->args->seen.cr4);
	bad += check_seen(v, "guest set CR4.OSXSAVE", xcr0);
	if (target == xcr0)
		target = self->valid[0];

	if (kvmfpu_vm_quirk("xsetbv_not_intercepted")) {
		printf("# kvmfpu-quirk: name=xsetbv_not_intercepted action=set_xcrs\n");
		if ((err = xvm_set_xcr0(v, target)))
			kvmfpu_fail("%s: KVM_SET_XCRS(0x%llx) failed: %s", v->name,
				    (unsigned long long)target, strerror(err));
		xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
	} else {
		xvm_run(v, KVMFPU_XCR0_OP_XSETBV, target);
	}
	bad += check_seen(v, "XCR0 changed after the first run", target);

	err = __vcpu_ioctl(v->vcpu, KVM_SET_CPUID2, v->created) ? errno : 0;
	if (err) {
		printf("# %s: KVM_SET_CPUID2 with the CPUID the vCPU was created with, after "
		       "KVM_RUN with CR4.OSXSAVE 1 and XCR0 0x%llx, failed: %s. It differs from "
		       "KVM's copy only in what KVM updates at runtime (CPUID.1:ECX.OSXSAVE, "
		       "CPUID.(0xD,0).EBX %u as created, %u now), which KVM must apply to the "
		       "new CPUID before comparing (kvm_set_cpuid())\n", v->name,
		       (unsigned long long)target, strerror(err),
		       find_entry(v->created, 0xd, 0)->ebx, xs_size_standard(&v->kvm, target));
		bad++;
	}
	xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += check_seen(v, "after KVM_SET_CPUID2 again", target);

	/* Not a KVM that accepts anything: a CPUID that really differs is still refused. */
	other = cpuid_dup(v->created);
	e = find_entry(other, 0xd, 0);
	e->ecx += 64;
	err = __vcpu_ioctl(v->vcpu, KVM_SET_CPUID2, other) ? errno : 0;
	free(other);
	if (err != EINVAL) {
		printf("# %s: KVM_SET_CPUID2 after KVM_RUN with a different CPUID.(0xD,0).ECX "
		       "returned %s, expected EINVAL (kvm_cpuid_check_equal())\n", v->name,
		       err ? strerror(err) : "success");
		bad++;
	}
	xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += check_seen(v, "after the refused KVM_SET_CPUID2", target);
	if (bad)
		replay_and_fail(v, bad);
	kvmfpu_print_exercised(target);
}

#define FPSTATE_CANARY		0xa5
#define FPSTATE_CANARY_LEN	4096

/*
 * One step of fpstate_size: the capability, the guest's CPUID 0xD.0 EBX (when it has
 * reported since @xcr0 was set: @guest_ran) and what KVM_GET_XSAVE2 writes, against the
 * host CPU's layout @host.
 */
static unsigned int fpstate_size_check(struct xvm *v, const struct xs_layout *host,
				       const char *step, uint64_t xcr0, bool guest_ran)
{
	uint64_t kvm_xcr0 = kvmfpu_vm_supported_xcr0(), guest = v->allowed | XS_MASK_FPSSE;
	uint32_t want_cap = xs_size_standard(host, kvm_xcr0), std_guest = xs_size_standard(host, guest);
	int cap_vm = vm_check_cap(v->vm, KVM_CAP_XSAVE2), cap_sys = kvm_check_cap(KVM_CAP_XSAVE2);
	uint32_t ebx = v->args->seen.d0[1], written, i;
	unsigned int bad = 0;
	uint64_t bv, xcomp;
	uint8_t *buf;

	if (want_cap < sizeof(struct kvm_xsave))
		want_cap = sizeof(struct kvm_xsave);
	if (cap_vm != (int)want_cap || cap_sys != (int)want_cap) {
		printf("# %s: %s: KVM_CAP_XSAVE2 %d on the VM fd, %d on /dev/kvm, expected %u: "
		       "max(sizeof(struct kvm_xsave), the standard size of KVM's XCR0 0x%llx from "
		       "the host's CPUID 0xD)\n", v->name, step, cap_vm, cap_sys, want_cap,
		       (unsigned long long)kvm_xcr0);
		bad++;
	}
	if (guest_ran && (ebx != xs_size_standard(host, xcr0) || (int)ebx > cap_vm)) {
		printf("# %s: %s: the guest's CPUID.(0xD,0).EBX %u for XCR0 0x%llx, expected %u "
		       "(the standard size from the host's CPUID 0xD), at most KVM_CAP_XSAVE2 %d\n",
		       v->name, step, ebx, (unsigned long long)xcr0, xs_size_standard(host, xcr0),
		       cap_vm);
		bad++;
	}
	if (cap_vm < (int)sizeof(struct kvm_xsave) || std_guest > (uint32_t)cap_vm) {
		/* The canary would sit where KVM must write: the capability is already wrong. */
		printf("# %s: %s: KVM_CAP_XSAVE2 %d cannot hold the uABI image (%zu bytes at "
		       "least, %u for the guest's components 0x%llx); KVM_GET_XSAVE2 not run\n",
		       v->name, step, cap_vm, sizeof(struct kvm_xsave), std_guest,
		       (unsigned long long)guest);
		return bad + 1;
	}

	buf = malloc(cap_vm + FPSTATE_CANARY_LEN);
	if (!buf)
		kvmfpu_error("%s: cannot allocate %d bytes", v->name, cap_vm + FPSTATE_CANARY_LEN);
	memset(buf, FPSTATE_CANARY, cap_vm + FPSTATE_CANARY_LEN);
	if (ioctl(v->vcpu->fd, KVM_GET_XSAVE2, buf))
		kvmfpu_fail("%s: %s: KVM_GET_XSAVE2 failed: %s", v->name, step, strerror(errno));
	memcpy(&bv, buf + 512, sizeof(bv));
	memcpy(&xcomp, buf + 520, sizeof(xcomp));
	if ((bv & ~guest) || xcomp) {
		printf("# %s: %s: KVM_GET_XSAVE2 header XSTATE_BV 0x%llx XCOMP_BV 0x%llx: expected "
		       "XSTATE_BV within the guest's 0x%llx (so every component ends within its "
		       "CPUID 0xD.0 ECX %u) and XCOMP_BV 0\n", v->name, step,
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
		       "(%u bytes) KVM writes zeros, then nothing\n", v->name, step, i, buf[i],
		       std_guest);
		bad++;
	} else if (written < sizeof(struct kvm_xsave) || written > (uint32_t)cap_vm) {
		printf("# %s: %s: KVM_GET_XSAVE2 wrote %u bytes: expected at least sizeof(struct "
		       "kvm_xsave) %zu and at most KVM_CAP_XSAVE2 %d (the vCPU's uabi_size)\n",
		       v->name, step, written, sizeof(struct kvm_xsave), cap_vm);
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
	struct xvm *v = &self->v;
	struct xs_layout host;
	unsigned int bad;
	int err;

	xs_layout_from_cpuid(&host, xs_host_cpuid, NULL);
	bad = fpstate_size_check(v, &host, "before KVM_RUN", XS_BIT(XS_X87), false);
	if ((err = xvm_set_xcr0(v, target)))
		kvmfpu_fail("%s: KVM_SET_XCRS(0x%llx), valid, failed: %s", v->name,
			    (unsigned long long)target, strerror(err));
	xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += fpstate_size_check(v, &host, "after KVM_RUN", target, true);
	if (__vcpu_ioctl(v->vcpu, KVM_SET_CPUID2, v->created)) {
		printf("# %s: KVM_SET_CPUID2 with the vCPU's own CPUID after KVM_RUN failed: %s\n",
		       v->name, strerror(errno));
		bad++;
	}
	xvm_run(v, KVMFPU_XCR0_OP_REPORT, 0);
	bad += fpstate_size_check(v, &host, "after KVM_SET_CPUID2 again", target, true);
	if (bad)
		replay_and_fail(v, bad);
	kvmfpu_print_exercised(target);
}

/* KVM_GET_SUPPORTED_CPUID's own leaf 0xD. */
TEST(kvm_supported)
{
	struct kvm_cpuid_entry2 *d0, *d1;
	struct kvm_cpuid2 *c;
	unsigned int bad = 0;
	struct xs_layout l;
	char why[512];

	if (xcr0_unsupported(why, sizeof(why)))
		SKIP(return, "%s", why);
	c = kvmfpu_vm_supported_cpuid();
	if (!c)
		kvmfpu_error("kvm_supported: KVM_GET_SUPPORTED_CPUID failed");
	xs_layout_from_cpuid(&l, kvmfpu_vm_table_fn, c);
	d0 = find_entry(c, 0xd, 0);
	d1 = find_entry(c, 0xd, 1);
	if (!d0)
		kvmfpu_fail("kvm_supported: KVM_GET_SUPPORTED_CPUID has XSAVE but no leaf 0xD.0");
	printf("# kvmfpu-env: kvm_xcr0=0x%llx kvm_xss=0x%llx kvm_0xd_1_eax=0x%x tier=%s\n",
	       (unsigned long long)l.supported, (unsigned long long)l.xss, l.d1_eax,
	       getenv("KVMFPU_TIER") && *getenv("KVMFPU_TIER") ? getenv("KVMFPU_TIER") : "host");

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
	if (bad) {
		printf("# kvmfpu-replay: args=-r global.kvm_supported\n");
		kvmfpu_fail("kvm_supported: %u check(s) failed", bad);
	}
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
	struct xvm v;
	int err;

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
	if (!xvm_create(&v, after, true, "global.amx_permission", why, sizeof(why))) {
		xvm_destroy(&v);
		SKIP(return, "%s", why);
	}
	print_env(&v);
	n = xsz_valid_xcr0s(v.allowed, valid, MAX_XCR0S);
	for (i = 0; i < n; i++) {
		err = xvm_set_xcr0(&v, valid[i]);
		if (err) {
			printf("# amx_permission: KVM_SET_XCRS(0x%llx) failed: %s\n",
			       (unsigned long long)valid[i], strerror(err));
			bad++;
			continue;
		}
		xvm_run(&v, KVMFPU_XCR0_OP_REPORT, 0);
		snprintf(step, sizeof(step), "KVM_SET_XCRS(0x%llx)", (unsigned long long)valid[i]);
		bad += check_seen(&v, step, valid[i]);
	}
	n = xsz_invalid_xcr0s(v.allowed, bad_list, MAX_BAD);
	for (i = 0; i < n; i++) {
		err = xvm_set_xcr0(&v, bad_list[i].xcr0);
		if (err != EINVAL) {
			printf("# amx_permission: KVM_SET_XCRS(0x%llx) [%s]: expected EINVAL, got %s\n",
			       (unsigned long long)bad_list[i].xcr0, bad_list[i].what,
			       err ? strerror(err) : "success");
			bad++;
		}
	}
	xvm_destroy(&v);
	if (bad) {
		printf("# kvmfpu-replay: args=-r global.amx_permission\n");
		kvmfpu_fail("amx_permission: %u check(s) failed", bad);
	}
	kvmfpu_print_exercised(after);
}

static const struct kvmfpu_opt opts[] = {};

KVMFPU_MAIN(opts, NULL)
