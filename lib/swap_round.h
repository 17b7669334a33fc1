/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One round of the swap check: the guest loads a pattern into its registers and exits; the
 * host checks KVM's image of the guest (KVM_GET_XSAVE2) and its own registers; optionally
 * replaces the guest's state with KVM_SET_XSAVE or moves it into a new VM (migration);
 * re-enters; and checks what the guest then
 * stored from its registers. Each check is a full image comparison explained register by
 * register, in both directions: guest state must not leak into the host, nor host state into
 * the guest.
 */
#ifndef KVMFPU_SWAP_ROUND_H
#define KVMFPU_SWAP_ROUND_H

#include "kvmfpu_vm.h"
#include "pattern.h"

enum swap_check {
	CHECK_GUEST_IMAGE	= 1 << 0,	/* KVM_GET_XSAVE2 == what the guest loaded */
	CHECK_XSTATE_BV		= 1 << 1,	/* loaded <= XSTATE_BV <= allowed (if cpuid_kept) */
	CHECK_HOST_REGS		= 1 << 2,	/* host registers intact across KVM_RUN */
	CHECK_GUEST_REENTRY	= 1 << 3,	/* guest registers intact across the exit */
	CHECK_SET_XSAVE		= 1 << 4,	/* guest sees what KVM_SET_XSAVE wrote */
	CHECK_MIGRATE		= 1 << 5,	/* state moved to a new VM, same CPUID */
	CHECK_MIGRATE_FEWER	= 1 << 6,	/* ...to a vCPU whose CPUID has x87, SSE only */
	CHECK_GUEST_VIEW	= 1 << 7,	/* guest's own XSAVE == KVM_GET_XSAVE2 after it */
};

/*
 * Where a swap round's time goes, for the benchmark only (kvmfpu_swap_bench's phase pass): with
 * swap_ctx.phases set, swap_round() adds the time since the previous phase ended to ns[] of
 * the phase that just ended. Unset (every test program), it costs a NULL test per phase.
 */
enum swap_phase {
	SWAP_PHASE_GUEST_PATTERN,	/* pattern_fill_image() of what the guest loads */
	SWAP_PHASE_HOST_PATTERN,	/* the host's register pattern, its output image cleared */
	SWAP_PHASE_RUN,			/* KVM_RUN, inside the host's XRSTOR/XSAVE if checked */
	SWAP_PHASE_HOST_COMPARE,	/* host registers after KVM_RUN vs. before */
	SWAP_PHASE_GET_XSAVE,		/* KVM_GET_XSAVE2 into a new image */
	SWAP_PHASE_GUEST_IMAGE,		/* its comparison with what the guest loaded */
	SWAP_PHASE_HEADER,		/* its XSTATE_BV, XCOMP_BV, reserved bytes */
	SWAP_PHASE_SET_XSAVE,		/* a new pattern into KVM's image and KVM_SET_XSAVE */
	SWAP_PHASE_MIGRATE,		/* the state into a new VM and its checks */
	SWAP_PHASE_CLEAR_SAVE,		/* the guest's store areas cleared before re-entry */
	SWAP_PHASE_REENTRY,		/* what the guest stored (and its XSAVE) vs. expected */
	SWAP_PHASE_GUEST_VIEW,		/* the guest's XSAVE vs. KVM_GET_XSAVE2 */
	SWAP_PHASE_NR
};

struct swap_phases {
	uint64_t ns[SWAP_PHASE_NR];
	uint64_t last;			/* CLOCK_MONOTONIC ns when the previous phase ended */
};

extern const char *const swap_phase_names[SWAP_PHASE_NR];

struct swap_ctx {
	struct kvmfpu_vm *v;
	struct swap_phases *phases;	/* NULL but in the benchmark's phase pass */
	struct xs_layout host_layout;
	uint64_t host_mask;		/* host registers loaded and checked around KVM_RUN */
	struct ximage host_fill, host_out;
	struct ximage get_image;	/* KVM_GET_XSAVE2 after the guest's fill (uABI size) */
	struct ximage set_image;	/* what KVM_SET_XSAVE writes (KVM's uABI size) */
	bool quiet;			/* count mismatches without printing (bench) */
	unsigned int max_print;		/* mismatches printed per check */
};

int swap_ctx_init(struct swap_ctx *c, struct kvmfpu_vm *v);
void swap_ctx_free(struct swap_ctx *c);

/*
 * The setup of a fixture that runs swap rounds: @cfg usable here (else false, with the reason
 * for a skip: kvmfpu_vm_config_supported()), a new VM for it, its round context, the env
 * line. swap_ctx_teardown() undoes it, also after a setup that skipped (zeroed objects).
 */
bool swap_ctx_setup(struct kvmfpu_vm *v, struct swap_ctx *c, const struct kvmfpu_vm_config *cfg,
		    char *why, size_t len);
void swap_ctx_teardown(struct kvmfpu_vm *v, struct swap_ctx *c);

/* Run one round with the checks in @checks; returns the number of differing registers. */
unsigned int swap_round(struct swap_ctx *c, const struct pattern_key *k, unsigned int checks);

/* Compare and report (or just count, when quiet) under the name @check. */
unsigned int swap_diff(struct swap_ctx *c, const struct ximage *expected,
		       const struct ximage *actual, uint64_t mask, const char *check);

#endif /* KVMFPU_SWAP_ROUND_H */
