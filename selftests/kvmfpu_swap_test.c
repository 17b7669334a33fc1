// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_swap_test: KVM keeps guest and host FPU state apart.
 *
 * On KVM_RUN, KVM swaps the vCPU's fpstate in for the task's and back on the way out
 * (fpu_swap_kvm_fpstate()); XCR0 and PKRU are switched separately. For every component the
 * vCPU can use, this checks, over several rounds of fresh patterns:
 *   guest_image    the guest loads its registers and exits: KVM_GET_XSAVE2 holds exactly them
 *   xstate_bv      ...and XSTATE_BV covers what the guest loaded and nothing its CPUID/XCR0
 *                  forbids (host PKRU leaking into a non-PKU guest's image was such a bug),
 *                  XCOMP_BV is 0 in the standard-format uABI, the reserved header bytes are 0
 *   host_regs      the host process loads its own pattern around KVM_RUN and finds it intact
 *   guest_reentry  the guest finds its registers intact after the exit and re-entry
 *   set_xsave      a KVM_SET_XSAVE of new values is what the guest's registers hold next
 *   init_state     a fresh vCPU's image holds the architectural init values
 *   migrate        the vCPU's state (XSAVE image, XCRs, MSRs, registers) moves into a new VM
 *                  with the same CPUID between the guest's fill and its save: the new vCPU's
 *                  KVM_GET_XSAVE2 and XCR0 hold what the guest loaded, and so do its registers
 *                  after re-entry, every component
 *   migrate_fewer  the image is restored into vCPUs with fewer features: one without
 *                  KVM_SET_CPUID2 and one with an empty CPUID (upstream state_test.c), and a
 *                  new VM whose CPUID has only x87/SSE: KVM_SET_XSAVE accepts it, KVM_GET_XSAVE2
 *                  reports only x87/SSE, and those are the image's, as the guest sees them
 *   guest_view     the guest's own XSAVE after re-entry, taken just before it exits, equals
 *                  KVM_GET_XSAVE2 taken just after, every register of every component (and
 *                  both equal the pattern): rounds alternate plain re-entry and set_xsave
 *   xsaveopt_view  the same with the guest saving by XSAVEOPT, where its CPUID has it
 *   xsavec_view    the same with XSAVEC: the compacted image, XCOMP_BV = bit 63 | RFBM & XCR0
 * The variants cover an FXSAVE-only guest (XSAVE hidden in CPUID), XCR0 set by the guest with
 * XSETBV and by the host with KVM_SET_XCRS, and each XCR0 the guest code can drive.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmfpu_vm.h"
#include "host_regs.h"
#include "options.h"
#include "pattern.h"
#include "report.h"
#include "swap_round.h"

#include "kvmfpu_harness.h"

#define ALL_ROUNDS	UINT64_MAX

static uint64_t opt_seed = 1, opt_rounds = 4, opt_round = ALL_ROUNDS, opt_xcr0;

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
	{ "--rounds", KVMFPU_OPT_NUMBER, &opt_rounds, 1, 1u << 20 },
	{ "--round", KVMFPU_OPT_NUMBER, &opt_round, 0, 1u << 20 },
	{ "--xcr0", KVMFPU_OPT_XCR0, &opt_xcr0 },
};

FIXTURE(swap) {
	struct kvmfpu_vm v;
	struct swap_ctx c;
};

FIXTURE_VARIANT(swap) {
	const char *name;
	uint64_t xcr0;
	bool xsave_hidden;
	bool xcr0_by_host;
	bool max;		/* XCR0 from --xcr0, else all KVM supports that the guest drives */
};

#define XCR0_AVX	(XS_MASK_FPSSE | XS_BIT(XS_AVX))
#define XCR0_AVX512	(XCR0_AVX | XS_MASK_AVX512)
#define XCR0_PKRU	(XCR0_AVX | XS_BIT(XS_PKRU))

FIXTURE_VARIANT_ADD(swap, legacy) {
	.name = "legacy", .xcr0 = XS_MASK_FPSSE, .xsave_hidden = true,
};
FIXTURE_VARIANT_ADD(swap, x87_sse) {
	.name = "x87_sse", .xcr0 = XS_MASK_FPSSE,
};
FIXTURE_VARIANT_ADD(swap, avx) {
	.name = "avx", .xcr0 = XCR0_AVX,
};
FIXTURE_VARIANT_ADD(swap, avx_xcrs) {
	.name = "avx_xcrs", .xcr0 = XCR0_AVX, .xcr0_by_host = true,
};
FIXTURE_VARIANT_ADD(swap, avx512) {
	.name = "avx512", .xcr0 = XCR0_AVX512,
};
FIXTURE_VARIANT_ADD(swap, avx512_xcrs) {
	.name = "avx512_xcrs", .xcr0 = XCR0_AVX512, .xcr0_by_host = true,
};
FIXTURE_VARIANT_ADD(swap, pkru) {
	.name = "pkru", .xcr0 = XCR0_PKRU, .xcr0_by_host = true,
};
FIXTURE_VARIANT_ADD(swap, max) {
	.name = "max", .max = true, .xcr0_by_host = true,
};

FIXTURE_SETUP(swap)
{
	struct kvmfpu_vm_config cfg = {
		.xcr0 = variant->xcr0,
		.xsave_hidden = variant->xsave_hidden,
		.xcr0_by_host = variant->xcr0_by_host,
	};
	char why[512];

	if (variant->max)
		cfg.xcr0 = opt_xcr0 ? opt_xcr0 : kvmfpu_vm_supported_xcr0() & KVMFPU_VM_GUEST_COMPS;
	if (!swap_ctx_setup(&self->v, &self->c, &cfg, why, sizeof(why)))
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(swap)
{
	swap_ctx_teardown(&self->v, &self->c);
}

/*
 * The arguments that run this failure again (docs/test-programs.md): the round alone, and the
 * max variant's XCR0 when --xcr0 chose it.
 */
static void print_replay(const FIXTURE_VARIANT(swap) *variant, const char *test,
			 unsigned int round)
{
	unsigned long long seed = opt_seed, xcr0 = opt_xcr0;

	if (variant->max && opt_xcr0)
		printf("# kvmfpu-replay: args=--seed 0x%llx --xcr0 0x%llx --round %u "
		       "-r swap.%s.%s\n", seed, xcr0, round, variant->name, test);
	else
		printf("# kvmfpu-replay: args=--seed 0x%llx --round %u -r swap.%s.%s\n", seed,
		       round, variant->name, test);
}

static void run_rounds(FIXTURE_DATA(swap) *self, const FIXTURE_VARIANT(swap) *variant,
		       const char *test, unsigned int checks)
{
	unsigned int r, first = opt_round != ALL_ROUNDS ? opt_round : 0;
	unsigned int last = opt_round != ALL_ROUNDS ? opt_round + 1 : opt_rounds;

	for (r = first; r < last; r++) {
		struct pattern_key k = { .seed = opt_seed, .vcpu = 0, .round = r };
		unsigned int bad = swap_round(&self->c, &k, checks);

		if (bad) {
			print_replay(variant, test, r);
			kvmfpu_fail("%s: %u register(s) differ in round %u (seed 0x%llx)", test, bad,
				    r, (unsigned long long)opt_seed);
		}
	}
}

KVMFPU_TEST_F(swap, guest_image)
{
	run_rounds(self, variant, "guest_image", CHECK_GUEST_IMAGE);
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(swap, xstate_bv)
{
	run_rounds(self, variant, "xstate_bv", CHECK_XSTATE_BV);
	if (!self->v.cpuid_kept)
		SKIP(return, "XSTATE_BV within the guest's CPUID not checked (only within what "
		     "KVM supports): %s", self->v.cpuid_lost);
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(swap, host_regs)
{
	char names[128];

	if (!self->c.host_mask)
		SKIP(return, "host CPU has no OSXSAVE: cannot load the host's registers with XRSTOR");
	run_rounds(self, variant, "host_regs", CHECK_HOST_REGS);
	printf("# host registers checked: %s\n",
	       xs_mask_str(self->c.host_mask, names, sizeof(names)));
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(swap, guest_reentry)
{
	run_rounds(self, variant, "guest_reentry", CHECK_GUEST_REENTRY);
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(swap, set_xsave)
{
	run_rounds(self, variant, "set_xsave", CHECK_SET_XSAVE);
	kvmfpu_print_exercised(self->v.guest_comps);
}

/*
 * The guest's view of itself against KVM's (swap_round.c, check_guest_view()): after
 * re-entry the guest stores its registers one by one, saves them with @insn and exits; the
 * host compares that image with the pattern and with KVM_GET_XSAVE2. Even rounds re-enter
 * unchanged, odd rounds after a KVM_SET_XSAVE of new values, so both of KVM's ways into the
 * guest (its own saved state, and the uABI's) are seen from inside.
 */
static void guest_view(FIXTURE_DATA(swap) *self, const FIXTURE_VARIANT(swap) *variant,
		       const char *test)
{
	unsigned int r, first = opt_round != ALL_ROUNDS ? opt_round : 0;
	unsigned int last = opt_round != ALL_ROUNDS ? opt_round + 1 : opt_rounds;

	for (r = first; r < last; r++) {
		struct pattern_key k = { .seed = opt_seed, .vcpu = 0, .round = r };
		unsigned int checks = CHECK_GUEST_VIEW |
				      (r & 1 ? CHECK_SET_XSAVE : CHECK_GUEST_REENTRY);
		unsigned int bad = swap_round(&self->c, &k, checks);

		if (bad) {
			print_replay(variant, test, r);
			kvmfpu_fail("%s: %u register(s) differ in round %u (seed 0x%llx)", test,
				    bad, r, (unsigned long long)opt_seed);
		}
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(swap, guest_view)
{
	char why[256];

	if (!kvmfpu_vm_save_insn(&self->v, KVMFPU_SAVE_XSAVE, why, sizeof(why)))
		SKIP(return, "%s", why);
	guest_view(self, variant, "guest_view");
}

KVMFPU_TEST_F(swap, xsaveopt_view)
{
	char why[256];

	if (!kvmfpu_vm_save_insn(&self->v, KVMFPU_SAVE_XSAVEOPT, why, sizeof(why)))
		SKIP(return, "%s", why);
	guest_view(self, variant, "xsaveopt_view");
}

KVMFPU_TEST_F(swap, xsavec_view)
{
	char why[256];

	if (!kvmfpu_vm_save_insn(&self->v, KVMFPU_SAVE_XSAVEC, why, sizeof(why)))
		SKIP(return, "%s", why);
	guest_view(self, variant, "xsavec_view");
}

/*
 * Before the vCPU ever ran, every component the guest may have is in its initial
 * configuration (SDM Vol. 1, 13.6): FCW 0x037f, MXCSR 0x1f80, everything else zero; and
 * XSTATE_BV holds nothing the guest's CPUID does not allow. Both expected values come from
 * the CPUID we set, so the header part needs a KVM that kept it.
 */
KVMFPU_TEST_F(swap, init_state)
{
	struct ximage img, init;
	unsigned int bad;

	kvmfpu_vm_get_image(&self->v, &img);
	if (ximage_alloc(&init, &self->v.layout, self->v.allowed, false))
		kvmfpu_error("cannot allocate the init image");
	ximage_init_state(&init, self->v.allowed);
	bad = swap_diff(&self->c, &init, &img, self->v.allowed, "init_state");
	if (self->v.cpuid_kept)
		bad += ximage_check_header(&img, self->v.allowed, 0, "init_state",
					   ximage_report_ktap, NULL);
	ximage_free(&init);
	ximage_free(&img);
	if (bad) {
		print_replay(variant, "init_state", 0);
		kvmfpu_fail("init_state: %u register(s) of a fresh vCPU are not at init values",
			    bad);
	}
	if (!self->v.cpuid_kept)
		SKIP(return, "init values checked, XSTATE_BV within the guest's CPUID not: %s",
		     self->v.cpuid_lost);
	kvmfpu_print_exercised(self->v.guest_comps);
}

/*
 * A migration between the guest's fill and its save, every round: vcpu_save_state() (KVM_GET_
 * XSAVE2, KVM_GET_XCRS, every MSR KVM lists, sregs, registers, events), a new VM on the same
 * memory, the vCPU's own CPUID set again (kvm_vcpu_after_set_cpuid() derives the permitted
 * xfeatures from it), vcpu_load_state() (KVM_SET_XCRS: __kvm_set_xcr(); KVM_SET_XSAVE:
 * fpu_copy_uabi_to_guest_fpstate(), PKRU into vcpu->arch.pkru). Before re-entry the new
 * vCPU's KVM_GET_XCRS is the guest's XCR0 and its KVM_GET_XSAVE2 the pattern; after it the
 * guest's stored registers, its XGETBV(0) and its own XSAVE are the pattern again.
 */
KVMFPU_TEST_F(swap, migrate)
{
	run_rounds(self, variant, "migrate", CHECK_MIGRATE);
	if (!self->v.cpuid_kept)
		SKIP(return, "registers checked, XSTATE_BV within the guest's CPUID not: %s",
		     self->v.cpuid_lost);
	kvmfpu_print_exercised(self->v.guest_comps);
}

/*
 * KVM_SET_XSAVE of image @img (with its XSTATE_BV, then with every component KVM supports
 * forced on, as state_test.c does) into @vcpu, a vCPU that never ran with CPUID @how: each
 * must be accepted (fpu_copy_uabi_to_guest_fpstate() checks XSTATE_BV against KVM's supported
 * xfeatures, not the guest CPUID), and KVM_GET_XSAVE2 must then report x87/SSE as the guest
 * loaded them (@fill) and nothing else: KVM_GET_XSAVE2 reports only the CPUID's xfeatures
 * (guest_supported_xcr0 | FP | SSE), none before KVM_SET_CPUID2.
 */
static unsigned int restore_into(struct swap_ctx *c, struct kvm_vcpu *vcpu, struct ximage *img,
				 const char *how)
{
	struct kvmfpu_vm *v = c->v;
	uint64_t bv = ximage_xstate_bv(img);
	unsigned int pass, bad = 0;
	struct ximage got;

	for (pass = 0; pass < 2; pass++) {
		struct ximage_reporter d = { .max_print = c->max_print };
		uint64_t set = pass ? kvmfpu_vm_uabi_xcr0() | bv : bv;

		ximage_set_xstate_bv(img, set);
		if (ioctl(vcpu->fd, KVM_SET_XSAVE, img->buf)) {
			printf("# migrate_fewer: KVM_SET_XSAVE (XSTATE_BV 0x%llx) into a vCPU %s "
			       "failed: %s; KVM must accept every component it supports\n",
			       (unsigned long long)set, how, strerror(errno));
			bad++;
			continue;
		}
		kvmfpu_vm_vcpu_get_image(v, vcpu, &got);
		d.img = &got;
		bad += swap_diff(c, &v->fill, &got, XS_MASK_FPSSE, "migrate_fewer");
		bad += ximage_check_header(&got, XS_MASK_FPSSE, XS_MASK_FPSSE, "migrate_fewer",
					   ximage_report, &d);
		ximage_free(&got);
	}
	ximage_set_xstate_bv(img, bv);
	return bad;
}

/*
 * Restore into vCPUs with fewer features than the source. 1) As upstream state_test.c:
 * the source's KVM_GET_XSAVE2 image into a second vCPU without KVM_SET_CPUID2, then with an
 * empty CPUID (restore_into()). 2) Migration into a new VM whose CPUID has XSAVE with only x87
 * and SSE in leaf 0xD.0 (kvmfpu_vm_migrate_fewer()): the source's XCR0 is refused, x87|SSE
 * taken, the whole image accepted; before re-entry KVM_GET_XSAVE2 holds the pattern's x87/SSE
 * and no component the CPUID dropped (nor PKRU, which vcpu->arch.pkru still has); after it the
 * guest's stored x87/SSE registers, XGETBV(0) and own XSAVE agree. Part 2 needs a guest with
 * XSAVE and more than x87/SSE. One round (--round picks which).
 */
KVMFPU_TEST_F(swap, migrate_fewer)
{
	unsigned int round = opt_round != ALL_ROUNDS ? opt_round : 0, bad = 0;
	struct pattern_key k = { .seed = opt_seed, .vcpu = 0, .round = round };
	struct kvm_cpuid2 empty = { 0 };
	struct kvmfpu_vm *v = &self->v;
	uint64_t exercised = XS_MASK_FPSSE;	/* what went through KVM and was checked */
	struct kvm_vcpu *vcpu;
	struct ximage img;

	pattern_fill_image(&v->fill, v->guest_comps, &k);
	kvmfpu_vm_run_until(v, KVMFPU_STAGE_FILLED, "migrate_fewer: fill");
	kvmfpu_vm_get_image(v, &img);
	vcpu = __vm_vcpu_add(v->vm, v->vcpu->id + 1);
	bad += restore_into(&self->c, vcpu, &img, "without KVM_SET_CPUID2");
	vcpu_init_cpuid(vcpu, &empty);
	bad += restore_into(&self->c, vcpu, &img, "with an empty CPUID");
	ximage_free(&img);
	kvmfpu_vm_run_until(v, KVMFPU_STAGE_SAVED, "migrate_fewer: save");

	if (!v->cfg.xsave_hidden && (v->guest_comps & ~XS_MASK_FPSSE)) {
		/* The source's image is checked whole before the move. */
		exercised = v->guest_comps;
		bad += swap_round(&self->c, &k, CHECK_GUEST_IMAGE | CHECK_MIGRATE_FEWER);
	} else {
		printf("# migrate_fewer: guest has %s: only the restore without CPUID checked\n",
		       v->cfg.xsave_hidden ? "no XSAVE" : "nothing beyond x87/SSE");
	}
	if (bad) {
		print_replay(variant, "migrate_fewer", round);
		kvmfpu_fail("migrate_fewer: %u check(s) failed in round %u (seed 0x%llx)", bad,
			    round, (unsigned long long)opt_seed);
	}
	if (!v->cpuid_kept)
		SKIP(return, "registers checked, XSTATE_BV within the guest's CPUID not: %s",
		     v->cpuid_lost);
	kvmfpu_print_exercised(exercised);
}

/* --xcr0 names only components the guest code drives. */
static void check_xcr0_opt(void)
{
	uint64_t other = opt_xcr0 & ~KVMFPU_VM_GUEST_COMPS;
	char names[128];

	if (other)
		kvmfpu_usage_error("--xcr0 0x%llx: this test's guest code does not drive %s",
				   (unsigned long long)opt_xcr0,
				   xs_mask_str(other, names, sizeof(names)));
}

KVMFPU_MAIN(opts, check_xcr0_opt)
