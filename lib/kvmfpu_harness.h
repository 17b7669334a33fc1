/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness as kvmfpu's programs use it. Include this instead of
 * kselftest_harness.h, after the library headers (kvm_compat.h drops 6.1's own ASSERT_EQ).
 *
 * The harness provides FIXTURE, TEST_F and the forked, timed test child (__run_test()); the
 * loop over the tests, the selection and the exit status are kvmfpu's own, the same on 6.1's
 * harness (which has no test selection at all) and 6.12's:
 * - Selection by -l/-f/-F/-v/-V/-t/-T/-r as 6.12's test_enabled() does it (the first option
 *   that names a test decides), except that an include option that names no test is an error:
 *   a mistyped replay command must not pass by running nothing.
 * - The exit status is decided once, in the main process, after the last test: 2 if any test
 *   reported a kvmfpu_error(), else 1 if any failed, else 4 if none passed (all skipped), else
 *   0. Nothing is decided at exit(): the test children run atexit handlers too, with a copy of
 *   the parent's counters, and turned a failure after skips into a skip.
 * - A test child dies with the program: every child forked gets PR_SET_PDEATHSIG (the harness
 *   puts each test in a process group of its own with setpgrp(), so a terminal's Ctrl-C
 *   reaches only the parent), and a SIGINT or SIGTERM of the parent kills the running test's
 *   process group before the parent dies of it.
 * - On 6.1's harness a SKIP in FIXTURE_SETUP still runs the test body and the teardown
 *   (6.12's stops): KVMFPU_TEST_F() returns early then, and a teardown must work on a fixture
 *   whose setup skipped (the harness zeroes the fixture before setup; kvmfpu's destroy and
 *   free functions take zeroed objects).
 *
 * A program is: its fixtures and KVMFPU_TEST_F()s, then KVMFPU_MAIN(). Adding a test touches
 * nothing but its .c file (docs/adding-a-test.md).
 */
#ifndef KVMFPU_HARNESS_H
#define KVMFPU_HARNESS_H

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "options.h"
#include "report.h"

static struct __test_metadata *volatile kvmfpu_running_test;
static pid_t kvmfpu_forking_pid;

static bool kvmfpu_filter_names(const struct kvmfpu_filter *flt,
				const struct __fixture_metadata *f,
				const struct __fixture_variant_metadata *v,
				const struct __test_metadata *t)
{
	char name[1024];

	switch (tolower(flt->opt)) {
	case 'f':
		return !strcmp(f->name, flt->name);
	case 'v':
		return !strcmp(v->name, flt->name);
	case 't':
		return !strcmp(t->name, flt->name);
	default:
		snprintf(name, sizeof(name), "%s%s%s.%s", f->name, v->name[0] ? "." : "",
			 v->name, t->name);
		return !strcmp(name, flt->name);
	}
}

static bool kvmfpu_selected(const struct __fixture_metadata *f,
			    const struct __fixture_variant_metadata *v,
			    const struct __test_metadata *t)
{
	const struct kvmfpu_filter *flt;
	bool has_include = false;
	unsigned int i, nr;

	flt = kvmfpu_filters(&nr);
	for (i = 0; i < nr; i++) {
		if (kvmfpu_filter_names(&flt[i], f, v, t))
			return islower(flt[i].opt);
		has_include |= islower(flt[i].opt);
	}
	return !has_include;
}

#define kvmfpu_for_each_test(f, v, t, no_variant) \
	for (f = __fixture_list; f; f = f->next) \
		for (v = f->variant ?: &no_variant; v; v = v->next) \
			for (t = f->tests; t; t = t->next)

/* Count the selected tests and cases; refuse an include option that names no test. */
static unsigned int kvmfpu_check_selection(unsigned int *cases)
{
	struct __fixture_variant_metadata no_variant = { .name = "", };
	struct __fixture_variant_metadata *v, *last_v = NULL;
	const struct kvmfpu_filter *flt;
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	unsigned int i, nr, count = 0;

	flt = kvmfpu_filters(&nr);
	for (i = 0; i < nr; i++) {
		bool named = false;

		if (!islower(flt[i].opt))
			continue;
		kvmfpu_for_each_test(f, v, t, no_variant)
			named |= kvmfpu_filter_names(&flt[i], f, v, t);
		if (!named)
			kvmfpu_usage_error("-%c %s matches no test (-l lists them)", flt[i].opt,
					   flt[i].name);
	}
	*cases = 0;
	kvmfpu_for_each_test(f, v, t, no_variant) {
		if (!kvmfpu_selected(f, v, t))
			continue;
		count++;
		if (v != last_v)
			(*cases)++;
		last_v = v;
	}
	if (!count)
		kvmfpu_usage_error("the options select no test (-l lists them)");
	return count;
}

/* The 6.12 harness's -l format, which the runner parses (runner/catalog.py). */
static void kvmfpu_list_tests(void)
{
	struct __fixture_variant_metadata *v;
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	bool first = true;

	for (f = __fixture_list; f; f = f->next) {
		if (!f->tests)
			continue;
		if (first)
			fprintf(stderr, "%-20s %-25s %s\n", "# FIXTURE", "VARIANT", "TEST");
		else
			fprintf(stderr, "%.80s\n", "-------------------------------------------"
				"-------------------------------------------------");
		first = false;
		v = f->variant;
		t = f->tests;
		do {
			fprintf(stderr, "%-20s %-25s %s\n", t == f->tests ? f->name : "",
				v ? v->name : "", t ? t->name : "");
			v = v ? v->next : NULL;
			t = t ? t->next : NULL;
		} while (v || t);
	}
}

static void kvmfpu_before_fork(void)
{
	kvmfpu_forking_pid = getpid();
}

/*
 * In every child: die with the parent (SIGKILL: a test may block other signals), and not
 * after it either, if the parent is already gone. The parent's interrupt handlers are not the
 * child's business.
 */
static void kvmfpu_in_child(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != kvmfpu_forking_pid)
		_exit(KVMFPU_EXIT_ERROR);
}

/* SIGINT, SIGTERM of the main process: take the running test's process group along. */
static void kvmfpu_interrupted(int sig)
{
	struct __test_metadata *t = kvmfpu_running_test;

	if (t && t->pid > 0)
		kill(-t->pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline int kvmfpu_run_tests(int argc, char **argv)
{
	struct __fixture_variant_metadata no_variant = { .name = "", };
	struct __fixture_variant_metadata *v;
	struct __fixture_metadata *f;
	struct __test_results *results;
	struct __test_metadata *t;
	unsigned int count, cases, failed = 0, done = 0;

	/* The harness's own main loop is not used; referenced to keep -Wunused-function quiet. */
	(void)test_harness_run;

	count = kvmfpu_check_selection(&cases);
	if (kvmfpu_listing()) {
		kvmfpu_list_tests();
		return KSFT_PASS;
	}
	kvmfpu_check_kvm();

	results = mmap(NULL, sizeof(*results), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (results == MAP_FAILED)
		kvmfpu_usage_error("cannot map the harness's result page");
	if (pthread_atfork(kvmfpu_before_fork, NULL, kvmfpu_in_child))
		kvmfpu_usage_error("pthread_atfork failed");
	signal(SIGINT, kvmfpu_interrupted);
	signal(SIGTERM, kvmfpu_interrupted);

	ksft_print_header();
	ksft_set_plan(count);
	kvmfpu_print_seed();
	ksft_print_msg("Starting %u tests from %u test cases.\n", count, cases);
	kvmfpu_for_each_test(f, v, t, no_variant) {
		unsigned int fails_before = ksft_cnt.ksft_fail;

		if (!kvmfpu_selected(f, v, t))
			continue;
		t->results = results;
		t->pid = 0;	/* not the previous variant's: kvmfpu_interrupted() kills it */
		kvmfpu_running_test = t;
		__run_test(f, v, t);
		kvmfpu_running_test = NULL;
		t->results = NULL;
		done++;
		failed += ksft_cnt.ksft_fail != fails_before;
	}
	munmap(results, sizeof(*results));

	ksft_print_msg("%s: %u / %u tests passed.\n", failed ? "FAILED" : "PASSED",
		       done - failed, done);
	ksft_print_cnts();
	fflush(stdout);
	if (kvmfpu_error_seen())
		return KVMFPU_EXIT_ERROR;
	if (failed || ksft_cnt.ksft_fail || ksft_cnt.ksft_error)
		return KSFT_FAIL;
	if (!ksft_cnt.ksft_pass && !ksft_cnt.ksft_xpass && !ksft_cnt.ksft_xfail)
		return KSFT_SKIP;
	return KSFT_PASS;
}

/*
 * Did FIXTURE_SETUP end in SKIP? Up to 6.8 the harness records a skip in _metadata->skip and
 * runs the body anyway; from 6.9 (the series that added XFAIL_ADD and replaced passed/skip
 * with exit_code) a skipped setup ends the test before the body, so this is never true there.
 */
#ifdef XFAIL_ADD
#define kvmfpu_setup_skipped(_metadata)	false
#else
#define kvmfpu_setup_skipped(_metadata)	((_metadata)->skip)
#endif

/*
 * KVMFPU_TEST_F(fixture, name) and KVMFPU_TEST_F_TIMEOUT(fixture, name, seconds): TEST_F()
 * whose body runs only when the fixture's setup completed, on every harness version.
 */
#define __KVMFPU_TEST_F(fixture, name, test_f)					\
	static void kvmfpu_##fixture##_##name(struct __test_metadata *_metadata,	\
		FIXTURE_DATA(fixture) *self, const FIXTURE_VARIANT(fixture) *variant);	\
	test_f									\
	{									\
		if (!kvmfpu_setup_skipped(_metadata))				\
			kvmfpu_##fixture##_##name(_metadata, self, variant);	\
	}									\
	static void kvmfpu_##fixture##_##name(					\
		struct __test_metadata __attribute__((unused)) *_metadata,	\
		FIXTURE_DATA(fixture) __attribute__((unused)) *self,		\
		const FIXTURE_VARIANT(fixture) __attribute__((unused)) *variant)
#define KVMFPU_TEST_F(fixture, name)						\
	__KVMFPU_TEST_F(fixture, name, TEST_F(fixture, name))
#define KVMFPU_TEST_F_TIMEOUT(fixture, name, seconds)				\
	__KVMFPU_TEST_F(fixture, name, TEST_F_TIMEOUT(fixture, name, seconds))

/*
 * The setup and teardown of a fixture whose tests drive the AMX guest (lib/kvmfpu_vm.h): the
 * fixture has `struct kvmfpu_vm v` and `struct ximage expected`; setup names the replay
 * arguments (seed @seed, variant name @vname, "" without variants), skips unless AMX is
 * usable, and leaves an AMX VM with the pattern of @seed for guest XCR0 @mask in its fill
 * image and @expected (kvmfpu_vm_amx_setup()). @more runs at the end of the setup, @teardown
 * at the start of the teardown (each a statement, or nothing).
 */
#define KVMFPU_AMX_FIXTURE(fixture, mask, seed, vname, more, teardown)		\
	FIXTURE_SETUP(fixture)							\
	{									\
		char why[512];							\
										\
		KVMFPU_REPLAY(seed, vname);					\
		if (!kvmfpu_vm_amx_setup(&self->v, mask, seed, &self->expected,	\
					 why, sizeof(why)))			\
			SKIP(return, "%s", why);				\
		more;								\
	}									\
	FIXTURE_TEARDOWN(fixture)						\
	{									\
		kvmfpu_vm_amx_teardown(&self->v, &self->expected);		\
		teardown;							\
	}

static inline void kvmfpu_check_opts(void (*check)(void))
{
	if (check)
		check();
}

/*
 * main(): the options of @opts (an array of struct kvmfpu_opt, the program's own; the
 * selection options -l -r -f -v -t ... are always there), then @check (a function that
 * refuses a bad combination with kvmfpu_usage_error(), or NULL), then the selected tests
 * (kvmfpu_run_tests()).
 */
#define KVMFPU_MAIN(opts, check)							\
	int main(int argc, char **argv)							\
	{										\
		bool listing;								\
											\
		argc = kvmfpu_parse_opts(argc, argv, opts, ARRAY_SIZE(opts), &listing);	\
		kvmfpu_check_opts(check);						\
		kvmfpu_start(listing);							\
		return kvmfpu_run_tests(argc, argv);					\
	}

#endif /* KVMFPU_HARNESS_H */
