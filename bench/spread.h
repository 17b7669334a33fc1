/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The spread of a benchmark figure over repeats, and the lines that report it: minimum,
 * median and maximum, so that one lucky or unlucky repeat cannot pass for the figure, and a
 * figure over its target said on a line of its own. Header-only: kvmfpu_swap_bench and its
 * unit test (tests/unit/kvmfpu_unit_spread_test.c) both include it.
 */
#ifndef KVMFPU_BENCH_SPREAD_H
#define KVMFPU_BENCH_SPREAD_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPREAD_MAX_REPEATS	100

struct spread {
	double min, median, max;
	unsigned int n, over;		/* repeats, and how many of them exceed the target */
};

static inline int spread_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Minimum, median (the mean of the middle two for an even count) and maximum of @v[0..n-1]. */
static inline struct spread spread_of(const double *v, unsigned int n, double target)
{
	double s[SPREAD_MAX_REPEATS];
	struct spread r = { .n = n };

	if (n == 0 || n > SPREAD_MAX_REPEATS)
		return r;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), spread_cmp);
	r.min = s[0];
	r.max = s[n - 1];
	r.median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	for (unsigned int i = 0; target > 0 && i < n; i++)
		r.over += v[i] > target;
	return r;
}

/*
 * "NAME  min MIN  median MEDIAN  max MAX", the figures with @decimals digits after the point,
 * NAME padded to a common column.
 */
static inline int spread_line(char *buf, size_t size, const char *name, struct spread s,
			      int decimals)
{
	return snprintf(buf, size, "%-28s min %.*f  median %.*f  max %.*f", name, decimals, s.min,
			decimals, s.median, decimals, s.max);
}

/*
 * The line that flags @s against @target ("" when every repeat is within it): over target
 * when the median is, else how many repeats were.
 */
static inline int spread_flag(char *buf, size_t size, const char *what, struct spread s,
			      double target)
{
	const char *over = "OVER TARGET: %s: median %.2f of %u repeats, target at most %.2f";
	const char *some = "note: %s: above its target of %.2f in %u of %u repeats";

	if (s.median > target)
		return snprintf(buf, size, over, what, s.median, s.n, target);
	if (s.over)
		return snprintf(buf, size, some, what, target, s.over, s.n);
	if (size)
		buf[0] = '\0';
	return 0;
}

/* {"min": MIN, "median": MEDIAN, "max": MAX} */
static inline int spread_json(char *buf, size_t size, struct spread s)
{
	return snprintf(buf, size, "{\"min\": %.3f, \"median\": %.3f, \"max\": %.3f}", s.min,
			s.median, s.max);
}

#endif
