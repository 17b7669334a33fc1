/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AMX without hardware: the tile palette from CPUID leaves 0x1D/0x1E, the 64-byte tile
 * configuration (encoding, and the checks LDTILECFG makes), what TILELOADD leaves in a tile,
 * and expected XSAVE images with tiles. Plus the dynamic-xstate permission prctls.
 *
 * What an XSAVE image holds for AMX (standard and compacted format alike, only the offset
 * differs):
 *   XTILECFG (component 17, 64 bytes): the configuration as LDTILECFG took it (SDM Vol. 2,
 *     LDTILECFG, Table 3-10; STTILECFG stores the same, or 64 zero bytes when no tile is
 *     configured), palette byte 0,
 *     start_row byte 1 (0 once every tile instruction completed), bytes 16-47 colsb of tiles
 *     0-15 (2 bytes each), bytes 48-63 rows of tiles 0-15.
 *   XTILEDATA (component 18, 8192 bytes): tmm0-7 at 1024-byte intervals, each the whole tile
 *     register as max_rows (16) rows of bytes_per_row (64) bytes, row r at 64 * r. TILELOADD
 *     writes colsb bytes into each of the configured rows and zeroes the rest of each row and
 *     every row from rows to max_rows (SDM Vol. 2, TILELOADD pseudocode: write_row_and_zero,
 *     zero_upper_rows). So after TILELOADD the image holds the loaded bytes inside
 *     rows x colsb and zeros everywhere else of the tile, whatever the source memory held
 *     around it; amx_tiles_apply_cfg() computes exactly that.
 *   Both components in init state (XSTATE_BV bits clear) after TILERELEASE, or after
 *     LDTILECFG of palette 0, or (XTILEDATA only) while XFD[18]=1 at the time of the save
 *     (SDM Vol. 1, Chapter 13, Extended Feature Disable: XSAVE* treat an XFD-disabled
 *     component as being in its initial configuration; the kernel relies on it, see
 *     fpu_update_guest_xfd(): "the XSAVE in fpu_swap_kvm_fpstate will clear XSTATE_BV[i]
 *     whenever XFD[i]=1").
 */
#ifndef KVMFPU_AMX_H
#define KVMFPU_AMX_H

#include "pattern.h"

#define AMX_TILECFG_SIZE	64
#define AMX_CFG_TILES		16	/* slots in the configuration; palette 1 uses max_names */
#define AMX_NR_TILES		8	/* tmm0-7 */

/*
 * CPUID leaf 0x1D (tile information) and 0x1E (TMUL information), SDM Vol. 2A, CPUID,
 * Table 3-8 "Information Returned by CPUID Instruction".
 */
struct amx_info {
	uint32_t max_palette;		/* 0x1D.0 EAX */
	uint16_t total_tile_bytes;	/* 0x1D.1 EAX[15:0] */
	uint16_t bytes_per_tile;	/* 0x1D.1 EAX[31:16] */
	uint16_t bytes_per_row;		/* 0x1D.1 EBX[15:0] */
	uint16_t max_names;		/* 0x1D.1 EBX[31:16]: number of tile registers */
	uint16_t max_rows;		/* 0x1D.1 ECX[15:0] */
	uint8_t tmul_maxk;		/* 0x1E.0 EBX[7:0]: rows or columns */
	uint16_t tmul_maxn;		/* 0x1E.0 EBX[23:8]: column bytes */
	uint32_t tilecfg_size;		/* 0xD.17 EAX */
	uint32_t tiledata_size;		/* 0xD.18 EAX */
	bool xfd;			/* 0xD.1 EAX[4]: IA32_XFD and IA32_XFD_ERR exist */
	bool tiledata_xfd;		/* 0xD.18 ECX[2]: XTILEDATA can be disabled by XFD */
};

/*
 * Parse leaves 0xD, 0x1D and 0x1E through @cpuid. Returns false, saying why, if palette 1
 * is missing or its numbers contradict each other or the XSAVE sizes (bytes_per_tile x
 * max_names = total_tile_bytes = 0xD.18 size, bytes_per_row x max_rows = bytes_per_tile,
 * 0xD.17 size 64); kvmfpu relies on all of these.
 */
bool amx_info_from_cpuid(struct amx_info *info, xs_cpuid_fn cpuid, void *ctx, char *why,
			 size_t len);

struct amx_tilecfg {
	uint8_t palette;
	uint8_t start_row;
	uint16_t colsb[AMX_CFG_TILES];
	uint8_t rows[AMX_CFG_TILES];
};

void amx_tilecfg_encode(const struct amx_tilecfg *cfg, uint8_t out[AMX_TILECFG_SIZE]);
void amx_tilecfg_decode(const uint8_t in[AMX_TILECFG_SIZE], struct amx_tilecfg *cfg);

/*
 * Would LDTILECFG load @raw without #GP, and is every configured tile usable? Returns false
 * and says why otherwise. Checks (SDM Vol. 2, LDTILECFG: "any invalid configuration results
 * in #GP"): palette_id <= max_palette;
 * palette 0 puts the tiles in init state (always accepted); for palette 1 the reserved bytes
 * 2-15 are zero, each of the first max_names tiles has rows <= max_rows and
 * colsb <= bytes_per_row, and the slots from max_names to 15 are zero. Stricter than the
 * instruction where kvmfpu wants it (a config kvmfpu loads must never fault and every tile
 * must be usable): start_row is 0, a tile has rows and colsb both zero (unused) or both
 * non-zero, and colsb is a multiple of 4 (TILELOADD moves dword elements).
 */
bool amx_tilecfg_valid(const uint8_t raw[AMX_TILECFG_SIZE], const struct amx_info *info,
		       char *why, size_t len);

/*
 * Make @tiledata (an XTILEDATA area: tmm0-7, max_rows x bytes_per_row each) what TILELOADD
 * would have left in the tile registers under @cfg: bytes outside rows x colsb zeroed; all
 * tiles zero for palette 0 or a tile with rows or colsb zero.
 */
void amx_tiles_apply_cfg(uint8_t *tiledata, const struct amx_tilecfg *cfg,
			 const struct amx_info *info);

/* The same on an image, using the image's own XTILECFG. No-op without XTILEDATA. */
void amx_image_apply_cfg(struct ximage *img, const struct amx_info *info);

/*
 * What the guest stores, as opposed to what its registers hold. TILESTORED writes only the
 * configured rows x colsb bytes of a tile (SDM Vol. 2, TILESTORED pseudocode: rows from
 * start_row to rows, colsb bytes each); STTILECFG writes all 64 bytes. The host fills the
 * tile areas of the guest's save image with AMX_STORE_CANARY before the guest runs, so a
 * byte the guest should have stored can never match by both sides being zero (a tile in
 * init state, a zero configuration byte), and a byte TILESTORED must not write is compared
 * against the canary the host put there, never against a zero nobody wrote.
 */
#define AMX_STORE_CANARY	0xa5

/* Fill the XTILECFG and XTILEDATA areas of @img (a guest's save image) with the canary. */
void amx_image_prepare_store(struct ximage *img);

/*
 * Turn @img, the guest's registers (an image whose XTILECFG is the configuration the tiles
 * are stored under, XSTATE_BV as for amx_image_apply_cfg()), into what the guest's save
 * image holds after STTILECFG and TILESTORED of every tile into an area prepared with
 * amx_image_prepare_store(): XTILEDATA bytes outside rows x colsb become AMX_STORE_CANARY.
 */
void amx_image_stored_view(struct ximage *img, const struct amx_info *info);

/*
 * The expected image after the guest loaded @mask from a pattern image: a pattern in every
 * register of @mask (pattern_fill_image(), whose XTILECFG is a valid palette 1 config with
 * varied rows and colsb), with the tiles as TILELOADD leaves them.
 */
void amx_expected_image(struct ximage *img, uint64_t mask, const struct pattern_key *k,
			const struct amx_info *info);

/*
 * Dynamic xstate permission (arch_prctl, arch/x86/include/uapi/asm/prctl.h). Called through
 * syscall(SYS_arch_prctl) directly: the selftest library's vm_xsave_require_permission()
 * takes a bit number in 6.1 and a mask from 6.4, and asserts instead of returning.
 * Each returns 0 or -errno.
 */
#define AMX_ARCH_GET_XCOMP_SUPP		0x1021
#define AMX_ARCH_GET_XCOMP_PERM		0x1022
#define AMX_ARCH_REQ_XCOMP_PERM		0x1023
#define AMX_ARCH_GET_XCOMP_GUEST_PERM	0x1024
#define AMX_ARCH_REQ_XCOMP_GUEST_PERM	0x1025

int amx_xcomp_supported(uint64_t *mask);
int amx_guest_perm_get(uint64_t *mask);
/* Request the facility whose highest component is @xfeature (18 for AMX). */
int amx_guest_perm_request(unsigned int xfeature);
/* The same for this process's own use (its threads' first use then enlarges their fpstate). */
int amx_perm_request(unsigned int xfeature);

#endif /* KVMFPU_AMX_H */
