// SPDX-License-Identifier: GPL-2.0
/*
 * Register patterns from splitmix64 over the pattern key.
 */
#include <string.h>

#include "pattern.h"

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * A pattern word is splitmix64(reg_hash ^ word), reg_hash a hash of the key and the register,
 * itself from the key's own hash: pattern_fill_image() computes each of them once (per image,
 * per register) rather than again for every word, with the same values.
 */
static uint64_t key_hash(const struct pattern_key *k)
{
	return splitmix64(splitmix64(k->seed) ^ ((uint64_t)k->vcpu << 32 | k->round));
}

static uint64_t reg_hash(uint64_t key_hash, const struct pattern_key *k, unsigned int comp,
			 unsigned int reg)
{
	return splitmix64(key_hash ^ ((uint64_t)k->salt << 40 | (uint64_t)comp << 32 | reg));
}

uint64_t pattern_u64(const struct pattern_key *k, unsigned int comp, unsigned int reg,
		     unsigned int word)
{
	return splitmix64(reg_hash(key_hash(k), k, comp, reg) ^ word);
}

/*
 * FCW: all six exception masks set (bit 6 reads as 1 after FNINIT), precision and rounding
 * control varied; nothing else.
 */
static uint16_t pattern_fcw(uint64_t r)
{
	return 0x7f | (r & 0x0f00);
}

/*
 * MXCSR: all exception masks set, flags, DAZ, rounding control and FZ varied; bits 31:16 are
 * reserved and make LDMXCSR/XRSTOR #GP.
 */
static uint32_t pattern_mxcsr(uint64_t r)
{
	return 0x1f80 | (r & 0xe07f);
}

/* A normal 80-bit number: explicit integer bit set, exponent neither 0 nor all ones. */
static void pattern_st(uint64_t r0, uint64_t r1, uint8_t *out)
{
	uint64_t mant = r0 | (1ull << 63);
	uint16_t exp = 1 + (r1 % 0x7ffe);
	uint16_t se = exp | (r1 & 0x80000000 ? 0x8000 : 0);

	memcpy(out, &mant, 8);
	memcpy(out + 8, &se, 2);
}

/*
 * One register from @h, its reg_hash(): word w of its pattern is splitmix64(@h ^ w).
 * Palette 1 tiles: 1-16 rows of 4-64 bytes, a multiple of 4 (SDM Vol. 1, 3.2.6).
 */
static void pattern_reg(uint64_t h, const struct xs_regs *r, uint8_t *out)
{
	unsigned int w;
	uint64_t v;

	switch (r->kind) {
	case XR_FCW:
		v = pattern_fcw(splitmix64(h));
		break;
	case XR_FSW:
		/* TOP=0, no exception flags: nothing pending to fault on the next x87 op. */
		v = 0;
		break;
	case XR_FTW:
		/* Abridged tag word: all eight registers valid. */
		v = 0xff;
		break;
	case XR_ST:
		pattern_st(splitmix64(h), splitmix64(h ^ 1), out);
		return;
	case XR_MXCSR:
		v = pattern_mxcsr(splitmix64(h));
		break;
	case XR_PKRU:
		v = splitmix64(h) & ~3ull;
		break;
	case XR_TILE_PALETTE:
		v = 1;
		break;
	case XR_TILE_ROWS:
		v = 1 + splitmix64(h) % 16;
		break;
	case XR_TILE_COLSB:
		v = 4 * (1 + splitmix64(h) % 16);
		break;
	case XR_ZERO:
	case XR_IGNORED:
		memset(out, 0, r->size);
		return;
	default:
		for (w = 0; w * 8 < r->size; w++) {
			v = splitmix64(h ^ w);
			memcpy(out + w * 8, &v, r->size - w * 8 < 8 ? r->size - w * 8 : 8);
		}
		return;
	}
	memcpy(out, &v, r->size < 8 ? r->size : 8);
}

void pattern_fill_image(struct ximage *img, uint64_t mask, const struct pattern_key *k)
{
	uint64_t kh = key_hash(k);
	unsigned int comp, i, j, reg;

	for (comp = 0; comp < XS_NR; comp++) {
		const struct xs_comp_desc *d = xs_desc(comp);
		uint8_t *area;

		if (!(mask & XS_BIT(comp)) || !d)
			continue;
		/* The area; x87 and SSE from the image's start, as ximage_reg_offset() counts. */
		area = ximage_comp(img, comp);
		if (!area)
			continue;
		for (i = 0, reg = 0; i < d->nr_regs; i++) {
			const struct xs_regs *r = &d->regs[i];

			for (j = 0; j < r->count; j++, reg++)
				pattern_reg(reg_hash(kh, k, comp, reg), r,
					    area + r->offset + j * r->stride);
		}
	}
	ximage_set_xstate_bv(img, mask);
}
