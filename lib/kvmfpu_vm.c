// SPDX-License-Identifier: GPL-2.0
/*
 * The one VM of kvmfpu (see kvmfpu_vm.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* sched_getcpu(); 6.1's CFLAGS do not define it */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "guest_code.h"
#include "host_regs.h"
#include "kvmfpu_vm.h"
#include "report.h"

#define GUEST_ARGS_MIN_GVA	0x10000
#define CPUID_1_ECX_XSAVE	(1u << 26)
#define CPUID_1_ECX_OSXSAVE	(1u << 27)

_Static_assert(offsetof(struct ex_regs, rip) == offsetof(struct kvmfpu_ex_regs, rip),
	       "guest_xcr0.h's struct kvmfpu_ex_regs must match the library's struct ex_regs");
_Static_assert(offsetof(struct ex_regs, vector) == offsetof(struct kvmfpu_ex_regs, vector),
	       "guest_xcr0.h's struct kvmfpu_ex_regs must match the library's struct ex_regs");

/* The selftest library's ucall port (lib/x86_64/ucall.c, UCALL_PIO_PORT), 6.1 to 6.12. */
#define LIBKVM_UCALL_PORT	0x1000

struct kvm_cpuid2 *kvmfpu_vm_supported_cpuid(void)
{
	struct kvm_cpuid2 *c = NULL;
	int fd, nent;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (nent = 128; nent <= 4096; nent *= 2) {
		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			break;
		c->nent = nent;
		if (!ioctl(fd, KVM_GET_SUPPORTED_CPUID, c))
			break;
		free(c);
		c = NULL;
		if (errno != E2BIG)
			break;
	}
	close(fd);
	return c;
}

/*
 * The entry for (@leaf, @subleaf). KVM reports a leaf whose subleaf does not matter
 * (KVM_CPUID_FLAG_SIGNIFCANT_INDEX clear) with index 0, which is what kvmfpu asks for there.
 */
static const struct kvm_cpuid_entry2 *table_entry(const struct kvm_cpuid2 *c, uint32_t leaf,
						  uint32_t subleaf)
{
	uint32_t i;

	for (i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == leaf && c->entries[i].index == subleaf)
			return &c->entries[i];
	return NULL;
}

struct kvm_cpuid_entry2 *kvmfpu_vm_cpuid_entry(struct kvm_cpuid2 *c, uint32_t leaf,
					       uint32_t subleaf)
{
	return (struct kvm_cpuid_entry2 *)table_entry(c, leaf, subleaf);
}

static bool table_leaf(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf,
		       uint32_t r[4])
{
	const struct kvm_cpuid_entry2 *e = table_entry(c, leaf, subleaf);

	/* An absent leaf reads as zeros (SDM Vol. 2A, CPUID). */
	r[0] = e ? e->eax : 0;
	r[1] = e ? e->ebx : 0;
	r[2] = e ? e->ecx : 0;
	r[3] = e ? e->edx : 0;
	return e;
}

void kvmfpu_vm_table_fn(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	table_leaf(ctx, leaf, subleaf, r);
}

bool kvmfpu_vm_supported_leaf(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	struct kvm_cpuid2 *c = kvmfpu_vm_supported_cpuid();
	bool found = table_leaf(c, leaf, subleaf, r);

	free(c);
	return found;
}

void kvmfpu_vm_supported_fn(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	kvmfpu_vm_supported_leaf(leaf, subleaf, r);
}

bool kvmfpu_vm_kvm_has(struct kvm_x86_cpu_feature feature)
{
	uint32_t r[4];

	kvmfpu_vm_supported_leaf(feature.function, feature.index, r);
	return r[feature.reg] & (1u << feature.bit);
}

uint64_t kvmfpu_vm_supported_xcr0(void)
{
	uint32_t r[4];

	/* Without XSAVE a guest can never change XCR0 from its reset value: x87 (and SSE). */
	if (!kvmfpu_vm_kvm_has(KVMFPU_FEATURE_XSAVE) || !kvmfpu_vm_supported_leaf(0xd, 0, r))
		return XS_MASK_FPSSE;
	return r[0] | ((uint64_t)r[3] << 32);
}

void kvmfpu_vm_layout(struct xs_layout *l)
{
	struct kvm_cpuid2 *c = kvmfpu_vm_supported_cpuid();

	xs_layout_from_cpuid(l, kvmfpu_vm_table_fn, c);
	free(c);
}

uint64_t kvmfpu_vm_uabi_xcr0(void)
{
	uint32_t r[4];
	uint64_t xcr0;

	kvmfpu_vm_supported_leaf(0xd, 0, r);
	xcr0 = r[0] | ((uint64_t)r[3] << 32);
	return (xcr0 | XS_MASK_FPSSE) & XS_MASK_KNOWN & ~XS_MASK_AMX;
}

bool kvmfpu_vm_quirk(const char *name)
{
	const char *q = getenv("KVMFPU_QUIRKS");
	size_t n = strlen(name);

	for (; q && *q; q += strcspn(q, ","), q += !!*q)
		if (!strncmp(q, name, n) && (q[n] == ',' || !q[n]))
			return true;
	return false;
}

static bool kvm_has_bit(const struct xs_cpuid_bit *f)
{
	uint32_t r[4];

	kvmfpu_vm_supported_leaf(f->leaf, f->subleaf, r);
	return r[f->reg] & (1u << f->bit);
}

bool kvmfpu_vm_config_supported(const struct kvmfpu_vm_config *cfg, char *why, size_t len)
{
	uint64_t kvm = kvmfpu_vm_supported_xcr0(), missing = cfg->xcr0 & ~kvm;
	char names[128];
	unsigned int i;

	if (cfg->guest == KVMFPU_VM_GUEST_AMX)
		return kvmfpu_vm_amx_supported(why, len);
	if (cfg->guest == KVMFPU_VM_GUEST_XCR0) {
		if (kvmfpu_vm_kvm_has(KVMFPU_FEATURE_XSAVE))
			return true;
		snprintf(why, len, "KVM lacks XSAVE: CPUID.1:ECX.XSAVE[26] is not in "
			 "KVM_GET_SUPPORTED_CPUID, so no guest has XCR0 or leaf 0xD");
		return false;
	}
	if (kvmfpu_vm_fxsave_only(cfg))
		return true;
	if (!kvmfpu_vm_kvm_has(KVMFPU_FEATURE_XSAVE)) {
		snprintf(why, len, "KVM lacks XSAVE: CPUID.1:ECX.XSAVE[26] is not in "
			 "KVM_GET_SUPPORTED_CPUID, so no guest can set XCR0 0x%llx",
			 (unsigned long long)cfg->xcr0);
		return false;
	}
	if (missing) {
		snprintf(why, len, "KVM does not support XCR0 component(s) %s "
			 "(KVM_GET_SUPPORTED_CPUID.0xD.0 = 0x%llx)",
			 xs_mask_str(missing, names, sizeof(names)), (unsigned long long)kvm);
		return false;
	}
	for (i = 0; i < XS_NR; i++) {
		const struct xs_cpuid_bit *f = xs_desc(i) ? &xs_desc(i)->feature : NULL;

		if (!(cfg->xcr0 & XS_BIT(i)) || !f || !f->leaf || kvm_has_bit(f))
			continue;
		snprintf(why, len, "KVM lacks %s (CPUID.0x%x.%u:E%cX[%u]), which %s needs",
			 f->name, f->leaf, f->subleaf, "ABCD"[f->reg], f->bit, xs_name(i));
		return false;
	}
	if ((cfg->xcr0 & XS_MASK_AVX512) && !kvmfpu_vm_kvm_has(KVMFPU_FEATURE_AVX512BW)) {
		snprintf(why, len, "KVM lacks AVX512BW (CPUID.0x7.0:EBX[30]); the opmask check "
			 "needs 64-bit KMOVQ");
		return false;
	}
	if (!cfg->xcr0_by_host && kvmfpu_vm_quirk("xsetbv_not_intercepted")) {
		snprintf(why, len, "lab quirk xsetbv_not_intercepted: the emulator runs the "
			 "guest's XSETBV without a VM exit, so KVM never learns the guest XCR0 "
			 "(the *_xcrs variants set it with KVM_SET_XCRS instead)");
		return false;
	}
	return true;
}

bool kvmfpu_vm_amx_supported(char *why, size_t len)
{
	uint32_t r[4];
	uint64_t supp;
	int err;

	xs_host_cpuid(NULL, 7, 0, r);
	if (!(r[3] & (1u << 24))) {
		snprintf(why, len, "host CPU lacks AMX_TILE (CPUID.7.0:EDX[24])");
		return false;
	}
	err = amx_xcomp_supported(&supp);
	if (err) {
		snprintf(why, len, "arch_prctl(ARCH_GET_XCOMP_SUPP) failed: %s: host kernel "
			 "without dynamic xstate (AMX) support", strerror(-err));
		return false;
	}
	if (!(supp & XS_BIT(XS_XTILEDATA))) {
		snprintf(why, len, "host kernel does not enable XTILEDATA: ARCH_GET_XCOMP_SUPP = "
			 "0x%llx", (unsigned long long)supp);
		return false;
	}
	kvmfpu_vm_supported_leaf(7, 0, r);
	if (!(r[3] & (1u << 24))) {
		snprintf(why, len, "KVM lacks AMX_TILE: KVM_GET_SUPPORTED_CPUID.7.0:EDX[24] is 0");
		return false;
	}
	kvmfpu_vm_supported_leaf(0xd, 1, r);
	if (!(r[0] & (1u << 4))) {
		snprintf(why, len, "KVM lacks XFD: KVM_GET_SUPPORTED_CPUID.0xD.1:EAX[4] is 0");
		return false;
	}
	return true;
}

bool kvmfpu_vm_amx_require(char *why, size_t len)
{
	struct amx_info info;
	uint64_t xcr0;
	uint32_t r[4];
	int err;

	if (!kvmfpu_vm_amx_supported(why, len))
		return false;
	err = amx_guest_perm_request(XS_XTILEDATA);
	if (err == -EINVAL) {
		snprintf(why, len, "arch_prctl(ARCH_REQ_XCOMP_GUEST_PERM) is missing (EINVAL): "
			 "kernel older than 5.17");
		return false;
	}
	if (err) {
		snprintf(why, len, "arch_prctl(ARCH_REQ_XCOMP_GUEST_PERM, XTILEDATA) failed: %s%s",
			 strerror(-err), err == -EBUSY ? " (a vCPU already exists in this "
			 "process: the permission is locked)" : "");
		return false;
	}
	xcr0 = kvmfpu_vm_supported_xcr0();
	if ((xcr0 & XS_MASK_AMX) != XS_MASK_AMX) {
		snprintf(why, len, "KVM_GET_SUPPORTED_CPUID.0xD.0 lacks XTILECFG/XTILEDATA even "
			 "with the guest permission granted: 0x%llx", (unsigned long long)xcr0);
		return false;
	}
	kvmfpu_vm_supported_leaf(0xd, 18, r);
	if (!(r[2] & (1u << 2))) {
		snprintf(why, len, "KVM lacks XFD for XTILEDATA: KVM_GET_SUPPORTED_CPUID.0xD.18:"
			 "ECX[2] is 0");
		return false;
	}
	return amx_info_from_cpuid(&info, kvmfpu_vm_supported_fn, NULL, why, len);
}

static void cpuid_set(uint32_t *reg, unsigned int bit, bool on)
{
	if (on)
		*reg |= 1u << bit;
	else
		*reg &= ~(1u << bit);
}

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/*
 * The guest CPUID bits set_guest_cpuid() decides and the checks' expected values rest on,
 * grouped by register: XSAVE, the feature flag of each component (xstate.c's table), the
 * AVX-512 flags that follow AVX512F, and CPUID.(0xD,0):EDX:EAX.
 */
struct cpuid_kept_bits {
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint32_t mask;
	char what[48];
};

#define MAX_KEPT	16

static void kept_add(struct cpuid_kept_bits *k, unsigned int *n, uint32_t leaf, uint32_t subleaf,
		     enum cpuid_reg reg, uint32_t mask, const char *what)
{
	struct cpuid_kept_bits *b;
	unsigned int i;
	size_t used;

	for (i = 0; i < *n; i++)
		if (k[i].leaf == leaf && k[i].subleaf == subleaf && k[i].reg == reg)
			break;
	if (i == *n) {
		if (*n == MAX_KEPT)
			kvmfpu_error("more than %u guest CPUID registers to compare", MAX_KEPT);
		k[(*n)++] = (struct cpuid_kept_bits){ leaf, subleaf, reg };
	}
	b = &k[i];
	b->mask |= mask;
	if (strstr(b->what, what))
		return;
	used = strlen(b->what);
	snprintf(b->what + used, sizeof(b->what) - used, "%s%s", used ? ", " : "", what);
}

static unsigned int cpuid_kept_bits(struct cpuid_kept_bits *k)
{
	unsigned int i, n = 0;

	kept_add(k, &n, 0x1, 0, CPUID_ECX, 1u << 26, "XSAVE");
	for (i = 0; i < XS_NR; i++) {
		const struct xs_cpuid_bit *f = xs_desc(i) ? &xs_desc(i)->feature : NULL;

		if (f && f->leaf)
			kept_add(k, &n, f->leaf, f->subleaf, f->reg, 1u << f->bit, f->name);
	}
	kept_add(k, &n, 0x7, 0, CPUID_EBX, 1u << 17 | 1u << 30 | 1u << 31, "AVX-512");
	kept_add(k, &n, 0xd, 0, CPUID_EAX, ~0u, "XCR0[31:0]");
	kept_add(k, &n, 0xd, 0, CPUID_EDX, ~0u, "XCR0[63:32]");
	kept_add(k, &n, 0xd, 0, CPUID_ECX, ~0u, "size of XCR0[63:0]");
	return n;
}

static uint32_t cpuid_value(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf,
			    enum cpuid_reg reg)
{
	uint32_t r[4];

	table_leaf(c, leaf, subleaf, r);
	return r[reg];
}

bool kvmfpu_vm_cpuid_kept(const struct kvm_cpuid2 *set, const struct kvm_cpuid2 *got,
			  char *why, size_t len)
{
	static const char reg_name[] = "abcd";
	struct cpuid_kept_bits bits[MAX_KEPT];
	unsigned int i, nr = cpuid_kept_bits(bits);
	size_t n = 0;

	if (len)
		why[0] = 0;
	for (i = 0; i < nr; i++) {
		const struct cpuid_kept_bits *b = &bits[i];
		uint32_t s = cpuid_value(set, b->leaf, b->subleaf, b->reg) & b->mask;
		uint32_t g = cpuid_value(got, b->leaf, b->subleaf, b->reg) & b->mask;

		if (s == g)
			continue;
		if (!n)
			n = snprintf(why, len, "KVM did not keep the guest CPUID set with "
				     "KVM_SET_CPUID2 (KVM_GET_CPUID2 differs:");
		if (n < len)
			n += snprintf(why + n, len - n, " 0x%x.%u:e%cx %s set 0x%x got 0x%x;",
				      b->leaf, b->subleaf, reg_name[b->reg], b->what, s, g);
	}
	if (n && n < len)
		snprintf(why + n - 1, len - n + 1, "), so KVM's view of the guest is not the "
			 "one the expected values come from");
	return !n;
}

/*
 * KVM derives the guest's permitted xfeatures from its own copy of leaf 0xD.0
 * (kvm_vcpu_after_set_cpuid()), and KVM_GET_XSAVE2 reports those plus FP and SSE. The
 * expected values come from the CPUID we set; whether KVM kept it decides whether checks
 * that rest on it can judge KVM at all (a KVM that does not is judged against itself).
 */
static void check_cpuid_kept(struct kvmfpu_vm *v, const struct kvm_cpuid2 *set,
			     const struct kvm_cpuid2 *got, uint64_t requested)
{
	v->cpuid_xcr0 = cpuid_value(got, 0xd, 0, CPUID_EAX) |
			(uint64_t)cpuid_value(got, 0xd, 0, CPUID_EDX) << 32;
	v->cpuid_kept = kvmfpu_vm_cpuid_kept(set, got, v->cpuid_lost, sizeof(v->cpuid_lost));
	v->allowed = (requested & kvmfpu_vm_uabi_xcr0()) | XS_MASK_FPSSE;
}

/* The register of @c that holds feature flag @f, or NULL when @c lacks the leaf. */
static uint32_t *feature_reg(struct kvm_cpuid2 *c, const struct xs_cpuid_bit *f)
{
	struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)table_entry(c, f->leaf, f->subleaf);

	if (!e)
		return NULL;
	return f->reg == CPUID_EAX ? &e->eax : f->reg == CPUID_EBX ? &e->ebx :
	       f->reg == CPUID_ECX ? &e->ecx : &e->edx;
}

/*
 * Each component's feature flag (xstate.c's table) set exactly when XCR0 has a component that
 * needs it; a leaf the vCPU's CPUID lacks stays absent (it reads as zeros).
 */
static void set_feature_bits(struct kvm_cpuid2 *c, uint64_t xcr0)
{
	const struct xs_cpuid_bit *f;
	unsigned int i, pass;
	uint32_t *reg;

	/* Clear all first: components that share a flag (AVX-512, AMX) set it if any is on. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < XS_NR; i++) {
			f = xs_desc(i) ? &xs_desc(i)->feature : NULL;
			if (!f || !f->leaf || !(reg = feature_reg(c, f)))
				continue;
			if (!pass)
				*reg &= ~(1u << f->bit);
			else if (xcr0 & XS_BIT(i))
				*reg |= 1u << f->bit;
		}
	}
}

struct kvm_cpuid2 *kvmfpu_vm_cpuid_dup(const struct kvm_cpuid2 *c)
{
	size_t size = sizeof(*c) + c->nent * sizeof(c->entries[0]);
	struct kvm_cpuid2 *d = malloc(size);

	if (!d)
		kvmfpu_error("cannot allocate a CPUID table of %u entries", c->nent);
	memcpy(d, c, size);
	return d;
}

static struct kvm_cpuid_entry2 *must_entry(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
	struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)table_entry(c, leaf, subleaf);

	if (!e)
		kvmfpu_error("KVM_GET_SUPPORTED_CPUID has no leaf 0x%x.%u", leaf, subleaf);
	return e;
}

/* KVM_GET_CPUID2, raw: a new table (free() it) as large as KVM's copy needs. */
static struct kvm_cpuid2 *read_guest_cpuid(struct kvmfpu_vm *v)
{
	struct kvm_cpuid2 *c;
	int nent;

	for (nent = 64; nent <= 4096; nent *= 2) {
		c = calloc(1, kvm_cpuid2_size(nent));
		if (!c)
			kvmfpu_error("cannot allocate a CPUID buffer");
		c->nent = nent;
		if (!ioctl(v->vcpu->fd, KVM_GET_CPUID2, c))
			return c;
		free(c);
		if (errno != E2BIG)
			break;
	}
	kvmfpu_error("KVM_GET_CPUID2 failed: %s", strerror(errno));
}

/* Drop every subleaf of @leaf from @c. */
static void cpuid_remove_leaf(struct kvm_cpuid2 *c, uint32_t leaf)
{
	uint32_t i, n = 0;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function != leaf)
			c->entries[n++] = c->entries[i];
	c->nent = n;
}

/*
 * The modes without leaf 0xD (enum kvmfpu_vm_cpuid), through raw ioctls: the library's
 * vcpu_set_cpuid() asserts that KVM_GET_CPUID2 fits the table it set, which a KVM that keeps
 * its own view (kvm_pvm) breaks. NO_LEAF_D is KVM's CPUID as a CPU model without XSAVE has
 * it: no XSAVE, OSXSAVE or any component's feature flag, no leaf 0xD. EMPTY sets no entries.
 */
static void set_guest_cpuid_no_xsave(struct kvmfpu_vm *v)
{
	struct kvm_cpuid2 *set = calloc(1, kvm_cpuid2_size(v->vcpu->cpuid->nent));
	struct kvm_cpuid2 *got;
	struct kvm_cpuid_entry2 *e1, *e7;

	if (!set)
		kvmfpu_error("cannot allocate a CPUID buffer");
	if (v->cfg.cpuid == KVMFPU_VM_CPUID_NO_LEAF_D) {
		memcpy(set, v->vcpu->cpuid, kvm_cpuid2_size(v->vcpu->cpuid->nent));
		e1 = (struct kvm_cpuid_entry2 *)table_entry(set, 1, 0);
		e7 = (struct kvm_cpuid_entry2 *)table_entry(set, 7, 0);
		set_feature_bits(set, XS_MASK_FPSSE);
		if (e1)
			e1->ecx &= ~(1u << 26 | 1u << 27);	/* XSAVE, OSXSAVE */
		if (e7)					/* AVX-512 DQ, BW, VL */
			e7->ebx &= ~(1u << 17 | 1u << 30 | 1u << 31);
		cpuid_remove_leaf(set, 0xd);
	}
	if (ioctl(v->vcpu->fd, KVM_SET_CPUID2, set))
		kvmfpu_fail("KVM_SET_CPUID2 with %u entries (%s) before KVM_RUN failed: %s",
			    set->nent, v->cfg.cpuid == KVMFPU_VM_CPUID_EMPTY ? "none" :
			    "no XSAVE, no leaf 0xD", strerror(errno));
	/* Keep the library's copy truthful; a migration gives the new vCPU this table too. */
	memcpy(v->vcpu->cpuid, set, kvm_cpuid2_size(set->nent));
	got = read_guest_cpuid(v);
	check_cpuid_kept(v, set, got, XS_MASK_FPSSE);
	free(got);
	free(v->cpuid);
	v->cpuid = set;
}

/*
 * Turn @c (KVM's supported CPUID) into the guest CPUID of XCR0 @xcr0: feature bits only for
 * the components in XCR0, and leaf 0xD.0 advertising exactly XCR0, which is what KVM derives
 * the guest's permitted xfeatures (and so what KVM_GET_XSAVE2 may report) from. Without XSAVE
 * (@xsave_hidden) @xcr0 is x87|SSE and CPUID.1:ECX.XSAVE is clear.
 */
static void make_guest_cpuid(struct kvm_cpuid2 *c, const struct xs_layout *l, uint64_t xcr0,
			     bool xsave_hidden)
{
	struct kvm_cpuid_entry2 *e1 = must_entry(c, 1, 0);
	struct kvm_cpuid_entry2 *e7 = must_entry(c, 7, 0);
	struct kvm_cpuid_entry2 *ed = must_entry(c, 0xd, 0);
	bool avx512 = xcr0 & XS_MASK_AVX512;

	cpuid_set(&e1->ecx, 26, !xsave_hidden);
	set_feature_bits(c, xcr0);
	/* AVX512DQ, AVX512BW, AVX512VL as KVM offers them, only with AVX512F. */
	cpuid_set(&e7->ebx, 17, avx512 && (e7->ebx & (1u << 17)));
	cpuid_set(&e7->ebx, 30, avx512 && (e7->ebx & (1u << 30)));
	cpuid_set(&e7->ebx, 31, avx512 && (e7->ebx & (1u << 31)));
	ed->eax = (uint32_t)xcr0;
	ed->edx = xcr0 >> 32;
	ed->ecx = xs_size_standard(l, xcr0);
	ed->ebx = xs_size_standard(l, xcr0);
}

/*
 * KVM_SET_CPUID2 of @set (kept in v->cpuid: a migration gives the new vCPU this table, not
 * KVM_GET_CPUID2's read-back, which vcpu_init_cpuid() leaves in the library's copy), and
 * whether KVM kept what the checks rest on for a guest of XCR0 @xcr0.
 */
static void load_guest_cpuid(struct kvmfpu_vm *v, struct kvm_cpuid2 *set, uint64_t xcr0)
{
	vcpu_init_cpuid(v->vcpu, set);
	check_cpuid_kept(v, set, v->vcpu->cpuid, xcr0);	/* read back by vcpu_init_cpuid() */
	if (v->cpuid != set)
		free(v->cpuid);
	v->cpuid = set;
}

/* Guest CPUID that matches the configuration (make_guest_cpuid()). */
static void set_guest_cpuid(struct kvmfpu_vm *v)
{
	uint64_t xcr0 = v->cfg.xsave_hidden ? XS_MASK_FPSSE : v->cfg.xcr0;
	struct kvm_cpuid2 *set;

	if (v->cfg.cpuid != KVMFPU_VM_CPUID_XCR0) {
		set_guest_cpuid_no_xsave(v);
		return;
	}
	set = kvmfpu_vm_cpuid_dup(v->vcpu->cpuid);
	make_guest_cpuid(set, &v->layout, xcr0, v->cfg.xsave_hidden);
	load_guest_cpuid(v, set, xcr0);
}

/*
 * CR4.OSXSAVE exactly when the guest has XSAVE, CR4.PKE exactly when it has PKRU, whatever
 * the library's default for new vCPUs is (newer libraries set OSXSAVE themselves).
 */
static void set_guest_cr4(struct kvmfpu_vm *v)
{
	struct kvm_sregs sregs;

	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 &= ~(X86_CR4_OSXSAVE | X86_CR4_PKE);
	if (!kvmfpu_vm_fxsave_only(&v->cfg))
		sregs.cr4 |= X86_CR4_OSXSAVE;
	if (!kvmfpu_vm_fxsave_only(&v->cfg) && (v->cfg.xcr0 & XS_BIT(XS_PKRU)))
		sregs.cr4 |= X86_CR4_PKE;
	vcpu_sregs_set(v->vcpu, &sregs);
}

int kvmfpu_vm_set_xcr0(struct kvmfpu_vm *v, uint64_t xcr0)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = xcr0 } };

	return __vcpu_ioctl(v->vcpu, KVM_SET_XCRS, &xcrs) ? -errno : 0;
}

int kvmfpu_vm_get_xcr0(struct kvmfpu_vm *v, uint64_t *xcr0)
{
	struct kvm_xcrs xcrs = { 0 };
	uint32_t i;

	if (__vcpu_ioctl(v->vcpu, KVM_GET_XCRS, &xcrs))
		return -errno;
	for (i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		if (xcrs.xcrs[i].xcr == 0) {
			*xcr0 = xcrs.xcrs[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

uint64_t kvmfpu_vm_xcr0(struct kvmfpu_vm *v)
{
	uint64_t xcr0;
	int r = kvmfpu_vm_get_xcr0(v, &xcr0);

	if (r == -ENOENT)
		kvmfpu_fail("KVM_GET_XCRS returned no XCR0");
	if (r)
		kvmfpu_fail("KVM_GET_XCRS failed: %s", strerror(-r));
	return xcr0;
}

int kvmfpu_vm_set_cpuid(struct kvmfpu_vm *v, const struct kvm_cpuid2 *c)
{
	return ioctl(v->vcpu->fd, KVM_SET_CPUID2, c) ? -errno : 0;
}

/*
 * A guest without XSAVE runs with XCR0 at its reset value, x87 only (SDM Vol. 1, 13.3);
 * newer libraries give new vCPUs KVM's whole XCR0, so put the reset value back.
 */
static void reset_xcr0(struct kvmfpu_vm *v)
{
	uint64_t xcr0;
	int r;

	if (!kvm_has_cap(KVM_CAP_XCRS) || kvmfpu_vm_get_xcr0(v, &xcr0) || xcr0 == XS_BIT(XS_X87))
		return;
	r = kvmfpu_vm_set_xcr0(v, XS_BIT(XS_X87));
	if (r)
		kvmfpu_fail("KVM_SET_XCRS(XCR0=0x1, the reset value) failed: %s", strerror(-r));
}

static void set_xcr0_by_host(struct kvmfpu_vm *v)
{
	int r = kvmfpu_vm_set_xcr0(v, v->cfg.xcr0);

	if (r)
		kvmfpu_fail("KVM_SET_XCRS(XCR0=0x%llx) failed: %s, though guest CPUID 0xD.0 "
			    "advertises it", (unsigned long long)v->cfg.xcr0, strerror(-r));
}

static void alloc_guest_image(struct kvmfpu_vm *v, struct ximage *img, uint64_t *gva)
{
	uint32_t size = xs_size_standard(&v->layout, v->guest_comps);

	*gva = vm_vaddr_alloc(v->vm, size, GUEST_ARGS_MIN_GVA);
	ximage_wrap(img, addr_gva2hva(v->vm, *gva), size, &v->layout, false);
	memset(img->buf, 0, size);
}

/* The AMX guest: KVM's whole CPUID (as the library gives new vCPUs), its #NM handler. */
static void create_amx_guest(struct kvmfpu_vm *v)
{
	struct kvm_sregs sregs;
	char why[256];

	v->vm = vm_create_with_one_vcpu(&v->vcpu, kvmfpu_guest_amx_main);
	kvmfpu_init_descriptor_tables(v->vm, v->vcpu);
	vm_install_exception_handler(v->vm, KVMFPU_NM_VECTOR, kvmfpu_guest_nm_handler);
	if (!amx_info_from_cpuid(&v->info, kvmfpu_vm_supported_fn, NULL, why, sizeof(why)))
		kvmfpu_error("KVM's AMX CPUID leaves: %s", why);
	v->guest_comps = v->kvm_xcr0;
	v->cpuid_xcr0 = v->kvm_xcr0;
	v->allowed = v->kvm_xcr0;
	v->cpuid_kept = true;
	/* What vm_create_with_one_vcpu() gave the vCPU (the library's cached copy). */
	v->cpuid = kvmfpu_vm_cpuid_dup(kvm_get_supported_cpuid());

	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 |= X86_CR4_OSXSAVE;
	if (v->kvm_xcr0 & XS_BIT(XS_PKRU))
		sregs.cr4 |= X86_CR4_PKE;
	vcpu_sregs_set(v->vcpu, &sregs);
}

static void *alloc_guest_args(struct kvmfpu_vm *v, size_t size, vm_vaddr_t *gva)
{
	void *p;

	*gva = vm_vaddr_alloc(v->vm, size, GUEST_ARGS_MIN_GVA);
	p = addr_gva2hva(v->vm, *gva);
	memset(p, 0, size);
	return p;
}

/*
 * The XCR0 guest, its #GP handler counting the faults of its XSETBV. Its CPUID is KVM's
 * supported CPUID as a VMM passes it on (read now: with the AMX permission when the process
 * holds it), with leaf 0xD.0 advertising cfg.xcr0 (ECX its standard size, EBX the size for
 * the reset XCR0, x87), and CPUID.1:ECX XSAVE set and OSXSAVE clear (KVM mirrors CR4 there at
 * run time). The feature flags stay as KVM offers them: a guest whose leaf 0xD.0 lacks a
 * component KVM supports must still be refused it, as __kvm_set_xcr() allows only
 * guest_supported_xcr0, which kvm_vcpu_after_set_cpuid() takes from leaf 0xD.0. CR4.OSXSAVE
 * is set, XCR0 is at its reset value.
 */
static void create_xcr0_guest(struct kvmfpu_vm *v)
{
	uint64_t xcr0 = v->cfg.xcr0;
	struct kvm_cpuid_entry2 *e1, *d0;
	struct kvm_cpuid2 *set, *got;
	struct kvm_sregs sregs;
	int r;

	v->vm = vm_create_with_one_vcpu(&v->vcpu, kvmfpu_guest_xcr0_main);
	kvmfpu_init_descriptor_tables(v->vm, v->vcpu);
	vm_install_exception_handler(v->vm, KVMFPU_GP_VECTOR, kvmfpu_guest_xcr0_gp_handler);
	set = kvmfpu_vm_supported_cpuid();
	if (!set)
		kvmfpu_error("KVM_GET_SUPPORTED_CPUID failed");
	e1 = kvmfpu_vm_cpuid_entry(set, 1, 0);
	d0 = kvmfpu_vm_cpuid_entry(set, 0xd, 0);
	if (!e1 || !d0)
		kvmfpu_fail("KVM_GET_SUPPORTED_CPUID has XSAVE but no leaf %s", e1 ? "0xD.0" : "1");
	e1->ecx = (e1->ecx | CPUID_1_ECX_XSAVE) & ~CPUID_1_ECX_OSXSAVE;
	d0->eax = (uint32_t)xcr0;
	d0->edx = xcr0 >> 32;
	d0->ecx = xs_size_standard(&v->layout, xcr0);
	d0->ebx = xs_size_standard(&v->layout, XS_BIT(XS_X87));
	r = kvmfpu_vm_set_cpuid(v, set);
	if (r)
		kvmfpu_fail("KVM_SET_CPUID2 (leaf 0xD.0 EDX:EAX 0x%llx) before KVM_RUN failed: %s",
			    (unsigned long long)xcr0, strerror(-r));
	got = read_guest_cpuid(v);
	check_cpuid_kept(v, set, got, xcr0);
	free(got);
	v->cpuid = set;
	v->allowed = xcr0 & v->kvm_xcr0;
	v->guest_xcr0 = XS_BIT(XS_X87);

	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 |= X86_CR4_OSXSAVE;
	vcpu_sregs_set(v->vcpu, &sregs);
}

const struct kvmfpu_vm_config kvmfpu_vm_amx_config = { .guest = KVMFPU_VM_GUEST_AMX };

void kvmfpu_vm_create(struct kvmfpu_vm *v, const struct kvmfpu_vm_config *cfg)
{
	bool amx = cfg->guest == KVMFPU_VM_GUEST_AMX;
	uint32_t *offset = NULL;
	vm_vaddr_t args_gva;
	unsigned int i;
	int cap;

	memset(v, 0, sizeof(*v));
	v->cfg = *cfg;
	v->kvm_xcr0 = kvmfpu_vm_supported_xcr0();
	kvmfpu_vm_layout(&v->layout);
	if (amx) {
		create_amx_guest(v);
		v->amx = alloc_guest_args(v, sizeof(*v->amx), &args_gva);
		offset = v->amx->offset;
		alloc_guest_image(v, &v->fill, &v->amx->fill_gva);
		alloc_guest_image(v, &v->save, &v->amx->save_gva);
	} else if (cfg->guest == KVMFPU_VM_GUEST_XCR0) {
		create_xcr0_guest(v);
		v->xcr0_args = alloc_guest_args(v, sizeof(*v->xcr0_args), &args_gva);
	} else {
		v->vm = vm_create_with_one_vcpu(&v->vcpu, kvmfpu_guest_main);
		v->guest_xcr0 = kvmfpu_vm_fxsave_only(cfg) ? XS_MASK_FPSSE : cfg->xcr0;
		v->guest_comps = v->guest_xcr0 & KVMFPU_VM_GUEST_COMPS;
		/*
		 * CR4 first: KVM_SET_SREGS checks EFER.LME/LMA/NX and CR4 against the guest
		 * CPUID of the moment (kvm_is_valid_sregs()), which an empty CPUID would fail;
		 * KVM_SET_CPUID2 does not revisit them.
		 */
		set_guest_cr4(v);
		set_guest_cpuid(v);
		v->args = alloc_guest_args(v, sizeof(*v->args), &args_gva);
		v->args->mode = cfg->guest == KVMFPU_VM_GUEST_BARE ? KVMFPU_GUEST_BARE :
								     KVMFPU_GUEST_SWAP;
		v->args->components = v->guest_comps;
		offset = v->args->offset;
		alloc_guest_image(v, &v->fill, &v->args->fill_gva);
		alloc_guest_image(v, &v->save, &v->args->save_gva);
		if (!kvmfpu_vm_fxsave_only(cfg))
			alloc_guest_image(v, &v->xsave, &v->args->xsave_gva);
		if (kvmfpu_vm_fxsave_only(cfg))
			reset_xcr0(v);
		else if (cfg->xcr0_by_host)
			set_xcr0_by_host(v);
		else
			v->args->xcr0 = cfg->xcr0;
	}
	for (i = 0; offset && i < XS_NR; i++)
		offset[i] = v->layout.offset[i];
	vcpu_args_set(v->vcpu, 1, args_gva);

	cap = vm_check_cap(v->vm, KVM_CAP_XSAVE2);
	v->uabi_size = cap > 0 ? cap : sizeof(struct kvm_xsave);
}

bool kvmfpu_vm_save_insn(struct kvmfpu_vm *v, enum kvmfpu_save_insn insn, char *why, size_t len)
{
	static const char * const name[] = { "XSAVE", "XSAVEOPT", "XSAVEC" };
	uint32_t eax = cpuid_value(v->vcpu->cpuid, 0xd, 1, CPUID_EAX);

	if (!v->args || !v->xsave.buf) {
		snprintf(why, len, "the guest has no XSAVE (CPUID.1:ECX.XSAVE[26] clear), so no "
			 "%s", name[insn]);
		return false;
	}
	if (insn != KVMFPU_SAVE_XSAVE && !(eax & (1u << (insn - 1)))) {
		snprintf(why, len, "the guest lacks %s: CPUID.(0xD,1):EAX[%u] is 0 in the CPUID "
			 "KVM gives it (0xD.1 EAX = 0x%x)", name[insn], insn - 1, eax);
		return false;
	}
	v->args->save_insn = insn;
	v->xsave.compacted = insn == KVMFPU_SAVE_XSAVEC;
	return true;
}

void kvmfpu_vm_destroy(struct kvmfpu_vm *v)
{
	if (v->vm)
		kvm_vm_free(v->vm);
	v->vm = NULL;
	free(v->cpuid);
	v->cpuid = NULL;
}

void kvmfpu_vm_program(struct kvmfpu_vm *v, const struct kvmfpu_amx_op *ops, unsigned int n)
{
	if (!v->amx)
		kvmfpu_error("a guest program for a VM without the AMX guest");
	if (n >= KVMFPU_AMX_MAX_OPS)
		kvmfpu_error("guest program of %u operations is too long", n);
	memset(v->amx->ops, 0, sizeof(v->amx->ops));
	memcpy(v->amx->ops, ops, n * sizeof(*ops));
	v->amx->pc = 0;
}

/* Where the guest was: its RIP, and the AMX guest's program position. */
static const char *guest_where(struct kvmfpu_vm *v, char *buf, size_t len)
{
	struct kvm_regs regs;
	int n;

	vcpu_regs_get(v->vcpu, &regs);
	n = snprintf(buf, len, "guest RIP 0x%llx after %u exits, XCR0 0x%llx", regs.rip, v->exits,
		     (unsigned long long)v->guest_xcr0);
	if (v->amx && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - n, ", at guest program op %llu (opcode %u)",
			 (unsigned long long)v->amx->pc - 1,
			 v->amx->pc ? v->amx->ops[v->amx->pc - 1].op : 0);
	if (v->xcr0_args && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - n, ", in operation %llu (value 0x%llx) after %llu reports",
			 (unsigned long long)v->xcr0_args->op,
			 (unsigned long long)v->xcr0_args->value,
			 (unsigned long long)v->xcr0_args->reports);
	return buf;
}

static void __attribute__((noreturn)) explain_exit(struct kvmfpu_vm *v)
{
	struct kvm_run *run = v->vcpu->run;
	char where[192];

	guest_where(v, where, sizeof(where));
	if (run->exit_reason == KVM_EXIT_IO && run->io.port == LIBKVM_UCALL_PORT) {
		struct ucall uc;

		memset(&uc, 0, sizeof(uc));
		get_ucall(v->vcpu, &uc);
		kvmfpu_fail("guest took an exception kvmfpu does not handle (the selftest library "
			    "reported it: ucall %lu, args 0x%lx 0x%lx 0x%lx), %s%s%s",
			    (unsigned long)uc.cmd, (unsigned long)uc.args[0],
			    (unsigned long)uc.args[1], (unsigned long)uc.args[2], where,
#ifdef UCALL_BUFFER_LEN
			    ": ", uc.buffer
#else
			    "", ""
#endif
			    );
	}
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		kvmfpu_fail("KVM_RUN: KVM_EXIT_INTERNAL_ERROR, suberror %u (%s), %s: KVM could not "
			    "run guest code it claims to support", run->internal.suberror,
			    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			    "emulation failure" : "see linux/kvm.h", where);
	if (run->exit_reason == KVM_EXIT_SHUTDOWN)
		kvmfpu_fail("KVM_RUN: KVM_EXIT_SHUTDOWN (guest triple fault), %s: a guest FPU "
			    "instruction faulted", where);
	if (run->exit_reason == KVM_EXIT_IO)
		kvmfpu_fail("KVM_RUN: unexpected I/O exit: port 0x%x, %s, size %u, %s",
			    run->io.port, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
			    run->io.size, where);
	kvmfpu_fail("KVM_RUN: unexpected exit %s (%u), %s", exit_reason_str(run->exit_reason),
		    run->exit_reason, where);
}

uint32_t kvmfpu_vm_run_host_regs(struct kvmfpu_vm *v, const struct ximage *host_fill,
				 struct ximage *host_out, uint64_t host_mask)
{
	struct kvm_run *run = v->vcpu->run;
	long r;
	int cpu;

	do {
		cpu = sched_getcpu();
		if (host_fill)
			r = host_regs_kvm_run(v->vcpu->fd, host_fill, host_out, host_mask);
		else
			r = ioctl(v->vcpu->fd, KVM_RUN, NULL) ? -errno : 0;
		/* A pending signal ends KVM_RUN with EINTR (KVM_EXIT_INTR): run again. */
		v->eintr += r == -EINTR;
		/* The vCPU thread was migrated while inside KVM_RUN (stress's migrate). */
		v->run_cpu_moves += cpu >= 0 && sched_getcpu() != cpu;
	} while (r == -EINTR);
	if (r)
		kvmfpu_fail("KVM_RUN failed: %s", strerror(-r));
	v->exits++;

	if (run->exit_reason == KVM_EXIT_IO && run->io.port == KVMFPU_EXIT_PORT &&
	    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4)
		return *(uint32_t *)((uint8_t *)run + run->io.data_offset);
	explain_exit(v);
}

uint32_t kvmfpu_vm_run(struct kvmfpu_vm *v)
{
	return kvmfpu_vm_run_host_regs(v, NULL, NULL, 0);
}

void kvmfpu_vm_run_until(struct kvmfpu_vm *v, uint32_t stage, const char *what)
{
	uint32_t got = kvmfpu_vm_run(v);

	if (got == stage)
		return;
	if (v->amx)
		kvmfpu_fail("%s: guest reported stage 0x%x, expected 0x%x (#NM count %llu, "
			    "program op %llu)", what, got, stage,
			    (unsigned long long)v->amx->nm.count,
			    (unsigned long long)v->amx->pc);
	kvmfpu_fail("%s: guest reported stage 0x%x, expected 0x%x", what, got, stage);
}

void kvmfpu_vm_xcr0_op(struct kvmfpu_vm *v, enum kvmfpu_xcr0_op op, uint64_t value)
{
	struct kvmfpu_xcr0_args *a = v->xcr0_args;
	uint64_t reports;
	uint32_t stage;

	if (!a)
		kvmfpu_error("an XCR0 guest operation for a VM without the XCR0 guest");
	reports = a->reports;
	a->op = op;
	a->value = value;
	stage = kvmfpu_vm_run(v);
	if (stage == KVMFPU_XCR0_STAGE_REPORT && a->reports == reports + 1)
		return;
	if (stage == KVMFPU_XCR0_STAGE_STRAY_GP)
		kvmfpu_fail("the guest took #GP at RIP 0x%llx, not at its XSETBV (operation %u, "
			    "value 0x%llx)", (unsigned long long)a->gp_rip, op,
			    (unsigned long long)value);
	kvmfpu_fail("the guest reported stage 0x%x after %llu reports, expected report %llu of "
		    "operation %u (value 0x%llx)", stage, (unsigned long long)a->reports,
		    (unsigned long long)reports + 1, op, (unsigned long long)value);
}

static void vcpu_read_image(struct kvmfpu_vm *v, struct kvm_vcpu *vcpu, void *buf)
{
	unsigned long cmd = v->uabi_size > sizeof(struct kvm_xsave) ||
			    kvm_check_cap(KVM_CAP_XSAVE2) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;

	if (ioctl(vcpu->fd, cmd, buf))
		kvmfpu_fail("%s (%u bytes) failed: %s",
			    cmd == KVM_GET_XSAVE2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE",
			    v->uabi_size, strerror(errno));
}

void kvmfpu_vm_vcpu_get_image(struct kvmfpu_vm *v, struct kvm_vcpu *vcpu, struct ximage *img)
{
	void *buf = ximage_zalloc(v->uabi_size);

	if (!buf)
		kvmfpu_error("cannot allocate %u bytes for an XSAVE image", v->uabi_size);
	vcpu_read_image(v, vcpu, buf);
	ximage_wrap(img, buf, v->uabi_size, &v->layout, false);
}

void kvmfpu_vm_read_image(struct kvmfpu_vm *v, struct ximage *img)
{
	if (img->size != v->uabi_size)
		kvmfpu_error("an image of %u bytes for KVM_GET_XSAVE2 of %u", img->size,
			     v->uabi_size);
	vcpu_read_image(v, v->vcpu, img->buf);
}

void kvmfpu_vm_get_image(struct kvmfpu_vm *v, struct ximage *img)
{
	kvmfpu_vm_vcpu_get_image(v, v->vcpu, img);
}

int kvmfpu_vm_set_image(struct kvmfpu_vm *v, const struct ximage *img)
{
	return ioctl(v->vcpu->fd, KVM_SET_XSAVE, img->buf) ? -errno : 0;
}

struct one_msr {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e;
};

int kvmfpu_vm_get_msr(struct kvmfpu_vm *v, uint32_t index, uint64_t *val)
{
	struct one_msr m = { .hdr.nmsrs = 1, .e.index = index };

	if (ioctl(v->vcpu->fd, KVM_GET_MSRS, &m) != 1)
		return -1;
	*val = m.e.data;
	return 0;
}

int kvmfpu_vm_set_msr(struct kvmfpu_vm *v, uint32_t index, uint64_t val)
{
	struct one_msr m = { .hdr.nmsrs = 1, .e.index = index, .e.data = val };

	return ioctl(v->vcpu->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -1;
}

uint64_t kvmfpu_vm_msr(struct kvmfpu_vm *v, uint32_t index)
{
	uint64_t val;

	if (kvmfpu_vm_get_msr(v, index, &val))
		kvmfpu_fail("KVM_GET_MSRS refused MSR 0x%x, though KVM supports it", index);
	return val;
}

/*
 * The source half of a migration: the vCPU's whole state (vcpu_save_state(): registers,
 * sregs, every MSR of KVM_GET_MSR_INDEX_LIST, XCRs, the KVM_GET_XSAVE2 image, events, debug
 * registers), its general registers in @regs, then the VM closed and a new one opened on the
 * same guest memory with a new vCPU 0 that has the CPUID @cpuid (KVM_SET_CPUID2 before any
 * state: KVM checks CR4 and XCR0 against it).
 */
static struct kvm_x86_state *migrate_out(struct kvmfpu_vm *v, struct kvm_regs *regs)
{
	struct kvm_x86_state *state = vcpu_save_state(v->vcpu);

	vcpu_regs_get(v->vcpu, regs);
	kvm_vm_release(v->vm);
	/* A vCPU with KVM's supported CPUID, replaced by the caller's before any state. */
	v->vcpu = vm_recreate_with_one_vcpu(v->vm);
	return state;
}

static void check_regs_kept(struct kvmfpu_vm *v, const struct kvm_regs *before)
{
	struct kvm_regs after;

	vcpu_regs_get(v->vcpu, &after);
	if (memcmp(before, &after, sizeof(after)))
		kvmfpu_fail("migrate: general registers differ after the restore "
			    "(RIP 0x%llx -> 0x%llx, RSP 0x%llx -> 0x%llx)", before->rip, after.rip,
			    before->rsp, after.rsp);
}

void kvmfpu_vm_migrate(struct kvmfpu_vm *v)
{
	struct kvm_regs before;
	struct kvm_x86_state *state = migrate_out(v, &before);

	/* The CPUID the test set, not KVM_GET_CPUID2's read-back of it. */
	if (v->amx || v->xcr0_args)
		vcpu_init_cpuid(v->vcpu, v->cpuid);
	else
		load_guest_cpuid(v, v->cpuid, kvmfpu_vm_fxsave_only(&v->cfg) ? XS_MASK_FPSSE : v->cfg.xcr0);
	vcpu_load_state(v->vcpu, state);
	kvm_x86_state_cleanup(state);
	check_regs_kept(v, &before);
}

int kvmfpu_vm_migrate_fewer(struct kvmfpu_vm *v, uint64_t xcr0, char *why, size_t len)
{
	uint64_t old_xcr0 = v->cfg.xcr0, dropped = old_xcr0 & ~xcr0;
	struct kvm_cpuid2 *cpuid = kvmfpu_vm_cpuid_dup(v->cpuid);
	struct kvm_x86_state *state;
	struct kvm_regs before;
	char names[128];
	int r, ret = -1;

	if (v->amx || kvmfpu_vm_fxsave_only(&v->cfg) || (xcr0 & ~old_xcr0) || !(xcr0 & XS_BIT(XS_X87)))
		kvmfpu_error("migrate_fewer: XCR0 0x%llx is not a subset with x87 of the "
			     "guest's 0x%llx with XSAVE", (unsigned long long)xcr0,
			     (unsigned long long)old_xcr0);
	make_guest_cpuid(cpuid, &v->layout, xcr0, false);
	state = migrate_out(v, &before);
	load_guest_cpuid(v, cpuid, xcr0);
	v->cfg.xcr0 = xcr0;
	v->guest_xcr0 = xcr0;
	v->guest_comps = xcr0 & KVMFPU_VM_GUEST_COMPS;
	v->args->components = v->guest_comps;

	/* CR4.PKE is reserved without CPUID.7.0:ECX.PKU (kvm_is_valid_cr4()). */
	if (!(xcr0 & XS_BIT(XS_PKRU)))
		state->sregs.cr4 &= ~X86_CR4_PKE;
	vcpu_sregs_set(v->vcpu, &state->sregs);

	/*
	 * __kvm_set_xcr(): XCR0 may hold only what the guest CPUID's leaf 0xD.0 allows, so the
	 * source's XCR0 is refused with EINVAL when it has a component the new CPUID dropped.
	 */
	r = kvmfpu_vm_set_xcr0(v, old_xcr0);
	if (dropped && r != -EINVAL) {
		snprintf(why, len, "KVM_SET_XCRS(XCR0=0x%llx) into a vCPU whose CPUID 0xD.0 allows "
			 "only 0x%llx returned %s, expected EINVAL (%s not allowed)",
			 (unsigned long long)old_xcr0, (unsigned long long)xcr0,
			 r ? strerror(-r) : "success", xs_mask_str(dropped, names, sizeof(names)));
		goto out;
	}
	r = kvmfpu_vm_set_xcr0(v, xcr0);
	if (r) {
		snprintf(why, len, "KVM_SET_XCRS(XCR0=0x%llx), which the new CPUID 0xD.0 allows, "
			 "failed: %s", (unsigned long long)xcr0, strerror(-r));
		goto out;
	}
	/*
	 * fpu_copy_uabi_to_guest_fpstate() checks XSTATE_BV against what KVM supports, not
	 * against the guest CPUID: the source's whole image must be accepted (as upstream
	 * state_test.c does it). MSRs are not carried: their ABI depends on the CPUID.
	 */
	r = __vcpu_ioctl(v->vcpu, KVM_SET_XSAVE, state->xsave) ? -errno : 0;
	if (r) {
		snprintf(why, len, "KVM_SET_XSAVE of the source's image (XSTATE_BV 0x%llx) into a "
			 "vCPU whose CPUID allows only XCR0 0x%llx failed: %s",
			 (unsigned long long)((uint64_t *)state->xsave->region)[64],
			 (unsigned long long)xcr0, strerror(-r));
		goto out;
	}
	vcpu_events_set(v->vcpu, &state->events);
	vcpu_mp_state_set(v->vcpu, &state->mp_state);
	vcpu_debugregs_set(v->vcpu, &state->debugregs);
	vcpu_regs_set(v->vcpu, &state->regs);
	check_regs_kept(v, &before);
	ret = 0;
out:
	kvm_x86_state_cleanup(state);
	return ret;
}

/* The part of the env line about KVM: its XCR0, IA32_XSS and 0xD.1 EAX, the host's XCR0. */
static void print_env_kvm(uint64_t kvm_xcr0, const struct xs_layout *kvm)
{
	printf("# kvmfpu-env: kvm_xcr0=0x%llx kvm_xss=0x%llx kvm_0xd_1_eax=0x%x host_xcr0=0x%llx ",
	       (unsigned long long)kvm_xcr0, (unsigned long long)kvm->xss, kvm->d1_eax,
	       (unsigned long long)host_xcr0());
}

static void print_env_tier(void)
{
	const char *tier = getenv("KVMFPU_TIER");

	printf("tier=%s host_cpus=%ld\n", tier && *tier ? tier : "host",
	       sysconf(_SC_NPROCESSORS_ONLN));
}

void kvmfpu_vm_print_env(const struct kvmfpu_vm *v)
{
	static const char * const cpuid_mode[] = {
		[KVMFPU_VM_CPUID_XCR0] = "xcr0", [KVMFPU_VM_CPUID_NO_LEAF_D] = "no_leaf_0xd",
		[KVMFPU_VM_CPUID_EMPTY] = "empty",
	};
	bool fxsave_only = kvmfpu_vm_fxsave_only(&v->cfg);

	print_env_kvm(v->kvm_xcr0, &v->layout);
	printf("guest_xcr0=0x%llx xsave_in_cpuid=%d xcr0_by=%s guest_cpuid_0xd=0x%llx "
	       "allowed=0x%llx kvm_xsave_size=%u guest_cpuid=%s ",
	       (unsigned long long)v->guest_xcr0, !fxsave_only,
	       v->xcr0_args ? "test" : fxsave_only ? "reset" :
	       v->cfg.xcr0_by_host ? "KVM_SET_XCRS" : "XSETBV",
	       (unsigned long long)v->cpuid_xcr0, (unsigned long long)v->allowed, v->uabi_size,
	       cpuid_mode[v->cfg.cpuid]);
	print_env_tier();
	if (!v->cpuid_kept)
		printf("# note: %s; checks whose expected value needs it skip\n", v->cpuid_lost);
	fflush(stdout);
}

void kvmfpu_vm_print_kvm_env(void)
{
	struct xs_layout kvm;

	kvmfpu_vm_layout(&kvm);
	print_env_kvm(kvmfpu_vm_supported_xcr0(), &kvm);
	print_env_tier();
	fflush(stdout);
}

#define MAX_PRINT	16

unsigned int kvmfpu_vm_diff(const struct ximage *expected, const struct ximage *actual,
			    uint64_t mask, const char *check)
{
	return ximage_report_diff(expected, actual, mask, check, MAX_PRINT, false);
}

void kvmfpu_vm_fill(struct kvmfpu_vm *v, uint64_t mask, const struct pattern_key *k,
		    struct ximage *expected)
{
	uint8_t *cfg;
	char why[256];

	pattern_fill_image(&v->fill, mask, k);
	memset(v->save.buf, 0, v->save.size);
	amx_image_prepare_store(&v->save);
	cfg = ximage_comp(&v->fill, XS_XTILECFG);
	if ((mask & XS_BIT(XS_XTILECFG)) &&
	    !amx_tilecfg_valid(cfg, &v->info, why, sizeof(why)))
		kvmfpu_error("pattern tile configuration would not load: %s", why);
	if (ximage_alloc(expected, &v->layout, v->kvm_xcr0, false))
		kvmfpu_error("cannot allocate the expected image");
	memcpy(expected->buf, v->fill.buf, v->fill.size);
	amx_image_apply_cfg(expected, &v->info);
}

bool kvmfpu_vm_amx_setup(struct kvmfpu_vm *v, uint64_t mask, uint64_t seed,
			 struct ximage *expected, char *why, size_t len)
{
	struct pattern_key k = { .seed = seed };

	if (!kvmfpu_vm_amx_require(why, len))
		return false;
	kvmfpu_vm_create(v, &kvmfpu_vm_amx_config);
	kvmfpu_vm_fill(v, mask, &k, expected);
	v->guest_xcr0 = mask;
	kvmfpu_vm_print_env(v);
	return true;
}

void kvmfpu_vm_amx_teardown(struct kvmfpu_vm *v, struct ximage *expected)
{
	ximage_free(expected);
	kvmfpu_vm_destroy(v);
}

unsigned int kvmfpu_vm_check_stored(struct kvmfpu_vm *v, const struct ximage *regs,
				    uint64_t mask, const char *check)
{
	struct ximage view;
	unsigned int bad;

	if (ximage_alloc(&view, &v->layout, v->kvm_xcr0, false))
		kvmfpu_error("cannot allocate the expected store image");
	memcpy(view.buf, regs->buf, view.size < regs->size ? view.size : regs->size);
	if (mask & XS_BIT(XS_XTILEDATA))
		amx_image_stored_view(&view, &v->info);
	ximage_set_xstate_bv(&v->save, mask);
	bad = kvmfpu_vm_diff(&view, &v->save, mask, check);
	ximage_free(&view);
	return bad;
}
