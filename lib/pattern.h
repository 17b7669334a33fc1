/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Deterministic register patterns. Every byte is a pure function of (seed, vcpu, round,
 * component, register), so a failure replays from the numbers in its report. Values respect
 * what the architecture allows in each register (exceptions masked in FCW and MXCSR, normal
 * x87 numbers, protection key 0 left accessible), so loading a pattern never faults.
 */
#ifndef KVMFPU_PATTERN_H
#define KVMFPU_PATTERN_H

#include "ximage.h"

struct pattern_key {
	uint64_t seed;
	uint32_t vcpu;		/* vCPU index; PATTERN_HOST for the host process's registers */
	uint32_t round;
	uint32_t salt;		/* tells apart several patterns of one round (e.g. SET_XSAVE) */
};

#define PATTERN_HOST	0xffffu

uint64_t pattern_u64(const struct pattern_key *k, unsigned int comp, unsigned int reg,
		     unsigned int word);

/*
 * Put a pattern in every register of @mask (x87 with all eight registers valid, TOP=0 and no
 * exception flags) and set XSTATE_BV to @mask.
 */
void pattern_fill_image(struct ximage *img, uint64_t mask, const struct pattern_key *k);

#endif /* KVMFPU_PATTERN_H */
