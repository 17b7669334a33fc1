// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_verdict_fixture: the kvmfpu harness layer with no KVM underneath, for
 * tests/cli/test_verdicts.py. Each test ends one way (pass, skip, kvmfpu_fail(), kvmfpu_error(),
 * or never) so that a selection of them (-r verdict.skip -r verdict.fail ...) checks that the
 * program's KTAP lines and exit code say exactly what happened. Not a test of KVM: its name
 * does not end in _test, so neither the runner nor mk/run-selftests.sh picks it up.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "options.h"
#include "report.h"

#include "kvmfpu_harness.h"

static uint64_t opt_seed = 1;

static const struct kvmfpu_opt opts[] = {
	{ "--seed", KVMFPU_OPT_NUMBER, &opt_seed, 0, UINT64_MAX },
};

FIXTURE(verdict) {
	int unused;
};

FIXTURE_SETUP(verdict)
{
}

FIXTURE_TEARDOWN(verdict)
{
}

TEST_F(verdict, pass)
{
	printf("# passing\n");
}

TEST_F(verdict, skip)
{
	SKIP(return, "skipped on purpose");
}

TEST_F(verdict, fail)
{
	kvmfpu_fail("failed on purpose");
}

TEST_F(verdict, fail_again)
{
	kvmfpu_fail("failed on purpose again");
}

/* A failure of a test that named its replay (as kvmfpu_xcr0_test does, without --seed). */
TEST_F(verdict, fail_replayed)
{
	KVMFPU_REPLAY_NAME("");
	kvmfpu_fail("failed on purpose, replay named");
}

TEST_F(verdict, error)
{
	kvmfpu_error("an environment error on purpose");
}

/*
 * A setup that skips: its body must not run, on any harness version (6.1's runs the body after
 * a SKIP in FIXTURE_SETUP unless KVMFPU_TEST_F() stops it).
 */
FIXTURE(setup_skip) {
	int unused;
};

FIXTURE_SETUP(setup_skip)
{
	SKIP(return, "setup skipped on purpose");
}

FIXTURE_TEARDOWN(setup_skip)
{
}

KVMFPU_TEST_F(setup_skip, body)
{
	kvmfpu_fail("the body ran after its setup skipped");
}

/*
 * Never ends by itself: a grandchild in a process group of its own and this test both sleep,
 * after one line that names their pids. What is left of them after the parent is interrupted
 * is what a Ctrl-C would leave behind.
 */
TEST_F(verdict, hang)
{
	pid_t pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	if (pid < 0)
		kvmfpu_error("fork failed");
	printf("# kvmfpu-verdict-hang: test=%d grandchild=%d\n", getpid(), pid);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	bool listing;

	argc = kvmfpu_parse_opts(argc, argv, opts, ARRAY_SIZE(opts), &listing);
	kvmfpu_report_init();
	return kvmfpu_run_tests(argc, argv);
}
