/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How a test says what happened, in the lines docs/test-programs.md defines. A KVM failure and
 * a harness or environment error look different: kvmfpu_fail() is a verdict about KVM,
 * kvmfpu_error() is not, and makes the program exit 2 whatever else happened.
 */
#ifndef KVMFPU_REPORT_H
#define KVMFPU_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#define KVMFPU_EXIT_ERROR	2

/* Call once from main() before the tests run. */
void kvmfpu_report_init(void);
/* Whether a kvmfpu_error() happened in any test so far: the program then exits 2. */
bool kvmfpu_error_seen(void);

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
void require_usable_kvm(void);

#endif /* KVMFPU_REPORT_H */
