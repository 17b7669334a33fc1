/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An xs_report_fn that keeps what ximage_diff() and ximage_check_header() report, so a unit
 * test asserts on the mismatch itself (component, register, offset, byte, values) instead of
 * parsing printed text. The first MISMATCH_LOG_KEEP reports are kept whole; all are counted.
 */
#ifndef KVMFPU_UNIT_MISMATCH_LOG_H
#define KVMFPU_UNIT_MISMATCH_LOG_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ximage.h"

#define MISMATCH_LOG_KEEP	4
#define MISMATCH_MAX_SIZE	1024	/* the largest register: a tile */

struct logged_mismatch {
	const char *check;
	unsigned int comp;
	char reg[32];
	uint32_t offset;
	uint32_t size;
	uint32_t first_byte;
	const char *note;
	uint8_t expected[MISMATCH_MAX_SIZE];
	uint8_t actual[MISMATCH_MAX_SIZE];
};

struct mismatch_log {
	unsigned int count;
	struct logged_mismatch m[MISMATCH_LOG_KEEP];
};

static inline void mismatch_log_report(void *ctx, const struct xs_mismatch *m)
{
	struct mismatch_log *log = ctx;
	struct logged_mismatch *l;
	uint32_t size = m->size < MISMATCH_MAX_SIZE ? m->size : MISMATCH_MAX_SIZE;

	if (log->count++ >= MISMATCH_LOG_KEEP)
		return;
	l = &log->m[log->count - 1];
	l->check = m->check;
	l->comp = m->comp;
	snprintf(l->reg, sizeof(l->reg), "%s", m->reg);
	l->offset = m->offset;
	l->size = m->size;
	l->first_byte = m->first_byte;
	l->note = m->note;
	memcpy(l->expected, m->expected, size);
	memcpy(l->actual, m->actual, size);
}

static inline void mismatch_log_clear(struct mismatch_log *log)
{
	log->count = 0;
}

/* "avx ymm3[255:128] at 0x270 byte 2: expected 0x12, got 0xed" for failure messages. */
static inline const char *mismatch_str(const struct logged_mismatch *l, char *buf, size_t len)
{
	uint32_t b = l->first_byte < MISMATCH_MAX_SIZE ? l->first_byte : 0;

	snprintf(buf, len, "%s %s at 0x%x (size %u) byte %u: expected 0x%02x, got 0x%02x%s%s",
		 l->comp < XS_NR ? xs_name(l->comp) : "header", l->reg, l->offset, l->size,
		 l->first_byte, l->expected[b], l->actual[b], l->note ? "; " : "",
		 l->note ? l->note : "");
	return buf;
}

#endif /* KVMFPU_UNIT_MISMATCH_LOG_H */
