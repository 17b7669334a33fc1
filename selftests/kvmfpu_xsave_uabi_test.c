// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_xsave_uabi_test: the KVM_GET_XSAVE2 / KVM_SET_XSAVE uABI, from the host side.
 *
 * The uABI image is the standard (non-compacted) XSAVE format of KVM_CAP_XSAVE2 bytes.
 * KVM_SET_XSAVE takes any user feature KVM supports, whatever the guest's CPUID says, so that
 * a VM migrates to a host that supports more; KVM_GET_XSAVE2 reports only what the guest may
 * have, plus FP and SSE always (arch/x86/kvm/x86.c, kvm_vcpu_ioctl_x86_get_xsave2()).
 *
 *   size          KVM_CAP_XSAVE2 on the VM is at least sizeof(struct kvm_xsave) and holds the
 *                 standard-format image of everything the guest may have
 *   set_supported KVM_SET_XSAVE of every KVM-supported feature succeeds on a vCPU whose CPUID
 *                 has fewer; KVM_GET_XSAVE2 then reports exactly the guest's share of it
 *                 Guards "KVM: x86: Constrain guest-supported xfeatures only at
 *                 KVM_GET_XSAVE{2}" (8647c52e9504) and "KVM: x86: Always enable legacy FP/SSE
 *                 in allowed user XFEATURES" (a1020a25e697).
 *   restore_own   KVM_SET_XSAVE takes back, unchanged, the image KVM_GET_XSAVE2 just returned
 *                 for a vCPU whose guest holds live state: what a VMM does to save and
 *                 restore or migrate a vCPU (a KVM whose GET reports a bit its SET refuses,
 *                 e.g. host PKRU in a non-PKU guest's XSTATE_BV, breaks it)
 *   rejects       each invalid image (unknown XSTATE_BV bit, XCOMP_BV set, reserved header
 *                 byte set, reserved MXCSR bit set) fails with EINVAL and changes nothing
 *   fuzz          seeded random XSTATE_BV and values: what KVM_GET_XSAVE2 returns follows
 *                 the uABI model below, for every register
 *   guest_sees_set the guest's registers (its pattern) are what KVM_GET_XSAVE2 reports, with
 *                 FP and SSE in XSTATE_BV and nothing the guest CPUID lacks; KVM_SET_XSAVE of
 *                 every feature KVM supports (kvmfpu_vm_uabi_xcr0(), PKRU included) with a
 *                 pattern in each is accepted and GET follows the model; after re-entry the
 *                 guest's own store of its registers holds exactly what was set. KNOWLEDGE §2
 *                 classes 7 ("KVM: x86: Always enable legacy FP/SSE in allowed user
 *                 XFEATURES", a1020a25e697: FP|SSE even where the guest has no XSAVE) and 8
 *                 ("KVM: x86: Allow KVM_SET_XSAVE of host-supported features the guest
 *                 lacks": fpu_copy_uabi_to_guest_fpstate() checks XSTATE_BV against the
 *                 process's guest permission, fpu_user_cfg.max_features, never guest CPUID).
 *
 * Variants are the guest CPUIDs VMMs really set (enum kvmfpu_vm_cpuid): x87_sse and avx
 * advertise fewer components in leaf 0xD.0 than KVM supports (as a QEMU -cpu model does),
 * max all of them; legacy hides XSAVE in leaf 1 but keeps leaf 0xD; no_xsave is a CPU model
 * without XSAVE (leaf 1 without XSAVE, OSXSAVE and AVX, no leaf 0xD at all); empty is
 * KVM_SET_CPUID2 with no entries, what KVM has before any KVM_SET_CPUID2 as far as these
 * checks go (guest_supported_xcr0 0; a vCPU that never had KVM_SET_CPUID2 cannot run the
 * 64-bit guest: lib/kvmfpu_vm.h). The last three run an FXSAVE-only guest, whose permitted
 * set is FP|SSE: KVM derives it from CPUID.(0xD,0) in kvm_vcpu_after_set_cpuid(), and with
 * no such leaf KVM_GET_XSAVE2 may report FP|SSE only.
 *   pkru_kept     guest with PKU: KVM_SET_XSAVE with XSTATE_BV[PKRU] clear and another value
 *                 in the PKRU area leaves the vCPU's PKRU as the guest had loaded it: RDPKRU
 *                 and XSAVE in the guest after re-entry, and KVM_GET_XSAVE2 before and after
 *   pkru_set      guest with PKU: with the bit set, PKRU takes the image's value: 0, all-ones,
 *                 the host's default 0x55555554, a pattern
 *   pkru_hidden   guest without PKU, KVM with it: XSTATE_BV[PKRU] is never reported, on a
 *                 fresh vCPU, after KVM_SET_XSAVE of every feature KVM supports (PKRU with a
 *                 value), and after the guest ran
 *                 pkru_*: KNOWLEDGE classes 6 and 14, the PKRU fixes of "KVM: x86: Avoid
 *                 double RDPKRU when loading host/guest PKRU" and the PKRU leak into a
 *                 non-PKU guest's image
 *
 * The model of a successful KVM_SET_XSAVE of an image with XSTATE_BV=B followed by
 * KVM_GET_XSAVE2 on a guest that may have A (arch/x86/kernel/fpu/xstate.c,
 * copy_uabi_to_xstate() and __copy_xstate_to_uabi_buf()): XSTATE_BV reads B & A; components
 * in B & A hold the values written, the others of A their init values; MXCSR is the value
 * written when B & A has SSE or AVX, else its init value 0x1f80. PKRU is left out: with its
 * bit clear KVM keeps the vCPU's PKRU (the guest's view, tested in the swap test).
 * A is the guest CPUID the test set, never KVM's read-back of it: where KVM does not keep it
 * (KVM_GET_CPUID2 differs, as on kvm_pvm), set_supported and fuzz skip saying so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmfpu_vm.h"
#include "options.h"
#include "pattern.h"
#include "report.h"
#include "swap_round.h"

#include "kvmfpu_harness.h"

#define MXCSR_OFFSET	24

static uint64_t opt_seed = 1, opt_rounds = 64;

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
	{ "--rounds", KVMFPU_OPT_NUMBER, &opt_rounds, 1, 1u << 20 },
};

FIXTURE(uabi) {
	struct kvmfpu_vm v;
	struct swap_ctx c;
	uint64_t uabi;		/* what KVM_SET_XSAVE must accept */
};

FIXTURE_VARIANT(uabi) {
	const char *name;	/* as the harness names it, for replay lines */
	uint64_t xcr0;
	bool xsave_hidden;
	enum kvmfpu_vm_cpuid cpuid;
	bool max;
};

FIXTURE_VARIANT_ADD(uabi, legacy) {
	.name = "legacy", .xcr0 = XS_MASK_FPSSE, .xsave_hidden = true,
};
FIXTURE_VARIANT_ADD(uabi, x87_sse) {
	.name = "x87_sse", .xcr0 = XS_MASK_FPSSE,
};
FIXTURE_VARIANT_ADD(uabi, avx) {
	.name = "avx", .xcr0 = XS_MASK_FPSSE | XS_BIT(XS_AVX),
};
FIXTURE_VARIANT_ADD(uabi, max) {
	.name = "max", .max = true,
};
FIXTURE_VARIANT_ADD(uabi, no_xsave) {
	.name = "no_xsave", .xcr0 = XS_MASK_FPSSE, .cpuid = KVMFPU_VM_CPUID_NO_LEAF_D,
};
FIXTURE_VARIANT_ADD(uabi, empty) {
	.name = "empty", .xcr0 = XS_MASK_FPSSE, .cpuid = KVMFPU_VM_CPUID_EMPTY,
};


/* As in kvmfpu_swap_test: on 6.1's harness a SKIP in setup still runs the body. */
FIXTURE_SETUP(uabi)
{
	struct kvmfpu_vm_config cfg = {
		.xcr0 = variant->xcr0,
		.xsave_hidden = variant->xsave_hidden,
		.xcr0_by_host = true,
		.cpuid = variant->cpuid,
	};
	char why[512];

	if (variant->max)
		cfg.xcr0 = kvmfpu_vm_supported_xcr0() & KVMFPU_VM_GUEST_COMPS;
	if (!swap_ctx_setup(&self->v, &self->c, &cfg, why, sizeof(why)))
		SKIP(return, "%s", why);
	self->uabi = kvmfpu_vm_uabi_xcr0();
}

FIXTURE_TEARDOWN(uabi)
{
	swap_ctx_teardown(&self->v, &self->c);
}

/* A valid uABI image: the pattern of @k in every component of @bv. */
static void build_image(FIXTURE_DATA(uabi) *self, struct ximage *img, uint64_t bv,
			const struct pattern_key *k)
{
	memset(img->buf, 0, img->size);
	pattern_fill_image(img, bv, k);
	/* pattern_fill_image() sets MXCSR only with SSE; XRSTOR semantics want it valid. */
	if (!(bv & XS_BIT(XS_SSE))) {
		uint32_t mxcsr = XS_MXCSR_INIT;

		memcpy(img->buf + MXCSR_OFFSET, &mxcsr, sizeof(mxcsr));
	}
}

/* What KVM_GET_XSAVE2 must return after KVM_SET_XSAVE of @set (the model above). */
static void expected_after_set(FIXTURE_DATA(uabi) *self, const struct ximage *set,
			       struct ximage *exp)
{
	uint64_t got = ximage_xstate_bv(set) & self->v.allowed;
	uint32_t mxcsr = XS_MXCSR_INIT;

	memcpy(exp->buf, set->buf, set->size);
	ximage_set_xstate_bv(exp, got);
	if (got & (XS_BIT(XS_SSE) | XS_BIT(XS_AVX)))
		memcpy(&mxcsr, set->buf + MXCSR_OFFSET, sizeof(mxcsr));
	memcpy(exp->buf + MXCSR_OFFSET, &mxcsr, sizeof(mxcsr));
}

/*
 * The arguments that run this failure again (docs/test-programs.md). Every test but fuzz
 * depends only on the seed; fuzz's round R comes after rounds 0..R-1 on the same vCPU, so its
 * replay runs those again (--rounds R+1).
 */
static void print_replay(const FIXTURE_VARIANT(uabi) *variant, const char *test)
{
	printf("# kvmfpu-replay: args=--seed 0x%llx -r uabi.%s.%s\n",
	       (unsigned long long)opt_seed, variant->name, test);
}

/* SET @img, which must succeed, then GET and compare with the model. */
static unsigned int set_and_check(FIXTURE_DATA(uabi) *self, struct ximage *img,
				  const char *check)
{
	uint64_t want_bv = ximage_xstate_bv(img) & self->v.allowed;
	struct ximage exp, got;
	unsigned int bad;
	int r;

	r = kvmfpu_vm_set_image(&self->v, img);
	if (r) {
		printf("# %s: KVM_SET_XSAVE with XSTATE_BV=0x%llx (KVM supports 0x%llx) failed: "
		       "%s\n", check, (unsigned long long)ximage_xstate_bv(img),
		       (unsigned long long)self->uabi, strerror(-r));
		return 1;
	}

	exp.buf = ximage_zalloc(img->size);
	if (!exp.buf)
		kvmfpu_error("cannot allocate an image");
	ximage_wrap(&exp, exp.buf, img->size, img->layout, false);
	expected_after_set(self, img, &exp);

	kvmfpu_vm_get_image(&self->v, &got);
	bad = swap_diff(&self->c, &exp, &got, self->v.allowed & ~XS_BIT(XS_PKRU), check);
	if (ximage_xstate_bv(&got) & ~XS_BIT(XS_PKRU) & ~want_bv || (want_bv & ~ximage_xstate_bv(&got))) {
		printf("# %s: KVM_GET_XSAVE2 XSTATE_BV 0x%llx, expected 0x%llx "
		       "(set 0x%llx & guest's 0x%llx)\n", check,
		       (unsigned long long)ximage_xstate_bv(&got), (unsigned long long)want_bv,
		       (unsigned long long)ximage_xstate_bv(img),
		       (unsigned long long)self->v.allowed);
		bad++;
	}
	bad += ximage_check_header(&got, self->v.allowed, 0, check, ximage_report_ktap, NULL);
	ximage_free(&exp);
	ximage_free(&got);
	return bad;
}

KVMFPU_TEST_F(uabi, size)
{
	uint32_t need;

	need = xs_size_standard(&self->v.layout, self->v.allowed);
	if (self->v.uabi_size < sizeof(struct kvm_xsave) || self->v.uabi_size < need)
		print_replay(variant, "size");
	if (self->v.uabi_size < sizeof(struct kvm_xsave))
		kvmfpu_fail("size: KVM_CAP_XSAVE2 = %u, less than sizeof(struct kvm_xsave) = %zu",
			    self->v.uabi_size, sizeof(struct kvm_xsave));
	if (self->v.uabi_size < need)
		kvmfpu_fail("size: KVM_CAP_XSAVE2 = %u, but the standard-format image of XCR0 "
			    "0x%llx needs %u bytes (CPUID 0xD offsets)", self->v.uabi_size,
			    (unsigned long long)self->v.allowed, need);
	printf("# KVM_CAP_XSAVE2 = %u, image of 0x%llx needs %u\n", self->v.uabi_size,
	       (unsigned long long)self->v.allowed, need);
}

KVMFPU_TEST_F(uabi, set_supported)
{
	struct pattern_key k = { .seed = opt_seed, .salt = 10 };
	unsigned int bad;

	if (!self->v.cpuid_kept)
		SKIP(return, "the model's guest mask is the guest CPUID: %s", self->v.cpuid_lost);
	build_image(self, &self->c.set_image, self->uabi & ~XS_BIT(XS_PKRU), &k);
	bad = set_and_check(self, &self->c.set_image, "set_supported");
	if (bad) {
		print_replay(variant, "set_supported");
		kvmfpu_fail("set_supported: %u difference(s)", bad);
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

struct bad_image {
	const char *what;
	uint32_t offset;	/* byte to change */
	uint64_t value;		/* OR-ed in, 8 bytes little endian */
	bool needs_sse;		/* only checked with SSE in XSTATE_BV */
};

/*
 * restore_own. KVM_SET_XSAVE must accept any image KVM_GET_XSAVE2 produced for the same vCPU
 * (fpu_copy_uabi_to_guest_fpstate() validates what fpu_copy_guest_fpstate_to_uabi() writes:
 * XSTATE_BV within the vCPU's user_xfeatures, XCOMP_BV 0, valid MXCSR), and a GET after it
 * must return the same image: every register of what the guest may have, and XSTATE_BV.
 */
KVMFPU_TEST_F(uabi, restore_own)
{
	struct pattern_key k = { .seed = opt_seed };
	struct ximage before, after;
	unsigned int bad;
	int r;

	bad = swap_round(&self->c, &k, CHECK_GUEST_IMAGE);
	if (bad) {
		print_replay(variant, "restore_own");
		kvmfpu_fail("restore_own: KVM's image does not hold the registers the guest "
			    "loaded (%u differ), before any restore", bad);
	}
	kvmfpu_vm_get_image(&self->v, &before);
	r = kvmfpu_vm_set_image(&self->v, &before);
	if (r) {
		print_replay(variant, "restore_own");
		kvmfpu_fail("restore_own: KVM_SET_XSAVE of the image KVM_GET_XSAVE2 returned "
			    "(XSTATE_BV 0x%llx) failed: %s",
			    (unsigned long long)ximage_xstate_bv(&before), strerror(-r));
	}
	kvmfpu_vm_get_image(&self->v, &after);
	bad = swap_diff(&self->c, &before, &after, self->v.allowed, "restore_own");
	if (ximage_xstate_bv(&after) != ximage_xstate_bv(&before)) {
		printf("# restore_own: XSTATE_BV 0x%llx after restoring 0x%llx\n",
		       (unsigned long long)ximage_xstate_bv(&after),
		       (unsigned long long)ximage_xstate_bv(&before));
		bad++;
	}
	ximage_free(&before);
	ximage_free(&after);
	if (bad) {
		print_replay(variant, "restore_own");
		kvmfpu_fail("restore_own: %u register(s) changed by restoring KVM's own image", bad);
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

/*
 * XSTATE_BV bits KVM does not support, XCOMP_BV (the uABI is the standard format), reserved
 * header bytes (SDM Vol. 1, 13.4.2: XRSTOR #GPs on them) and MXCSR bits outside MXCSR_MASK
 * (LDMXCSR/XRSTOR #GP): the kernel validates all of them (validate_user_xstate_header(),
 * copy_uabi_to_xstate()) and must refuse before changing anything.
 */
static const struct bad_image bad_images[] = {
	{ "XSTATE_BV bit 62 (undefined)", 512, 1ull << 62 },
	{ "XSTATE_BV bit 8 (PT, supervisor state)", 512, 1ull << 8 },
	{ "XCOMP_BV bit 63 (compacted format)", 520, 1ull << 63 },
	{ "XCOMP_BV bit 1", 520, 1ull << 1 },
	{ "header reserved byte 16", 528, 1 },
	{ "header reserved byte 63", 568, 1ull << 56 },
	{ "MXCSR bit 31 (reserved)", MXCSR_OFFSET, 1ull << 31, true },
};

KVMFPU_TEST_F(uabi, rejects)
{
	struct pattern_key k = { .seed = opt_seed, .salt = 20 };
	struct ximage before, after;
	unsigned int i, bad = 0;
	uint64_t v;
	int r;

	/* A known state first, so "unchanged" means something. */
	build_image(self, &self->c.set_image, self->v.allowed & ~XS_BIT(XS_PKRU), &k);
	r = kvmfpu_vm_set_image(&self->v, &self->c.set_image);
	if (r) {
		print_replay(variant, "rejects");
		kvmfpu_fail("rejects: KVM_SET_XSAVE of a valid image failed: %s", strerror(-r));
	}
	kvmfpu_vm_get_image(&self->v, &before);

	for (i = 0; i < ARRAY_SIZE(bad_images); i++) {
		const struct bad_image *b = &bad_images[i];

		k.salt = 21 + i;
		build_image(self, &self->c.set_image, self->uabi & ~XS_BIT(XS_PKRU), &k);
		memcpy(&v, self->c.set_image.buf + b->offset, sizeof(v));
		v |= b->value;
		memcpy(self->c.set_image.buf + b->offset, &v, sizeof(v));

		r = kvmfpu_vm_set_image(&self->v, &self->c.set_image);
		if (r != -EINVAL) {
			printf("# rejects: KVM_SET_XSAVE with %s returned %s, expected EINVAL\n",
			       b->what, r ? strerror(-r) : "success");
			bad++;
			/* Accepted: put the known state back for the next case. */
			if (!r)
				kvmfpu_vm_set_image(&self->v, &before);
			continue;
		}
		kvmfpu_vm_get_image(&self->v, &after);
		if (swap_diff(&self->c, &before, &after, self->v.allowed, "rejects") ||
		    ximage_xstate_bv(&before) != ximage_xstate_bv(&after)) {
			printf("# rejects: the refused KVM_SET_XSAVE with %s changed the vCPU's "
			       "state\n", b->what);
			bad++;
		}
		ximage_free(&after);
	}
	ximage_free(&before);
	if (bad) {
		print_replay(variant, "rejects");
		kvmfpu_fail("rejects: %u invalid image(s) not refused cleanly", bad);
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(uabi, fuzz)
{
	struct pattern_key k = { .seed = opt_seed, .salt = 40 };
	unsigned int r, bad;
	uint64_t bv;

	if (!self->v.cpuid_kept)
		SKIP(return, "the model's guest mask is the guest CPUID: %s", self->v.cpuid_lost);
	for (r = 0; r < opt_rounds; r++) {
		k.round = r;
		/* Any subset of what KVM supports, PKRU aside (see the model). */
		bv = pattern_u64(&k, 0, 0, 0) & self->uabi & ~XS_BIT(XS_PKRU);
		build_image(self, &self->c.set_image, bv, &k);
		bad = set_and_check(self, &self->c.set_image, "fuzz");
		if (bad) {
			printf("# kvmfpu-replay: args=--seed 0x%llx --rounds %u -r uabi.%s.fuzz\n",
			       (unsigned long long)opt_seed, r + 1, variant->name);
			kvmfpu_fail("fuzz: %u difference(s) in round %u, XSTATE_BV 0x%llx", bad, r,
				    (unsigned long long)bv);
		}
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

/*
 * guest_sees_set. One round of the guest's own pattern (KVM's image and XSTATE_BV checked by
 * swap_round()); the guest loads a second pattern and exits; KVM_SET_XSAVE of an image with
 * every KVM-supported feature and a third pattern in each must succeed (fpu_copy_uabi_to_
 * guest_fpstate()) and KVM_GET_XSAVE2 follow the model (where KVM kept the guest CPUID the
 * model rests on); the guest, re-entered, stores its registers: they must be the third
 * pattern, for every component it has (FXSAVE-only guests: x87 and SSE).
 */
KVMFPU_TEST_F(uabi, guest_sees_set)
{
	struct pattern_key k = { .seed = opt_seed, .salt = 50 };
	struct kvmfpu_vm *v = &self->v;
	struct ximage *set = &self->c.set_image;
	unsigned int bad;
	int r;

	bad = swap_round(&self->c, &k, CHECK_GUEST_IMAGE | CHECK_XSTATE_BV);
	if (bad) {
		print_replay(variant, "guest_sees_set");
		kvmfpu_fail("guest_sees_set: KVM's image of the guest's own pattern: %u "
			    "difference(s)", bad);
	}

	k.salt = 51;
	pattern_fill_image(&v->fill, v->guest_comps, &k);
	kvmfpu_vm_run_until(v, KVMFPU_STAGE_FILLED, "guest_sees_set: guest loads its pattern");
	k.salt = 52;
	build_image(self, set, self->uabi, &k);
	if (self->v.cpuid_kept) {
		bad = set_and_check(self, set, "guest_sees_set");
	} else {
		printf("# note: KVM_GET_XSAVE2 after the SET not compared with the model: %s\n",
		       v->cpuid_lost);
		r = kvmfpu_vm_set_image(v, set);
		if (r)
			printf("# guest_sees_set: KVM_SET_XSAVE with XSTATE_BV=0x%llx (what KVM "
			       "supports) failed: %s\n", (unsigned long long)self->uabi,
			       strerror(-r));
		bad = !!r;
	}
	if (bad) {
		print_replay(variant, "guest_sees_set");
		kvmfpu_fail("guest_sees_set: KVM_SET_XSAVE of every KVM-supported feature "
			    "(0x%llx): %u difference(s)", (unsigned long long)self->uabi, bad);
	}

	memset(v->save.buf, 0, v->save.size);
	kvmfpu_vm_run_until(v, KVMFPU_STAGE_SAVED, "guest_sees_set: guest stores its registers");
	/* The guest stored every register of its components: all of them are in use. */
	ximage_set_xstate_bv(&v->save, v->guest_comps);
	bad = swap_diff(&self->c, set, &v->save, v->guest_comps, "guest_sees_set");
	if (bad) {
		print_replay(variant, "guest_sees_set");
		kvmfpu_fail("guest_sees_set: after KVM_SET_XSAVE and re-entry the guest's "
			    "registers differ from what was set: %u", bad);
	}
	/* Part of the test could not be judged: a skip that says so, never a pass. */
	if (!v->cpuid_kept)
		SKIP(return, "the guest's registers were checked; KVM_GET_XSAVE2 after the SET "
		     "was not compared with the model, whose guest mask is the guest CPUID: %s",
		     v->cpuid_lost);
	kvmfpu_print_exercised(v->guest_comps);
}

/*
 * PKRU through the uABI. KVM keeps the guest's PKRU in vcpu->arch.pkru, outside the guest
 * fpstate, and switches it itself around VM entry (kvm_load_guest_xsave_state(), WRPKRU only
 * when it differs from the host's). KVM_SET_XSAVE updates it only when XSTATE_BV[PKRU] is set:
 * fpu_copy_uabi_to_guest_fpstate() passes copy_uabi_to_xstate() a NULL @vpkru otherwise ("KVM's
 * odd ABI is to leave PKRU untouched"). KVM_GET_XSAVE2 writes it into the image
 * (__copy_xstate_to_uabi_buf()) only when the guest may have PKRU (fpstate->user_xfeatures,
 * from the guest's CPUID 0xD.0).
 *
 * One step: the guest loads a fresh pattern (PKRU included) and exits; the host writes KVM's
 * own image back with @value in the PKRU area and XSTATE_BV[PKRU] = @with_bit; the guest
 * re-enters, stores every register (RDPKRU for PKRU), XSAVEs and exits. The PKRU expected
 * everywhere is @value with the bit, else the pattern's; every other register is the
 * pattern's. KVM_GET_XSAVE2 is compared before the re-entry and after it.
 *
 * Any PKRU value is safe for the guest, all-ones (access and write disabled for every key)
 * included: the selftest library maps every guest page without PTE.U/S (virt_arch_pg_map()
 * sets PRESENT and WRITABLE only), and PKRU governs data accesses to user-mode addresses only
 * (SDM Vol. 3A, 4.6.2); the guest's loads, stores, stack and XSAVE all touch supervisor pages.
 */
static unsigned int pkru_step(FIXTURE_DATA(uabi) *self, const char *test, unsigned int step,
			      bool with_bit, uint32_t value)
{
	struct kvmfpu_vm *v = &self->v;
	struct pattern_key k = { .seed = opt_seed, .round = step, .salt = 50 };
	struct ximage *set = &self->c.set_image, now, exp;
	char check[48];
	uint32_t loaded, want;
	unsigned int bad = 0;
	uint64_t bv;
	int r;

	pattern_fill_image(&v->fill, v->guest_comps, &k);
	kvmfpu_vm_run_until(v, KVMFPU_STAGE_FILLED, test);
	memcpy(&loaded, ximage_comp(&v->fill, XS_PKRU), sizeof(loaded));
	want = with_bit ? value : loaded;

	kvmfpu_vm_get_image(v, &now);
	memcpy(set->buf, now.buf, v->uabi_size);
	ximage_free(&now);
	memcpy(ximage_comp(set, XS_PKRU), &value, sizeof(value));
	bv = ximage_xstate_bv(set) & ~XS_BIT(XS_PKRU);
	ximage_set_xstate_bv(set, bv | (with_bit ? XS_BIT(XS_PKRU) : 0));
	r = kvmfpu_vm_set_image(v, set);
	if (r) {
		printf("# %s: step %u: KVM_SET_XSAVE of KVM's own image with PKRU 0x%08x, "
		       "XSTATE_BV[PKRU] %d failed: %s\n", test, step, value, with_bit,
		       strerror(-r));
		return 1;
	}
	printf("# %s: step %u: guest PKRU 0x%08x, KVM_SET_XSAVE PKRU area 0x%08x with "
	       "XSTATE_BV[PKRU]=%d: expect 0x%08x\n", test, step, loaded, value, with_bit, want);

	/* What the guest's registers and KVM's image must hold: the image set, PKRU = want. */
	exp.buf = ximage_zalloc(v->uabi_size);
	if (!exp.buf)
		kvmfpu_error("cannot allocate an image");
	ximage_wrap(&exp, exp.buf, v->uabi_size, &v->layout, false);
	memcpy(exp.buf, set->buf, v->uabi_size);
	memcpy(ximage_comp(&exp, XS_PKRU), &want, sizeof(want));
	ximage_set_xstate_bv(&exp, bv | XS_BIT(XS_PKRU));

	/*
	 * Before the re-entry, KVM_GET_XSAVE2 takes XSTATE_BV from the fpstate the SET just
	 * wrote and PKRU from vcpu->arch.pkru: with the bit set it must show the new value. With
	 * it clear, 6.12 reports PKRU in its init state (XSTATE_BV[PKRU] clear, as set) although
	 * the vCPU keeps its PKRU: not checked, but printed; the guest and the GET after the
	 * next exit are the checks.
	 */
	snprintf(check, sizeof(check), "%s.get_before_entry", test);
	kvmfpu_vm_get_image(v, &now);
	bad += swap_diff(&self->c, &exp, &now, v->allowed & ~(with_bit ? 0 : XS_BIT(XS_PKRU)),
			 check);
	if (!with_bit)
		printf("# note: %s: KVM_GET_XSAVE2 before re-entry: XSTATE_BV[PKRU]=%d, PKRU area "
		       "0x%08x (the vCPU's PKRU is 0x%08x)\n", test,
		       !!(ximage_xstate_bv(&now) & XS_BIT(XS_PKRU)),
		       *(uint32_t *)ximage_comp(&now, XS_PKRU), want);
	ximage_free(&now);

	memset(v->save.buf, 0, v->save.size);
	memset(v->xsave.buf, 0, v->xsave.size);
	kvmfpu_vm_run_until(v, KVMFPU_STAGE_SAVED, test);
	/* The guest stored every register of its components (RDPKRU for PKRU). */
	ximage_set_xstate_bv(&v->save, v->guest_comps);
	snprintf(check, sizeof(check), "%s.guest_rdpkru", test);
	bad += swap_diff(&self->c, &exp, &v->save, v->guest_comps, check);
	snprintf(check, sizeof(check), "%s.guest_xsave", test);
	bad += swap_diff(&self->c, &exp, &v->xsave, v->guest_comps, check);
	snprintf(check, sizeof(check), "%s.get_after_run", test);
	kvmfpu_vm_get_image(v, &now);
	bad += swap_diff(&self->c, &exp, &now, v->allowed, check);
	ximage_free(&now);
	ximage_free(&exp);
	return bad;
}

/* The guest may have PKRU and saves with XSAVE: else why not, for a skip. */
static bool pkru_guest(FIXTURE_DATA(uabi) *self, char *why, size_t len)
{
	if (!(self->v.guest_comps & XS_BIT(XS_PKRU))) {
		snprintf(why, len, "guest without PKRU (XCR0 0x%llx; KVM_GET_SUPPORTED_CPUID.0xD.0 "
			 "= 0x%llx): PKU (CPUID.7.0:ECX[3]) and PKRU are in the max variant where "
			 "KVM has them", (unsigned long long)self->v.guest_xcr0,
			 (unsigned long long)self->v.kvm_xcr0);
		return false;
	}
	if (!self->v.xsave.buf) {
		snprintf(why, len, "guest without XSAVE");
		return false;
	}
	return true;
}

KVMFPU_TEST_F(uabi, pkru_kept)
{
	unsigned int step, bad = 0;
	char why[256];

	if (!pkru_guest(self, why, sizeof(why)))
		SKIP(return, "%s", why);
	/* Area values that differ from the loaded pattern (which keeps key 0 accessible). */
	for (step = 0; step < 3; step++) {
		struct pattern_key k = { .seed = opt_seed, .round = step, .salt = 50 };
		uint32_t loaded;

		pattern_fill_image(&self->v.fill, self->v.guest_comps, &k);
		memcpy(&loaded, ximage_comp(&self->v.fill, XS_PKRU), sizeof(loaded));
		bad += pkru_step(self, "pkru_kept", step, false,
				 step == 0 ? ~loaded : step == 1 ? 0 : 0xffffffff);
	}
	if (bad) {
		print_replay(variant, "pkru_kept");
		kvmfpu_fail("pkru_kept: %u register(s) differ: KVM_SET_XSAVE without "
			    "XSTATE_BV[PKRU] changed the vCPU's PKRU", bad);
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_TEST_F(uabi, pkru_set)
{
	struct pattern_key k = { .seed = opt_seed, .salt = 51 };
	/*
	 * 0 (init value, the bit may read back clear), all-ones, the host task's default
	 * PKRU (init_pkru_value: KVM then skips WRPKRU on entry and exit) and a pattern.
	 */
	const uint32_t values[] = {
		0, 0xffffffff, 0x55555554, (uint32_t)pattern_u64(&k, XS_PKRU, 0, 0),
	};
	unsigned int i, bad = 0;
	char why[256];

	if (!pkru_guest(self, why, sizeof(why)))
		SKIP(return, "%s", why);
	for (i = 0; i < ARRAY_SIZE(values); i++)
		bad += pkru_step(self, "pkru_set", i, true, values[i]);
	if (bad) {
		print_replay(variant, "pkru_set");
		kvmfpu_fail("pkru_set: %u register(s) differ: KVM_SET_XSAVE with XSTATE_BV[PKRU] "
			    "did not give the guest the image's PKRU", bad);
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

/* XSTATE_BV of KVM's image within what the guest may have (PKRU not among it). */
static unsigned int pkru_hidden_check(FIXTURE_DATA(uabi) *self, const char *check)
{
	struct ximage img;
	unsigned int bad;

	kvmfpu_vm_get_image(&self->v, &img);
	bad = ximage_check_header(&img, self->v.allowed, 0, check, ximage_report_ktap, NULL);
	ximage_free(&img);
	return bad;
}

KVMFPU_TEST_F(uabi, pkru_hidden)
{
	struct pattern_key k = { .seed = opt_seed, .salt = 52 };
	unsigned int bad;
	int r;

	if (self->v.allowed & XS_BIT(XS_PKRU))
		SKIP(return, "the guest has PKU: pkru_kept and pkru_set test it");
	if (!(self->uabi & XS_BIT(XS_PKRU)))
		SKIP(return, "KVM lacks PKRU (KVM_GET_SUPPORTED_CPUID.0xD.0 = 0x%llx, PKU "
		     "CPUID.7.0:ECX[3]): no PKRU to keep from a non-PKU guest",
		     (unsigned long long)self->v.kvm_xcr0);
	if (!self->v.cpuid_kept)
		SKIP(return, "the guest's share is the guest CPUID: %s", self->v.cpuid_lost);

	bad = pkru_hidden_check(self, "pkru_hidden.fresh");
	build_image(self, &self->c.set_image, self->uabi, &k);
	r = kvmfpu_vm_set_image(&self->v, &self->c.set_image);
	if (r) {
		printf("# pkru_hidden: KVM_SET_XSAVE of every supported feature (XSTATE_BV 0x%llx, "
		       "PKRU 0x%08x) failed: %s\n", (unsigned long long)self->uabi,
		       *(uint32_t *)ximage_comp(&self->c.set_image, XS_PKRU), strerror(-r));
		bad++;
	}
	bad += pkru_hidden_check(self, "pkru_hidden.after_set");
	k.salt = 53;
	bad += swap_round(&self->c, &k, CHECK_GUEST_IMAGE | CHECK_XSTATE_BV);
	bad += pkru_hidden_check(self, "pkru_hidden.after_run");
	if (bad) {
		print_replay(variant, "pkru_hidden");
		kvmfpu_fail("pkru_hidden: %u difference(s): a guest without PKU got PKRU in "
			    "KVM's image, or lost state", bad);
	}
	kvmfpu_print_exercised(self->v.guest_comps);
}

KVMFPU_MAIN(opts, NULL)
