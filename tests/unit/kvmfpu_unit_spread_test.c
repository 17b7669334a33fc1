// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_spread_test: the benchmark's spread (bench/spread.h). A median that is really
 * a mean, or an unsorted "minimum", would let one repeat pass for the figure; a flag that
 * looks at the wrong statistic would hide a cost over its target. No /dev/kvm needed.
 */
#include <string.h>

#include "kselftest_harness.h"

#include "../../bench/spread.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

TEST(odd_count_unsorted)
{
	double v[] = { 3.0, 100.0, 1.0, 2.5, 2.0 };
	struct spread s = spread_of(v, ARRAY_LEN(v), 0);

	EXPECT_EQ(1.0, s.min);
	EXPECT_EQ(2.5, s.median);	/* not the mean, 21.7: one outlier must not move it */
	EXPECT_EQ(100.0, s.max);
	EXPECT_EQ(5, s.n);
	EXPECT_EQ(0, s.over);		/* no target */
	EXPECT_EQ(3.0, v[0]);		/* the caller's order is left alone */
}

TEST(even_count_and_one)
{
	double v[] = { 4.0, 1.0, 3.0, 2.0 };
	struct spread s = spread_of(v, ARRAY_LEN(v), 0);

	EXPECT_EQ(2.5, s.median);
	s = spread_of(v, 1, 0);
	EXPECT_EQ(4.0, s.min);
	EXPECT_EQ(4.0, s.median);
	EXPECT_EQ(4.0, s.max);
}

TEST(line)
{
	double v[] = { 1.954, 2.016, 2.104 };
	char buf[256];

	spread_line(buf, sizeof(buf), "verified cycle / round trip", spread_of(v, 3, 0), 2);
	EXPECT_STREQ("verified cycle / round trip  min 1.95  median 2.02  max 2.10", buf);
	spread_line(buf, sizeof(buf), "bare KVM_RUN round trips/s", spread_of(v, 3, 0), 0);
	EXPECT_STREQ("bare KVM_RUN round trips/s   min 2  median 2  max 2", buf);
}

TEST(flag_over_target_on_the_median)
{
	double over[] = { 1.9, 2.3, 2.4 }, some[] = { 1.5, 1.6, 2.7 }, within[] = { 1, 1.5, 2 };
	char buf[256];

	spread_flag(buf, sizeof(buf), "checking cost", spread_of(over, 3, 2), 2);
	EXPECT_STREQ("OVER TARGET: checking cost: median 2.30 of 3 repeats, target at most 2.00",
		     buf);
	spread_flag(buf, sizeof(buf), "checking cost", spread_of(some, 3, 2), 2);
	EXPECT_STREQ("note: checking cost: above its target of 2.00 in 1 of 3 repeats", buf);
	/* At the target is within it. */
	strcpy(buf, "stale");
	spread_flag(buf, sizeof(buf), "checking cost", spread_of(within, 3, 2), 2);
	EXPECT_STREQ("", buf);
}

TEST(json)
{
	double v[] = { 2.0, 1.0, 3.0 };
	char buf[256];

	spread_json(buf, sizeof(buf), spread_of(v, 3, 0));
	EXPECT_STREQ("{\"min\": 1.000, \"median\": 2.000, \"max\": 3.000}", buf);
}

TEST_HARNESS_MAIN
