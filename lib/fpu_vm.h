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
	/*
	 * What KVM may report in XSTATE_BV for this guest, from the CPUID we set (not from
	 * KVM's read-back of it): an oracle independent of the KVM under test.
	 */
	uint64_t allowed;
	uint64_t cpuid_xcr0;		/* guest CPUID.(0xD,0) as KVM_GET_CPUID2 reads it back */
	bool cpuid_kept;		/* KVM kept every guest CPUID bit the checks rest on */
	char cpuid_lost[256];		/* if not: which, as a skip reason */
	struct xs_layout layout;	/* KVM's, from KVM_GET_SUPPORTED_CPUID leaf 0xD */
	struct kvmfpu_guest_args *args;	/* in guest memory */
	struct ximage fill;		/* guest memory: what the guest loads */
	struct ximage save;		/* guest memory: what the guest stored */
	struct ximage xsave;		/* guest memory: the guest's XSAVE (if it has XSAVE) */
	uint32_t uabi_size;		/* KVM_CAP_XSAVE2 on the VM, or 4096 */
	unsigned int run_exits;
	unsigned long run_eintr;		/* KVM_RUN returned EINTR: a signal came in */
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

/*
 * Did KVM keep the guest CPUID that the checks' expected values rest on? @set is what
 * KVM_SET_CPUID2 was given, @got what KVM_GET_CPUID2 returns. Compared: the feature bits
 * kvmfpu sets (CPUID.1:ECX XSAVE, AVX; CPUID.7.0:EBX AVX-512, ECX PKU, EDX AMX-TILE) and
 * CPUID.(0xD,0):EDX:EAX, from which KVM derives the guest's permitted xfeatures
 * (kvm_vcpu_after_set_cpuid()) and so what KVM_GET_XSAVE2 may report. Bits KVM updates at
 * run time by design (OSXSAVE, OSPKE, 0xD.0 EBX) are not compared. A KVM that keeps its own
 * view instead (kvm_pvm reports the host's leaves 1 and 0xD) cannot be judged against the
 * guest CPUID: returns false and says which leaf and register differ in @why.
 * Pure: unit-tested on synthetic tables (tests/unit/kvmfpu_unit_cpuid_kept_test.c).
 */
bool guest_cpuid_kept(const struct kvm_cpuid2 *set, const struct kvm_cpuid2 *got, char *why,
		      size_t len);

/* Print the "# kvmfpu-env:" line for this VM. */
void fpu_vm_print_env(const struct fpu_vm *v);

#endif /* KVMFPU_FPU_VM_H */
