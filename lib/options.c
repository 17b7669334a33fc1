// SPDX-License-Identifier: GPL-2.0
/*
 * Shared command-line handling of the test programs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "report.h"
#include "xstate.h"

static uint64_t parse_value(const struct kvmfpu_opt *o, const char *s)
{
	char why[256];
	uint64_t v;
	char *end;

	if (o->kind == KVMFPU_OPT_XCR0) {
		if (!xs_parse_mask(s, &v))
			kvmfpu_usage_error("%s '%s': not a number or component list", o->name, s);
		if (!xs_xcr0_valid(v, why, sizeof(why)))
			kvmfpu_usage_error("%s: %s", o->name, why);
		return v;
	}
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end || *s == '-')
		kvmfpu_usage_error("%s: '%s' is not a number", o->name, s);
	if (v < o->min || v > o->max)
		kvmfpu_usage_error("%s must be from %llu to %llu", o->name,
				   (unsigned long long)o->min, (unsigned long long)o->max);
	return v;
}

int kvmfpu_parse_opts(int argc, char **argv, const struct kvmfpu_opt *opts, unsigned int nr,
		      bool *listing)
{
	int i, n = 1;
	unsigned int j;

	*listing = false;
	for (i = 1; i < argc; i++) {
		for (j = 0; j < nr && strcmp(argv[i], opts[j].name); j++)
			;
		if (j < nr) {
			if (i + 1 >= argc)
				kvmfpu_usage_error("%s needs a value", opts[j].name);
			*opts[j].value = parse_value(&opts[j], argv[++i]);
			continue;
		}
		if (!strcmp(argv[i], "-l") || !strcmp(argv[i], "-h"))
			*listing = true;
		argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

void kvmfpu_start(bool listing)
{
	if (!listing)
		require_usable_kvm();
	kvmfpu_report_init();
}
