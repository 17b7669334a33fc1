/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The command line every kvmfpu program shares: its own options (--seed and the like) are
 * taken out of argv, the rest is left for the kselftest harness (-l, -v, -t, -r, ...).
 * Bad values are refused with one line and exit 2 before any test runs.
 */
#ifndef KVMFPU_OPTIONS_H
#define KVMFPU_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum kvmfpu_opt_kind {
	KVMFPU_OPT_NUMBER,	/* decimal or 0x-hex, within [min, max] */
	KVMFPU_OPT_XCR0,	/* a number or a component list, a valid XCR0 */
};

struct kvmfpu_opt {
	const char *name;	/* "--seed" */
	enum kvmfpu_opt_kind kind;
	uint64_t *value;
	uint64_t min, max;
};

/*
 * Take @opts out of argv (NULL-terminated again) and return the new argc. *@listing says
 * whether the harness is only asked to list or explain (-l, -h): then KVM is not needed.
 */
int kvmfpu_parse_opts(int argc, char **argv, const struct kvmfpu_opt *opts, unsigned int nr,
		      bool *listing);

/* After the program's own checks of its options: require KVM unless listing, set up reporting. */
void kvmfpu_start(bool listing);

#endif /* KVMFPU_OPTIONS_H */
