// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_swap_bench: what the swap checking costs next to a bare KVM_RUN round trip.
 *
 * A verified swap cycle is the guest loading its registers, the exit, KVM_GET_XSAVE2 and its
 * comparison, the host's own registers loaded and checked around both KVM_RUNs, the re-entry,
 * and the guest's stored registers compared. A bare round trip is KVM_RUN into a guest that
 * exits at once. Both run on one vCPU of the richest configuration this KVM supports.
 *
 * Each repeat measures the three rates in turn for S seconds each; every figure is reported
 * as minimum, median and maximum over the repeats, the ratios computed per repeat. After the
 * repeats, one more unchecked and one more verified pass of S seconds each time every phase of
 * every cycle (swap_ctx.phases) and print "# bench-phase:" lines, each phase's median over the
 * cycles: where the checking time goes. A median per phase is little moved by the process
 * losing its CPU now and then (a lab's emulator shares its host), unlike the rates above; the
 * clock reads slow that pass down, so it is not one of them.
 *
 * usage: kvmfpu_swap_bench [--seconds S] [--repeats N] [--json FILE]
 * Exit: 0 measured (also when over target: a benchmark, not a verdict), 1 a swap check failed
 * while measuring, 2 bad arguments, an unwritable --json, or no usable /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvmfpu_vm.h"
#include "pattern.h"
#include "report.h"
#include "swap_round.h"

#include "spread.h"

/* What the checks may add to a swap cycle, in bare round trips (README, Benchmark). */
#define CHECK_COST_TARGET	2.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pick_config(struct kvmfpu_vm_config *cfg)
{
	char why[512];

	memset(cfg, 0, sizeof(*cfg));
	cfg->xcr0 = kvmfpu_vm_supported_xcr0() & KVMFPU_VM_GUEST_COMPS;
	cfg->xcr0_by_host = true;
	if (!kvmfpu_vm_config_supported(cfg, why, sizeof(why))) {
		cfg->xcr0 = XS_MASK_FPSSE;
		cfg->xsave_hidden = true;
	}
}

/* Bare KVM_RUN round trips per second. */
static double bench_bare(const struct kvmfpu_vm_config *cfg, double seconds)
{
	struct kvmfpu_vm_config bare = *cfg;
	struct kvmfpu_vm v;
	unsigned long n = 0;
	double t0, t;

	bare.guest = KVMFPU_VM_GUEST_BARE;
	kvmfpu_vm_create(&v, &bare);
	t0 = now();
	do {
		for (int i = 0; i < 1000; i++)
			if (kvmfpu_vm_run(&v) != KVMFPU_STAGE_BARE)
				kvmfpu_error("bare guest reported an unexpected stage");
		n += 1000;
		t = now();
	} while (t - t0 < seconds);
	kvmfpu_vm_destroy(&v);
	return n / (t - t0);
}

/*
 * Swap cycles per second with @checks; every cycle's checks must pass. With no checks the
 * cycle is the guest's fill and save and the two exits alone. With @phases, the time of each
 * phase of all the cycles is added up there, and the number of cycles returned in @cycles.
 */
static double bench_swap(const struct kvmfpu_vm_config *cfg, double seconds, unsigned int checks,
			 uint64_t *host_mask)
{
	struct pattern_key k = { .seed = 1 };
	struct swap_ctx c;
	struct kvmfpu_vm v;
	unsigned long n = 0;
	double t0, t;

	kvmfpu_vm_create(&v, cfg);
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
	kvmfpu_vm_destroy(&v);
	return n / (t - t0);
}

#define PHASE_CYCLES_MAX	20000

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * One pass of swap cycles with @checks, every phase of every cycle timed: a "# bench-phase:"
 * line per phase that ran, with its median ns per cycle, and their sum. Returns the sum.
 */
static uint64_t bench_phases(const struct kvmfpu_vm_config *cfg, double seconds,
			     unsigned int checks, const char *name)
{
	uint64_t *ns = calloc((size_t)SWAP_PHASE_NR * PHASE_CYCLES_MAX, sizeof(*ns));
	struct pattern_key k = { .seed = 1 };
	uint64_t med, total = 0;
	struct swap_phases ph;
	struct swap_ctx c;
	struct kvmfpu_vm v;
	unsigned int n = 0, p;
	double t0;

	if (!ns)
		kvmfpu_error("cannot allocate the phase times");
	kvmfpu_vm_create(&v, cfg);
	if (swap_ctx_init(&c, &v))
		kvmfpu_error("cannot allocate the host register images");
	c.quiet = true;
	c.phases = &ph;
	t0 = now();
	do {
		memset(&ph, 0, sizeof(ph));
		if (swap_round(&c, &k, checks))
			kvmfpu_fail("round %u: registers differ; run kvmfpu_swap_test --round %u",
				    k.round, k.round);
		k.round++;
		for (p = 0; p < SWAP_PHASE_NR; p++)
			ns[p * PHASE_CYCLES_MAX + n] = ph.ns[p];
	} while (++n < PHASE_CYCLES_MAX && now() - t0 < seconds);
	swap_ctx_free(&c);
	kvmfpu_vm_destroy(&v);

	for (p = 0; p < SWAP_PHASE_NR; p++) {
		uint64_t *s = ns + p * PHASE_CYCLES_MAX;

		qsort(s, n, sizeof(*s), cmp_u64);
		if (!s[n - 1])
			continue;	/* not a phase of this cycle */
		med = s[n / 2];
		total += med;
		printf("# bench-phase: cycle=%s name=%s ns_per_cycle=%llu\n", name,
		       swap_phase_names[p], (unsigned long long)med);
	}
	printf("# bench-phase: cycle=%s name=total ns_per_cycle=%llu cycles=%u\n", name,
	       (unsigned long long)total, n);
	free(ns);
	return total;
}

/* --json FILE is written to FILE.XXXXXX next to it first, then renamed over it. */
static char json_tmp[4096];

static void remove_json_tmp(void)
{
	if (json_tmp[0])
		unlink(json_tmp);
}

/*
 * Before any measuring: --json's directory must take a new file, and FILE must not be a
 * directory, so that a long run never ends in "cannot write".
 */
static FILE *open_json(const char *path)
{
	struct stat st;
	mode_t mask;
	FILE *f;
	int fd;

	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		kvmfpu_usage_error("--json %s: is a directory", path);
	if (snprintf(json_tmp, sizeof(json_tmp), "%s.XXXXXX", path) >= (int)sizeof(json_tmp))
		kvmfpu_usage_error("--json %s: path too long", path);
	fd = mkstemp(json_tmp);
	if (fd < 0) {
		json_tmp[0] = '\0';
		kvmfpu_usage_error("--json %s: cannot create a file there: %s", path,
				   strerror(errno));
	}
	atexit(remove_json_tmp);
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);	/* as fopen() would have made it, not mkstemp()'s 0600 */
	f = fdopen(fd, "w");
	if (!f)
		kvmfpu_usage_error("--json %s: %s", path, strerror(errno));
	return f;
}

/* No /dev/kvm is nothing to measure, and a benchmark that measured nothing must not pass. */
static void require_kvm_to_measure(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		kvmfpu_usage_error("cannot measure: /dev/kvm does not exist (no KVM on this machine)");
	if (fd < 0)
		kvmfpu_usage_error("cannot measure: /dev/kvm: %s", strerror(errno));
	close(fd);
	kvmfpu_require_usable_kvm();
}

static void print_spread(const char *name, const double *v, unsigned int n, int decimals,
			 const char *meaning)
{
	char line[256];

	spread_line(line, sizeof(line), name, spread_of(v, n, 0), decimals);
	printf("%s\n", line);
	if (meaning)
		printf("    %s\n", meaning);
}

int main(int argc, char **argv)
{
	unsigned int all = CHECK_GUEST_IMAGE | CHECK_XSTATE_BV | CHECK_HOST_REGS |
			   CHECK_GUEST_REENTRY;
	double bare[SPREAD_MAX_REPEATS], plain[SPREAD_MAX_REPEATS], swap[SPREAD_MAX_REPEATS];
	double ratio[SPREAD_MAX_REPEATS], cost[SPREAD_MAX_REPEATS], cost_us[SPREAD_MAX_REPEATS];
	struct spread sb, sp, ss, sr, sc;
	unsigned int repeats = 5;
	double seconds = 1;
	const char *json = NULL;
	struct kvmfpu_vm_config cfg;
	char guest[128], host[128], line[256], jb[5][128];
	uint64_t host_mask, phase_plain, phase_swap;
	FILE *f = NULL;
	char *end;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end || !(seconds > 0 && seconds <= 3600))
				kvmfpu_usage_error("--seconds %s: not in (0, 3600]", argv[i]);
		} else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) {
			repeats = strtoul(argv[++i], &end, 10);
			if (*end || repeats < 1 || repeats > SPREAD_MAX_REPEATS)
				kvmfpu_usage_error("--repeats %s: not a whole number in [1, %d]",
						   argv[i], SPREAD_MAX_REPEATS);
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else {
			kvmfpu_usage_error("usage: %s [--seconds S] [--repeats N] [--json FILE]",
					   argv[0]);
		}
	}
	if (json)
		f = open_json(json);
	require_kvm_to_measure();

	pick_config(&cfg);
	for (unsigned int r = 0; r < repeats; r++) {
		bare[r] = bench_bare(&cfg, seconds);
		plain[r] = bench_swap(&cfg, seconds, 0, &host_mask);
		swap[r] = bench_swap(&cfg, seconds, all, &host_mask);
		ratio[r] = bare[r] / swap[r];
		/* What the checks add to a cycle, in bare round trips, and in microseconds. */
		cost[r] = bare[r] / swap[r] - bare[r] / plain[r];
		cost_us[r] = 1e6 / swap[r] - 1e6 / plain[r];
	}
	sb = spread_of(bare, repeats, 0);
	sp = spread_of(plain, repeats, 0);
	ss = spread_of(swap, repeats, 0);
	sr = spread_of(ratio, repeats, 0);
	sc = spread_of(cost, repeats, CHECK_COST_TARGET);

	xs_mask_str(cfg.xcr0, guest, sizeof(guest));
	xs_mask_str(host_mask, host, sizeof(host));
	printf("guest components:           %s%s\n", guest,
	       cfg.xsave_hidden ? " (XSAVE hidden: this KVM has none)" : "");
	printf("host registers checked:     %s\n", host);
	printf("%u repeats of %g s per figure; spread over the repeats:\n", repeats, seconds);
	print_spread("bare KVM_RUN round trips/s", bare, repeats, 0,
		     "KVM_RUN into a guest that exits at once, and back");
	print_spread("unchecked swap cycles/s", plain, repeats, 0,
		     "guest fills its registers, 2 KVM_RUNs, guest stores them; nothing compared");
	print_spread("verified swap cycles/s", swap, repeats, 0,
		     "the same, every check on: guest image, XSTATE_BV, host registers, re-entry");
	print_spread("verified cycle / round trip", ratio, repeats, 2,
		     "one verified swap cycle takes as long as this many bare round trips");
	print_spread("checking cost per cycle", cost, repeats, 2, NULL);
	printf("    what the checks alone add to a cycle, in bare round trips (target: <= %.0f)\n",
	       CHECK_COST_TARGET);
	print_spread("checking time per cycle/us", cost_us, repeats, 1,
		     "the same in microseconds: verified minus unchecked cycle time");
	spread_flag(line, sizeof(line), "checking cost per cycle", sc, CHECK_COST_TARGET);
	if (line[0])
		printf("%s\n", line);
	fflush(stdout);
	phase_plain = bench_phases(&cfg, seconds, 0, "unchecked");
	phase_swap = bench_phases(&cfg, seconds, all, "verified");
	/* The sum of the verified cycle's medians minus the unchecked one's. */
	printf("# bench-phase: checking ns_per_cycle=%lld\n",
	       (long long)(phase_swap - phase_plain));

	if (f) {
		spread_json(jb[0], sizeof(jb[0]), sb);
		spread_json(jb[1], sizeof(jb[1]), sp);
		spread_json(jb[2], sizeof(jb[2]), ss);
		spread_json(jb[3], sizeof(jb[3]), sr);
		spread_json(jb[4], sizeof(jb[4]), sc);
		fprintf(f, "{\"guest_components\": \"%s\", \"host_components\": \"%s\", "
			"\"repeats\": %u, \"seconds_per_figure\": %g, "
			"\"bare_round_trips_per_s\": %s, \"unchecked_swap_cycles_per_s\": %s, "
			"\"verified_swap_cycles_per_s\": %s, \"cycle_over_round_trip\": %s, "
			"\"check_cost_in_round_trips\": %s, \"check_cost_target\": %.1f, "
			"\"check_cost_over_target\": %s}\n",
			guest, host, repeats, seconds, jb[0], jb[1], jb[2], jb[3], jb[4],
			CHECK_COST_TARGET, sc.median > CHECK_COST_TARGET ? "true" : "false");
		if (fclose(f) || rename(json_tmp, json))
			kvmfpu_usage_error("--json %s: %s", json, strerror(errno));
		json_tmp[0] = '\0';
	}
	return 0;
}
