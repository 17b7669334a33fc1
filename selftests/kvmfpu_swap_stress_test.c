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
 * Every vCPU thread checks each round fully (guest image, XSTATE_BV, host registers, re-entry,
 * KVM_SET_XSAVE on odd rounds). A failure names seed, VM, round and CPU and prints a replay
 * line: --round R makes every vCPU thread repeat round R's patterns under the same stimulus
 * (the patterns are deterministic, the interleaving is not).
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
#define ALL_ROUNDS	UINT64_MAX

static uint64_t opt_seed = 1, opt_vcpus = 2, opt_duration = 3, opt_cpu, opt_round = ALL_ROUNDS;
static uint64_t opt_allow_hotplug;

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
	{ "--vcpus", KVMFPU_OPT_NUMBER, &opt_vcpus, 1, MAX_VCPUS },
	{ "--duration", KVMFPU_OPT_NUMBER, &opt_duration, 1, 24 * 3600 },
	{ "--cpu", KVMFPU_OPT_NUMBER, &opt_cpu, 0, CPU_SETSIZE - 1 },
	{ "--round", KVMFPU_OPT_NUMBER, &opt_round, 0, UINT32_MAX },
	{ "--allow-hotplug", KVMFPU_OPT_FLAG, &opt_allow_hotplug, 0, 1 },
};

enum stimulus {
	STIM_USER_FPU	= 1 << 0,
	STIM_KERNEL_FPU	= 1 << 1,
	STIM_SIGNALS	= 1 << 2,
	STIM_HOTPLUG	= 1 << 3,
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
	pthread_t vcpu_threads[MAX_VCPUS];
	unsigned int nr_vcpus;
	/* Written by each vCPU thread as it ends. */
	unsigned long rounds[MAX_VCPUS], eintr[MAX_VCPUS], switches[MAX_VCPUS];
};

static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

/* Handled signals, counted by the handler: it cannot reach the fixture. */
static atomic_ulong signals_handled;

struct vcpu_thread {
	struct stress *s;
	unsigned int index;
};

static void pin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(opt_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		kvmfpu_error("cannot pin to CPU %llu: %s", (unsigned long long)opt_cpu,
			     strerror(errno));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The command line that repeats round @round of this test under the same stimulus. */
static void print_replay(const struct stress *s, unsigned int round)
{
	printf("# kvmfpu-replay: args=--seed 0x%llx --vcpus %u --duration %llu --cpu %llu "
	       "--round %u%s -r stress.%s.%s\n", (unsigned long long)opt_seed, s->nr_vcpus,
	       (unsigned long long)opt_duration, (unsigned long long)opt_cpu, round,
	       opt_allow_hotplug ? " --allow-hotplug" : "", s->variant, s->test);
}

/* Each vCPU thread owns a VM and runs verified swap rounds with its own patterns. */
static void *vcpu_main(void *arg)
{
	unsigned int checks = CHECK_GUEST_IMAGE | CHECK_XSTATE_BV | CHECK_HOST_REGS |
			      CHECK_GUEST_REENTRY | CHECK_SET_XSAVE;
	struct vcpu_thread *t = arg;
	struct stress *s = t->s;
	struct pattern_key k = { .seed = opt_seed, .vcpu = t->index };
	struct rusage ru;
	struct swap_ctx c;
	struct kvmfpu_vm v;
	unsigned int bad;

	pin();
	/*
	 * One VM creation at a time: the selftest library fills its KVM_GET_SUPPORTED_CPUID
	 * cache lazily and unlocked (kvm_get_supported_cpuid() publishes the table before the
	 * ioctl fills it), so a second thread could read it empty and assert "Linear address
	 * width (32 bits) not supported" in vm_create(): a harness error read as a failure.
	 */
	pthread_mutex_lock(&create_lock);
	kvmfpu_vm_create(&v, &s->cfg);
	pthread_mutex_unlock(&create_lock);
	if (swap_ctx_init(&c, &v))
		kvmfpu_error("cannot allocate images");
	c.max_print = 8;
	if (!v.cpuid_kept)
		s->cpuid_lost = true;
	s->vms_ready++;
	for (; !s->stop; s->rounds[t->index]++) {
		k.round = opt_round != ALL_ROUNDS ? opt_round : s->rounds[t->index];
		/* Alternate the round's checks so SET_XSAVE and plain re-entry both run. */
		bad = swap_round(&c, &k, k.round & 1 ? checks : checks & ~CHECK_SET_XSAVE);
		if (bad) {
			printf("# %u register(s) differ: seed 0x%llx, VM %u (its one vCPU, pattern "
			       "vCPU %u), round %u, CPU %d\n", bad, (unsigned long long)opt_seed,
			       t->index, t->index, k.round, sched_getcpu());
			print_replay(s, k.round);
			s->failures++;
			break;
		}
		/* After a first cycle, a round on the hot CPU ran after it came back. */
		if (s->hot_cycles && sched_getcpu() == s->hot_cpu)
			s->hot_rounds[t->index]++;
	}
	s->eintr[t->index] = v.eintr;
	if (!getrusage(RUSAGE_THREAD, &ru))
		s->switches[t->index] = ru.ru_nvcsw + ru.ru_nivcsw;
	swap_ctx_free(&c);
	kvmfpu_vm_destroy(&v);
	return NULL;
}

/* A thread that is not a vCPU: its registers must survive sched_yield() next to vCPUs. */
static void *user_fpu_main(void *arg)
{
	struct stress *s = arg;
	struct pattern_key k = { .seed = opt_seed, .vcpu = PATTERN_HOST - 1 };
	struct xs_layout l;
	struct ximage fill, out;
	uint64_t mask = host_check_mask();
	struct swap_ctx quiet = { .max_print = 8 };
	unsigned int n;

	pin();
	xs_layout_host(&l);
	if (ximage_alloc(&fill, &l, mask, false) || ximage_alloc(&out, &l, mask, false))
		kvmfpu_error("cannot allocate images");
	for (n = 0; !s->stop; n++) {
		k.round = opt_round != ALL_ROUNDS ? opt_round : n;
		pattern_fill_image(&fill, mask, &k);
		memset(out.buf, 0, out.size);
		host_regs_syscall(SYS_sched_yield, 0, 0, 0, &fill, &out, mask);
		if (swap_diff(&quiet, &fill, &out, mask, "user_fpu")) {
			printf("# a non-vCPU thread's registers changed across sched_yield(): "
			       "seed 0x%llx, round %u, CPU %d\n", (unsigned long long)opt_seed,
			       k.round, sched_getcpu());
			print_replay(s, k.round);
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

	pin();
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

	pin();
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

	pin();
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
	if (!kvmfpu_vm_config_supported(&self->s.cfg, why, sizeof(why)))
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(stress)
{
	if (self->s.alg_op >= 0)
		close(self->s.alg_op);
}

/*
 * Run the vCPU threads with the stimuli of @stim for --duration seconds, print what ran, and
 * fail on any difference. Whether each stimulus really happened is for the caller to judge.
 */
static void run_stress(struct stress *s, unsigned int stim)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	unsigned long rounds = 0, eintr = 0, switches = 0;
	struct vcpu_thread vt[MAX_VCPUS];
	pthread_t load[4];
	unsigned int i, nr_load = 0;
	char names[128];
	double t0;

	sigaction(SIGUSR1, &sa, NULL);
	signals_handled = 0;
	s->nr_vcpus = opt_vcpus;
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
	if ((stim & STIM_USER_FPU) && pthread_create(&load[nr_load++], NULL, user_fpu_main, s))
		kvmfpu_error("cannot start the user_fpu thread");
	if ((stim & STIM_KERNEL_FPU) && pthread_create(&load[nr_load++], NULL, kernel_fpu_main, s))
		kvmfpu_error("cannot start the kernel_fpu thread");
	if ((stim & STIM_SIGNALS) && pthread_create(&load[nr_load++], NULL, signal_main, s))
		kvmfpu_error("cannot start the signal thread");
	if ((stim & STIM_HOTPLUG) && pthread_create(&load[nr_load++], NULL, hotplug_main, s))
		kvmfpu_error("cannot start the hotplug thread");

	t0 = now();
	while (now() - t0 < opt_duration && !s->failures)
		usleep(10000);
	s->stop = true;
	for (i = 0; i < nr_load; i++)
		pthread_join(load[i], NULL);
	for (i = 0; i < s->nr_vcpus; i++) {
		pthread_join(s->vcpu_threads[i], NULL);
		rounds += s->rounds[i];
		eintr += s->eintr[i];
		switches += s->switches[i];
	}

	printf("# %u vCPU threads (one VM each) on CPU %llu%s for %.1f s, seed 0x%llx: %lu "
	       "verified rounds, %lu vCPU context switches, %lu non-vCPU register checks, %lu "
	       "kernel SHA-256 ops, %lu signals sent, %lu handled, %lu KVM_RUN ended by a signal "
	       "(EINTR)\n",
	       s->nr_vcpus, (unsigned long long)opt_cpu,
	       s->hot_cpu >= 0 ? " and the hotplugged CPU" : "", now() - t0,
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
	if (s->failures)
		kvmfpu_fail("%u thread(s) saw registers differ (seed, VM, round and CPU above)",
			    (unsigned int)s->failures);
	if (!rounds)
		kvmfpu_error("stress: no round completed in %llu s",
			     (unsigned long long)opt_duration);
	if (s->cpuid_lost)
		printf("# XSTATE_BV checked only within what KVM supports: KVM did not keep the "
		       "guest CPUID (see kvmfpu_swap_test's xstate_bv)\n");
	printf("# host registers checked: %s\n",
	       xs_mask_str(host_check_mask(), names, sizeof(names)));
}

static void print_exercised(const struct stress *s)
{
	kvmfpu_print_exercised(s->cfg.xsave_hidden ? XS_MASK_FPSSE : s->cfg.xcr0);
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
	char from[320], why[640];
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
	run_stress(&self->s, self->s.alg_op >= 0 ? STIM_ALL : STIM_ALL & ~STIM_KERNEL_FPU);
	if (!kernel_env_taint(&taint1))
		kvmfpu_error("/proc/sys/kernel/tainted became unreadable during the stress");
	if (taint1 & KERNEL_ENV_TAINT_WARN)
		kvmfpu_fail("stress.%s.kernel_warn: the kernel WARNed (taint W appeared) during "
			    "the stress, with CONFIG_X86_DEBUG_FPU: see dmesg", self->s.variant);
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
	run_stress(&self->s, STIM_HOTPLUG);
	if (self->s.hot_online_err)
		kvmfpu_error("hotplug: CPU %d cannot be onlined again: %s", cpu,
			     strerror(self->s.hot_online_err));
	if (see_warn && kernel_env_taint(&taint1) && (taint1 & KERNEL_ENV_TAINT_WARN))
		kvmfpu_fail("stress.%s.hotplug: the kernel WARNed (taint W appeared) while CPU %d "
			    "went offline and online: see dmesg", self->s.variant, cpu);
	if (self->s.hot_errno)
		SKIP(return, "offlining CPU %d failed: %s", cpu, strerror(self->s.hot_errno));
	if (!self->s.hot_cycles)
		SKIP(return, "no offline/online cycle of CPU %d completed in %llu s (--duration)",
		     cpu, (unsigned long long)opt_duration);
	for (i = 0; i < self->s.nr_vcpus; i++)
		if (!self->s.hot_rounds[i])
			SKIP(return, "vCPU thread %u completed no round on CPU %d after it came "
			     "back", i, cpu);
	print_exercised(&self->s);
}

KVMFPU_MAIN(opts, NULL)
