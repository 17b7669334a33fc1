// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_swap_stress_test: the swap checks of kvmfpu_swap_test, on several vCPU threads at
 * once, while other threads of the same process use the FPU, the kernel uses it on their
 * behalf, and signals interrupt the vCPU threads.
 *
 * Guards classes of bugs that need concurrency to show:
 * - corruption of a *non-vCPU* thread's registers after a vCPU thread ran on the same CPU
 *   (fpu_swap_kvm_fpstate() or the lazy restore leaving the wrong fpstate live): user_fpu
 *   checks a plain thread's registers across sched_yield() while vCPU threads swap there;
 * - kernel FPU use interrupting KVM's swap (KNOWLEDGE 2.13): kernel_fpu threads hash through
 *   AF_ALG, so the kernel runs its SIMD code between our vCPUs' exits;
 * - FPU state on signal delivery to a vCPU thread (CVE-2025-68171 was the AMX form): signals
 *   hit vCPU threads inside KVM_RUN, whose handler uses the FPU itself; the vCPU thread's own
 *   registers and the guest's must both survive.
 * All threads are pinned to one CPU (--cpu) so they really interleave there.
 *
 * Run: kvmfpu_swap_stress_test [--vcpus N] [--duration S] [--seed N] [--cpu C]
 */
#define _GNU_SOURCE	/* sched_setaffinity(); 6.1's CFLAGS do not define it */
#include <errno.h>
#include <linux/if_alg.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fpu_vm.h"
#include "host_regs.h"
#include "options.h"
#include "pattern.h"
#include "report.h"
#include "swap_round.h"

#include "kvmfpu_harness.h"

#define MAX_VCPUS	8

static uint64_t opt_seed = 1, opt_vcpus = 2, opt_duration = 3, opt_cpu;

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
	{ "--vcpus", KVMFPU_OPT_NUMBER, &opt_vcpus, 1, MAX_VCPUS },
	{ "--duration", KVMFPU_OPT_NUMBER, &opt_duration, 1, 24 * 3600 },
	{ "--cpu", KVMFPU_OPT_NUMBER, &opt_cpu, 0, CPU_SETSIZE - 1 },
};

/* Shared between the threads of one test. */
struct stress {
	struct fpu_config cfg;
	atomic_bool stop;
	atomic_uint failures;
	atomic_uint vms_ready;		/* vCPU threads past VM creation */
	atomic_ulong rounds, user_checks, kernel_ops, signals;
	pthread_t vcpu_threads[MAX_VCPUS];
	unsigned int nr_vcpus;
};

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

/* Each vCPU thread owns a VM and runs verified swap rounds with its own patterns. */
static void *vcpu_main(void *arg)
{
	unsigned int checks = CHECK_GUEST_IMAGE | CHECK_XSTATE_BV | CHECK_HOST_REGS |
			      CHECK_GUEST_REENTRY | CHECK_SET_XSAVE;
	struct vcpu_thread *t = arg;
	struct pattern_key k = { .seed = opt_seed, .vcpu = t->index };
	struct swap_ctx c;
	struct fpu_vm v;
	unsigned int i;

	pin();
	fpu_vm_create(&v, &t->s->cfg, KVMFPU_GUEST_SWAP);
	if (swap_ctx_init(&c, &v))
		kvmfpu_error("cannot allocate images");
	c.max_print = 8;
	t->s->vms_ready++;
	while (!t->s->stop) {
		/* Alternate the round's checks so SET_XSAVE and plain re-entry both run. */
		i = swap_round(&c, &k, k.round & 1 ? checks : checks & ~CHECK_SET_XSAVE);
		if (i) {
			printf("# kvmfpu-replay: args=--seed 0x%llx vcpu %u round %u\n",
			       (unsigned long long)opt_seed, t->index, k.round);
			t->s->failures++;
			break;
		}
		k.round++;
		t->s->rounds++;
	}
	swap_ctx_free(&c);
	fpu_vm_destroy(&v);
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

	pin();
	xs_layout_host(&l);
	if (ximage_alloc(&fill, &l, mask, false) || ximage_alloc(&out, &l, mask, false))
		kvmfpu_error("cannot allocate images");
	while (!s->stop) {
		ximage_fill_pattern(&fill, mask, &k);
		memset(out.buf, 0, out.size);
		host_syscall_with_regs(SYS_sched_yield, 0, 0, 0, &fill, &out, mask);
		if (swap_diff(&quiet, &fill, &out, mask, "user_fpu")) {
			printf("# user_fpu: a non-vCPU thread's registers changed across sched_yield()"
			       " (round %u)\n", k.round);
			s->failures++;
			break;
		}
		k.round++;
		s->user_checks++;
	}
	ximage_free(&fill);
	ximage_free(&out);
	return NULL;
}

/* Make the kernel use its SIMD code: SHA-256 through AF_ALG, in a loop. */
static void *kernel_fpu_main(void *arg)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG, .salg_type = "hash",
				   .salg_name = "sha256" };
	static char buf[16384];
	struct stress *s = arg;
	char digest[32];
	int tfm, op;

	pin();
	tfm = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (tfm < 0 || bind(tfm, (struct sockaddr *)&sa, sizeof(sa))) {
		printf("# kernel_fpu: AF_ALG sha256 unavailable (%s): no kernel FPU load\n",
		       strerror(errno));
		if (tfm >= 0)
			close(tfm);
		return NULL;
	}
	op = accept(tfm, NULL, 0);
	while (op >= 0 && !s->stop) {
		if (write(op, buf, sizeof(buf)) != sizeof(buf) ||
		    read(op, digest, sizeof(digest)) != sizeof(digest))
			break;
		s->kernel_ops++;
	}
	if (op >= 0)
		close(op);
	close(tfm);
	return NULL;
}

/* The handler uses the FPU: the interrupted context's registers must come back. */
static void on_signal(int sig)
{
	volatile double x = sig;

	asm volatile("pxor %%xmm0, %%xmm0\n\tpcmpeqd %%xmm15, %%xmm15" : : : "xmm0", "xmm15");
	x = x * 1.5 + 0.25;
	(void)x;
}

static void *signal_main(void *arg)
{
	struct timespec pause = { 0, 200 * 1000 };
	struct stress *s = arg;
	unsigned int i;

	pin();
	while (!s->stop) {
		for (i = 0; i < s->nr_vcpus; i++)
			pthread_kill(s->vcpu_threads[i], SIGUSR1);
		s->signals++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

FIXTURE(stress) {
	struct stress s;
	bool ready;
};

FIXTURE_VARIANT(stress) {
	const char *name;
	bool xsave_hidden;
	bool load;		/* the non-vCPU threads and the signals */
};

FIXTURE_VARIANT_ADD(stress, legacy) {
	.name = "legacy", .xsave_hidden = true, .load = true,
};
FIXTURE_VARIANT_ADD(stress, max) {
	.name = "max", .load = true,
};
FIXTURE_VARIANT_ADD(stress, max_quiet) {
	.name = "max_quiet",
};

FIXTURE_SETUP(stress)
{
	char why[512];

	self->s.cfg.xsave_hidden = variant->xsave_hidden;
	self->s.cfg.xcr0 = variant->xsave_hidden ? XS_MASK_FPSSE :
			   kvm_supported_xcr0() & FPU_GUEST_COMPS;
	self->s.cfg.xcr0_by_host = true;
	if (!fpu_config_supported(&self->s.cfg, why, sizeof(why)))
		SKIP(return, "%s", why);
	self->ready = true;
}

FIXTURE_TEARDOWN(stress)
{
}

TEST_F_TIMEOUT(stress, swap, 300)
{
	struct vcpu_thread vt[MAX_VCPUS];
	pthread_t load[3];
	struct stress *s = &self->s;
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	unsigned int i, nr_load = 0;
	char names[128];
	double t0;

	if (!self->ready)
		return;
	sigaction(SIGUSR1, &sa, NULL);
	s->nr_vcpus = opt_vcpus;
	for (i = 0; i < s->nr_vcpus; i++) {
		vt[i] = (struct vcpu_thread){ s, i };
		if (pthread_create(&s->vcpu_threads[i], NULL, vcpu_main, &vt[i]))
			kvmfpu_error("cannot start vCPU thread %u", i);
	}
	/*
	 * The signals start once every VM exists: the library asserts on an interrupted
	 * KVM_CREATE_VM, while KVM_RUN's EINTR is part of what is tested.
	 */
	while (s->vms_ready < s->nr_vcpus && !s->failures)
		usleep(1000);
	if (variant->load) {
		if (host_check_mask() &&
		    !pthread_create(&load[nr_load], NULL, user_fpu_main, s))
			nr_load++;
		if (!pthread_create(&load[nr_load], NULL, kernel_fpu_main, s))
			nr_load++;
		if (!pthread_create(&load[nr_load], NULL, signal_main, s))
			nr_load++;
	}

	t0 = now();
	while (now() - t0 < opt_duration && !s->failures)
		usleep(10000);
	s->stop = true;
	for (i = 0; i < nr_load; i++)
		pthread_join(load[i], NULL);
	for (i = 0; i < s->nr_vcpus; i++)
		pthread_join(s->vcpu_threads[i], NULL);

	printf("# %u vCPU threads on CPU %llu for %.1f s: %lu verified rounds, %lu non-vCPU "
	       "register checks, %lu kernel SHA-256 ops, %lu signal bursts\n", s->nr_vcpus,
	       (unsigned long long)opt_cpu, now() - t0, (unsigned long)s->rounds, (unsigned long)s->user_checks,
	       (unsigned long)s->kernel_ops, (unsigned long)s->signals);
	if (s->failures)
		kvmfpu_fail("stress: %u thread(s) saw registers differ", (unsigned int)s->failures);
	if (!s->rounds)
		kvmfpu_error("stress: no round completed in %llu s", (unsigned long long)opt_duration);
	printf("# host registers checked: %s\n",
	       xs_mask_str(host_check_mask(), names, sizeof(names)));
	kvmfpu_print_exercised(s->cfg.xsave_hidden ? XS_MASK_FPSSE : s->cfg.xcr0);
}

int main(int argc, char **argv)
{
	bool listing;

	argc = kvmfpu_parse_opts(argc, argv, opts, ARRAY_SIZE(opts), &listing);
	kvmfpu_start(listing);
	return kvmfpu_run_tests(argc, argv);
}
