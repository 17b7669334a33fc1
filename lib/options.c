// SPDX-License-Identifier: GPL-2.0
/*
 * Shared command-line handling of the test programs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "report.h"
#include "xstate.h"

#define MAX_FILTERS	256

static const char *prog_name = "kvmfpu";
static const struct kvmfpu_opt *prog_opts;
static unsigned int prog_nr_opts;
static struct kvmfpu_filter filters[MAX_FILTERS];
static unsigned int nr_filters;
static bool listing_only, need_kvm;

/* Every option some kvmfpu program takes, so that -h and refusals can say what it means. */
static const struct {
	const char *name, *arg, *help;
} known_opts[] = {
	{ "--seed", "N", "base seed of the register patterns" },
	{ "--rounds", "N", "rounds per test" },
	{ "--round", "R", "run only round R (as a replay line names it)" },
	{ "--xcr0", "MASK", "XCR0 of the max variant, a mask or a list like x87,sse,avx" },
	{ "--vcpus", "N", "vCPU threads, each with a VM of its own" },
	{ "--duration", "S", "seconds to run each test, to the ms" },
	{ "--cpu", "N", "host CPU the vCPU threads are pinned to" },
	{ "--allow-hotplug", "", "let the hotplug test offline and online a host CPU" },
};

/* The harness's selection options, which kvmfpu applies itself (kvmfpu_harness.h). */
static const char harness_help[] =
	"  -l              list the tests (FIXTURE VARIANT TEST, on stderr) and exit\n"
	"  -r F.V.T        run the test named fixture.variant.test\n"
	"  -f NAME         run the tests of fixture NAME\n"
	"  -v NAME         run the tests of every variant named NAME\n"
	"  -t NAME         run every test named NAME\n"
	"  -F NAME         leave out fixture NAME\n"
	"  -V NAME         leave out variants named NAME\n"
	"  -T NAME         leave out tests named NAME\n"
	"  -h              print this help and exit\n"
	"\n"
	"Each option may be given several times. For each test the first option that names it\n"
	"decides; a test no option names runs only if no -r, -f, -v or -t was given. Each -r, -f,\n"
	"-v and -t must name at least one test.\n"
	"\n"
	"Exit: 0 passed (at least one test ran), 1 a check failed, 2 bad arguments or a harness\n"
	"or environment error, 4 everything skipped.\n";

static void print_help(void)
{
	unsigned int i, k;

	printf("Usage: %s [options]\n\nOptions of this program:\n", prog_name);
	for (i = 0; i < prog_nr_opts; i++) {
		const struct kvmfpu_opt *o = &prog_opts[i];
		char left[32];

		for (k = 0; k < sizeof(known_opts) / sizeof(known_opts[0]); k++)
			if (!strcmp(known_opts[k].name, o->name))
				break;
		if (k == sizeof(known_opts) / sizeof(known_opts[0]))
			continue;
		snprintf(left, sizeof(left), "%s%s%s", o->name, *known_opts[k].arg ? " " : "",
			 known_opts[k].arg);
		printf("  %-15s %s", left, known_opts[k].help);
		if (o->kind == KVMFPU_OPT_NUMBER && *o->value >= o->min && *o->value <= o->max)
			printf(" (default %llu)", (unsigned long long)*o->value);
		if (o->kind == KVMFPU_OPT_MSECS)
			printf(" (default %llu.%03llu)", (unsigned long long)*o->value / 1000,
			       (unsigned long long)*o->value % 1000);
		printf("\n");
	}
	printf("  (also as --name=value)\n\nTest selection:\n%s", harness_help);
	fflush(stdout);
	exit(0);
}

/* "S", "S." or "S.f" with up to 3 digits of fraction, in ms; false if it is not that. */
static bool parse_msecs(const char *s, uint64_t *ms)
{
	uint64_t v = 0, frac = 0;
	unsigned int digits = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > UINT64_MAX / 10000)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (p == s && *p != '.')
		return false;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
			else if (*p != '0')
				return false;	/* finer than a millisecond */
		}
	}
	if (*p || (p == s + 1 && *s == '.'))
		return false;
	for (; digits < 3; digits++)
		frac *= 10;
	*ms = v * 1000 + frac;
	return true;
}

static uint64_t parse_value(const struct kvmfpu_opt *o, const char *s)
{
	char why[256];
	uint64_t v;
	char *end;

	if (o->kind == KVMFPU_OPT_MSECS) {
		if (!parse_msecs(s, &v))
			kvmfpu_usage_error("%s: '%s' is not a number of seconds (to the ms)",
					   o->name, s);
		if (v < o->min || v > o->max)
			kvmfpu_usage_error("%s must be from %llu.%03llu to %llu s", o->name,
					   (unsigned long long)o->min / 1000,
					   (unsigned long long)o->min % 1000,
					   (unsigned long long)o->max / 1000);
		return v;
	}

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

/* "--name" or "--name=value": the option of this program it names, or a refusal. */
static const struct kvmfpu_opt *find_opt(const char *arg, const char **inline_value)
{
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	unsigned int i;

	*inline_value = eq ? eq + 1 : NULL;
	for (i = 0; i < prog_nr_opts; i++)
		if (strlen(prog_opts[i].name) == len && !strncmp(prog_opts[i].name, arg, len))
			return &prog_opts[i];
	for (i = 0; i < sizeof(known_opts) / sizeof(known_opts[0]); i++)
		if (strlen(known_opts[i].name) == len && !strncmp(known_opts[i].name, arg, len))
			kvmfpu_usage_error("%s takes no %.*s (-h lists its options)", prog_name,
					   (int)len, arg);
	kvmfpu_usage_error("unknown option %.*s (-h lists the options)", (int)len, arg);
}

int kvmfpu_parse_opts(int argc, char **argv, const struct kvmfpu_opt *opts, unsigned int nr,
		      bool *listing)
{
	const char *slash = argc ? strrchr(argv[0], '/') : NULL;
	const char *value;
	int i;

	if (argc)
		prog_name = slash ? slash + 1 : argv[0];
	prog_opts = opts;
	prog_nr_opts = nr;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "--", 2)) {
			const struct kvmfpu_opt *o = find_opt(a, &value);

			if (o->kind == KVMFPU_OPT_FLAG) {
				if (value)
					kvmfpu_usage_error("%s takes no value", o->name);
				*o->value = 1;
				continue;
			}
			if (!value) {
				if (i + 1 >= argc)
					kvmfpu_usage_error("%s needs a value", o->name);
				value = argv[++i];
			}
			*o->value = parse_value(o, value);
			continue;
		}
		if (a[0] != '-' || !a[1])
			kvmfpu_usage_error("unexpected argument '%s' (-h lists the options)", a);
		if (!strchr("lhfFvVtTr", a[1]))
			kvmfpu_usage_error("unknown option %s (-h lists the options)", a);
		if (a[1] == 'h' || a[1] == 'l') {
			if (a[2])
				kvmfpu_usage_error("unknown option %s (-h lists the options)", a);
			if (a[1] == 'h')
				print_help();
			listing_only = true;
			continue;
		}
		/* getopt style: "-r NAME" or "-rNAME" */
		value = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
		if (!value || !*value)
			kvmfpu_usage_error("-%c needs a value", a[1]);
		if (nr_filters == MAX_FILTERS)
			kvmfpu_usage_error("more than %d selection options", MAX_FILTERS);
		filters[nr_filters].opt = a[1];
		filters[nr_filters++].name = value;
	}
	*listing = listing_only;
	if (argc)
		argv[1] = NULL;
	return argc ? 1 : 0;
}

const struct kvmfpu_filter *kvmfpu_filters(unsigned int *nr)
{
	*nr = nr_filters;
	return filters;
}

bool kvmfpu_listing(void)
{
	return listing_only;
}

void kvmfpu_print_seed(void)
{
	unsigned int i;

	for (i = 0; i < prog_nr_opts; i++)
		if (!strcmp(prog_opts[i].name, "--seed"))
			printf("# kvmfpu-seed: pattern_seed=0x%llx\n",
			       (unsigned long long)*prog_opts[i].value);
}

void kvmfpu_start(bool listing)
{
	need_kvm = !listing;
	kvmfpu_report_init();
}

void kvmfpu_check_kvm(void)
{
	if (need_kvm)
		kvmfpu_require_usable_kvm();
}
