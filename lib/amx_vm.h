/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VM with one vCPU running the AMX guest (guest_code/amx.c), and the host-side steps of the
 * AMX and XFD tests: what this host and its KVM support (and the skip reason when not), the
 * permission request, raw KVM_GET_SUPPORTED_CPUID (uncached, so it shows the effect of a
 * permission request), MSRs, XSAVE images, moving the vCPU into a new VM, and the kernel's
 * taint flag as a cheap WARN detector.
 */
#ifndef KVMFPU_AMX_VM_H
#define KVMFPU_AMX_VM_H

#include "kvm_compat.h"
#include "amx.h"
#include "guest_amx.h"

struct amx_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct xs_layout layout;	/* KVM's, from KVM_GET_SUPPORTED_CPUID leaf 0xD */
	struct amx_info info;		/* KVM's, from leaves 0xD, 0x1D, 0x1E */
	uint64_t kvm_xcr0;		/* KVM_GET_SUPPORTED_CPUID.0xD.0 */
	struct kvmfpu_amx_args *args;	/* in guest memory */
	struct ximage fill;		/* guest memory: source of the guest's loads */
	struct ximage save;		/* guest memory: target of the guest's stores */
	uint32_t uabi_size;		/* KVM_CAP_XSAVE2 on the VM */
	unsigned int exits;
};

/*
 * Host and KVM support, for a skip. Says which of these is missing: the CPU's AMX_TILE
 * (CPUID.7.0:EDX[24]), the kernel's XTILEDATA (ARCH_GET_XCOMP_SUPP), the permission prctl
 * ARCH_REQ_XCOMP_GUEST_PERM, KVM's AMX_TILE, XTILECFG/XTILEDATA in KVM_GET_SUPPORTED_CPUID.0xD.0,
 * KVM's XFD (0xD.1:EAX[4]) and XFD for XTILEDATA (0xD.18:ECX[2]).
 * amx_host_supported() checks what needs no permission and requests none;
 * amx_require() also requests the guest permission (before anything caches
 * KVM_GET_SUPPORTED_CPUID: call it first in a test) and checks KVM's AMX.
 */
bool amx_host_supported(char *why, size_t len);
bool amx_require(char *why, size_t len);

/* KVM_GET_SUPPORTED_CPUID straight from /dev/kvm, never cached. */
bool kvm_supported_cpuid_raw(uint32_t leaf, uint32_t subleaf, uint32_t r[4]);
uint64_t kvm_supported_xcr0_raw(void);

/*
 * A VM whose vCPU has KVM's full supported CPUID (AMX, XFD, AVX-512 as KVM offers them) and
 * CR4.OSXSAVE (and CR4.PKE when KVM offers PKU), with kvmfpu's #NM handler installed. XCR0 is
 * set by the guest program (AMX_OP_XSETBV). The fill and save images are standard format for
 * everything KVM supports; fill holds zeros until the test writes it.
 */
void amx_vm_create(struct amx_vm *v);
void amx_vm_destroy(struct amx_vm *v);

/* Load a program (up to KVMFPU_AMX_MAX_OPS - 1 operations) and start it at its first op. */
void amx_vm_program(struct amx_vm *v, const struct kvmfpu_amx_op *ops, unsigned int n);
#define AMX_PROGRAM(v, ...)						\
	do {								\
		const struct kvmfpu_amx_op __ops[] = { __VA_ARGS__ };	\
		amx_vm_program(v, __ops, sizeof(__ops) / sizeof(__ops[0]));	\
	} while (0)
#define OP(o, ...)	{ .op = AMX_OP_##o, __VA_ARGS__ }

/* KVM_RUN until the guest reports a stage; any other exit fails the test, explained. */
uint32_t amx_vm_run(struct amx_vm *v);
/* Run and fail unless the guest reports @stage; @what names the step for the message. */
void amx_vm_run_until(struct amx_vm *v, uint32_t stage, const char *what);

/* KVM_GET_XSAVE2 into a new standard-format image of uabi_size bytes. */
void amx_vm_get_image(struct amx_vm *v, struct ximage *img);
/* KVM_SET_XSAVE; 0 or -errno. */
int amx_vm_set_image(struct amx_vm *v, const struct ximage *img);

/* One MSR through KVM_GET_MSRS / KVM_SET_MSRS: 0 or -1 when KVM refused it. */
int amx_vm_get_msr(struct amx_vm *v, uint32_t index, uint64_t *val);
int amx_vm_set_msr(struct amx_vm *v, uint32_t index, uint64_t val);
uint64_t amx_vm_msr(struct amx_vm *v, uint32_t index);	/* fails the test if refused */

/*
 * Live migration's steps on one host: save the vCPU's full state (registers, sregs, MSRs
 * including XFD and XFD_ERR, XCRs, the KVM_GET_XSAVE2 image, events, debug registers), close
 * the VM, create a new VM on the same guest memory with a new vCPU (KVM's supported CPUID),
 * and load the state into it. Also checks the general registers came through unchanged.
 */
void amx_vm_migrate(struct amx_vm *v);

/*
 * The kernel's taint mask (/proc/sys/kernel/tainted); bit 9 (TAINT_WARN, 'W') is set by
 * any WARN. Returns false if it cannot be read.
 */
#define KVMFPU_TAINT_WARN	(1ull << 9)
bool kernel_taint(uint64_t *taint);

/* Print the "# kvmfpu-env:" line for this VM and guest XCR0. */
void amx_vm_print_env(const struct amx_vm *v, uint64_t guest_xcr0);

/*
 * Put a pattern for @mask into the guest's fill image (tiles unmasked: TILELOADD must zero what
 * lies outside the configuration), zero the save image, and build @expected (allocated here,
 * full KVM size): what the guest's registers and KVM's image hold once the guest loaded
 * @mask. Fails with a harness error if the pattern's tile configuration would not load.
 */
void amx_vm_fill(struct amx_vm *v, uint64_t mask, const struct pattern_key *k,
		 struct ximage *expected);
/*
 * The usual fixture setup: AMX usable here (else false, with the reason for a skip), a new AMX
 * VM, the pattern of @seed for @mask loaded into its fill image (amx_vm_fill()), the env line.
 * amx_vm_teardown() undoes it.
 */
bool amx_vm_setup(struct amx_vm *v, uint64_t mask, uint64_t seed, struct ximage *expected,
		  char *why, size_t len);
void amx_vm_teardown(struct amx_vm *v, struct ximage *expected);
/* Mark the save image as holding @mask (the guest stores registers, not an XSAVE header). */
void amx_vm_saved(struct amx_vm *v, uint64_t mask);

/*
 * What the guest stored, checked: @regs are the registers the guest should hold (full KVM
 * size); the save image (tile areas prepared by amx_vm_fill() with AMX_STORE_CANARY) must
 * hold them for @mask, the tiles as ximage_amx_stored_view() says TILESTORED leaves them.
 * Reports each differing register and returns how many differ.
 */
unsigned int amx_check_stored(struct amx_vm *v, const struct ximage *regs, uint64_t mask,
			      const char *check);

/* The host CPU's own CPUID (an xs_cpuid_fn): values independent of the KVM under test. */
void amx_host_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4]);

/*
 * Failures of the AMX and XFD programs replay (docs/test-programs.md). amx_replay_set() names
 * the running test (AMX_REPLAY() from a FIXTURE_SETUP or a TEST body, where the harness's
 * _metadata is in scope; @vname is the variant's name, "" without variants); amx_fail()
 * prints "# kvmfpu-replay: args=--seed 0x.. -r fixture.variant.test" and then fails the
 * test like kvmfpu_fail(). Every failure of these programs goes through amx_fail().
 */
void amx_replay_set(uint64_t seed, const char *fixture, const char *variant, const char *test);
#define AMX_REPLAY(seed, vname)	\
	amx_replay_set(seed, _metadata->fixture->name, vname, _metadata->name)
void amx_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Report each differing register of @mask and return how many differ. */
unsigned int amx_diff(const struct ximage *expected, const struct ximage *actual, uint64_t mask,
		      const char *check);

#endif /* KVMFPU_AMX_VM_H */
