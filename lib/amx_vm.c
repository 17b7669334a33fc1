// SPDX-License-Identifier: GPL-2.0
/*
 * The AMX VM and the host-side steps of the AMX and XFD tests (see amx_vm.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "amx_vm.h"
#include "fpu_vm.h"
#include "guest_code.h"
#include "host_regs.h"
#include "report.h"

#define ARGS_MIN_GVA		0x10000
/* The selftest library's ucall port (lib/x86_64/ucall.c, UCALL_PIO_PORT), 6.1 to 6.12. */
#define LIBKVM_UCALL_PORT	0x1000

bool kvm_supported_cpuid_raw(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	struct kvm_cpuid2 *c;
	int fd, nent, i;
	bool found = false;

	memset(r, 0, 4 * sizeof(r[0]));
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
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
	if (!c)
		return false;
	for (i = 0; i < (int)c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != leaf ||
		    ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != subleaf))
			continue;
		r[0] = e->eax;
		r[1] = e->ebx;
		r[2] = e->ecx;
		r[3] = e->edx;
		found = true;
		break;
	}
	free(c);
	return found;
}

uint64_t kvm_supported_xcr0_raw(void)
{
	uint32_t r[4];

	kvm_supported_cpuid_raw(0xd, 0, r);
	return r[0] | ((uint64_t)r[3] << 32);
}

/* The host CPU's CPUID (<cpuid.h> clashes with the selftest library's __cpuid). */
static void host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
		     : "a"(leaf), "c"(subleaf));
}

void amx_host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	host_cpuid(leaf, subleaf, r);
}

/* The running test's replay arguments; set in the forked test process, before any check. */
static char replay[256];

void amx_replay_set(uint64_t seed, const char *fixture, const char *variant, const char *test)
{
	amx_replay_args(replay, sizeof(replay), seed, fixture, variant, test);
}

void amx_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (replay[0])
		printf("# kvmfpu-replay: args=%s\n", replay);
	kvmfpu_fail("%s", msg);
}

static void raw_cpuid_cb(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	kvm_supported_cpuid_raw(leaf, subleaf, r);
}

bool amx_host_supported(char *why, size_t len)
{
	uint32_t r[4];
	uint64_t supp;
	int err;

	host_cpuid(7, 0, r);
	if (!(r[3] & (1u << 24))) {
		snprintf(why, len, "host CPU lacks AMX_TILE (CPUID.7.0:EDX[24])");
		return false;
	}
	err = amx_xcomp_supported(&supp);
	if (err) {
		snprintf(why, len, "arch_prctl(ARCH_GET_XCOMP_SUPP) failed: %s: host kernel without "
			 "dynamic xstate (AMX) support", strerror(-err));
		return false;
	}
	if (!(supp & XS_BIT(XS_XTILEDATA))) {
		snprintf(why, len, "host kernel does not enable XTILEDATA: ARCH_GET_XCOMP_SUPP = "
			 "0x%llx", (unsigned long long)supp);
		return false;
	}
	kvm_supported_cpuid_raw(7, 0, r);
	if (!(r[3] & (1u << 24))) {
		snprintf(why, len, "KVM lacks AMX_TILE: KVM_GET_SUPPORTED_CPUID.7.0:EDX[24] is 0");
		return false;
	}
	kvm_supported_cpuid_raw(0xd, 1, r);
	if (!(r[0] & (1u << 4))) {
		snprintf(why, len, "KVM lacks XFD: KVM_GET_SUPPORTED_CPUID.0xD.1:EAX[4] is 0");
		return false;
	}
	return true;
}

bool amx_require(char *why, size_t len)
{
	struct amx_info info;
	uint64_t xcr0;
	uint32_t r[4];
	int err;

	if (!amx_host_supported(why, len))
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
	xcr0 = kvm_supported_xcr0_raw();
	if ((xcr0 & XS_MASK_AMX) != XS_MASK_AMX) {
		snprintf(why, len, "KVM_GET_SUPPORTED_CPUID.0xD.0 lacks XTILECFG/XTILEDATA even with "
			 "the guest permission granted: 0x%llx", (unsigned long long)xcr0);
		return false;
	}
	kvm_supported_cpuid_raw(0xd, 18, r);
	if (!(r[2] & (1u << 2))) {
		snprintf(why, len, "KVM lacks XFD for XTILEDATA: KVM_GET_SUPPORTED_CPUID.0xD.18:"
			 "ECX[2] is 0");
		return false;
	}
	return amx_info_from_cpuid(&info, raw_cpuid_cb, NULL, why, len);
}

static void alloc_image(struct amx_vm *v, struct ximage *img, uint64_t *gva)
{
	uint32_t size = xs_size_standard(&v->layout, v->kvm_xcr0);

	*gva = vm_vaddr_alloc(v->vm, size, ARGS_MIN_GVA);
	ximage_wrap(img, addr_gva2hva(v->vm, *gva), size, &v->layout, false);
	memset(img->buf, 0, size);
}

void amx_vm_create(struct amx_vm *v)
{
	struct kvm_sregs sregs;
	vm_vaddr_t args_gva;
	char why[256];
	unsigned int i;
	int cap;

	memset(v, 0, sizeof(*v));
	v->vm = vm_create_with_one_vcpu(&v->vcpu, kvmfpu_guest_amx_main);
	kvmfpu_init_descriptor_tables(v->vm, v->vcpu);
	vm_install_exception_handler(v->vm, KVMFPU_NM_VECTOR, kvmfpu_guest_nm_handler);
	kvm_layout(&v->layout);
	v->kvm_xcr0 = kvm_supported_xcr0();
	if (!amx_info_from_cpuid(&v->info, raw_cpuid_cb, NULL, why, sizeof(why)))
		kvmfpu_error("KVM's AMX CPUID leaves: %s", why);

	vcpu_sregs_get(v->vcpu, &sregs);
	sregs.cr4 |= X86_CR4_OSXSAVE;
	if (v->kvm_xcr0 & XS_BIT(XS_PKRU))
		sregs.cr4 |= X86_CR4_PKE;
	vcpu_sregs_set(v->vcpu, &sregs);

	args_gva = vm_vaddr_alloc(v->vm, sizeof(*v->args), ARGS_MIN_GVA);
	v->args = addr_gva2hva(v->vm, args_gva);
	memset(v->args, 0, sizeof(*v->args));
	for (i = 0; i < XS_NR; i++)
		v->args->offset[i] = v->layout.offset[i];
	alloc_image(v, &v->fill, &v->args->fill_gva);
	alloc_image(v, &v->save, &v->args->save_gva);
	vcpu_args_set(v->vcpu, 1, args_gva);

	cap = vm_check_cap(v->vm, KVM_CAP_XSAVE2);
	v->uabi_size = cap > 0 ? cap : sizeof(struct kvm_xsave);
}

void amx_vm_destroy(struct amx_vm *v)
{
	if (v->vm)
		kvm_vm_free(v->vm);
	v->vm = NULL;
}

void amx_vm_program(struct amx_vm *v, const struct kvmfpu_amx_op *ops, unsigned int n)
{
	if (n >= KVMFPU_AMX_MAX_OPS)
		kvmfpu_error("guest program of %u operations is too long", n);
	memset(v->args->ops, 0, sizeof(v->args->ops));
	memcpy(v->args->ops, ops, n * sizeof(*ops));
	v->args->pc = 0;
}

static void __attribute__((noreturn)) explain_exit(struct amx_vm *v)
{
	struct kvm_run *run = v->vcpu->run;
	struct kvm_regs regs;

	vcpu_regs_get(v->vcpu, &regs);
	if (run->exit_reason == KVM_EXIT_IO && run->io.port == LIBKVM_UCALL_PORT) {
		struct ucall uc;

		memset(&uc, 0, sizeof(uc));
		get_ucall(v->vcpu, &uc);
		amx_fail("guest took an exception kvmfpu does not handle (the selftest library "
			 "reported it: ucall %lu, args 0x%lx 0x%lx 0x%lx) after %u exits, at "
			 "guest program op %llu (opcode %u)%s%s",
			 (unsigned long)uc.cmd, (unsigned long)uc.args[0],
			 (unsigned long)uc.args[1], (unsigned long)uc.args[2], v->exits,
			 (unsigned long long)v->args->pc - 1,
			 v->args->pc ? v->args->ops[v->args->pc - 1].op : 0,
#ifdef UCALL_BUFFER_LEN
			 ": ", uc.buffer
#else
			 "", ""
#endif
			 );
	}
	if (run->exit_reason == KVM_EXIT_SHUTDOWN)
		amx_fail("KVM_RUN: KVM_EXIT_SHUTDOWN (guest triple fault) after %u exits, at "
			 "guest program op %llu", v->exits, (unsigned long long)v->args->pc - 1);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		amx_fail("KVM_RUN: KVM_EXIT_INTERNAL_ERROR, suberror %u, at guest RIP 0x%llx "
			 "after %u exits", run->internal.suberror, regs.rip, v->exits);
	amx_fail("KVM_RUN: unexpected exit %s (%u) at guest RIP 0x%llx after %u exits",
		 exit_reason_str(run->exit_reason), run->exit_reason, regs.rip, v->exits);
}

uint32_t amx_vm_run(struct amx_vm *v)
{
	struct kvm_run *run = v->vcpu->run;
	int r;

	do {
		r = ioctl(v->vcpu->fd, KVM_RUN, NULL);
	} while (r && errno == EINTR);
	if (r)
		amx_fail("KVM_RUN failed: %s", strerror(errno));
	v->exits++;
	if (run->exit_reason == KVM_EXIT_IO && run->io.port == KVMFPU_EXIT_PORT &&
	    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4)
		return *(uint32_t *)((uint8_t *)run + run->io.data_offset);
	explain_exit(v);
}

void amx_vm_run_until(struct amx_vm *v, uint32_t stage, const char *what)
{
	uint32_t got = amx_vm_run(v);

	if (got != stage)
		amx_fail("%s: guest reported stage 0x%x, expected 0x%x (#NM count %llu, "
			 "program op %llu)", what, got, stage,
			 (unsigned long long)v->args->nm.count,
			 (unsigned long long)v->args->pc);
}

void amx_vm_get_image(struct amx_vm *v, struct ximage *img)
{
	void *buf = xs_zalloc(v->uabi_size);

	if (!buf)
		kvmfpu_error("cannot allocate %u bytes for an XSAVE image", v->uabi_size);
	if (ioctl(v->vcpu->fd, KVM_GET_XSAVE2, buf))
		amx_fail("KVM_GET_XSAVE2 (%u bytes) failed: %s", v->uabi_size, strerror(errno));
	ximage_wrap(img, buf, v->uabi_size, &v->layout, false);
}

int amx_vm_set_image(struct amx_vm *v, const struct ximage *img)
{
	return ioctl(v->vcpu->fd, KVM_SET_XSAVE, img->buf) ? -errno : 0;
}

struct one_msr {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e;
};

int amx_vm_get_msr(struct amx_vm *v, uint32_t index, uint64_t *val)
{
	struct one_msr m = { .hdr.nmsrs = 1, .e.index = index };

	if (ioctl(v->vcpu->fd, KVM_GET_MSRS, &m) != 1)
		return -1;
	*val = m.e.data;
	return 0;
}

int amx_vm_set_msr(struct amx_vm *v, uint32_t index, uint64_t val)
{
	struct one_msr m = { .hdr.nmsrs = 1, .e.index = index, .e.data = val };

	return ioctl(v->vcpu->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -1;
}

uint64_t amx_vm_msr(struct amx_vm *v, uint32_t index)
{
	uint64_t val;

	if (amx_vm_get_msr(v, index, &val))
		amx_fail("KVM_GET_MSRS refused MSR 0x%x, though KVM supports XFD", index);
	return val;
}

void amx_vm_migrate(struct amx_vm *v)
{
	struct kvm_x86_state *state = vcpu_save_state(v->vcpu);
	struct kvm_regs before, after;

	vcpu_regs_get(v->vcpu, &before);
	kvm_vm_release(v->vm);
	v->vcpu = vm_recreate_with_one_vcpu(v->vm);
	vcpu_load_state(v->vcpu, state);
	kvm_x86_state_cleanup(state);
	vcpu_regs_get(v->vcpu, &after);
	if (memcmp(&before, &after, sizeof(before)))
		amx_fail("migrate: general registers differ after vcpu_load_state "
			 "(RIP 0x%llx -> 0x%llx, RSP 0x%llx -> 0x%llx)", before.rip, after.rip,
			 before.rsp, after.rsp);
}

bool kernel_taint(uint64_t *taint)
{
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");
	unsigned long long t;
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "%llu", &t) == 1;
	fclose(f);
	*taint = t;
	return ok;
}

void amx_vm_print_env(const struct amx_vm *v, uint64_t guest_xcr0)
{
	const char *tier = getenv("KVMFPU_TIER");

	printf("# kvmfpu-env: kvm_xcr0=0x%llx host_xcr0=0x%llx guest_xcr0=0x%llx "
	       "xsave_in_cpuid=1 xcr0_by=XSETBV kvm_xsave_size=%u tier=%s\n",
	       (unsigned long long)v->kvm_xcr0, (unsigned long long)host_xcr0(),
	       (unsigned long long)guest_xcr0, v->uabi_size, tier && *tier ? tier : "host");
	fflush(stdout);
}

void amx_vm_fill(struct amx_vm *v, uint64_t mask, const struct pattern_key *k,
		 struct ximage *expected)
{
	uint8_t *cfg;
	char why[256];

	ximage_fill_pattern(&v->fill, mask, k);
	memset(v->save.buf, 0, v->save.size);
	ximage_amx_prepare_store(&v->save);
	cfg = ximage_comp(&v->fill, XS_XTILECFG);
	if ((mask & XS_BIT(XS_XTILECFG)) &&
	    !amx_tilecfg_valid(cfg, &v->info, why, sizeof(why)))
		kvmfpu_error("pattern tile configuration would not load: %s", why);
	if (ximage_alloc(expected, &v->layout, v->kvm_xcr0, false))
		kvmfpu_error("cannot allocate the expected image");
	memcpy(expected->buf, v->fill.buf, v->fill.size);
	ximage_amx_apply_cfg(expected, &v->info);
}

void amx_vm_saved(struct amx_vm *v, uint64_t mask)
{
	ximage_set_xstate_bv(&v->save, mask);
}

struct diff_ctx {
	const struct ximage *img;
	uint64_t mask;
	unsigned int seen;
};

#define MAX_PRINT	16

static void report_one(void *ctx, const struct xs_mismatch *m)
{
	struct diff_ctx *d = ctx;

	if (!d->seen++)
		ximage_print_layout(d->img, d->mask);
	if (d->seen <= MAX_PRINT)
		xs_report_ktap(NULL, m);
	else if (d->seen == MAX_PRINT + 1)
		printf("# %s: further mismatches not printed\n", m->check);
}

unsigned int amx_diff(const struct ximage *expected, const struct ximage *actual, uint64_t mask,
		      const char *check)
{
	struct diff_ctx d = { .img = actual, .mask = mask };

	return ximage_diff(expected, actual, mask, check, report_one, &d);
}

unsigned int amx_check_stored(struct amx_vm *v, const struct ximage *regs, uint64_t mask,
			      const char *check)
{
	struct ximage view;
	unsigned int bad;

	if (ximage_alloc(&view, &v->layout, v->kvm_xcr0, false))
		kvmfpu_error("cannot allocate the expected store image");
	memcpy(view.buf, regs->buf, view.size < regs->size ? view.size : regs->size);
	if (mask & XS_BIT(XS_XTILEDATA))
		ximage_amx_stored_view(&view, &v->info);
	amx_vm_saved(v, mask);
	bad = amx_diff(&view, &v->save, mask, check);
	ximage_free(&view);
	return bad;
}

bool amx_vm_setup(struct amx_vm *v, uint64_t mask, uint64_t seed, struct ximage *expected,
		  char *why, size_t len)
{
	struct pattern_key k = { .seed = seed };

	if (!amx_require(why, len))
		return false;
	amx_vm_create(v);
	amx_vm_fill(v, mask, &k, expected);
	amx_vm_print_env(v, mask);
	return true;
}

void amx_vm_teardown(struct amx_vm *v, struct ximage *expected)
{
	ximage_free(expected);
	amx_vm_destroy(v);
}
