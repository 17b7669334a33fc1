/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The command line every kvmfpu program shares: its own options (--seed and the like, also as
 * --seed=N) and the test selection of the kselftest harness (-l, -f, -v, -t, -r and the
 * excluding -F, -V, -T), which kvmfpu_harness.h applies the same way on every harness version.
 * Anything else, and any bad value, is refused with one line and exit 2 before a test runs.
 */
#ifndef KVMFPU_OPTIONS_H
#define KVMFPU_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum kvmfpu_opt_kind {
	KVMFPU_OPT_NUMBER,	/* decimal or 0x-hex, within [min, max] */
	KVMFPU_OPT_XCR0,	/* a number or a component list, a valid XCR0 */
	KVMFPU_OPT_FLAG,	/* no value: given sets it to 1 */
	KVMFPU_OPT_MSECS,	/* seconds, to the millisecond ("0.25", "30"); held in ms */
};

struct kvmfpu_opt {
	const char *name;	/* "--seed" */
	enum kvmfpu_opt_kind kind;
	uint64_t *value;
	uint64_t min, max;	/* KVMFPU_OPT_MSECS: in ms */
};

/* One test-selection option: 'f', 'v', 't', 'r' include, 'F', 'V', 'T' exclude. */
struct kvmfpu_filter {
	char opt;
	const char *name;
};

/*
 * Take @opts and the selection options out of argv and return the new argc (argv keeps only
 * argv[0]). -h prints the program's options and exits 0. *@listing is set for -l: then KVM is
 * not needed.
 */
int kvmfpu_parse_opts(int argc, char **argv, const struct kvmfpu_opt *opts, unsigned int nr,
		      bool *listing);

/* The selection options in command-line order; the first that matches a test decides. */
const struct kvmfpu_filter *kvmfpu_filters(unsigned int *nr);
bool kvmfpu_listing(void);

/*
 * "# kvmfpu-seed: pattern_seed=0x..." when the program takes --seed: the seed of kvmfpu's
 * register patterns. The KVM library's own "Random seed:" line (6.12) seeds its guest random
 * number generator, which kvmfpu does not use.
 */
void kvmfpu_print_seed(void);

/*
 * After the program's own checks of its options: set up reporting and note that KVM must be
 * usable (checked by kvmfpu_run_tests() once the selection is known to be valid).
 */
void kvmfpu_start(bool listing);
void kvmfpu_check_kvm(void);

#endif /* KVMFPU_OPTIONS_H */
