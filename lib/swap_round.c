// SPDX-License-Identifier: GPL-2.0
/*
 * The swap round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_regs.h"
#include "report.h"
#include "swap_round.h"

const char *const swap_phase_names[SWAP_PHASE_NR] = {
	[SWAP_PHASE_GUEST_PATTERN] = "guest_pattern",
	[SWAP_PHASE_HOST_PATTERN] = "host_pattern",
	[SWAP_PHASE_RUN] = "kvm_run",
	[SWAP_PHASE_HOST_COMPARE] = "host_compare",
	[SWAP_PHASE_GET_XSAVE] = "get_xsave2",
	[SWAP_PHASE_GUEST_IMAGE] = "guest_image_compare",
	[SWAP_PHASE_HEADER] = "header_check",
	[SWAP_PHASE_SET_XSAVE] = "set_xsave",
	[SWAP_PHASE_MIGRATE] = "migrate",
	[SWAP_PHASE_CLEAR_SAVE] = "clear_save",
	[SWAP_PHASE_REENTRY] = "reentry_compare",
	[SWAP_PHASE_GUEST_VIEW] = "guest_view",
};

static uint64_t phase_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Phase @p has just ended: its time since the previous end (benchmark only). */
static void phase_end(struct swap_ctx *c, enum swap_phase p)
{
	uint64_t t;

	if (!c->phases)
		return;
	t = phase_clock();
	c->phases->ns[p] += t - c->phases->last;
	c->phases->last = t;
}

unsigned int swap_diff(struct swap_ctx *c, const struct ximage *expected,
		       const struct ximage *actual, uint64_t mask, const char *check)
{
	return ximage_report_diff(expected, actual, mask, check, c->max_print, c->quiet);
}

/*
 * XSTATE_BV covers what the guest loaded and stays within what its CPUID allows. Where KVM did
 * not keep that CPUID the guest's share cannot be judged: the bound is then only what KVM
 * supports at all, and the caller says the guest's bound went unchecked.
 */
static unsigned int check_header(struct swap_ctx *c, const struct ximage *img, uint64_t required,
				 const char *check)
{
	struct ximage_reporter d = { .img = img, .max_print = c->max_print, .quiet = c->quiet, };
	uint64_t bound = c->v->cpuid_kept ? c->v->allowed : kvmfpu_vm_uabi_xcr0() | XS_MASK_FPSSE;

	return ximage_check_header(img, bound, required, check, ximage_report, &d);
}

/*
 * What the guest sees of itself after re-entry: XGETBV(0) must be the XCR0 it was given (a
 * missed XCR0 switch on entry shows here), and its own XSAVE must hold the expected registers
 * with a standard-format header.
 */
static unsigned int check_guest_xsave(struct swap_ctx *c, const struct ximage *expected,
				      const char *check)
{
	struct kvmfpu_vm *v = c->v;
	uint64_t want = v->cfg.xcr0, seen = v->args->xcr0_seen, xcomp;
	struct ximage_reporter d = {
		.img = &v->xsave, .max_print = c->max_print, .quiet = c->quiet,
	};
	unsigned int bad = 0;

	if (seen != want) {
		if (!c->quiet)
			printf("# %s: guest XCR0 after re-entry is 0x%llx (XGETBV(0)), expected 0x%llx, "
			       "the XCR0 the guest was given\n", check, (unsigned long long)seen,
			       (unsigned long long)want);
		bad++;
	}
	bad += ximage_check_header(&v->xsave, v->cfg.xcr0, v->guest_comps, check, ximage_report,
				   &d);
	/* XSAVEC writes XCOMP_BV = 1 << 63 | RFBM, RFBM = EDX:EAX & XCR0 (SDM Vol. 1, 13.10). */
	xcomp = XS_XCOMP_BV_COMPACTED | (v->guest_comps & seen);
	if (v->xsave.compacted && ximage_xcomp_bv(&v->xsave) != xcomp) {
		if (!c->quiet)
			printf("# %s: guest XSAVEC wrote XCOMP_BV 0x%llx, expected 0x%llx (bit 63 "
			       "and RFBM 0x%llx & XCR0 0x%llx)\n", check,
			       (unsigned long long)ximage_xcomp_bv(&v->xsave),
			       (unsigned long long)xcomp, (unsigned long long)v->guest_comps,
			       (unsigned long long)seen);
		bad++;
	}
	bad += swap_diff(c, expected, &v->xsave, v->guest_comps, check);
	return bad;
}

/*
 * The guest's state moves into a new VM between its fill and its save: kvmfpu_vm_migrate()
 * (same CPUID) or kvmfpu_vm_migrate_fewer() (a CPUID of x87 and SSE only). Before re-entry
 * the new vCPU must hold what the guest loaded: KVM_GET_XCRS the XCR0 it runs with (the
 * source's, or x87|SSE), KVM_GET_XSAVE2 the pattern for every component the new guest has,
 * with XSTATE_BV covering them and nothing its CPUID forbids (the source's image carried
 * more: KVM must not report it). Returns the number of failed checks.
 */
static unsigned int migrate_checked(struct swap_ctx *c, unsigned int checks, const char *check)
{
	struct kvmfpu_vm *v = c->v;
	uint64_t want = v->cfg.xsave_hidden ? XS_BIT(XS_X87) : v->cfg.xcr0, xcr0 = 0;
	unsigned int bad = 0;
	struct ximage img;
	char why[512];
	int r;

	if (checks & CHECK_MIGRATE_FEWER) {
		if (kvmfpu_vm_migrate_fewer(v, XS_MASK_FPSSE, why, sizeof(why))) {
			if (!c->quiet)
				printf("# %s: %s\n", check, why);
			return 1;
		}
		want = XS_MASK_FPSSE;
	} else {
		kvmfpu_vm_migrate(v);
	}

	r = kvmfpu_vm_get_xcr0(v, &xcr0);
	if (r || xcr0 != want) {
		if (!c->quiet)
			printf("# %s: XCR0 of the new vCPU is 0x%llx (KVM_GET_XCRS: %s), expected "
			       "0x%llx\n", check, (unsigned long long)xcr0, r ? strerror(-r) : "ok",
			       (unsigned long long)want);
		bad++;
	}
	kvmfpu_vm_get_image(v, &img);
	bad += swap_diff(c, &v->fill, &img, v->guest_comps, check);
	bad += check_header(c, &img, v->guest_comps, check);
	ximage_free(&img);
	return bad;
}

/*
 * The guest saved its registers with XSAVE (XSAVEOPT, XSAVEC) and exited at once, without a
 * FPU instruction in between: KVM's image of the guest, KVM_GET_XSAVE2 now, is an image of the
 * same registers. Each is compared with the other register by register, as the state it
 * means, so a KVM bug that shows in only one view (a wrong image with the right registers,
 * or the reverse) still shows as a difference here.
 */
static unsigned int check_guest_view(struct swap_ctx *c)
{
	struct kvmfpu_vm *v = c->v;
	struct ximage img;
	unsigned int bad;

	kvmfpu_vm_get_image(v, &img);
	bad = swap_diff(c, &v->xsave, &img, v->guest_comps, "guest_view");
	ximage_free(&img);
	return bad;
}

int swap_ctx_init(struct swap_ctx *c, struct kvmfpu_vm *v)
{
	memset(c, 0, sizeof(*c));
	c->v = v;
	c->max_print = 32;
	xs_layout_host(&c->host_layout);
	c->host_mask = host_check_mask();
	if (c->host_mask &&
	    (ximage_alloc(&c->host_fill, &c->host_layout, c->host_mask, false) ||
	     ximage_alloc(&c->host_out, &c->host_layout, c->host_mask, false)))
		return -1;
	c->get_image.buf = ximage_zalloc(v->uabi_size);
	c->set_image.buf = ximage_zalloc(v->uabi_size);
	if (!c->get_image.buf || !c->set_image.buf)
		return -1;
	ximage_wrap(&c->get_image, c->get_image.buf, v->uabi_size, &v->layout, false);
	ximage_wrap(&c->set_image, c->set_image.buf, v->uabi_size, &v->layout, false);
	return 0;
}

void swap_ctx_free(struct swap_ctx *c)
{
	ximage_free(&c->host_fill);
	ximage_free(&c->host_out);
	ximage_free(&c->get_image);
	ximage_free(&c->set_image);
}

bool swap_ctx_setup(struct kvmfpu_vm *v, struct swap_ctx *c, const struct kvmfpu_vm_config *cfg,
		    char *why, size_t len)
{
	if (!kvmfpu_vm_config_supported(cfg, why, len))
		return false;
	kvmfpu_vm_create(v, cfg);
	if (swap_ctx_init(c, v))
		kvmfpu_error("cannot allocate the host register and KVM_SET_XSAVE images");
	kvmfpu_vm_print_env(v);
	return true;
}

void swap_ctx_teardown(struct kvmfpu_vm *v, struct swap_ctx *c)
{
	swap_ctx_free(c);
	kvmfpu_vm_destroy(v);
}

/* KVM_RUN, with the host's registers loaded from a fresh pattern and checked when asked. */
static enum kvmfpu_stage run_checked(struct swap_ctx *c, const struct pattern_key *k,
				     unsigned int salt, bool check_host, unsigned int *bad)
{
	struct pattern_key hk = { k->seed, PATTERN_HOST, k->round, salt };
	enum kvmfpu_stage stage;

	if (!check_host || !c->host_mask) {
		stage = kvmfpu_vm_run(c->v);
		phase_end(c, SWAP_PHASE_RUN);
		return stage;
	}

	pattern_fill_image(&c->host_fill, c->host_mask, &hk);
	memset(c->host_out.buf, 0, c->host_out.size);
	phase_end(c, SWAP_PHASE_HOST_PATTERN);
	stage = kvmfpu_vm_run_host_regs(c->v, &c->host_fill, &c->host_out, c->host_mask);
	phase_end(c, SWAP_PHASE_RUN);
	*bad += swap_diff(c, &c->host_fill, &c->host_out, c->host_mask, "host_regs");
	phase_end(c, SWAP_PHASE_HOST_COMPARE);
	return stage;
}

static void expect_stage(struct swap_ctx *c, enum kvmfpu_stage got, enum kvmfpu_stage want)
{
	if (got != want)
		kvmfpu_fail("guest reported stage %u, expected %u after %u exits", got, want,
			    c->v->exits);
}

unsigned int swap_round(struct swap_ctx *c, const struct pattern_key *k, unsigned int checks)
{
	struct kvmfpu_vm *v = c->v;
	struct pattern_key gk = *k, sk = *k;
	const struct ximage *expect_after = &v->fill;
	struct ximage *img = &c->get_image;
	const char *name = checks & CHECK_SET_XSAVE ? "set_xsave" :
			   checks & CHECK_MIGRATE_FEWER ? "migrate_fewer" :
			   checks & CHECK_MIGRATE ? "migrate" : "guest_reentry";
	unsigned int bad = 0;
	int r;

	if (c->phases)
		c->phases->last = phase_clock();
	pattern_fill_image(&v->fill, v->guest_comps, &gk);
	phase_end(c, SWAP_PHASE_GUEST_PATTERN);
	expect_stage(c, run_checked(c, k, 1, checks & CHECK_HOST_REGS, &bad), KVMFPU_STAGE_FILLED);

	if (checks & (CHECK_GUEST_IMAGE | CHECK_XSTATE_BV | CHECK_SET_XSAVE)) {
		/* Cleared as a new image would be: what KVM does not write reads as zero. */
		memset(img->buf, 0, img->size);
		kvmfpu_vm_read_image(v, img);
		phase_end(c, SWAP_PHASE_GET_XSAVE);
	}
	if (checks & CHECK_GUEST_IMAGE) {
		bad += swap_diff(c, &v->fill, img, v->guest_comps, "guest_image");
		phase_end(c, SWAP_PHASE_GUEST_IMAGE);
	}
	if (checks & CHECK_XSTATE_BV) {
		bad += check_header(c, img, v->guest_comps, "xstate_bv");
		phase_end(c, SWAP_PHASE_HEADER);
	}

	if (checks & CHECK_SET_XSAVE) {
		/* Start from KVM's own image so only the registers' values change. */
		memcpy(c->set_image.buf, img->buf, v->uabi_size);
		sk.salt = 2;
		pattern_fill_image(&c->set_image, v->guest_comps, &sk);
		r = kvmfpu_vm_set_image(v, &c->set_image);
		if (r)
			kvmfpu_fail("KVM_SET_XSAVE of KVM's own image with new register values "
				    "failed: %s", strerror(-r));
		expect_after = &c->set_image;
		phase_end(c, SWAP_PHASE_SET_XSAVE);
	}

	if (checks & (CHECK_MIGRATE | CHECK_MIGRATE_FEWER)) {
		bad += migrate_checked(c, checks, name);
		phase_end(c, SWAP_PHASE_MIGRATE);
	}

	memset(v->save.buf, 0, v->save.size);
	if (v->xsave.buf)
		memset(v->xsave.buf, 0, v->xsave.size);
	phase_end(c, SWAP_PHASE_CLEAR_SAVE);
	expect_stage(c, run_checked(c, k, 3, checks & CHECK_HOST_REGS, &bad), KVMFPU_STAGE_SAVED);

	if (checks & (CHECK_GUEST_REENTRY | CHECK_SET_XSAVE | CHECK_MIGRATE |
		      CHECK_MIGRATE_FEWER)) {
		/* The guest stored every register of its components: all of them are in use. */
		ximage_set_xstate_bv(&v->save, v->guest_comps);
		bad += swap_diff(c, expect_after, &v->save, v->guest_comps, name);
		if (v->xsave.buf)
			bad += check_guest_xsave(c, expect_after, name);
		phase_end(c, SWAP_PHASE_REENTRY);
	}
	if ((checks & CHECK_GUEST_VIEW) && v->xsave.buf) {
		bad += check_guest_view(c);
		phase_end(c, SWAP_PHASE_GUEST_VIEW);
	}
	return bad;
}
