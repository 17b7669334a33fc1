// SPDX-License-Identifier: GPL-2.0
/*
 * Verdict and error reporting. Tests run in children forked by the kselftest harness; an
 * error seen in a child is recorded in a shared page so that the parent's exit status says 2
 * (kvmfpu_run_tests() decides it; no atexit handler, which would run in the children too).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include <unistd.h>

#include "report.h"
#include "xstate.h"

#define KSFT_FAIL 1
#define KSFT_SKIP 4

static volatile int *error_seen;
static pid_t main_pid;

void kvmfpu_report_init(void)
{
	void *p = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		kvmfpu_usage_error("cannot map the shared error flag");
	error_seen = p;
	main_pid = getpid();
}

bool kvmfpu_error_seen(void)
{
	return error_seen && *error_seen;
}

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
	printf("# %s", prefix);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
}

/* The running test's replay arguments; set in the forked test process, before any check. */
static char replay[256];

/* "-r <fixture>[.<variant>].<test>", as the kselftest harness's -r matches a test. */
static int replay_name(char *buf, size_t len, const char *fixture, const char *variant,
		       const char *test)
{
	bool v = variant && *variant;

	return snprintf(buf, len, "-r %s%s%s.%s", fixture, v ? "." : "", v ? variant : "", test);
}

int kvmfpu_replay_args(char *buf, size_t len, uint64_t seed, const char *fixture,
		       const char *variant, const char *test)
{
	char name[sizeof(replay) - 32];	/* room for "--seed 0x<16 digits> " */

	replay_name(name, sizeof(name), fixture, variant, test);
	return snprintf(buf, len, "--seed 0x%llx %s", (unsigned long long)seed, name);
}

void kvmfpu_replay_set(uint64_t seed, const char *fixture, const char *variant, const char *test)
{
	kvmfpu_replay_args(replay, sizeof(replay), seed, fixture, variant, test);
}

void kvmfpu_replay_set_name(const char *fixture, const char *variant, const char *test)
{
	replay_name(replay, sizeof(replay), fixture, variant, test);
}

/* A thread's own failure context (kvmfpu_fail_context()). */
static __thread void (*fail_context_fn)(void *arg);
static __thread void *fail_context_arg;

void kvmfpu_fail_context(void (*fn)(void *arg), void *arg)
{
	fail_context_fn = fn;
	fail_context_arg = arg;
}

void kvmfpu_fail(const char *fmt, ...)
{
	va_list ap;

	if (fail_context_fn)
		fail_context_fn(fail_context_arg);
	else if (replay[0])
		printf("# kvmfpu-replay: args=%s\n", replay);
	va_start(ap, fmt);
	vprint("", fmt, ap);
	va_end(ap);
	exit(KSFT_FAIL);
}

void kvmfpu_error(const char *fmt, ...)
{
	va_list ap;

	if (error_seen)
		*error_seen = 1;
	va_start(ap, fmt);
	vprint("kvmfpu-error: msg=", fmt, ap);
	va_end(ap);
	/* In a test the harness must see a failed test; outside one the program's status is 2. */
	exit(main_pid && getpid() != main_pid ? KSFT_FAIL : KVMFPU_EXIT_ERROR);
}

void kvmfpu_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kvmfpu: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(KVMFPU_EXIT_ERROR);
}

void kvmfpu_print_exercised(uint64_t mask)
{
	char names[256];

	printf("# kvmfpu-exercised: components=%s\n", xs_mask_str(mask, names, sizeof(names)));
	fflush(stdout);
}

void kvmfpu_require_usable_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), api;

	if (fd < 0 && errno == ENOENT) {
		printf("TAP version 13\n1..0 # SKIP /dev/kvm does not exist: no KVM on this machine\n");
		fprintf(stderr, "kvmfpu: /dev/kvm does not exist: no KVM on this machine\n");
		exit(KSFT_SKIP);
	}
	if (fd < 0)
		kvmfpu_usage_error("cannot open /dev/kvm: %s", strerror(errno));
	api = ioctl(fd, KVM_GET_API_VERSION, NULL);
	close(fd);
	if (api != KVM_API_VERSION)
		kvmfpu_usage_error("/dev/kvm is unusable: KVM_GET_API_VERSION returned %d, not %d",
				   api, KVM_API_VERSION);
}
