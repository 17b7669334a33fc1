// SPDX-License-Identifier: GPL-2.0
/*
 * AMX palette, tile configuration, tile images and permissions (see amx.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "amx.h"

bool amx_info_from_cpuid(struct amx_info *info, xs_cpuid_fn cpuid, void *ctx, char *why,
			 size_t len)
{
	uint32_t r[4];

	memset(info, 0, sizeof(*info));
	cpuid(ctx, 0xd, 1, r);
	info->xfd = r[0] & (1u << 4);
	cpuid(ctx, 0xd, 17, r);
	info->tilecfg_size = r[0];
	cpuid(ctx, 0xd, 18, r);
	info->tiledata_size = r[0];
	info->tiledata_xfd = r[2] & (1u << 2);

	cpuid(ctx, 0x1d, 0, r);
	info->max_palette = r[0];
	cpuid(ctx, 0x1d, 1, r);
	info->total_tile_bytes = r[0] & 0xffff;
	info->bytes_per_tile = r[0] >> 16;
	info->bytes_per_row = r[1] & 0xffff;
	info->max_names = r[1] >> 16;
	info->max_rows = r[2] & 0xffff;
	cpuid(ctx, 0x1e, 0, r);
	info->tmul_maxk = r[1] & 0xff;
	info->tmul_maxn = (r[1] >> 8) & 0xffff;

	if (info->max_palette < 1) {
		snprintf(why, len, "CPUID.0x1D.0:EAX (max palette) is %u: no palette 1",
			 info->max_palette);
		return false;
	}
	if (!info->bytes_per_row || !info->max_rows || !info->max_names ||
	    info->max_names > AMX_NR_TILES || info->max_rows > 16 || info->bytes_per_row > 64) {
		snprintf(why, len, "CPUID.0x1D.1: palette 1 with %u tiles of %u rows x %u bytes "
			 "is not what kvmfpu drives (1-8 tiles, up to 16 rows of up to 64 bytes)",
			 info->max_names, info->max_rows, info->bytes_per_row);
		return false;
	}
	if (info->bytes_per_row * info->max_rows != info->bytes_per_tile ||
	    info->bytes_per_tile * info->max_names != info->total_tile_bytes) {
		snprintf(why, len, "CPUID.0x1D.1 contradicts itself: %u rows x %u bytes per row, "
			 "%u bytes per tile, %u tiles, %u total tile bytes", info->max_rows,
			 info->bytes_per_row, info->bytes_per_tile, info->max_names,
			 info->total_tile_bytes);
		return false;
	}
	if (info->tiledata_size != info->total_tile_bytes || info->tilecfg_size != AMX_TILECFG_SIZE) {
		snprintf(why, len, "CPUID.0xD.18 size %u vs 0x1D.1 total_tile_bytes %u, "
			 "0xD.17 size %u vs %u", info->tiledata_size, info->total_tile_bytes,
			 info->tilecfg_size, AMX_TILECFG_SIZE);
		return false;
	}
	return true;
}

void amx_tilecfg_encode(const struct amx_tilecfg *cfg, uint8_t out[AMX_TILECFG_SIZE])
{
	unsigned int i;

	memset(out, 0, AMX_TILECFG_SIZE);
	out[0] = cfg->palette;
	out[1] = cfg->start_row;
	for (i = 0; i < AMX_CFG_TILES; i++) {
		out[16 + 2 * i] = cfg->colsb[i] & 0xff;
		out[17 + 2 * i] = cfg->colsb[i] >> 8;
		out[48 + i] = cfg->rows[i];
	}
}

void amx_tilecfg_decode(const uint8_t in[AMX_TILECFG_SIZE], struct amx_tilecfg *cfg)
{
	unsigned int i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->palette = in[0];
	cfg->start_row = in[1];
	for (i = 0; i < AMX_CFG_TILES; i++) {
		cfg->colsb[i] = in[16 + 2 * i] | (in[17 + 2 * i] << 8);
		cfg->rows[i] = in[48 + i];
	}
}

bool amx_tilecfg_valid(const uint8_t raw[AMX_TILECFG_SIZE], const struct amx_info *info,
		       char *why, size_t len)
{
	struct amx_tilecfg c;
	unsigned int i;

	amx_tilecfg_decode(raw, &c);
	if (c.palette > info->max_palette) {
		snprintf(why, len, "palette %u > max palette %u: LDTILECFG #GP", c.palette,
			 info->max_palette);
		return false;
	}
	if (c.palette == 0)
		return true;
	if (c.palette != 1) {
		snprintf(why, len, "palette %u: kvmfpu knows palette 1 only", c.palette);
		return false;
	}
	for (i = 2; i < 16; i++) {
		if (raw[i]) {
			snprintf(why, len, "reserved byte %u is 0x%02x: LDTILECFG #GP", i, raw[i]);
			return false;
		}
	}
	if (c.start_row) {
		snprintf(why, len, "start_row %u: kvmfpu loads configurations with start_row 0",
			 c.start_row);
		return false;
	}
	for (i = 0; i < AMX_CFG_TILES; i++) {
		if (i >= info->max_names) {
			if (c.rows[i] || c.colsb[i]) {
				snprintf(why, len, "tile slot %u (>= max_names %u) has rows %u colsb "
					 "%u: LDTILECFG #GP", i, info->max_names, c.rows[i],
					 c.colsb[i]);
				return false;
			}
			continue;
		}
		if (c.rows[i] > info->max_rows || c.colsb[i] > info->bytes_per_row) {
			snprintf(why, len, "tmm%u: %u rows x %u bytes exceeds max_rows %u or "
				 "bytes_per_row %u: LDTILECFG #GP", i, c.rows[i], c.colsb[i],
				 info->max_rows, info->bytes_per_row);
			return false;
		}
		if (!c.rows[i] != !c.colsb[i]) {
			snprintf(why, len, "tmm%u: rows %u and colsb %u must both be zero or both "
				 "non-zero", i, c.rows[i], c.colsb[i]);
			return false;
		}
		if (c.colsb[i] % 4) {
			snprintf(why, len, "tmm%u: colsb %u is not a multiple of 4", i, c.colsb[i]);
			return false;
		}
	}
	return true;
}

/* Set every byte of @tiledata outside the rows x colsb of @cfg to @fill. */
static void fill_outside_cfg(uint8_t *tiledata, const struct amx_tilecfg *cfg,
			     const struct amx_info *info, uint8_t fill)
{
	unsigned int t, r;

	for (t = 0; t < info->max_names; t++) {
		uint8_t *tile = tiledata + t * info->bytes_per_tile;
		unsigned int rows = cfg->palette ? cfg->rows[t] : 0;
		unsigned int colsb = cfg->palette ? cfg->colsb[t] : 0;

		if (!rows || !colsb)
			rows = colsb = 0;
		for (r = 0; r < info->max_rows; r++) {
			uint8_t *row = tile + r * info->bytes_per_row;

			if (r < rows)
				memset(row + colsb, fill, info->bytes_per_row - colsb);
			else
				memset(row, fill, info->bytes_per_row);
		}
	}
}

void amx_tiles_apply_cfg(uint8_t *tiledata, const struct amx_tilecfg *cfg,
			 const struct amx_info *info)
{
	fill_outside_cfg(tiledata, cfg, info, 0);
}

/* The configuration of @img: its XTILECFG, or palette 0 when that is in init state. */
static void image_cfg(const struct ximage *img, struct amx_tilecfg *cfg)
{
	uint8_t *cfg_area = ximage_comp(img, XS_XTILECFG);

	memset(cfg, 0, sizeof(*cfg));
	if (cfg_area && (ximage_xstate_bv(img) & XS_BIT(XS_XTILECFG)))
		amx_tilecfg_decode(cfg_area, cfg);
}

void amx_image_apply_cfg(struct ximage *img, const struct amx_info *info)
{
	uint8_t *data = ximage_comp(img, XS_XTILEDATA);
	struct amx_tilecfg cfg;

	if (!data)
		return;
	image_cfg(img, &cfg);
	amx_tiles_apply_cfg(data, &cfg, info);
}

void amx_image_prepare_store(struct ximage *img)
{
	uint8_t *cfg = ximage_comp(img, XS_XTILECFG), *data = ximage_comp(img, XS_XTILEDATA);

	if (cfg)
		memset(cfg, AMX_STORE_CANARY, AMX_TILECFG_SIZE);
	if (data)
		memset(data, AMX_STORE_CANARY, img->layout->size[XS_XTILEDATA]);
}

void amx_image_stored_view(struct ximage *img, const struct amx_info *info)
{
	uint8_t *data = ximage_comp(img, XS_XTILEDATA);
	struct amx_tilecfg cfg;

	if (!data)
		return;
	image_cfg(img, &cfg);
	fill_outside_cfg(data, &cfg, info, AMX_STORE_CANARY);
}

void amx_expected_image(struct ximage *img, uint64_t mask, const struct pattern_key *k,
			const struct amx_info *info)
{
	pattern_fill_image(img, mask, k);
	amx_image_apply_cfg(img, info);
}

static int arch_prctl(int code, unsigned long arg)
{
	return syscall(SYS_arch_prctl, code, arg) ? -errno : 0;
}

int amx_xcomp_supported(uint64_t *mask)
{
	*mask = 0;
	return arch_prctl(AMX_ARCH_GET_XCOMP_SUPP, (unsigned long)mask);
}

int amx_guest_perm_get(uint64_t *mask)
{
	*mask = 0;
	return arch_prctl(AMX_ARCH_GET_XCOMP_GUEST_PERM, (unsigned long)mask);
}

int amx_guest_perm_request(unsigned int xfeature)
{
	return arch_prctl(AMX_ARCH_REQ_XCOMP_GUEST_PERM, xfeature);
}

int amx_perm_request(unsigned int xfeature)
{
	return arch_prctl(AMX_ARCH_REQ_XCOMP_PERM, xfeature);
}
