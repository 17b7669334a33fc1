// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_swap_stress_test: the swap checks of kvmfpu_swap_test, on several vCPU threads at
 * once, each pinned to one CPU together with a stimulus that has to disturb them.
 *
 * One test per stimulus, so that each passes, skips or fails on its own, and passes only when
 * its stimulus happened (counted and printed):
 *   vcpus       vCPU threads of separate VMs interleave on one CPU (context switches
 *               counted): fpu_swap_kvm_fpstate() and the lazy restore must never leave one
 *               vCPU's or the host's fpstate live for another;
 *   user_fpu    a thread that is not a vCPU checks its own registers across sched_yield()
 *               while the vCPU threads swap on that CPU;
 *   kernel_fpu  a thread makes the kernel run its SIMD SHA-256 through AF_ALG between our
 *               vCPUs' exits (KNOWLEDGE 2.13); needs AF_ALG and a SIMD driver for sha256
 *               (/proc/crypto), else SKIP;
 *   signals     signals hit the vCPU threads inside KVM_RUN (counted by KVM_RUN's EINTR),
 *               and the handler uses the FPU itself; the vCPU thread's own registers and the
 *               guest's must both survive (CVE-2025-68171 was the AMX form);
 *   kernel_warn all of them at once, with the kernel's own FPU assertions as the oracle
 *               (WARN_ON_FPU, xfd_validate_state(): CONFIG_X86_DEBUG_FPU) through the W taint
 *               flag; SKIP when the kernel lacks CONFIG_X86_DEBUG_FPU or cannot tell;
 *   hotplug     a thread offlines and onlines another CPU through sysfs (the offline
 *               migrates the vCPU threads off it), and between cycles the vCPU threads run
 *               on the CPU that came back: the per-CPU caches fpu_fpregs_owner_ctx and
 *               xfd_state must be right after CPU online (CVE-2024-35801); cycles and rounds
 *               on that CPU are counted, any WARN (taint W) fails. It changes the host, so
 *               it runs only with --allow-hotplug or in a lab (KVMFPU_LAB), else SKIP; SKIP
 *               too with one CPU, no CONFIG_HOTPLUG_CPU, or an offline refused (EPERM,
 *               EBUSY). The CPU is put back online however the test ends, a timeout or a
 *               killed main process too (lib/cpu_hotplug.h).
 *   migrate     a thread flips the vCPU threads' affinity between two CPUs while they run,
 *               so they move between rounds and inside KVM_RUN; more FPU-using threads than
 *               CPUs at different nice levels (non-vCPU threads as in user_fpu, one more than
 *               the CPUs); each vCPU thread also checks its own registers across
 *               sched_yield() between KVM_RUNs. A vCPU task moved inside KVM_RUN has the
 *               guest fpstate (then its own) saved by the context switch and restored on
 *               the new CPU (switch_fpu_return() in vcpu_enter_guest()), which
 *               fpregs_state_valid() must not skip (fpu_fpregs_owner_ctx, fpu->last_cpu).
 *               Passes only if some KVM_RUN returned on another CPU than it entered on
 *               (sched_getcpu() around the ioctl), else SKIP (e.g. one CPU);
 *   cpu_return  one vCPU thread alone (no other FPU user in the process) hops between two CPUs
 *               by sched_setaffinity() before every round, with a fresh pattern in its
 *               registers across each hop, then runs a verified round there. Returning to a
 *               CPU it left, its registers must be reloaded: that CPU still names it as the
 *               owner of what it holds (fpu_fpregs_owner_ctx), stale since the thread ran
 *               elsewhere, and only fpu->last_cpu tells (fpregs_state_valid()). The other
 *               stimuli keep other FPU users on both CPUs, which reset the owner and hide such
 *               a bug. Passes only if some hop returned to a CPU the thread had left, else
 *               SKIP (e.g. one CPU);
 *   irq_fpu     the kernel uses the FPU in hard interrupt context, from a timer on every CPU
 *               (selftests/test_modules/kvmfpu_irq_fpu.ko, which the labs load), while the
 *               vCPU threads and a non-vCPU thread run: kernel_fpu_begin() in the interrupt
 *               must save the interrupted registers, the guest's inside KVM_RUN, and KVM
 *               must reload them before the next entry (KNOWLEDGE 2.13). The module counts
 *               the interrupts that found a guest's registers live; passes only if some
 *               did, SKIP without the module;
 *   many_vms    each vCPU thread runs the vCPUs of several VMs in turn (the variant's own, and
 *               XCR0 x87|SSE, x87|SSE|AVX and the maximum the guest code drives, those this
 *               KVM supports), so that one task swaps between guest fpstates whose XCR0 and
 *               so XSTATE_BV/XCOMP_BV differ; every VM's guest checks its own pattern on each
 *               re-entry. With and without AMX permission is out of scope here (the AMX guest
 *               is kvmfpu_amx_test's). Passes only if every VM completed rounds.
 * Every vCPU thread checks each round fully (guest image, XSTATE_BV, host registers, re-entry,
 * KVM_SET_XSAVE on odd rounds). A failure names seed, VM, vCPU, round and CPU and prints a
 * replay line: --round R makes every vCPU thread (every VM of it) repeat round R's patterns
 * under the same stimulus (the patterns are deterministic, the interleaving is not).
 *
 * Run: kvmfpu_swap_stress_test [--vcpus N] [--duration S] [--seed N] [--cpu C] [--round R]
 *                               [--allow-hotplug]
 */
#define _GNU_SOURCE	/* sched_setaffinity(), RUSAGE_THREAD; 6.1's CFLAGS do not define it */
#include <errno.h>
#include <linux/if_alg.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cpu_hotplug.h"
#include "kvmfpu_vm.h"
#include "host_regs.h"
#include "kernel_env.h"
#include "options.h"
#include "pattern.h"
#include "report.h"
#include "swap_round.h"

#include "kvmfpu_harness.h"

#define MAX_VCPUS	8
#define MAX_VMS		4	/* VMs per vCPU thread (many_vms) */
#define MAX_LOAD	8	/* stimulus threads */
#define ALL_ROUNDS	UINT64_MAX

/*
 * --duration is per test, in ms, 0.1 s by default: a verdict on each stimulus for a default
 * run, not a search for races. A test whose stimulus has not yet done what the test needs when
 * --duration is up runs on until it has, for at most STIM_WAIT_MS more (a slow machine, an
 * emulator, gets a verdict on the stimulus rather than a SKIP for a short run); only then is
 * the stimulus missing a SKIP. Races want longer: the stress, race, irq and soak profiles give
 * 10 to 300 s.
 */
#define STIM_WAIT_MS	10000
static uint64_t opt_seed = 1, opt_vcpus = 2, opt_duration = 100, opt_cpu, opt_round = ALL_ROUNDS;
static uint64_t opt_allow_hotplug;

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
	{ "--vcpus", KVMFPU_OPT_NUMBER, &opt_vcpus, 1, MAX_VCPUS },
	{ "--duration", KVMFPU_OPT_MSECS, &opt_duration, 1, 24 * 3600 * 1000 },
	{ "--cpu", KVMFPU_OPT_NUMBER, &opt_cpu, 0, CPU_SETSIZE - 1 },
	{ "--round", KVMFPU_OPT_NUMBER, &opt_round, 0, UINT32_MAX },
	{ "--allow-hotplug", KVMFPU_OPT_FLAG, &opt_allow_hotplug, 0, 1 },
};

enum stimulus {
	STIM_USER_FPU	= 1 << 0,
	STIM_KERNEL_FPU	= 1 << 1,
	STIM_SIGNALS	= 1 << 2,
	STIM_HOTPLUG	= 1 << 3,
	STIM_MIGRATE	= 1 << 4,
	STIM_IRQ_FPU	= 1 << 5,
};

#define STIM_ALL	(STIM_USER_FPU | STIM_KERNEL_FPU | STIM_SIGNALS)

/* Shared between the threads of one test. */
struct stress {
	struct kvmfpu_vm_config cfg;
	const char *test;		/* for the replay line */
	const char *variant;
	atomic_bool stop;
	atomic_uint failures;
	atomic_uint vms_ready;		/* vCPU threads past VM creation */
	atomic_bool cpuid_lost;		/* KVM did not keep a guest CPUID (fpu_vm.h) */
	atomic_ulong user_checks, kernel_ops, signals_sent;
	int alg_op;			/* AF_ALG operation socket, or -1 */
	int hot_cpu;			/* the CPU the hotplug thread offlines, or -1 */
	int hot_errno;			/* why its first offline failed, or 0 */
	atomic_ulong hot_cycles;	/* offline + online completed */
	int hot_online_err;		/* why hot_cpu could not be onlined again, or 0 */
	atomic_ulong hot_rounds[MAX_VCPUS];	/* rounds that ended on hot_cpu */
	int mig_cpu;			/* migrate: the second CPU, or -1 */
	atomic_ulong mig_flips;		/* affinity changes made by the migrate thread */
	int hop_cpu;			/* cpu_return: the CPU hopped to and from --cpu, or -1 */
	atomic_ulong hops, hop_returns;	/* hops made; of them, back to a CPU left before */
	bool irq_fpu_on;		/* kvmfpu_irq_fpu's timers were started */
	unsigned int nr_vms;		/* VMs per vCPU thread: 1, more for many_vms */
	struct kvmfpu_vm_config vm_cfg[MAX_VMS];	/* vm_cfg[0] is cfg */
	atomic_ulong vm_rounds[MAX_VCPUS][MAX_VMS];
	pthread_t vcpu_threads[MAX_VCPUS];
	unsigned int nr_vcpus;
	atomic_bool eintr_seen;		/* some KVM_RUN ended by a signal (EINTR) */
	atomic_bool run_moved;		/* some KVM_RUN returned on another CPU */
	unsigned long irq_guest0;	/* kvmfpu_irq_fpu's `guest` count at the start */
	/* Has the test's stimulus done what the test needs (it is read as the test runs)? */
	bool (*reached)(struct stress *s);
	/* Written by each vCPU thread as it ends. */
	unsigned long rounds[MAX_VCPUS], eintr[MAX_VCPUS], switches[MAX_VCPUS];
	unsigned long run_moves[MAX_VCPUS];	/* KVM_RUNs that returned on another CPU */
	unsigned long round_moves[MAX_VCPUS];	/* CPU changes seen between rounds */
	unsigned long own_checks[MAX_VCPUS];	/* own registers checked across sched_yield() */
};

static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

/* Handled signals, counted by the handler: it cannot reach the fixture. */
static atomic_ulong signals_handled;

struct vcpu_thread {
	struct stress *s;
	unsigned int index;
};

/* Pin the calling thread to --cpu, or for migrate allow it --cpu and the second CPU. */
static void pin(const struct stress *s)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(opt_cpu, &set);
	if (s->mig_cpu >= 0)
		CPU_SET(s->mig_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		kvmfpu_error("cannot pin to CPU %llu: %s", (unsigned long long)opt_cpu,
			     strerror(errno));
}

/* Raise the calling thread's nice value (always allowed): a mix of weights on each CPU. */
static void nice_thread(int nice)
{
	if (nice && setpriority(PRIO_PROCESS, syscall(SYS_gettid), nice))
		kvmfpu_error("cannot set a thread's nice value to %d: %s", nice, strerror(errno));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The command line that repeats round @round of this test under the same stimulus, every
 * vCPU thread (every VM of it) on that round's patterns.
 */
static void print_replay(const struct stress *s, uint64_t round)
{
	char r[32] = "";

	/* ALL_ROUNDS: a failure of the whole test (a kernel WARN), replayed as it ran. */
	if (round != ALL_ROUNDS)
		snprintf(r, sizeof(r), " --round %llu", (unsigned long long)round);
	printf("# kvmfpu-replay: args=--seed 0x%llx --vcpus %u --duration %llu.%03llu --cpu %llu"
	       "%s%s -r stress.%s.%s\n", (unsigned long long)opt_seed, s->nr_vcpus,
	       (unsigned long long)opt_duration / 1000, (unsigned long long)opt_duration % 1000,
	       (unsigned long long)opt_cpu, r,
	       opt_allow_hotplug ? " --allow-hotplug" : "", s->variant, s->test);
}

/* Where a vCPU thread is, for its failure lines. */
struct round_where {
	const struct stress *s;
	unsigned int thread, vm;
	const struct kvmfpu_vm *v;
	struct pattern_key k;
	int cpu0;		/* the CPU the round began on */
};

/*
 * The replay line and where the round ran: seed, VM, vCPU, round, CPU. Also what kvmfpu_fail()
 * prints first when a check inside the round fails (kvmfpu_fail_context()).
 */
static void print_where(void *arg)
{
	const struct round_where *w = arg;

	print_replay(w->s, w->k.round);
	printf("# in: seed 0x%llx, VM %u of vCPU thread %u (XCR0 0x%llx%s), its vCPU 0, pattern "
	       "vCPU %u, round %u, CPU %d (the round began on CPU %d)\n",
	       (unsigned long long)opt_seed, w->vm, w->thread,
	       (unsigned long long)w->v->guest_xcr0,
	       kvmfpu_vm_fxsave_only(&w->v->cfg) ? ", FXSAVE-only" : "", w->k.vcpu,
	       w->k.round, sched_getcpu(), w->cpu0);
	fflush(stdout);
}

/* What a vCPU thread owns for one of its VMs. */
struct vcpu_vm {
	struct kvmfpu_vm v;
	struct swap_ctx c;
};

/*
 * Migrate: the vCPU thread's own registers, loaded with a pattern of its own and checked
 * across sched_yield() between two KVM_RUNs, while it is being moved between CPUs. Returns the
 * number of differing registers (0 when the host cannot load them: no OSXSAVE).
 */
static unsigned int own_regs_check(struct swap_ctx *quiet, struct ximage *fill,
				   struct ximage *out, unsigned int index, uint32_t round)
{
	struct pattern_key k = { .seed = opt_seed, .vcpu = PATTERN_HOST - 16 - index,
				 .round = round };
	uint64_t mask = host_check_mask();

	if (!mask)
		return 0;
	pattern_fill_image(fill, mask, &k);
	memset(out->buf, 0, out->size);
	host_regs_syscall(SYS_sched_yield, 0, 0, 0, fill, out, mask);
	return swap_diff(quiet, fill, out, mask, "vcpu_own_regs");
}

/*
 * cpu_return: move to the other of --cpu and the hop CPU with sched_setaffinity(), the
 * registers loaded with this round's pattern before the call and stored after it, on the new
 * CPU. The call does not return before the move (migration_cpu_stop()), so the switch out
 * saved them on one CPU and the return to user space restored them on the other, unless that
 * CPU's fpregs_state_valid() said it still held them. Returns the number of differing
 * registers; *@to is the CPU moved to.
 */
static unsigned int hop_check(struct stress *s, struct swap_ctx *quiet, struct ximage *fill,
			      struct ximage *out, unsigned int index, uint32_t round, int *from,
			      int *to)
{
	struct pattern_key k = { .seed = opt_seed, .vcpu = PATTERN_HOST - 32 - index,
				 .round = round };
	uint64_t mask = host_check_mask();
	cpu_set_t set;
	long r;

	*from = sched_getcpu();
	*to = *from == (int)opt_cpu ? s->hop_cpu : (int)opt_cpu;
	CPU_ZERO(&set);
	CPU_SET(*to, &set);
	pattern_fill_image(fill, mask, &k);
	memset(out->buf, 0, out->size);
	r = host_regs_syscall(SYS_sched_setaffinity, 0, sizeof(set), (long)&set, fill, out, mask);
	if (r)
		kvmfpu_error("cpu_return: cannot move to CPU %d: %s", *to, strerror(-r));
	if (sched_getcpu() != *to)
		kvmfpu_error("cpu_return: sched_setaffinity() to CPU %d returned on CPU %d", *to,
			     sched_getcpu());
	return swap_diff(quiet, fill, out, mask, "vcpu_regs_across_cpu_move");
}

/*
 * Each vCPU thread owns its VMs (one, several for many_vms, taken in turn) and runs verified
 * swap rounds with its own patterns: VM j of thread i uses pattern vCPU i + j * MAX_VCPUS.
 */
static void *vcpu_main(void *arg)
{
	unsigned int checks = CHECK_GUEST_IMAGE | CHECK_XSTATE_BV | CHECK_HOST_REGS |
			      CHECK_GUEST_REENTRY | CHECK_SET_XSAVE;
	struct vcpu_thread *t = arg;
	struct stress *s = t->s;
	struct round_where w = { .s = s, .thread = t->index, .k = { .seed = opt_seed } };
	struct pattern_key *k = &w.k;
	struct swap_ctx quiet = { .max_print = 8 };
	struct vcpu_vm vms[MAX_VMS];
	struct ximage own_fill = { 0 }, own_out = { 0 };
	struct xs_layout l;
	struct rusage ru;
	unsigned int bad, j, n;
	int cpu1, last_cpu = -1, hop_from, hop_to;
	bool left[2] = { false, false };	/* --cpu, the hop CPU: left at least once */

	pin(s);
	if (s->mig_cpu >= 0)
		nice_thread(t->index & 1 ? 5 : 0);
	if (s->mig_cpu >= 0 || s->hop_cpu >= 0) {
		xs_layout_host(&l);
		if (host_check_mask() &&
		    (ximage_alloc(&own_fill, &l, host_check_mask(), false) ||
		     ximage_alloc(&own_out, &l, host_check_mask(), false)))
			kvmfpu_error("cannot allocate images");
	}
	/*
	 * One VM creation at a time: the selftest library fills its KVM_GET_SUPPORTED_CPUID
	 * cache lazily and unlocked (kvm_get_supported_cpuid() publishes the table before the
	 * ioctl fills it), so a second thread could read it empty and assert "Linear address
	 * width (32 bits) not supported" in vm_create(): a harness error read as a failure.
	 */
	pthread_mutex_lock(&create_lock);
	for (j = 0; j < s->nr_vms; j++) {
		kvmfpu_vm_create(&vms[j].v, &s->vm_cfg[j]);
		if (swap_ctx_init(&vms[j].c, &vms[j].v))
			kvmfpu_error("cannot allocate images");
		vms[j].c.max_print = 8;
		if (!vms[j].v.cpuid_kept)
			s->cpuid_lost = true;
	}
	pthread_mutex_unlock(&create_lock);
	s->vms_ready++;
	kvmfpu_fail_context(print_where, &w);
	for (n = 0; !s->stop; n++) {
		j = n % s->nr_vms;
		w.vm = j;
		w.v = &vms[j].v;
		k->vcpu = t->index + j * MAX_VCPUS;
		k->round = opt_round != ALL_ROUNDS ? opt_round : s->vm_rounds[t->index][j];
		if (s->hop_cpu >= 0 && own_fill.buf) {
			w.cpu0 = sched_getcpu();
			bad = hop_check(s, &quiet, &own_fill, &own_out, t->index, k->round,
					&hop_from, &hop_to);
			if (bad) {
				print_where(&w);
				printf("# %u register(s) of vCPU thread %u differ across its move "
				       "from CPU %d to CPU %d (above), %s\n", bad, t->index,
				       hop_from, hop_to, left[hop_to != (int)opt_cpu] ?
				       "a CPU it had left before" : "its first time there");
				s->failures++;
				break;
			}
			s->hop_returns += left[hop_to != (int)opt_cpu];
			left[hop_from != (int)opt_cpu] = true;
			s->hops++;
		}
		w.cpu0 = sched_getcpu();
		s->round_moves[t->index] += last_cpu >= 0 && w.cpu0 != last_cpu;
		/* Alternate the round's checks so SET_XSAVE and plain re-entry both run. */
		bad = swap_round(&vms[j].c, k, k->round & 1 ? checks : checks & ~CHECK_SET_XSAVE);
		if (!bad && s->mig_cpu >= 0 && own_fill.buf) {
			bad = own_regs_check(&quiet, &own_fill, &own_out, t->index, k->round);
			s->own_checks[t->index] += !bad;
		}
		cpu1 = sched_getcpu();
		s->round_moves[t->index] += cpu1 != w.cpu0;
		last_cpu = cpu1;
		if (bad) {
			print_where(&w);
			printf("# %u register(s) differ in that round (above)\n", bad);
			s->failures++;
			break;
		}
		s->vm_rounds[t->index][j]++;
		s->rounds[t->index]++;
		if (vms[j].v.eintr)
			s->eintr_seen = true;
		if (vms[j].v.run_cpu_moves)
			s->run_moved = true;
		/* After a first cycle, a round on the hot CPU ran after it came back. */
		if (s->hot_cycles && cpu1 == s->hot_cpu)
			s->hot_rounds[t->index]++;
	}
	kvmfpu_fail_context(NULL, NULL);
	for (j = 0; j < s->nr_vms; j++) {
		s->eintr[t->index] += vms[j].v.eintr;
		s->run_moves[t->index] += vms[j].v.run_cpu_moves;
		swap_ctx_free(&vms[j].c);
		kvmfpu_vm_destroy(&vms[j].v);
	}
	if (!getrusage(RUSAGE_THREAD, &ru))
		s->switches[t->index] = ru.ru_nvcsw + ru.ru_nivcsw;
	ximage_free(&own_fill);
	ximage_free(&own_out);
	return NULL;
}

/*
 * A thread that is not a vCPU: its registers must survive sched_yield() next to vCPUs. Thread
 * i (several for migrate, at nice 0, 5, 10, ...) uses pattern vCPU PATTERN_HOST - 1 - i.
 */
static void *user_fpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct stress *s = t->s;
	struct pattern_key k = { .seed = opt_seed, .vcpu = PATTERN_HOST - 1 - t->index };
	struct xs_layout l;
	struct ximage fill, out;
	uint64_t mask = host_check_mask();
	struct swap_ctx quiet = { .max_print = 8 };
	unsigned int n;

	pin(s);
	nice_thread(5 * t->index);
	xs_layout_host(&l);
	if (ximage_alloc(&fill, &l, mask, false) || ximage_alloc(&out, &l, mask, false))
		kvmfpu_error("cannot allocate images");
	for (n = 0; !s->stop; n++) {
		k.round = opt_round != ALL_ROUNDS ? opt_round : n;
		pattern_fill_image(&fill, mask, &k);
		memset(out.buf, 0, out.size);
		host_regs_syscall(SYS_sched_yield, 0, 0, 0, &fill, &out, mask);
		if (swap_diff(&quiet, &fill, &out, mask, "user_fpu")) {
			print_replay(s, k.round);
			printf("# non-vCPU thread %u's registers changed across sched_yield(): "
			       "seed 0x%llx, no VM (pattern vCPU 0x%x), round %u, CPU %d\n",
			       t->index, (unsigned long long)opt_seed, k.vcpu, k.round,
			       sched_getcpu());
			s->failures++;
			break;
		}
		s->user_checks++;
	}
	ximage_free(&fill);
	ximage_free(&out);
	return NULL;
}

/*
 * AF_ALG's sha256, if the kernel has it and serves it with SIMD code: returns the operation
 * socket, or -1 with the reason in @why.
 */
static int open_simd_hash(char *why, size_t len)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG, .salg_type = "hash",
				   .salg_name = "sha256" };
	char driver[64] = "", from[320];
	char *crypto = NULL, *config;
	int tfm, op = -1;
	bool simd;
	FILE *f;

	tfm = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (tfm < 0 || bind(tfm, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(why, len, "AF_ALG sha256 unavailable (%s%s): no kernel FPU use to "
			 "interleave", tfm < 0 ? "socket: " : "bind: ", strerror(errno));
		goto out;
	}
	/* Read after the bind: it may have loaded the driver's module. */
	f = fopen("/proc/crypto", "r");
	if (f) {
		size_t size = 0, n;

		crypto = calloc(1, 1 << 20);
		while (crypto && size < (1 << 20) - 1 &&
		       (n = fread(crypto + size, 1, (1 << 20) - 1 - size, f)) > 0)
			size += n;
		fclose(f);
	}
	if (!crypto) {
		snprintf(why, len, "cannot read /proc/crypto: which driver serves sha256 is "
			 "unknown");
		goto out;
	}
	config = kernel_env_kconfig_read(from, sizeof(from));
	simd = kernel_env_crypto_simd_driver(crypto, "sha256", config, driver, sizeof(driver)) &&
	       __builtin_cpu_supports("ssse3");
	free(config);
	if (!simd) {
		snprintf(why, len, "AF_ALG sha256 is served by %s%s, not known to run x86 SIMD "
			 "code (SIMD drivers: -ssse3, -avx, -avx2, -avx512, -ni; -lib with "
			 "CONFIG_CRYPTO_LIB_SHA256_ARCH and an SSSE3 CPU; config: %s)",
			 driver[0] ? "driver " : "no driver in /proc/crypto",
			 driver[0] ? driver : "", from);
		goto out;
	}
	op = accept(tfm, NULL, 0);
	if (op < 0)
		snprintf(why, len, "AF_ALG accept: %s", strerror(errno));
	else
		printf("# kernel_fpu: AF_ALG sha256 served by %s\n", driver);
out:
	free(crypto);
	if (tfm >= 0)
		close(tfm);
	return op;
}

/* Make the kernel use its SIMD code: SHA-256 through AF_ALG, in a loop. */
static void *kernel_fpu_main(void *arg)
{
	static char buf[16384];
	struct stress *s = arg;
	char digest[32];

	pin(s);
	while (!s->stop) {
		if (write(s->alg_op, buf, sizeof(buf)) != sizeof(buf) ||
		    read(s->alg_op, digest, sizeof(digest)) != sizeof(digest)) {
			printf("# kernel_fpu: AF_ALG sha256 stopped working: %s\n",
			       strerror(errno));
			break;
		}
		s->kernel_ops++;
	}
	return NULL;
}

/*
 * kvmfpu_irq_fpu.ko, the interrupt-context FPU user: its parameters start and stop its timers
 * and count what its interrupts found (selftests/test_modules/kvmfpu_irq_fpu.c).
 */
#define IRQ_FPU_PARAMS		"/sys/module/kvmfpu_irq_fpu/parameters/"
#define IRQ_FPU_PERIOD_US	200

struct irq_fpu_counts {
	unsigned long uses, refused, live, guest;
};

static bool irq_fpu_count(const char *name, unsigned long *val)
{
	char path[128];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), IRQ_FPU_PARAMS "%s", name);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fscanf(f, "%lu", val) == 1;
	fclose(f);
	return ok;
}

static bool irq_fpu_read(struct irq_fpu_counts *c)
{
	return irq_fpu_count("uses", &c->uses) && irq_fpu_count("refused", &c->refused) &&
	       irq_fpu_count("live", &c->live) && irq_fpu_count("guest", &c->guest);
}

/* Start the module's timers every @us microseconds on every CPU, or stop them (0). */
static void irq_fpu_period(unsigned int us)
{
	FILE *f = fopen(IRQ_FPU_PARAMS "period_us", "w");

	if (!f || fprintf(f, "%u\n", us) < 0 || fclose(f))
		kvmfpu_error("cannot write %u to " IRQ_FPU_PARAMS "period_us: %s", us,
			     strerror(errno));
}

/* The handler uses the FPU: the interrupted context's registers must come back. */
static void on_signal(int sig)
{
	volatile double x = sig;

	asm volatile("pxor %%xmm0, %%xmm0\n\tpcmpeqd %%xmm15, %%xmm15" : : : "xmm0", "xmm15");
	x = x * 1.5 + 0.25;
	(void)x;
	signals_handled++;
}

static void *signal_main(void *arg)
{
	struct timespec pause = { 0, 200 * 1000 };
	struct stress *s = arg;
	unsigned int i;

	pin(s);
	while (!s->stop) {
		for (i = 0; i < s->nr_vcpus; i++)
			if (!pthread_kill(s->vcpu_threads[i], SIGUSR1))
				s->signals_sent++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Allow every vCPU thread CPU @a and, if not -1, CPU @b: 0 or the errno. */
static int vcpus_allow(struct stress *s, int a, int b)
{
	cpu_set_t set;
	unsigned int i;
	int err;

	CPU_ZERO(&set);
	CPU_SET(a, &set);
	if (b >= 0)
		CPU_SET(b, &set);
	for (i = 0; i < s->nr_vcpus; i++) {
		err = pthread_setaffinity_np(s->vcpu_threads[i], sizeof(set), &set);
		if (err && err != ESRCH)	/* ESRCH: the thread ended (its failure) */
			return err;
	}
	return 0;
}

/* Has every vCPU thread completed @n more rounds on the hot CPU than in @before? */
static bool vcpus_ran_on_hot_cpu(const struct stress *s, const unsigned long *before,
				 unsigned long n)
{
	unsigned int i;

	for (i = 0; i < s->nr_vcpus; i++)
		if (s->hot_rounds[i] < before[i] + n)
			return false;
	return true;
}

/*
 * Offline and online s->hot_cpu in a loop. The vCPU threads may run on both CPUs while it goes
 * down (the offline migrates those on it, maybe inside KVM_RUN); after it came back they are
 * moved onto it until each has completed two verified rounds there, then the next cycle.
 */
static void *hotplug_main(void *arg)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	unsigned long before[MAX_VCPUS];
	struct stress *s = arg;
	unsigned int i;
	int err;

	pin(s);
	while (!s->stop) {
		err = vcpus_allow(s, opt_cpu, s->hot_cpu);
		if (err)
			kvmfpu_error("hotplug: cannot set the vCPU threads' affinity: %s",
				     strerror(err));
		err = cpu_hotplug_offline(s->hot_cpu);
		if (err) {
			if (!s->hot_cycles)
				s->hot_errno = err;
			else
				printf("# hotplug: offlining CPU %d failed after %lu cycles: %s\n",
				       s->hot_cpu, (unsigned long)s->hot_cycles, strerror(err));
			break;
		}
		nanosleep(&pause, NULL);
		err = cpu_hotplug_online(s->hot_cpu);
		if (err) {
			s->hot_online_err = err;
			break;
		}
		s->hot_cycles++;
		for (i = 0; i < s->nr_vcpus; i++)
			before[i] = s->hot_rounds[i];
		err = vcpus_allow(s, s->hot_cpu, -1);
		if (err)
			kvmfpu_error("hotplug: cannot move the vCPU threads to CPU %d: %s",
				     s->hot_cpu, strerror(err));
		while (!s->stop && !vcpus_ran_on_hot_cpu(s, before, 2))
			usleep(1000);
	}
	return NULL;
}

/*
 * Migrate: flip each vCPU thread's affinity between --cpu and the second CPU, the threads in
 * opposite phase, at a pace that lands flips both between rounds and inside KVM_RUN (which
 * the vCPU threads count: sched_setaffinity() of a running task migrates it at once, through
 * the stopper, out of guest mode if need be).
 */
static void *migrate_main(void *arg)
{
	struct timespec pause = { 0, 300 * 1000 };
	struct stress *s = arg;
	unsigned int i, flip;
	cpu_set_t set;
	int err;

	pin(s);
	for (flip = 0; !s->stop; flip++) {
		for (i = 0; i < s->nr_vcpus; i++) {
			CPU_ZERO(&set);
			CPU_SET((flip + i) & 1 ? s->mig_cpu : (int)opt_cpu, &set);
			err = pthread_setaffinity_np(s->vcpu_threads[i], sizeof(set), &set);
			if (err == ESRCH)	/* the thread ended (its failure) */
				continue;
			if (err)
				kvmfpu_error("migrate: cannot set vCPU thread %u's affinity: %s", i,
					     strerror(err));
			s->mig_flips++;
		}
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* A CPU this process may run on other than --cpu, or -1. */
static int second_cpu(void)
{
	cpu_set_t set;
	int cpu;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (cpu != (int)opt_cpu && CPU_ISSET(cpu, &set))
			return cpu;
	return -1;
}

FIXTURE(stress) {
	struct stress s;
};

FIXTURE_VARIANT(stress) {
	const char *name;
	bool xsave_hidden;
};

FIXTURE_VARIANT_ADD(stress, legacy) {
	.name = "legacy", .xsave_hidden = true,
};
FIXTURE_VARIANT_ADD(stress, max) {
	.name = "max",
};

FIXTURE_SETUP(stress)
{
	char why[512];

	self->s.cfg.xsave_hidden = variant->xsave_hidden;
	self->s.cfg.xcr0 = variant->xsave_hidden ? XS_MASK_FPSSE :
			   kvmfpu_vm_supported_xcr0() & KVMFPU_VM_GUEST_COMPS;
	self->s.cfg.xcr0_by_host = true;
	self->s.variant = variant->name;
	self->s.alg_op = -1;
	self->s.hot_cpu = -1;
	self->s.mig_cpu = -1;
	self->s.hop_cpu = -1;
	self->s.nr_vms = 1;
	self->s.vm_cfg[0] = self->s.cfg;
	if (!kvmfpu_vm_config_supported(&self->s.cfg, why, sizeof(why)))
		SKIP(return, "%s", why);
	/*
	 * The selftest library fills its KVM_GET_SUPPORTED_CPUID cache on first use, without a
	 * lock, and publishes the pointer before the ioctl fills the table
	 * (kvm_get_supported_cpuid()): vCPU threads creating their VMs at once can read it
	 * half-filled (seen in the tcg lab with 2 CPUs: "Linear address width (32 bits) not
	 * supported", from a leaf 0x80000008 not there yet). Fill it before any thread starts.
	 */
	kvm_get_supported_cpuid();
}

FIXTURE_TEARDOWN(stress)
{
	if (self->s.irq_fpu_on)
		irq_fpu_period(0);
	if (self->s.alg_op >= 0)
		close(self->s.alg_op);
}

/*
 * What each test's stimulus must have done for the test to judge it (s->reached, polled by
 * run_stress() once --duration is up; the tests' SKIPs after the run ask the same of the final
 * counts), besides a verified round by every vCPU thread in each of its VMs, which every test
 * needs.
 */
static bool every_thread_ran(const struct stress *s)
{
	unsigned int i, j;

	for (i = 0; i < s->nr_vcpus; i++)
		for (j = 0; j < s->nr_vms; j++)
			if (!s->vm_rounds[i][j])
				return false;
	return true;
}

static bool user_checked(struct stress *s)
{
	return s->user_checks;
}

static bool kernel_used(struct stress *s)
{
	return s->kernel_ops;
}

static bool signal_hit_run(struct stress *s)
{
	return s->eintr_seen;
}

static bool hotplug_cycled(struct stress *s)
{
	unsigned int i;

	if (s->hot_errno || s->hot_online_err)
		return true;	/* nothing to wait for: the test says why */
	if (!s->hot_cycles)
		return false;
	for (i = 0; i < s->nr_vcpus; i++)
		if (!s->hot_rounds[i])
			return false;
	return true;
}

static bool run_migrated(struct stress *s)
{
	return s->run_moved;
}

static bool cpu_returned(struct stress *s)
{
	return s->hop_returns;
}

static bool irq_hit_guest(struct stress *s)
{
	struct irq_fpu_counts c;

	return irq_fpu_read(&c) && c.guest != s->irq_guest0;
}

static bool stimulus_done(struct stress *s)
{
	return every_thread_ran(s) && (!s->reached || s->reached(s));
}

/*
 * Run the vCPU threads with the stimuli of @stim for --duration, and on until every vCPU
 * thread has completed a round in each VM and s->reached() says the stimulus did what the test
 * needs (at most STIM_WAIT_MS more); print what ran, and fail on any difference. Whether each
 * stimulus really happened is for the caller to judge.
 */
static void run_stress(struct stress *s, unsigned int stim)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	unsigned long rounds = 0, eintr = 0, switches = 0, run_moves = 0, round_moves = 0;
	unsigned long own_checks = 0;
	struct vcpu_thread vt[MAX_VCPUS], ut[MAX_LOAD];
	/* Migrate: one more non-vCPU FPU thread than CPUs, besides the vCPU threads. */
	unsigned int nr_user = s->mig_cpu >= 0 ? 3 : 1;
	pthread_t load[MAX_LOAD];
	unsigned int i, j, nr_load = 0;
	char names[128], cpus[64];
	double t0, t = 0, wait = opt_duration / 1000.0;
	bool waited = false;

	sigaction(SIGUSR1, &sa, NULL);
	signals_handled = 0;
	/* cpu_return: one vCPU thread, so that nothing else of ours takes over its CPUs' FPU. */
	s->nr_vcpus = s->hop_cpu >= 0 ? 1 : opt_vcpus;
	for (i = 0; i < s->nr_vcpus; i++) {
		vt[i] = (struct vcpu_thread){ s, i };
		if (pthread_create(&s->vcpu_threads[i], NULL, vcpu_main, &vt[i]))
			kvmfpu_error("cannot start vCPU thread %u", i);
	}
	/*
	 * The stimuli start once every VM exists: the library asserts on an interrupted
	 * KVM_CREATE_VM, while KVM_RUN's EINTR is part of what is tested.
	 */
	while (s->vms_ready < s->nr_vcpus && !s->failures)
		usleep(1000);
	for (i = 0; (stim & STIM_USER_FPU) && i < nr_user; i++) {
		ut[i] = (struct vcpu_thread){ s, i };
		if (pthread_create(&load[nr_load++], NULL, user_fpu_main, &ut[i]))
			kvmfpu_error("cannot start the user_fpu thread %u", i);
	}
	if ((stim & STIM_KERNEL_FPU) && pthread_create(&load[nr_load++], NULL, kernel_fpu_main, s))
		kvmfpu_error("cannot start the kernel_fpu thread");
	if ((stim & STIM_SIGNALS) && pthread_create(&load[nr_load++], NULL, signal_main, s))
		kvmfpu_error("cannot start the signal thread");
	if ((stim & STIM_HOTPLUG) && pthread_create(&load[nr_load++], NULL, hotplug_main, s))
		kvmfpu_error("cannot start the hotplug thread");
	if ((stim & STIM_MIGRATE) && pthread_create(&load[nr_load++], NULL, migrate_main, s))
		kvmfpu_error("cannot start the migrate thread");
	if (stim & STIM_IRQ_FPU) {
		s->irq_fpu_on = true;
		irq_fpu_period(IRQ_FPU_PERIOD_US);
	}

	t0 = now();
	while (!s->failures) {
		t = now() - t0;
		if (t >= wait) {
			if (stimulus_done(s) || t >= wait + STIM_WAIT_MS / 1000.0)
				break;
			waited = true;	/* not a late wakeup: the stimulus was not there */
		}
		usleep(t < wait ? 10000 : 2000);
	}
	s->stop = true;
	if (!s->failures && waited)
		printf("# %s: ran %.2f s, past --duration %.3f s, %s\n", s->test, t, wait,
		       stimulus_done(s) ? "until the stimulus did its part" :
		       "and gave up waiting for the stimulus");
	if (s->irq_fpu_on) {
		irq_fpu_period(0);
		s->irq_fpu_on = false;
	}
	for (i = 0; i < nr_load; i++)
		pthread_join(load[i], NULL);
	for (i = 0; i < s->nr_vcpus; i++) {
		pthread_join(s->vcpu_threads[i], NULL);
		rounds += s->rounds[i];
		eintr += s->eintr[i];
		switches += s->switches[i];
		run_moves += s->run_moves[i];
		round_moves += s->round_moves[i];
		own_checks += s->own_checks[i];
	}

	if (s->mig_cpu >= 0 || s->hop_cpu >= 0)
		snprintf(cpus, sizeof(cpus), "CPUs %llu and %d", (unsigned long long)opt_cpu,
			 s->mig_cpu >= 0 ? s->mig_cpu : s->hop_cpu);
	else
		snprintf(cpus, sizeof(cpus), "CPU %llu%s", (unsigned long long)opt_cpu,
			 s->hot_cpu >= 0 ? " and the hotplugged CPU" : "");
	printf("# %u vCPU threads (%u VM%s each) on %s for %.1f s, seed 0x%llx: %lu "
	       "verified rounds, %lu vCPU context switches, %lu non-vCPU register checks, %lu "
	       "kernel SHA-256 ops, %lu signals sent, %lu handled, %lu KVM_RUN ended by a signal "
	       "(EINTR)\n",
	       s->nr_vcpus, s->nr_vms, s->nr_vms > 1 ? "s" : "", cpus, now() - t0,
	       (unsigned long long)opt_seed, rounds, switches, (unsigned long)s->user_checks,
	       (unsigned long)s->kernel_ops, (unsigned long)s->signals_sent,
	       (unsigned long)signals_handled, eintr);
	if (stim & STIM_HOTPLUG) {
		printf("# hotplug: CPU %d offlined and onlined %lu times; verified rounds per vCPU "
		       "thread (on CPU %d after it came back / all):", s->hot_cpu,
		       (unsigned long)s->hot_cycles, s->hot_cpu);
		for (i = 0; i < s->nr_vcpus; i++)
			printf(" %lu/%lu", (unsigned long)s->hot_rounds[i], s->rounds[i]);
		printf("\n");
	}
	if (stim & STIM_MIGRATE)
		printf("# migrate: %lu affinity changes, %u non-vCPU FPU threads; %lu KVM_RUNs "
		       "returned on another CPU than they entered on, %lu CPU changes between or "
		       "across rounds, %lu own-register checks by the vCPU threads\n",
		       (unsigned long)s->mig_flips, nr_user, run_moves, round_moves, own_checks);
	if (s->hop_cpu >= 0)
		printf("# cpu_return: %lu moves between CPUs %llu and %d, %lu of them back to a "
		       "CPU the vCPU thread had left, its registers checked across each\n",
		       (unsigned long)s->hops, (unsigned long long)opt_cpu, s->hop_cpu,
		       (unsigned long)s->hop_returns);
	if (s->nr_vms > 1) {
		for (j = 0; j < s->nr_vms; j++) {
			printf("# many_vms: VM %u (XCR0 0x%llx%s): verified rounds per vCPU thread:",
			       j, (unsigned long long)s->vm_cfg[j].xcr0,
			       s->vm_cfg[j].xsave_hidden ? ", FXSAVE-only" : "");
			for (i = 0; i < s->nr_vcpus; i++)
				printf(" %lu", (unsigned long)s->vm_rounds[i][j]);
			printf("\n");
		}
	}
	if (s->failures)
		kvmfpu_fail("%u thread(s) saw registers differ (seed, VM, vCPU, round and CPU "
			    "above)", (unsigned int)s->failures);
	if (!rounds)
		kvmfpu_error("stress: no round completed in %.2f s", t);
	if (s->cpuid_lost)
		printf("# XSTATE_BV checked only within what KVM supports: KVM did not keep the "
		       "guest CPUID (see kvmfpu_swap_test's xstate_bv)\n");
	printf("# host registers checked: %s\n",
	       xs_mask_str(host_check_mask(), names, sizeof(names)));
}

static void print_exercised(const struct stress *s)
{
	uint64_t mask = 0;
	unsigned int j;

	for (j = 0; j < s->nr_vms; j++)
		mask |= s->vm_cfg[j].xsave_hidden ? XS_MASK_FPSSE : s->vm_cfg[j].xcr0;
	kvmfpu_print_exercised(mask);
}

/* vCPU threads only: they must really have taken turns on the CPU. */
KVMFPU_TEST_F_TIMEOUT(stress, vcpus, 300)
{
	unsigned int i;

	self->s.test = "vcpus";
	if (opt_vcpus < 2)
		SKIP(return, "--vcpus 1: no second vCPU thread to interleave with");
	run_stress(&self->s, 0);
	for (i = 0; i < self->s.nr_vcpus; i++)
		if (!self->s.rounds[i])
			SKIP(return, "vCPU thread %u completed no round: the vCPUs did not "
			     "interleave", i);
	for (i = 0; i < self->s.nr_vcpus && !self->s.switches[i]; i++)
		;
	if (i == self->s.nr_vcpus)
		SKIP(return, "no vCPU thread was ever switched out: the vCPUs did not interleave");
	print_exercised(&self->s);
}

KVMFPU_TEST_F_TIMEOUT(stress, user_fpu, 300)
{
	self->s.test = "user_fpu";
	if (!host_check_mask())
		SKIP(return, "host CPU has no OSXSAVE: the non-vCPU thread cannot load its "
		     "registers with XRSTOR");
	self->s.reached = user_checked;
	run_stress(&self->s, STIM_USER_FPU);
	if (!self->s.user_checks)
		SKIP(return, "the non-vCPU thread completed no register check");
	print_exercised(&self->s);
}

KVMFPU_TEST_F_TIMEOUT(stress, kernel_fpu, 300)
{
	char why[640];

	self->s.test = "kernel_fpu";
	self->s.alg_op = open_simd_hash(why, sizeof(why));
	if (self->s.alg_op < 0)
		SKIP(return, "%s", why);
	self->s.reached = kernel_used;
	run_stress(&self->s, STIM_KERNEL_FPU);
	if (!self->s.kernel_ops)
		SKIP(return, "no AF_ALG SHA-256 operation completed: no kernel FPU use");
	print_exercised(&self->s);
}

KVMFPU_TEST_F_TIMEOUT(stress, signals, 300)
{
	unsigned long eintr = 0;
	unsigned int i;

	self->s.test = "signals";
	self->s.reached = signal_hit_run;
	run_stress(&self->s, STIM_SIGNALS);
	for (i = 0; i < self->s.nr_vcpus; i++)
		eintr += self->s.eintr[i];
	if (!eintr)
		SKIP(return, "no signal ended a KVM_RUN (%lu sent, %lu handled): none hit a "
		     "vCPU thread inside KVM_RUN", (unsigned long)self->s.signals_sent,
		     (unsigned long)signals_handled);
	print_exercised(&self->s);
}

/*
 * Every stimulus at once, judged also by the kernel's own FPU assertions: with
 * CONFIG_X86_DEBUG_FPU, WARN_ON_FPU() and xfd_validate_state() WARN on an fpstate in the wrong
 * place, which sets taint W (the kernel WARNed at all: /proc/sys/kernel/tainted bit 9).
 */
KVMFPU_TEST_F_TIMEOUT(stress, kernel_warn, 300)
{
	uint64_t taint0, taint1;
	enum kconfig_value debug_fpu;
	struct irq_fpu_counts irq;
	char from[320], why[640];
	unsigned int stim;
	char *config;

	self->s.test = "kernel_warn";
	config = kernel_env_kconfig_read(from, sizeof(from));
	debug_fpu = kernel_env_kconfig_lookup(config, "CONFIG_X86_DEBUG_FPU");
	free(config);
	if (debug_fpu == KCONFIG_UNKNOWN)
		SKIP(return, "cannot tell whether CONFIG_X86_DEBUG_FPU is set (%s): the kernel's "
		     "FPU assertions may be compiled out", from);
	if (debug_fpu == KCONFIG_NOT_SET)
		SKIP(return, "CONFIG_X86_DEBUG_FPU is not set (%s): the kernel's FPU assertions "
		     "(WARN_ON_FPU, xfd_validate_state()) are compiled out", from);
	if (!kernel_env_taint(&taint0))
		SKIP(return, "/proc/sys/kernel/tainted unreadable: a WARN cannot be seen");
	if (taint0 & KERNEL_ENV_TAINT_WARN)
		SKIP(return, "the kernel is already tainted W: a new WARN cannot be told apart");
	self->s.alg_op = open_simd_hash(why, sizeof(why));
	if (self->s.alg_op < 0)
		printf("# kernel_warn: without kernel FPU use: %s\n", why);
	stim = self->s.alg_op >= 0 ? STIM_ALL : STIM_ALL & ~STIM_KERNEL_FPU;
	if (irq_fpu_read(&irq))
		stim |= STIM_IRQ_FPU;
	else
		printf("# kernel_warn: without interrupt-context FPU use: kvmfpu_irq_fpu.ko is not "
		       "loaded\n");
	run_stress(&self->s, stim);
	if (!kernel_env_taint(&taint1))
		kvmfpu_error("/proc/sys/kernel/tainted became unreadable during the stress");
	if (taint1 & KERNEL_ENV_TAINT_WARN) {
		print_replay(&self->s, ALL_ROUNDS);
		kvmfpu_fail("stress.%s.kernel_warn: the kernel WARNed (taint W appeared) during "
			    "the stress, with CONFIG_X86_DEBUG_FPU: see dmesg", self->s.variant);
	}
	print_exercised(&self->s);
}

/*
 * CPU hotplug: the kernel's per-CPU FPU caches must be right when a CPU comes back. Each CPU
 * remembers whose registers it holds (fpu_fpregs_owner_ctx, trusted by fpregs_state_valid()
 * to skip a restore) and what its IA32_XFD holds (xfd_state, trusted by xfd_update_state() to
 * skip the WRMSR); offline and online reset the registers and MSRs under them.
 * CVE-2024-35801 ("x86/fpu: Keep xfd_state in sync with MSR_IA32_XFD"): fpu__init_cpu_xstate()
 * reset XFD on a CPU coming up and left xfd_state stale (its AMX form: kvmfpu_xfd_test's
 * xfd.*.hotplug). A thread offlines and onlines another CPU while the vCPU threads run
 * verified rounds, which the offline migrates off it, maybe inside KVM_RUN; after each online
 * the vCPU threads are moved onto it until each has completed rounds there. Any kernel WARN
 * (taint W) fails. It changes the host: it runs only with --allow-hotplug or in a lab
 * (KVMFPU_LAB set), and every CPU it offlined is put back online however it ends.
 */
KVMFPU_TEST_F_TIMEOUT(stress, hotplug, 300)
{
	uint64_t taint0 = 0, taint1 = 0;
	char why[320];
	unsigned int i;
	bool see_warn;
	int cpu;

	self->s.test = "hotplug";
	if (!cpu_hotplug_allowed(opt_allow_hotplug, why, sizeof(why)))
		SKIP(return, "%s", why);
	cpu = cpu_hotplug_pick(opt_cpu, why, sizeof(why));
	if (cpu < 0)
		SKIP(return, "%s", why);
	see_warn = kernel_env_taint(&taint0) && !(taint0 & KERNEL_ENV_TAINT_WARN);
	if (!see_warn)
		printf("# hotplug: a kernel WARN cannot be seen: %s\n", taint0 ?
		       "the kernel is already tainted W" : "/proc/sys/kernel/tainted unreadable");
	self->s.hot_cpu = cpu;
	self->s.reached = hotplug_cycled;
	run_stress(&self->s, STIM_HOTPLUG);
	if (self->s.hot_online_err)
		kvmfpu_error("hotplug: CPU %d cannot be onlined again: %s", cpu,
			     strerror(self->s.hot_online_err));
	if (see_warn && kernel_env_taint(&taint1) && (taint1 & KERNEL_ENV_TAINT_WARN)) {
		print_replay(&self->s, ALL_ROUNDS);
		kvmfpu_fail("stress.%s.hotplug: the kernel WARNed (taint W appeared) while CPU %d "
			    "went offline and online: see dmesg", self->s.variant, cpu);
	}
	if (self->s.hot_errno)
		SKIP(return, "offlining CPU %d failed: %s", cpu, strerror(self->s.hot_errno));
	if (!self->s.hot_cycles)
		SKIP(return, "no offline/online cycle of CPU %d completed in %.3f s (--duration "
		     "and %u s more)", cpu, opt_duration / 1000.0, STIM_WAIT_MS / 1000);
	for (i = 0; i < self->s.nr_vcpus; i++)
		if (!self->s.hot_rounds[i])
			SKIP(return, "vCPU thread %u completed no round on CPU %d after it came "
			     "back", i, cpu);
	print_exercised(&self->s);
}

/*
 * Migration and preemption: KVM must give each vCPU its own registers back whichever CPU its
 * thread resumes on. Inside KVM_RUN the task's fpu->fpstate is the guest's
 * (fpu_swap_kvm_fpstate()); a migration there saves it at the switch (switch_fpu_prepare())
 * and vcpu_enter_guest() restores it on the new CPU (switch_fpu_return() with
 * TIF_NEED_FPU_LOAD), which fpregs_state_valid() must not skip: that CPU's
 * fpu_fpregs_owner_ctx and fpu->last_cpu say whose registers it holds. The other threads'
 * registers (non-vCPU threads at several nice levels, more FPU users than CPUs) must come
 * back too, and the vCPU thread's own: live when it enters KVM_RUN (host_regs_kvm_run()
 * loads them right before it), checked after it and across sched_yield() between rounds.
 */
KVMFPU_TEST_F_TIMEOUT(stress, migrate, 300)
{
	unsigned long run_moves = 0, round_moves = 0;
	unsigned int i;

	self->s.test = "migrate";
	self->s.mig_cpu = second_cpu();
	if (self->s.mig_cpu < 0)
		SKIP(return, "no CPU but %llu available to this process: nothing to migrate to",
		     (unsigned long long)opt_cpu);
	self->s.reached = run_migrated;
	run_stress(&self->s, STIM_MIGRATE | (host_check_mask() ? STIM_USER_FPU : 0));
	for (i = 0; i < self->s.nr_vcpus; i++) {
		run_moves += self->s.run_moves[i];
		round_moves += self->s.round_moves[i];
	}
	if (!run_moves)
		SKIP(return, "no KVM_RUN returned on another CPU than it entered on (%lu affinity "
		     "changes, %lu CPU changes between rounds): no migration inside KVM_RUN",
		     (unsigned long)self->s.mig_flips, round_moves);
	print_exercised(&self->s);
}

/*
 * Returning to a CPU: a CPU's registers are trusted to still be a task's only while that CPU
 * names the task's fpu as their owner (fpu_fpregs_owner_ctx) and the task ran nowhere else
 * since (fpu->last_cpu == cpu, fpregs_state_valid()). A task that left a CPU and comes back
 * with nobody else's FPU state loaded there in between finds itself still the owner, and only
 * last_cpu says that its registers changed elsewhere. The migrate test cannot show that: its
 * other FPU threads take the CPUs over. Here one vCPU thread is alone and hops between the two
 * CPUs before every verified round, its registers checked across each hop; a vCPU thread,
 * since inside KVM_RUN the registers are the guest's (fpu_swap_kvm_fpstate() swaps
 * fpu->fpstate, not the fpu that owns the CPU).
 */
KVMFPU_TEST_F_TIMEOUT(stress, cpu_return, 300)
{
	self->s.test = "cpu_return";
	if (!host_check_mask())
		SKIP(return, "host CPU has no OSXSAVE: the vCPU thread cannot load its registers "
		     "with XRSTOR");
	self->s.hop_cpu = second_cpu();
	if (self->s.hop_cpu < 0)
		SKIP(return, "no CPU but %llu available to this process: nowhere to move to",
		     (unsigned long long)opt_cpu);
	self->s.reached = cpu_returned;
	run_stress(&self->s, 0);
	if (!self->s.hop_returns)
		SKIP(return, "no move returned to a CPU the vCPU thread had left (%lu moves)",
		     (unsigned long)self->s.hops);
	print_exercised(&self->s);
}

/*
 * Kernel FPU use in hard interrupt context (KNOWLEDGE 2.13): a timer interrupt on the vCPU's
 * CPU inside KVM_RUN finds the guest's registers live (fpu_swap_kvm_fpstate() made the guest
 * fpstate the task's). kernel_fpu_begin() must save them into that fpstate and set
 * TIF_NEED_FPU_LOAD, and vcpu_enter_guest() must reload them (switch_fpu_return()) before the
 * next VM entry; irq_fpu_usable() must refuse the FPU to an interrupt that hit an
 * fpregs_lock()'ed region (softirqs disabled), such as the swap itself. The module's timers
 * overwrite XMM0-15, the x87 state and MXCSR; the guests check their patterns on every
 * re-entry and a non-vCPU thread its own registers. Passes only if some interrupt found a
 * guest's registers live.
 */
KVMFPU_TEST_F_TIMEOUT(stress, irq_fpu, 300)
{
	struct irq_fpu_counts c0, c1;

	self->s.test = "irq_fpu";
	if (!irq_fpu_read(&c0))
		SKIP(return, "no interrupt-context kernel FPU user: kvmfpu_irq_fpu.ko is not "
		     "loaded (" IRQ_FPU_PARAMS " missing; selftests/test_modules, which the labs "
		     "load)");
	self->s.irq_guest0 = c0.guest;
	self->s.reached = irq_hit_guest;
	run_stress(&self->s, STIM_IRQ_FPU | (host_check_mask() ? STIM_USER_FPU : 0));
	if (!irq_fpu_read(&c1))
		kvmfpu_error("kvmfpu_irq_fpu.ko's counters became unreadable during the stress");
	printf("# irq_fpu: every %u us on every CPU: %lu FPU sections in hard interrupt "
	       "context, %lu refused by irq_fpu_usable(); %lu found a user task's registers "
	       "live, %lu of them a guest's\n", IRQ_FPU_PERIOD_US, c1.uses - c0.uses,
	       c1.refused - c0.refused, c1.live - c0.live, c1.guest - c0.guest);
	if (c1.guest == c0.guest)
		SKIP(return, "no interrupt found a guest's registers live (%lu FPU sections in "
		     "interrupts): the stimulus did not reach KVM", c1.uses - c0.uses);
	print_exercised(&self->s);
}

/*
 * Many VMs per thread: KVM swaps the task's fpstate with the guest fpstate of whichever vCPU
 * the thread runs (fpu_swap_kvm_fpstate() in kvm_load_guest_fpu()). Each VM's guest fpstate
 * is allocated at the kernel's default size (fpu_alloc_guest_fpstate()); what differs between
 * them is the guest XCR0, so XSTATE_BV and the components XRSTOR restores or initializes. A
 * stale fpstate pointer, or a restore with another vCPU's features, shows as one guest seeing
 * another's registers or its own components reset. AMX permission, which grows a guest
 * fpstate (fpstate_realloc()), is out of scope here: kvmfpu_amx_test covers it.
 */
KVMFPU_TEST_F_TIMEOUT(stress, many_vms, 300)
{
	uint64_t kvm = kvmfpu_vm_supported_xcr0() & KVMFPU_VM_GUEST_COMPS;
	const uint64_t want[] = { XS_MASK_FPSSE, XS_MASK_FPSSE | XS_BIT(XS_AVX), kvm };
	struct kvmfpu_vm_config cfg;
	struct stress *s = &self->s;
	char why[512];
	unsigned int i, j;

	s->test = "many_vms";
	for (i = 0; i < sizeof(want) / sizeof(want[0]) && s->nr_vms < MAX_VMS; i++) {
		cfg = (struct kvmfpu_vm_config){ .xcr0 = want[i], .xcr0_by_host = true };
		if ((want[i] & kvm) != want[i])
			continue;	/* this KVM lacks AVX: the max VM covers what it has */
		for (j = 0; j < s->nr_vms; j++)
			if (!s->vm_cfg[j].xsave_hidden && s->vm_cfg[j].xcr0 == cfg.xcr0)
				break;
		if (j < s->nr_vms)
			continue;
		if (!kvmfpu_vm_config_supported(&cfg, why, sizeof(why))) {
			printf("# many_vms: no VM with XCR0 0x%llx: %s\n",
			       (unsigned long long)cfg.xcr0, why);
			continue;
		}
		s->vm_cfg[s->nr_vms++] = cfg;
	}
	if (s->nr_vms < 2)
		SKIP(return, "only one VM configuration is supported here: no swap between "
		     "different guest XCR0s");
	run_stress(s, 0);
	for (i = 0; i < s->nr_vcpus; i++)
		for (j = 0; j < s->nr_vms; j++)
			if (!s->vm_rounds[i][j])
				SKIP(return, "VM %u of vCPU thread %u completed no round in %.3f s "
				     "(--duration and %u s more)", j, i, opt_duration / 1000.0,
				     STIM_WAIT_MS / 1000);
	print_exercised(s);
}

KVMFPU_MAIN(opts, NULL)
