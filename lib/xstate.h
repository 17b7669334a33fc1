/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The XSAVE state components: what each holds, which register lives where in its area, and
 * the layout (offset, size, alignment) that CPUID leaf 0xD reports for them.
 *
 * Components 0 (x87) and 1 (SSE) live in the 512-byte legacy region at fixed offsets; every
 * other user component i has its standard-format offset in CPUID.(EAX=0xD,ECX=i).EBX and its
 * size in EAX. In the compacted format a component follows the previous one present in
 * XCOMP_BV, rounded up to 64 bytes when CPUID.(EAX=0xD,ECX=i).ECX[1] is set (SDM Vol. 1,
 * 13.4.3).
 */
#ifndef KVMFPU_XSTATE_H
#define KVMFPU_XSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum xs_comp {
	XS_X87		= 0,
	XS_SSE		= 1,
	XS_AVX		= 2,
	XS_BNDREGS	= 3,
	XS_BNDCSR	= 4,
	XS_OPMASK	= 5,
	XS_ZMM_HI256	= 6,
	XS_HI16_ZMM	= 7,
	XS_PKRU		= 9,
	XS_XTILECFG	= 17,
	XS_XTILEDATA	= 18,
	XS_NR		= 19,
};

#define XS_BIT(c)		(1ull << (c))
#define XS_MASK_FPSSE		(XS_BIT(XS_X87) | XS_BIT(XS_SSE))
#define XS_MASK_MPX		(XS_BIT(XS_BNDREGS) | XS_BIT(XS_BNDCSR))
#define XS_MASK_AVX512		(XS_BIT(XS_OPMASK) | XS_BIT(XS_ZMM_HI256) | XS_BIT(XS_HI16_ZMM))
#define XS_MASK_AMX		(XS_BIT(XS_XTILECFG) | XS_BIT(XS_XTILEDATA))
/* Every bit this table describes. */
#define XS_MASK_KNOWN		(XS_MASK_FPSSE | XS_BIT(XS_AVX) | XS_MASK_MPX | XS_MASK_AVX512 | \
				 XS_BIT(XS_PKRU) | XS_MASK_AMX)

#define XS_LEGACY_SIZE		512
#define XS_HEADER_OFFSET	512
#define XS_HEADER_SIZE		64
#define XS_EXTENDED_OFFSET	576	/* first extended component in either format */
#define XS_XCOMP_BV_COMPACTED	(1ull << 63)

/* How a register's bytes are generated and compared. */
enum xs_reg_kind {
	XR_RAW,		/* any bit pattern is a valid value */
	XR_FCW,		/* x87 control word: exceptions stay masked */
	XR_FSW,		/* x87 status word */
	XR_FTW,		/* abridged x87 tag word */
	XR_ST,		/* 80-bit x87 register in a 16-byte slot */
	XR_MXCSR,	/* SSE control/status: exceptions stay masked, no reserved bits */
	XR_PKRU,	/* protection keys: key 0 stays accessible */
	XR_TILE_PALETTE,
	XR_TILE_ROWS,
	XR_TILE_COLSB,
	XR_ZERO,	/* reserved: must be zero */
	XR_IGNORED,	/* not state, or not saved reliably: never compared */
};

/*
 * A run of @count equal registers, @stride bytes apart, starting @offset bytes into the
 * component's area (into the image for x87 and SSE, which live in the legacy region).
 */
struct xs_regs {
	const char *name;
	uint16_t offset;
	uint16_t size;
	uint16_t stride;
	uint8_t count;
	uint8_t kind;
	const char *why_ignored;	/* for XR_IGNORED */
	uint8_t first;			/* number of the first register (zmm16 for Hi16_ZMM) */
};

/* A CPUID feature flag: CPUID.(@leaf, @subleaf) register @reg (0 EAX ... 3 EDX), bit @bit. */
struct xs_cpuid_bit {
	uint32_t leaf;
	uint8_t subleaf;
	uint8_t reg;
	uint8_t bit;
	const char *name;		/* as skip reasons name it: "AVX-512", "PKU" */
};

struct xs_comp_desc {
	const char *name;		/* short, lower case: "avx", "zmm_hi256" */
	const char *label;		/* as the SDM names it */
	const struct xs_regs *regs;
	unsigned int nr_regs;
	/*
	 * The feature flag that gives a guest this component: set in the guest's CPUID exactly
	 * when XCR0 has the component, required from KVM_GET_SUPPORTED_CPUID, and checked to
	 * have been kept by KVM (lib/kvmfpu_vm.c). None (leaf 0) for x87 and SSE, which every
	 * guest has, and MPX, whose flag kvmfpu leaves as KVM offers it.
	 */
	struct xs_cpuid_bit feature;
};

/* CPUID.(0xD,i) subleaves a layout holds: every bit of XCR0 and IA32_XSS. */
#define XS_NR_SUBLEAVES		64

/* CPUID.(0xD,1).EAX */
#define XS_D1_XSAVEC		(1u << 1)
#define XS_D1_XSAVES		(1u << 3)

/*
 * Where each component sits, as one CPUID source (the host CPU, KVM_GET_SUPPORTED_CPUID, a
 * table of a CPU in tests/unit) reports leaf 0xD: every subleaf i >= 2 that
 * CPUID.(0xD,0).EDX:EAX or CPUID.(0xD,1).EDX:ECX enumerates, components kvmfpu describes or
 * not (their sizes count in the compacted size of XCR0 | IA32_XSS, lib/xsizes.h).
 */
struct xs_layout {
	uint64_t supported;		/* CPUID.(0xD,0).EDX:EAX: XCR0 bits supported */
	uint64_t xss;			/* CPUID.(0xD,1).EDX:ECX: IA32_XSS bits supported */
	uint32_t size_max;		/* CPUID.(0xD,0).ECX: all of @supported, standard format */
	uint32_t d1_eax;		/* CPUID.(0xD,1).EAX: XSAVEOPT, XSAVEC, XGETBV1, XSAVES */
	uint32_t offset[XS_NR_SUBLEAVES];	/* CPUID.(0xD,i).EBX: standard format (0:
						 * supervisor) */
	uint32_t size[XS_NR_SUBLEAVES];		/* CPUID.(0xD,i).EAX */
	uint64_t align64;		/* bit i: CPUID.(0xD,i).ECX[1], 64-byte aligned when
					 * compacted */
};

typedef void (*xs_cpuid_fn)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);

const struct xs_comp_desc *xs_desc(unsigned int comp);
const char *xs_name(unsigned int comp);
/* "x87,sse,avx"; "none" for 0. Returns @buf. */
char *xs_mask_str(uint64_t mask, char *buf, size_t len);

/* The host CPU's own CPUID (an xs_cpuid_fn): values independent of the KVM under test. */
void xs_host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4]);

/* The one reader of CPUID leaf 0xD in kvmfpu. */
void xs_layout_from_cpuid(struct xs_layout *l, xs_cpuid_fn cpuid, void *ctx);
void xs_layout_host(struct xs_layout *l);
/* Does this layout define CPUID.(0xD,1).EBX (XSAVEC or XSAVES in CPUID.(0xD,1).EAX)? */
bool xs_has_compacted(const struct xs_layout *l);

/*
 * CPUID.(0xD,0).EBX for XCR0 @mask (supervisor bits have no standard-format offset: pass
 * XCR0 bits only), and CPUID.(0xD,1).EBX for @mask = XCR0 | IA32_XSS.
 */
uint32_t xs_size_standard(const struct xs_layout *l, uint64_t mask);
uint32_t xs_size_compacted(const struct xs_layout *l, uint64_t mask);
/* Offset of @comp in an image of the given format; @xcomp_bv matters only when compacted. */
uint32_t xs_offset(const struct xs_layout *l, unsigned int comp, bool compacted,
		   uint64_t xcomp_bv);

/*
 * Check @xcr0 against the architectural rules for XSETBV (SDM Vol. 1, 13.3): bit 0 set, AVX
 * only with SSE, the AVX-512 bits all or none and only with AVX, the MPX bits together, the
 * AMX bits together, no bit that is not a user state component. Returns false and says why.
 */
bool xs_xcr0_valid(uint64_t xcr0, char *why, size_t len);

/* Parse "0x7", "7" or "x87,sse,avx". Returns false on syntax error or unknown name. */
bool xs_parse_mask(const char *s, uint64_t *mask);

#endif /* KVMFPU_XSTATE_H */
