/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VM with one vCPU configured for a chosen set of xstate components, running the guest
 * code of guest_code/, and the host-side steps the tests are made of.
 */
#ifndef KVMFPU_FPU_VM_H
#define KVMFPU_FPU_VM_H

#include "kvm_compat.h"
#include "ximage.h"
#include "guest_fpu.h"

struct fpu_config {
	uint64_t xcr0;
	bool xsave_hidden;	/* guest CPUID without XSAVE: an FXSAVE-only guest, XCR0 untouched */
	bool xcr0_by_host;	/* KVM_SET_XCRS before the first run instead of guest XSETBV */
};

struct fpu_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct fpu_config cfg;
	uint64_t guest_comps;		/* what the guest fills and saves */
	uint64_t allowed;		/* what KVM may report in XSTATE_BV for this guest */
	uint64_t cpuid_xcr0;		/* guest CPUID.(0xD,0) as KVM_GET_CPUID2 reads it back */
	bool cpuid_kept;		/* KVM kept the guest CPUID leaf 0xD.0 we set */
	struct xs_layout layout;	/* KVM's, from KVM_GET_SUPPORTED_CPUID leaf 0xD */
	struct kvmfpu_guest_args *args;	/* in guest memory */
	struct ximage fill;		/* guest memory: what the guest loads */
	struct ximage save;		/* guest memory: what the guest stored */
	struct ximage xsave;		/* guest memory: the guest's XSAVE (if it has XSAVE) */
	uint32_t uabi_size;		/* KVM_CAP_XSAVE2 on the VM, or 4096 */
	unsigned int run_exits;
};

/* Components the guest code can drive. */
#define FPU_GUEST_COMPS	(XS_MASK_FPSSE | XS_BIT(XS_AVX) | XS_MASK_AVX512 | XS_BIT(XS_PKRU))

/* KVM_GET_SUPPORTED_CPUID.(0xD,0).EDX:EAX, or x87|SSE when KVM lacks XSAVE. */
uint64_t kvm_supported_xcr0(void);
void kvm_layout(struct xs_layout *l);
/*
 * What KVM_SET_XSAVE must accept in XSTATE_BV on any vCPU: everything KVM supports
 * (KVM_GET_SUPPORTED_CPUID.(0xD,0), even where KVM lacks XSAVE for guests), without AMX,
 * whose tile data needs a permission and a larger fpstate.
 */
uint64_t kvm_uabi_xcr0(void);

/*
 * Can this KVM run @cfg? If not, says which feature is missing (for a skip). Lab quirks from
 * KVMFPU_QUIRKS that make a configuration untestable are named too.
 */
bool fpu_config_supported(const struct fpu_config *cfg, char *why, size_t len);

void fpu_vm_create(struct fpu_vm *v, const struct fpu_config *cfg, enum kvmfpu_guest_mode mode);
void fpu_vm_destroy(struct fpu_vm *v);

/*
 * KVM_RUN until the guest reports a stage; with @host_fill, the host process's registers of
 * @host_mask are loaded from it around the ioctl and stored into @host_out. An exit the
 * guest code does not produce fails the test with the exit explained.
 */
enum kvmfpu_stage fpu_vm_run(struct fpu_vm *v, const struct ximage *host_fill,
			     struct ximage *host_out, uint64_t host_mask);

/* KVM_GET_XSAVE2 (KVM_GET_XSAVE without KVM_CAP_XSAVE2) into a new image. */
void fpu_vm_get_image(struct fpu_vm *v, struct ximage *img);
/* KVM_SET_XSAVE; returns 0 or -errno. */
int fpu_vm_set_image(struct fpu_vm *v, const struct ximage *img);

/* Print the "# kvmfpu-env:" line for this VM. */
void fpu_vm_print_env(const struct fpu_vm *v);

#endif /* KVMFPU_FPU_VM_H */
