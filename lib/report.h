/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How a test says what happened, in the lines docs/test-programs.md defines. A KVM failure and
 * a harness or environment error look different: kvmfpu_fail() is a verdict about KVM,
 * kvmfpu_error() is not, and makes the program exit 2 whatever else happened.
 */
#ifndef KVMFPU_REPORT_H
#define KVMFPU_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVMFPU_EXIT_ERROR	2

/* Call once from main() before the tests run. */
void kvmfpu_report_init(void);
/* Whether a kvmfpu_error() happened in any test so far: the program then exits 2. */
bool kvmfpu_error_seen(void);

/*
 * A failure: the reason as a "# " line, then the test fails. When the running test named its
 * replay arguments (kvmfpu_replay_set()), a "# kvmfpu-replay: args=..." line comes first
 * (docs/test-programs.md). An error is never a failure and prints no replay line.
 */
void kvmfpu_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void kvmfpu_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* A bad command line or environment before any test ran: one line on stderr, exit 2. */
void kvmfpu_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * The components whose state really went through KVM in a passing test. Count only what the
 * configuration gives the guest: a KVM that ignores the guest CPUID (kvm_pvm) may let more
 * through its uABI, which is checked but must not read as "tested" in a run's summary.
 */
void kvmfpu_print_exercised(uint64_t mask);

/*
 * Exit before any test when KVM cannot be used at all: no /dev/kvm is a missing feature
 * (exit 4, skip); a /dev/kvm that cannot be opened or has the wrong API version is an
 * environment error (exit 2).
 */
void kvmfpu_require_usable_kvm(void);

/*
 * The arguments that replay one test (docs/test-programs.md, "# kvmfpu-replay: args=..."):
 * "--seed 0x<seed> -r <fixture>[.<variant>].<test>", the name as the kselftest harness's -r
 * matches it (no variant part for a fixture without variants). Returns what snprintf() returns.
 */
int kvmfpu_replay_args(char *buf, size_t len, uint64_t seed, const char *fixture,
		       const char *variant, const char *test);
/*
 * Name the running test's replay arguments for kvmfpu_fail(); set in the forked test process
 * (KVMFPU_REPLAY() from a FIXTURE_SETUP or a TEST body, where the harness's _metadata is in
 * scope; @vname is the variant's name, "" without variants). Tests that replay by round print
 * their own line instead and leave this unset.
 */
void kvmfpu_replay_set(uint64_t seed, const char *fixture, const char *variant, const char *test);
#define KVMFPU_REPLAY(seed, vname)	\
	kvmfpu_replay_set(seed, _metadata->fixture->name, vname, _metadata->name)
/* The same for a program without --seed (kvmfpu_xcr0_test): "-r <name>" alone. */
void kvmfpu_replay_set_name(const char *fixture, const char *variant, const char *test);
#define KVMFPU_REPLAY_NAME(vname)	\
	kvmfpu_replay_set_name(_metadata->fixture->name, vname, _metadata->name)
/*
 * A thread's own failure context (the stress test's vCPU threads): while set, kvmfpu_fail()
 * in this thread calls @fn(@arg) before its message instead of printing the test's replay
 * line; @fn prints the replay line and where the thread was (seed, VM, vCPU, round, CPU).
 * NULL clears it.
 */
void kvmfpu_fail_context(void (*fn)(void *arg), void *arg);

#endif /* KVMFPU_REPORT_H */
