// SPDX-License-Identifier: GPL-2.0
/*
 * The xstate component table and the CPUID leaf 0xD layout.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xstate.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * FOP, FIP and FDP are not compared: AMD CPUs save them only while FSW.ES=1, and the kernel
 * scrubs them on AMD (the FXSAVE leak mitigation), so they differ legitimately by CPU.
 */
static const char fpu_ptr_why[] = "x87 instruction/data pointers: saved only on some CPUs";

static const struct xs_regs x87_regs[] = {
	{ "fcw", 0, 2, 2, 1, XR_FCW },
	{ "fsw", 2, 2, 2, 1, XR_FSW },
	{ "ftw", 4, 1, 1, 1, XR_FTW },
	{ "fop", 6, 2, 2, 1, XR_IGNORED, fpu_ptr_why },
	{ "fip", 8, 8, 8, 1, XR_IGNORED, fpu_ptr_why },
	{ "fdp", 16, 8, 8, 1, XR_IGNORED, fpu_ptr_why },
	{ "st%u", 32, 10, 16, 8, XR_ST },
};

static const struct xs_regs sse_regs[] = {
	{ "mxcsr", 24, 4, 4, 1, XR_MXCSR },
	{ "mxcsr_mask", 28, 4, 4, 1, XR_IGNORED, "read-only capability mask, not state" },
	{ "xmm%u", 160, 16, 16, 16, XR_RAW },
};

static const struct xs_regs avx_regs[] = {
	{ "ymm%u[255:128]", 0, 16, 16, 16, XR_RAW },
};

static const struct xs_regs bndregs_regs[] = {
	{ "bnd%u", 0, 16, 16, 4, XR_RAW },
};

static const struct xs_regs bndcsr_regs[] = {
	{ "bndcfgu", 0, 8, 8, 1, XR_RAW },
	{ "bndstatus", 8, 8, 8, 1, XR_RAW },
};

static const struct xs_regs opmask_regs[] = {
	{ "k%u", 0, 8, 8, 8, XR_RAW },
};

static const struct xs_regs zmm_hi256_regs[] = {
	{ "zmm%u[511:256]", 0, 32, 32, 16, XR_RAW },
};

static const struct xs_regs hi16_zmm_regs[] = {
	{ "zmm%u", 0, 64, 64, 16, XR_RAW, NULL, 16 },
};

static const struct xs_regs pkru_regs[] = {
	{ "pkru", 0, 4, 4, 1, XR_PKRU },
};

/* The 64-byte tile configuration as LDTILECFG takes it (SDM Vol. 1, 3.2.6, palette 1). */
static const struct xs_regs xtilecfg_regs[] = {
	{ "palette", 0, 1, 1, 1, XR_TILE_PALETTE },
	{ "start_row", 1, 1, 1, 1, XR_ZERO },
	{ "reserved[2:15]", 2, 14, 14, 1, XR_ZERO },
	{ "tmm%u.colsb", 16, 2, 2, 8, XR_TILE_COLSB },
	{ "reserved[32:47]", 32, 16, 16, 1, XR_ZERO },
	{ "tmm%u.rows", 48, 1, 1, 8, XR_TILE_ROWS },
	{ "reserved[56:63]", 56, 8, 8, 1, XR_ZERO },
};

static const struct xs_regs xtiledata_regs[] = {
	{ "tmm%u", 0, 1024, 1024, 8, XR_RAW },
};

#define DESC(comp, n, l, r, ...) [comp] = { n, l, r, ARRAY_LEN(r), { __VA_ARGS__ } }

/* Feature flags (SDM Vol. 2A, CPUID, Table 3-8): leaf, subleaf, register (0 EAX ... 3 EDX), bit. */
#define F_AVX		0x1, 0, 2, 28, "AVX"
#define F_AVX512F	0x7, 0, 1, 16, "AVX-512"
#define F_PKU		0x7, 0, 2, 3, "PKU"
#define F_AMX_TILE	0x7, 0, 3, 24, "AMX-TILE"

static const struct xs_comp_desc comp_desc[XS_NR] = {
	DESC(XS_X87, "x87", "x87", x87_regs),
	DESC(XS_SSE, "sse", "SSE", sse_regs),
	DESC(XS_AVX, "avx", "AVX (YMM_Hi128)", avx_regs, F_AVX),
	DESC(XS_BNDREGS, "bndregs", "MPX BNDREGS", bndregs_regs),
	DESC(XS_BNDCSR, "bndcsr", "MPX BNDCSR", bndcsr_regs),
	DESC(XS_OPMASK, "opmask", "AVX-512 opmask", opmask_regs, F_AVX512F),
	DESC(XS_ZMM_HI256, "zmm_hi256", "AVX-512 ZMM_Hi256", zmm_hi256_regs, F_AVX512F),
	DESC(XS_HI16_ZMM, "hi16_zmm", "AVX-512 Hi16_ZMM", hi16_zmm_regs, F_AVX512F),
	DESC(XS_PKRU, "pkru", "PKRU", pkru_regs, F_PKU),
	DESC(XS_XTILECFG, "xtilecfg", "AMX XTILECFG", xtilecfg_regs, F_AMX_TILE),
	DESC(XS_XTILEDATA, "xtiledata", "AMX XTILEDATA", xtiledata_regs, F_AMX_TILE),
};

const struct xs_comp_desc *xs_desc(unsigned int comp)
{
	if (comp >= XS_NR || !comp_desc[comp].name)
		return NULL;
	return &comp_desc[comp];
}

const char *xs_name(unsigned int comp)
{
	const struct xs_comp_desc *d = xs_desc(comp);

	return d ? d->name : "unknown";
}

char *xs_mask_str(uint64_t mask, char *buf, size_t len)
{
	size_t used = 0;
	unsigned int i;

	buf[0] = '\0';
	for (i = 0; i < 64 && used < len; i++) {
		if (!(mask & (1ull << i)))
			continue;
		if (xs_desc(i))
			used += snprintf(buf + used, len - used, "%s%s", used ? "," : "", xs_name(i));
		else
			used += snprintf(buf + used, len - used, "%sbit%u", used ? "," : "", i);
	}
	if (!mask)
		snprintf(buf, len, "none");
	return buf;
}

void xs_layout_from_cpuid(struct xs_layout *l, xs_cpuid_fn cpuid, void *ctx)
{
	uint32_t r[4];
	unsigned int i;

	memset(l, 0, sizeof(*l));
	cpuid(ctx, 0xd, 0, r);
	l->supported = r[0] | ((uint64_t)r[3] << 32);
	l->size_max = r[2];
	cpuid(ctx, 0xd, 1, r);
	l->d1_eax = r[0];
	l->xss = r[2] | ((uint64_t)r[3] << 32);

	/* x87 and SSE live in the legacy region; their subleaves are reserved. */
	l->offset[XS_X87] = 0;
	l->size[XS_X87] = 160;
	l->offset[XS_SSE] = 160;
	l->size[XS_SSE] = 256;

	for (i = 2; i < XS_NR_SUBLEAVES; i++) {
		if (!((l->supported | l->xss) & XS_BIT(i)))
			continue;
		cpuid(ctx, 0xd, i, r);
		l->size[i] = r[0];
		l->offset[i] = r[1];
		if (r[2] & 2)
			l->align64 |= XS_BIT(i);
	}
}

bool xs_has_compacted(const struct xs_layout *l)
{
	return l->d1_eax & (XS_D1_XSAVEC | XS_D1_XSAVES);
}

void xs_host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	__cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
}

void xs_layout_host(struct xs_layout *l)
{
	uint32_t r[4];

	xs_host_cpuid(NULL, 1, 0, r);
	/* Without XSAVE (CPUID.1:ECX[26]) leaf 0xD is reserved: only x87 and SSE exist. */
	if (!(r[2] & (1u << 26))) {
		memset(l, 0, sizeof(*l));
		l->supported = XS_MASK_FPSSE;
		l->size_max = XS_EXTENDED_OFFSET;
		l->size[XS_X87] = 160;
		l->offset[XS_SSE] = 160;
		l->size[XS_SSE] = 256;
		return;
	}
	xs_layout_from_cpuid(l, xs_host_cpuid, NULL);
}

static uint32_t align64(uint32_t v)
{
	return (v + 63) & ~63u;
}

/*
 * SDM Vol. 1, 13.4.3 and CPUID leaf 0DH: the standard format ends where the highest enabled
 * component ends (CPUID.(0xD,i).EBX + EAX), never before the legacy region and header; the
 * compacted format puts each enabled component i >= 2 after the previous one, first rounded
 * up to 64 bytes when CPUID.(0xD,i).ECX[1] is set. KVM computes both in
 * xstate_required_size() (arch/x86/kvm/cpuid.c).
 */
uint32_t xs_size_standard(const struct xs_layout *l, uint64_t mask)
{
	uint32_t end = XS_EXTENDED_OFFSET;
	unsigned int i;

	for (i = 2; i < XS_NR_SUBLEAVES; i++)
		if ((mask & XS_BIT(i)) && l->offset[i] + l->size[i] > end)
			end = l->offset[i] + l->size[i];
	return end;
}

uint32_t xs_size_compacted(const struct xs_layout *l, uint64_t mask)
{
	uint32_t off = XS_EXTENDED_OFFSET;
	unsigned int i;

	for (i = 2; i < XS_NR_SUBLEAVES; i++) {
		if (!(mask & XS_BIT(i)))
			continue;
		if (l->align64 & XS_BIT(i))
			off = align64(off);
		off += l->size[i];
	}
	return off;
}

uint32_t xs_offset(const struct xs_layout *l, unsigned int comp, bool compacted,
		   uint64_t xcomp_bv)
{
	uint32_t off = XS_EXTENDED_OFFSET;
	unsigned int i;

	if (comp < 2 || !compacted)
		return l->offset[comp];

	for (i = 2; i < comp; i++) {
		if (!(xcomp_bv & XS_BIT(i)))
			continue;
		if (l->align64 & XS_BIT(i))
			off = align64(off);
		off += l->size[i];
	}
	if (l->align64 & XS_BIT(comp))
		off = align64(off);
	return off;
}

/* State components that exist but are not XCR0's: IA32_XSS manages them (SDM Vol. 1, 13.2). */
static const char *const xss_names[] = {
	[8] = "PT", [10] = "PASID", [11] = "CET_U", [12] = "CET_S", [13] = "HDC",
	[14] = "UINTR", [15] = "LBR", [16] = "HWP",
};

#define XS_APX	19

static void explain_unknown_bit(uint64_t xcr0, unsigned int bit, char *why, size_t len)
{
	if (bit < ARRAY_LEN(xss_names) && xss_names[bit])
		snprintf(why, len, "XCR0 0x%llx: bit %u is not an XCR0 state component "
			 "(%s is managed through IA32_XSS)", (unsigned long long)xcr0, bit,
			 xss_names[bit]);
	else if (bit == XS_APX)
		snprintf(why, len, "XCR0 0x%llx: bit %u (APX) is an XCR0 component kvmfpu does "
			 "not support yet", (unsigned long long)xcr0, bit);
	else
		snprintf(why, len, "XCR0 0x%llx: bit %u is not an XCR0 state component "
			 "(reserved)", (unsigned long long)xcr0, bit);
}

bool xs_xcr0_valid(uint64_t xcr0, char *why, size_t len)
{
	uint64_t unknown = xcr0 & ~XS_MASK_KNOWN;
	uint64_t avx512 = xcr0 & XS_MASK_AVX512;

	if (unknown) {
		explain_unknown_bit(xcr0, __builtin_ctzll(unknown), why, len);
		return false;
	}
	if (!(xcr0 & XS_BIT(XS_X87))) {
		snprintf(why, len, "XCR0 0x%llx: bit 0 (x87) must be set", (unsigned long long)xcr0);
		return false;
	}
	if ((xcr0 & XS_BIT(XS_AVX)) && !(xcr0 & XS_BIT(XS_SSE))) {
		snprintf(why, len, "XCR0 0x%llx: AVX (bit 2) requires SSE (bit 1)",
			 (unsigned long long)xcr0);
		return false;
	}
	if (avx512 && (avx512 != XS_MASK_AVX512 || !(xcr0 & XS_BIT(XS_AVX)))) {
		snprintf(why, len,
			 "XCR0 0x%llx: AVX-512 bits 5-7 must be set together, and only with AVX",
			 (unsigned long long)xcr0);
		return false;
	}
	if ((xcr0 & XS_MASK_MPX) && (xcr0 & XS_MASK_MPX) != XS_MASK_MPX) {
		snprintf(why, len, "XCR0 0x%llx: MPX bits 3 and 4 must be set together",
			 (unsigned long long)xcr0);
		return false;
	}
	if ((xcr0 & XS_MASK_AMX) && (xcr0 & XS_MASK_AMX) != XS_MASK_AMX) {
		snprintf(why, len, "XCR0 0x%llx: AMX bits 17 and 18 must be set together",
			 (unsigned long long)xcr0);
		return false;
	}
	return true;
}

static bool parse_name(const char *s, size_t n, uint64_t *mask)
{
	unsigned int i;

	for (i = 0; i < XS_NR; i++) {
		if (xs_desc(i) && strlen(xs_name(i)) == n && !strncmp(s, xs_name(i), n)) {
			*mask |= XS_BIT(i);
			return true;
		}
	}
	return false;
}

bool xs_parse_mask(const char *s, uint64_t *mask)
{
	const char *p;
	char *end;
	size_t n;

	if (!*s)
		return false;
	/* A number: no sign (strtoull would wrap "-1"), no overflow. */
	if (*s >= '0' && *s <= '9') {
		errno = 0;
		*mask = strtoull(s, &end, 0);
		return !*end && !errno;
	}
	/* A list of names: no empty items. */
	*mask = 0;
	for (p = s; ; p += n + 1) {
		n = strcspn(p, ",");
		if (!n || !parse_name(p, n, mask))
			return false;
		if (!p[n])
			return true;
	}
}
