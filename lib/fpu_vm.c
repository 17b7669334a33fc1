// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU configuration for a chosen XCR0, and the host-side steps of a test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fpu_vm.h"
#include "guest_code.h"
#include "host_regs.h"
#include "report.h"

#define GUEST_ARGS_MIN_GVA	0x10000

static const struct kvm_cpuid_entry2 *supported_entry(uint32_t leaf, uint32_t subleaf)
{
	const struct kvm_cpuid2 *c = kvm_get_supported_cpuid();
	int i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf && c->entries[i].index == subleaf)
			return &c->entries[i];
	return NULL;
}

static void kvm_cpuid_cb(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	const struct kvm_cpuid_entry2 *e = supported_entry(leaf, subleaf);

	r[0] = e ? e->eax : 0;
	r[1] = e ? e->ebx : 0;
	r[2] = e ? e->ecx : 0;
	r[3] = e ? e->edx : 0;
}

void kvm_layout(struct xs_layout *l)
{
	xs_layout_from_cpuid(l, kvm_cpuid_cb, NULL);
}

uint64_t kvm_supported_xcr0(void)
{
	const struct kvm_cpuid_entry2 *e = supported_entry(0xd, 0);

	/* Without XSAVE a guest can never change XCR0 from its reset value: x87 (and SSE). */
	if (!kvm_cpu_has(KVMFPU_FEATURE_XSAVE) || !e)
		return XS_MASK_FPSSE;
	return e->eax | ((uint64_t)e->edx << 32);
}

uint64_t kvm_uabi_xcr0(void)
{
	const struct kvm_cpuid_entry2 *e = supported_entry(0xd, 0);
	uint64_t xcr0 = e ? e->eax | ((uint64_t)e->edx << 32) : 0;

	return (xcr0 | XS_MASK_FPSSE) & XS_MASK_KNOWN & ~XS_MASK_AMX;
}

static bool quirk_active(const char *name)
{
	const char *q = getenv("KVMFPU_QUIRKS");
	size_t n = strlen(name);

	for (; q && *q; q += strcspn(q, ","), q += !!*q)
		if (!strncmp(q, name, n) && (q[n] == ',' || !q[n]))
			return true;
	return false;
}

bool fpu_config_supported(const struct fpu_config *cfg, char *why, size_t len)
{
	uint64_t kvm = kvm_supported_xcr0(), missing = cfg->xcr0 & ~kvm;
	char names[128];

	if (cfg->xsave_hidden)
		return true;
	if (!kvm_cpu_has(KVMFPU_FEATURE_XSAVE)) {
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
	if ((cfg->xcr0 & XS_BIT(XS_AVX)) && !kvm_cpu_has(KVMFPU_FEATURE_AVX)) {
		snprintf(why, len, "KVM lacks AVX (CPUID.1:ECX[28])");
		return false;
	}
	if ((cfg->xcr0 & XS_MASK_AVX512) && !(kvm_cpu_has(KVMFPU_FEATURE_AVX512F) &&
					      kvm_cpu_has(KVMFPU_FEATURE_AVX512BW))) {
		snprintf(why, len, "KVM lacks AVX512F or AVX512BW (CPUID.7.0:EBX[16,30]); "
			 "the opmask check needs 64-bit KMOVQ");
		return false;
	}
	if ((cfg->xcr0 & XS_BIT(XS_PKRU)) && !kvm_cpu_has(KVMFPU_FEATURE_PKU)) {
		snprintf(why, len, "KVM lacks PKU (CPUID.7.0:ECX[3])");
		return false;
	}
	if (!cfg->xcr0_by_host && quirk_active("xsetbv_not_intercepted")) {
		snprintf(why, len, "lab quirk xsetbv_not_intercepted: the emulator runs the guest's "
			 "XSETBV without a VM exit, so KVM never learns the guest XCR0 "
			 "(the *_xcrs variants set it with KVM_SET_XCRS instead)");
		return false;
	}
	return true;
}

static void cpuid_set(uint32_t *reg, unsigned int bit, bool on)
{
	if (on)
		*reg |= 1u << bit;
	else
		*reg &= ~(1u << bit);
}

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* The guest CPUID bits set_guest_cpuid() decides and the checks' expected values rest on. */
static const struct cpuid_kept_bits {
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint32_t mask;
	const char *what;
} cpuid_kept_bits[] = {
	{ 0x1, 0, CPUID_ECX, 1u << 26 | 1u << 28, "XSAVE, AVX" },
	{ 0x7, 0, CPUID_EBX, 1u << 16 | 1u << 17 | 1u << 30 | 1u << 31, "AVX-512" },
	{ 0x7, 0, CPUID_ECX, 1u << 3, "PKU" },
	{ 0x7, 0, CPUID_EDX, 1u << 24, "AMX-TILE" },
	{ 0xd, 0, CPUID_EAX, ~0u, "XCR0[31:0]" },
	{ 0xd, 0, CPUID_EDX, ~0u, "XCR0[63:32]" },
};

static uint32_t cpuid_value(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf,
			    enum cpuid_reg reg)
{
	const struct kvm_cpuid_entry2 *e;
	uint32_t i;

	for (i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function != leaf || e->index != subleaf)
			continue;
		return reg == CPUID_EAX ? e->eax : reg == CPUID_EBX ? e->ebx :
		       reg == CPUID_ECX ? e->ecx : e->edx;
	}
	return 0;	/* an absent leaf reads as zeros (SDM Vol. 2A, CPUID) */
}

bool guest_cpuid_kept(const struct kvm_cpuid2 *set, const struct kvm_cpuid2 *got, char *why,
		      size_t len)
{
	static const char reg_name[] = "abcd";
	size_t n = 0;
	unsigned int i;

	if (len)
		why[0] = 0;
	for (i = 0; i < ARRAY_SIZE(cpuid_kept_bits); i++) {
		const struct cpuid_kept_bits *b = &cpuid_kept_bits[i];
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
static void check_guest_cpuid_kept(struct fpu_vm *v, const struct kvm_cpuid2 *set,
				   uint64_t requested)
{
	const struct kvm_cpuid2 *got = v->vcpu->cpuid;	/* refreshed by vcpu_set_cpuid() */

	v->cpuid_xcr0 = cpuid_value(got, 0xd, 0, CPUID_EAX) |
			(uint64_t)cpuid_value(got, 0xd, 0, CPUID_EDX) << 32;
	v->cpuid_kept = guest_cpuid_kept(set, got, v->cpuid_lost, sizeof(v->cpuid_lost));
	v->allowed = (requested & kvm_uabi_xcr0()) | XS_MASK_FPSSE;
}

/*
 * Guest CPUID that matches the configuration: feature bits only for the components in XCR0,
 * and leaf 0xD.0 advertising exactly XCR0, which is what KVM derives the guest's permitted
 * xfeatures (and so what KVM_GET_XSAVE2 may report) from.
 */
static void set_guest_cpuid(struct fpu_vm *v)
{
	struct kvm_cpuid_entry2 *e1 = vcpu_get_cpuid_entry(v->vcpu, 1);
	struct kvm_cpuid_entry2 *e7 = vcpu_get_cpuid_entry(v->vcpu, 7);
	struct kvm_cpuid_entry2 *ed = __vcpu_get_cpuid_entry(v->vcpu, 0xd, 0);
	uint64_t xcr0 = v->cfg.xsave_hidden ? XS_MASK_FPSSE : v->cfg.xcr0;
	bool avx512 = xcr0 & XS_MASK_AVX512;
	struct kvm_cpuid2 *set;
	size_t size;

	cpuid_set(&e1->ecx, 26, !v->cfg.xsave_hidden);
	cpuid_set(&e1->ecx, 28, xcr0 & XS_BIT(XS_AVX));
	cpuid_set(&e7->ebx, 16, avx512);	/* AVX512F */
	cpuid_set(&e7->ebx, 17, avx512 && (e7->ebx & (1u << 17)));
	cpuid_set(&e7->ebx, 30, avx512 && (e7->ebx & (1u << 30)));
	cpuid_set(&e7->ebx, 31, avx512 && (e7->ebx & (1u << 31)));
	cpuid_set(&e7->ecx, 3, xcr0 & XS_BIT(XS_PKRU));
	cpuid_set(&e7->edx, 24, xcr0 & XS_MASK_AMX);
	ed->eax = (uint32_t)xcr0;
	ed->edx = xcr0 >> 32;
	ed->ecx = xs_size_standard(&v->layout, xcr0);
	ed->ebx = xs_size_standard(&v->layout, xcr0);

	/* vcpu_set_cpuid() replaces v->vcpu->cpuid with KVM_GET_CPUID2's: keep what was set. */
	size = sizeof(*set) + v->vcpu->cpuid->nent * sizeof(set->entries[0]);
	set = malloc(size);
	if (!set)
		kvmfpu_error("cannot allocate a CPUID buffer");
	memcpy(set, v->vcpu->cpuid, size);
	vcpu_set_cpuid(v->vcpu);
	check_guest_cpuid_kept(v, set, xcr0);
	free(set);
}

/*
 * CR4.OSXSAVE exactly when the guest has XSAVE, CR4.PKE exactly when it has PKRU, whatever
 * the library's default for new vCPUs is (newer libraries set OSXSAVE themselves).
 */
static void set_guest_cr4(struct fpu_vm *v)
{
	struct kvm_sregs sregs;

	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 &= ~(X86_CR4_OSXSAVE | X86_CR4_PKE);
	if (!v->cfg.xsave_hidden)
		sregs.cr4 |= X86_CR4_OSXSAVE;
	if (!v->cfg.xsave_hidden && (v->cfg.xcr0 & XS_BIT(XS_PKRU)))
		sregs.cr4 |= X86_CR4_PKE;
	vcpu_sregs_set(v->vcpu, &sregs);
}

/*
 * A guest without XSAVE runs with XCR0 at its reset value, x87 only (SDM Vol. 1, 13.3);
 * newer libraries give new vCPUs KVM's whole XCR0, so put the reset value back.
 */
static void reset_xcr0(struct fpu_vm *v)
{
	struct kvm_xcrs xcrs = { 0 };

	if (!kvm_has_cap(KVM_CAP_XCRS) || __vcpu_ioctl(v->vcpu, KVM_GET_XCRS, &xcrs) ||
	    !xcrs.nr_xcrs || xcrs.xcrs[0].value == XS_BIT(XS_X87))
		return;
	xcrs.nr_xcrs = 1;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = XS_BIT(XS_X87);
	if (__vcpu_ioctl(v->vcpu, KVM_SET_XCRS, &xcrs))
		kvmfpu_fail("KVM_SET_XCRS(XCR0=0x1, the reset value) failed: %s", strerror(errno));
}

static void set_xcr0_by_host(struct fpu_vm *v)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = v->cfg.xcr0 } };
	int r = __vcpu_ioctl(v->vcpu, KVM_SET_XCRS, &xcrs);

	if (r)
		kvmfpu_fail("KVM_SET_XCRS(XCR0=0x%llx) failed: %s, though guest CPUID 0xD.0 "
			    "advertises it", (unsigned long long)v->cfg.xcr0, strerror(errno));
}

static void alloc_guest_image(struct fpu_vm *v, struct ximage *img, uint64_t *gva)
{
	uint32_t size = xs_size_standard(&v->layout, v->guest_comps);

	*gva = vm_vaddr_alloc(v->vm, size, GUEST_ARGS_MIN_GVA);
	ximage_wrap(img, addr_gva2hva(v->vm, *gva), size, &v->layout, false);
	memset(img->buf, 0, size);
}

void fpu_vm_create(struct fpu_vm *v, const struct fpu_config *cfg, enum kvmfpu_guest_mode mode)
{
	vm_vaddr_t args_gva;
	unsigned int i;
	int cap;

	memset(v, 0, sizeof(*v));
	v->cfg = *cfg;
	v->vm = vm_create_with_one_vcpu(&v->vcpu, kvmfpu_guest_main);
	kvm_layout(&v->layout);
	v->guest_comps = (cfg->xsave_hidden ? XS_MASK_FPSSE : cfg->xcr0) & FPU_GUEST_COMPS;

	set_guest_cpuid(v);
	set_guest_cr4(v);

	args_gva = vm_vaddr_alloc(v->vm, sizeof(*v->args), GUEST_ARGS_MIN_GVA);
	v->args = addr_gva2hva(v->vm, args_gva);
	memset(v->args, 0, sizeof(*v->args));
	v->args->mode = mode;
	v->args->components = v->guest_comps;
	for (i = 0; i < XS_NR; i++)
		v->args->offset[i] = v->layout.offset[i];
	alloc_guest_image(v, &v->fill, &v->args->fill_gva);
	alloc_guest_image(v, &v->save, &v->args->save_gva);
	if (!cfg->xsave_hidden)
		alloc_guest_image(v, &v->xsave, &v->args->xsave_gva);
	vcpu_args_set(v->vcpu, 1, args_gva);

	if (cfg->xsave_hidden)
		reset_xcr0(v);
	else if (cfg->xcr0_by_host)
		set_xcr0_by_host(v);
	else
		v->args->xcr0 = cfg->xcr0;

	cap = vm_check_cap(v->vm, KVM_CAP_XSAVE2);
	v->uabi_size = cap > 0 ? cap : sizeof(struct kvm_xsave);
}

void fpu_vm_destroy(struct fpu_vm *v)
{
	if (v->vm)
		kvm_vm_free(v->vm);
	v->vm = NULL;
}

static void __attribute__((noreturn)) explain_exit(struct fpu_vm *v)
{
	struct kvm_run *run = v->vcpu->run;
	struct kvm_regs regs;

	vcpu_regs_get(v->vcpu, &regs);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
		kvmfpu_fail("KVM_RUN: KVM_EXIT_INTERNAL_ERROR, suberror %u (%s) at guest RIP 0x%llx, "
			    "after %u exits: KVM could not run guest code it claims to support "
			    "(XCR0 0x%llx)", run->internal.suberror,
			    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			    "emulation failure" : "see linux/kvm.h", regs.rip,
			    v->run_exits, (unsigned long long)v->cfg.xcr0);
	}
	if (run->exit_reason == KVM_EXIT_SHUTDOWN)
		kvmfpu_fail("KVM_RUN: KVM_EXIT_SHUTDOWN (guest triple fault) after %u exits, "
			    "XCR0 0x%llx: a guest FPU instruction faulted", v->run_exits,
			    (unsigned long long)v->cfg.xcr0);
	if (run->exit_reason == KVM_EXIT_IO)
		kvmfpu_fail("KVM_RUN: unexpected I/O exit: port 0x%x, %s, size %u, after %u exits",
			    run->io.port, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
			    run->io.size, v->run_exits);
	kvmfpu_fail("KVM_RUN: unexpected exit %s (%u) after %u exits",
		    exit_reason_str(run->exit_reason), run->exit_reason, v->run_exits);
}

enum kvmfpu_stage fpu_vm_run(struct fpu_vm *v, const struct ximage *host_fill,
			     struct ximage *host_out, uint64_t host_mask)
{
	struct kvm_run *run = v->vcpu->run;
	long r;

	do {
		if (host_fill)
			r = host_kvm_run(v->vcpu->fd, host_fill, host_out, host_mask);
		else
			r = ioctl(v->vcpu->fd, KVM_RUN, NULL) ? -errno : 0;
		/* A pending signal ends KVM_RUN with EINTR (KVM_EXIT_INTR): run again. */
		v->run_eintr += r == -EINTR;
	} while (r == -EINTR);
	if (r)
		kvmfpu_fail("KVM_RUN failed: %s", strerror(-r));
	v->run_exits++;

	if (run->exit_reason == KVM_EXIT_IO && run->io.port == KVMFPU_EXIT_PORT &&
	    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4)
		return *(uint32_t *)((uint8_t *)run + run->io.data_offset);

	explain_exit(v);
}

void fpu_vm_get_image(struct fpu_vm *v, struct ximage *img)
{
	void *buf = xs_zalloc(v->uabi_size);
	unsigned long cmd = v->uabi_size > sizeof(struct kvm_xsave) ||
			    kvm_check_cap(KVM_CAP_XSAVE2) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;

	if (!buf)
		kvmfpu_error("cannot allocate %u bytes for an XSAVE image", v->uabi_size);
	if (ioctl(v->vcpu->fd, cmd, buf))
		kvmfpu_fail("%s (%u bytes) failed: %s",
			    cmd == KVM_GET_XSAVE2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE",
			    v->uabi_size, strerror(errno));
	ximage_wrap(img, buf, v->uabi_size, &v->layout, false);
}

int fpu_vm_set_image(struct fpu_vm *v, const struct ximage *img)
{
	return __vcpu_ioctl(v->vcpu, KVM_SET_XSAVE, (struct kvm_xsave *)img->buf) ? -errno : 0;
}

void fpu_vm_print_env(const struct fpu_vm *v)
{
	const char *tier = getenv("KVMFPU_TIER");

	printf("# kvmfpu-env: kvm_xcr0=0x%llx host_xcr0=0x%llx guest_xcr0=0x%llx "
	       "xsave_in_cpuid=%d xcr0_by=%s guest_cpuid_0xd=0x%llx allowed=0x%llx "
	       "kvm_xsave_size=%u tier=%s\n",
	       (unsigned long long)kvm_supported_xcr0(), (unsigned long long)host_xcr0(),
	       (unsigned long long)(v->cfg.xsave_hidden ? XS_MASK_FPSSE : v->cfg.xcr0),
	       !v->cfg.xsave_hidden, v->cfg.xsave_hidden ? "reset" :
	       v->cfg.xcr0_by_host ? "KVM_SET_XCRS" : "XSETBV",
	       (unsigned long long)v->cpuid_xcr0, (unsigned long long)v->allowed, v->uabi_size,
	       tier && *tier ? tier : "host");
	if (!v->cpuid_kept)
		printf("# note: %s; checks whose expected value needs it skip\n", v->cpuid_lost);
	fflush(stdout);
}
