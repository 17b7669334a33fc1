// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_swap_bench: what the swap checking costs next to a bare KVM_RUN round trip.
 *
 * A verified swap cycle is the guest loading its registers, the exit, KVM_GET_XSAVE2 and its
 * comparison, the host's own registers loaded and checked around both KVM_RUNs, the re-entry,
 * and the guest's stored registers compared. A bare round trip is KVM_RUN into a guest that
 * exits at once. Both run on one vCPU of the richest configuration this KVM supports.
 *
 * usage: kvmfpu_swap_bench [--seconds S] [--json FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "fpu_vm.h"
#include "pattern.h"
#include "report.h"
#include "swap_round.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pick_config(struct fpu_config *cfg)
{
	char why[512];

	memset(cfg, 0, sizeof(*cfg));
	cfg->xcr0 = kvm_supported_xcr0() & FPU_GUEST_COMPS;
	cfg->xcr0_by_host = true;
	if (!fpu_config_supported(cfg, why, sizeof(why))) {
		cfg->xcr0 = XS_MASK_FPSSE;
		cfg->xsave_hidden = true;
	}
}

/* Bare KVM_RUN round trips per second. */
static double bench_bare(const struct fpu_config *cfg, double seconds)
{
	struct fpu_vm v;
	unsigned long n = 0;
	double t0, t;

	fpu_vm_create(&v, cfg, KVMFPU_GUEST_BARE);
	t0 = now();
	do {
		for (int i = 0; i < 1000; i++)
			if (fpu_vm_run(&v, NULL, NULL, 0) != KVMFPU_STAGE_BARE)
				kvmfpu_error("bare guest reported an unexpected stage");
		n += 1000;
		t = now();
	} while (t - t0 < seconds);
	fpu_vm_destroy(&v);
	return n / (t - t0);
}

/*
 * Swap cycles per second with @checks; every cycle's checks must pass. With no checks the
 * cycle is the guest's fill and save and the two exits alone.
 */
static double bench_swap(const struct fpu_config *cfg, double seconds, unsigned int checks,
			 uint64_t *host_mask)
{
	struct pattern_key k = { .seed = 1 };
	struct swap_ctx c;
	struct fpu_vm v;
	unsigned long n = 0;
	double t0, t;

	fpu_vm_create(&v, cfg, KVMFPU_GUEST_SWAP);
	if (swap_ctx_init(&c, &v))
		kvmfpu_error("cannot allocate the host register images");
	c.quiet = true;
	*host_mask = c.host_mask;
	t0 = now();
	do {
		for (int i = 0; i < 100; i++, k.round++)
			if (swap_round(&c, &k, checks))
				kvmfpu_fail("round %u: registers differ; run kvmfpu_swap_test --round %u",
					    k.round, k.round);
		n += 100;
		t = now();
	} while (t - t0 < seconds);
	swap_ctx_free(&c);
	fpu_vm_destroy(&v);
	return n / (t - t0);
}

int main(int argc, char **argv)
{
	unsigned int all = CHECK_GUEST_IMAGE | CHECK_XSTATE_BV | CHECK_HOST_REGS |
			   CHECK_GUEST_REENTRY;
	double seconds = 2, bare, swap, plain, ratio, check_cost;
	const char *json = NULL;
	struct fpu_config cfg;
	char guest[128], host[128];
	uint64_t host_mask;
	FILE *f;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else
			kvmfpu_usage_error("usage: %s [--seconds S] [--json FILE]", argv[0]);
	}
	if (seconds <= 0)
		kvmfpu_usage_error("--seconds must be positive");
	require_usable_kvm();

	pick_config(&cfg);
	bare = bench_bare(&cfg, seconds);
	plain = bench_swap(&cfg, seconds, 0, &host_mask);
	swap = bench_swap(&cfg, seconds, all, &host_mask);
	ratio = bare / swap;
	/* What the checks add to a cycle, in bare round trips. */
	check_cost = bare / swap - bare / plain;

	xs_mask_str(cfg.xcr0, guest, sizeof(guest));
	xs_mask_str(host_mask, host, sizeof(host));
	printf("guest components:           %s%s\n", guest,
	       cfg.xsave_hidden ? " (XSAVE hidden: this KVM has none)" : "");
	printf("host registers checked:     %s\n", host);
	printf("bare KVM_RUN round trips/s: %.0f\n", bare);
	printf("unchecked swap cycles/s:    %.0f (guest fill, 2 KVM_RUNs, guest save)\n", plain);
	printf("verified swap cycles/s:     %.0f (the same, every check on)\n", swap);
	printf("verified cycle / round trip: %.2f\n", ratio);
	printf("checking cost per cycle:    %.2f bare round trips (target: at most 2)\n",
	       check_cost);
	if (json) {
		f = fopen(json, "w");
		if (!f)
			kvmfpu_usage_error("cannot write %s", json);
		fprintf(f, "{\"guest_components\": \"%s\", \"host_components\": \"%s\", "
			"\"bare_round_trips_per_s\": %.1f, \"unchecked_swap_cycles_per_s\": %.1f, "
			"\"verified_swap_cycles_per_s\": %.1f, \"cycle_over_round_trip\": %.3f, "
			"\"check_cost_in_round_trips\": %.3f}\n",
			guest, host, bare, plain, swap, ratio, check_cost);
		fclose(f);
	}
	return 0;
}
