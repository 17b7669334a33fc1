/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness as kvmfpu's programs use it. Include this instead of
 * kselftest_harness.h, after the library headers (kvm_compat.h drops 6.1's own ASSERT_EQ).
 *
 * - The harness exits 0 when nothing failed, even if every test was skipped; kselftest's
 *   convention, and ours (docs/test-programs.md), is exit 4 when nothing ran. The harness's
 *   counters (ksft_cnt, one copy per program) decide it at exit.
 * - On 6.1's harness a SKIP in FIXTURE_SETUP still runs the test body (6.12's stops), so
 *   fixtures set a "ready" flag and bodies return early without it.
 */
#ifndef KVMFPU_HARNESS_H
#define KVMFPU_HARNESS_H

#include <stdlib.h>
#include <unistd.h>

#include "kselftest_harness.h"

static void kvmfpu_skip_if_nothing_ran(void)
{
	if (ksft_cnt.ksft_xskip && !ksft_cnt.ksft_pass && !ksft_cnt.ksft_fail &&
	    !ksft_cnt.ksft_xpass && !ksft_cnt.ksft_xfail && !ksft_cnt.ksft_error) {
		fflush(stdout);
		_exit(KSFT_SKIP);
	}
}

static inline int kvmfpu_run_tests(int argc, char **argv)
{
	atexit(kvmfpu_skip_if_nothing_ran);
	return test_harness_run(argc, argv);
}

#endif /* KVMFPU_HARNESS_H */
