/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one VM of kvmfpu: a VM with one vCPU configured for a chosen set of xstate components,
 * running one of the guest programs of guest_code/, and the host-side steps the tests are made
 * of: run (one loop, one explanation of an unexpected exit), KVM_GET_XSAVE2/KVM_SET_XSAVE,
 * MSRs, moving the vCPU into a new VM, the "# kvmfpu-env:" line and the mismatch report.
 *
 * AMX is configuration of this VM, not a second wrapper: with .guest = KVMFPU_VM_GUEST_AMX
 * the vCPU gets KVM's full supported CPUID (AMX, XFD, AVX-512 as KVM offers them; the process
 * must hold the guest permission first: kvmfpu_vm_amx_require()), kvmfpu's #NM handler, and
 * runs a program of operations (KVMFPU_VM_PROGRAM()) that sets XCR0 itself. So is the XCR0
 * guest of kvmfpu_xcr0_test (.guest = KVMFPU_VM_GUEST_XCR0): one XSETBV or MOV to CR4 per
 * run (kvmfpu_vm_xcr0_op()), its #GP counted, then what it sees reported.
 *
 * Also the one reader of KVM_GET_SUPPORTED_CPUID in kvmfpu (the selftest library reads it
 * for the vCPUs it creates; kvmfpu's own code asks here).
 */
#ifndef KVMFPU_VM_H
#define KVMFPU_VM_H

#include "kvm_compat.h"
#include "amx.h"
#include "ximage.h"
#include "guest_amx.h"
#include "guest_fpu.h"
#include "guest_xcr0.h"

/* Which guest program the vCPU runs. */
enum kvmfpu_vm_guest {
	KVMFPU_VM_GUEST_SWAP,	/* guest_code/swap.c: fill, exit, save, sync; forever */
	KVMFPU_VM_GUEST_BARE,	/* exit, forever: a bare KVM_RUN round trip (bench) */
	KVMFPU_VM_GUEST_AMX,	/* guest_code/amx.c: a program of operations */
	KVMFPU_VM_GUEST_XCR0,	/* guest_code/xcr0.c: one operation per run (guest_xcr0.h) */
};

/*
 * How the vCPU's CPUID is set, as VMMs do it (QEMU CPU models without XSAVE, VMMs that set
 * no entries). Every mode but KVMFPU_VM_CPUID_XCR0 gives an FXSAVE-only guest whose XCR0
 * stays at its reset value: KVM derives the guest's permitted xfeatures (guest_supported_xcr0)
 * from CPUID.(0xD,0) in kvm_vcpu_after_set_cpuid(), and without that leaf KVM_GET_XSAVE2 may
 * report FP|SSE only (kvm_vcpu_ioctl_x86_get_xsave2()).
 * No mode skips KVM_SET_CPUID2 altogether: such a vCPU cannot run kvmfpu's 64-bit guest, as
 * KVM_SET_SREGS refuses EFER.LME/LMA and NX without LM and NX in the guest CPUID
 * (kvm_is_valid_sregs(), kvm_valid_efer()). EMPTY stands for it (its long mode is set
 * before the empty CPUID): the only FPU state 6.12 derives from the CPUID is
 * guest_supported_xcr0 (and XFD's AMX realloc), which is 0 either way.
 */
enum kvmfpu_vm_cpuid {
	KVMFPU_VM_CPUID_XCR0 = 0,	/* KVM's CPUID, leaf 0xD.0 = .xcr0 (.xsave_hidden: leaf 1
					 * without XSAVE, leaf 0xD kept) */
	KVMFPU_VM_CPUID_NO_LEAF_D,	/* leaf 1 without XSAVE, OSXSAVE, AVX; no leaf 0xD */
	KVMFPU_VM_CPUID_EMPTY,		/* KVM_SET_CPUID2 with nent = 0 */
};

struct kvmfpu_vm_config {
	enum kvmfpu_vm_guest guest;
	/*
	 * The guest's XCR0 (swap and bare guests): guest CPUID exposes exactly these components.
	 * The AMX guest has KVM's whole supported CPUID and sets XCR0 in its program. The XCR0
	 * guest: what its CPUID.(0xD,0).EDX:EAX advertises (create_xcr0_guest()); its XCR0
	 * starts at the reset value, x87, and is the test's to set.
	 */
	uint64_t xcr0;
	bool xsave_hidden;	/* guest CPUID without XSAVE: FXSAVE-only, XCR0 untouched */
	bool xcr0_by_host;	/* KVM_SET_XCRS before the first run instead of guest XSETBV */
	enum kvmfpu_vm_cpuid cpuid;	/* swap and bare guests */
};

/* Does @cfg give an FXSAVE-only guest (no XSAVE in its CPUID, XCR0 at reset)? */
static inline bool kvmfpu_vm_fxsave_only(const struct kvmfpu_vm_config *cfg)
{
	return cfg->xsave_hidden || cfg->cpuid != KVMFPU_VM_CPUID_XCR0;
}


struct kvmfpu_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct kvmfpu_vm_config cfg;
	uint64_t kvm_xcr0;		/* kvmfpu_vm_supported_xcr0() at creation */
	uint64_t guest_xcr0;		/* the XCR0 the guest runs with, for the env line */
	uint64_t guest_comps;		/* what the guest fills and saves */
	/*
	 * What KVM may report in XSTATE_BV for this guest, from the CPUID we set (not from
	 * KVM's read-back of it): an oracle independent of the KVM under test.
	 */
	uint64_t allowed;
	uint64_t cpuid_xcr0;		/* guest CPUID.(0xD,0) as KVM_GET_CPUID2 reads it back */
	struct kvm_cpuid2 *cpuid;	/* the guest CPUID as KVM_SET_CPUID2 was given it */
	bool cpuid_kept;		/* KVM kept every guest CPUID bit the checks rest on */
	char cpuid_lost[256];		/* if not: which, as a skip reason */
	struct xs_layout layout;	/* KVM's, from KVM_GET_SUPPORTED_CPUID leaf 0xD */
	struct amx_info info;		/* AMX guest: KVM's, from leaves 0xD, 0x1D, 0x1E */
	struct kvmfpu_guest_args *args;	/* swap and bare guests: in guest memory */
	struct kvmfpu_amx_args *amx;	/* AMX guest: in guest memory */
	struct kvmfpu_xcr0_args *xcr0_args;	/* XCR0 guest: in guest memory */
	struct ximage fill;		/* guest memory: what the guest loads */
	struct ximage save;		/* guest memory: what the guest stored */
	struct ximage xsave;		/* guest memory: the swap guest's XSAVE (if it has XSAVE) */
	uint32_t uabi_size;		/* KVM_CAP_XSAVE2 on the VM, or 4096 */
	unsigned int exits;
	unsigned long eintr;		/* KVM_RUN returned EINTR: a signal came in */
	unsigned long run_cpu_moves;	/* KVM_RUNs that returned on another CPU than entered */
};

/* Components the swap guest can drive: those guest_code/comps.c has routines for. */
#define KVMFPU_VM_GUEST_COMPS	kvmfpu_guest_comps()

/*
 * KVM_GET_SUPPORTED_CPUID, the only place kvmfpu reads it: straight from /dev/kvm on every
 * call, never cached, so it shows the effect of a permission request. Returns a new table
 * (free() it), or NULL when /dev/kvm cannot be read.
 */
struct kvm_cpuid2 *kvmfpu_vm_supported_cpuid(void);
/* One leaf of it into @r (zeros when absent); false if absent or unreadable. */
bool kvmfpu_vm_supported_leaf(uint32_t leaf, uint32_t subleaf, uint32_t r[4]);
/* kvmfpu_vm_supported_leaf() as an xs_cpuid_fn (@ctx unused). */
void kvmfpu_vm_supported_fn(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4]);
/* An xs_cpuid_fn over the CPUID table @ctx (a struct kvm_cpuid2); absent leaves read 0. */
void kvmfpu_vm_table_fn(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t r[4]);
/* Does KVM_GET_SUPPORTED_CPUID have @feature (a KVM_X86_CPU_FEATURE())? */
bool kvmfpu_vm_kvm_has(struct kvm_x86_cpu_feature feature);
/*
 * KVM_GET_SUPPORTED_CPUID.(0xD,0).EDX:EAX, or x87|SSE when KVM lacks XSAVE (no guest can
 * then change XCR0 from its reset value). Distinct from the library's kvm_cpu_supported_xcr0()
 * (6.4+), which is not in 6.1's library.
 */
uint64_t kvmfpu_vm_supported_xcr0(void);
/* KVM's xstate layout, from KVM_GET_SUPPORTED_CPUID leaf 0xD. */
void kvmfpu_vm_layout(struct xs_layout *l);
/*
 * What KVM_SET_XSAVE must accept in XSTATE_BV on any vCPU: everything KVM supports
 * (KVM_GET_SUPPORTED_CPUID.(0xD,0), even where KVM lacks XSAVE for guests), without AMX,
 * whose tile data needs a permission and a larger fpstate.
 */
uint64_t kvmfpu_vm_uabi_xcr0(void);

/*
 * Can this KVM run @cfg? If not, says which feature is missing (for a skip). Lab quirks from
 * KVMFPU_QUIRKS that make a configuration untestable are named too. The XCR0 guest needs only
 * XSAVE: each of its tests decides what a quirk hides.
 */
bool kvmfpu_vm_config_supported(const struct kvmfpu_vm_config *cfg, char *why, size_t len);
/* Is lab quirk @name in KVMFPU_QUIRKS (docs/labs.md)? */
bool kvmfpu_vm_quirk(const char *name);

/*
 * Host and KVM support for the AMX guest, for a skip. Says which of these is missing: the
 * CPU's AMX_TILE (CPUID.7.0:EDX[24]), the kernel's XTILEDATA (ARCH_GET_XCOMP_SUPP), the
 * permission prctl ARCH_REQ_XCOMP_GUEST_PERM, KVM's AMX_TILE, XTILECFG/XTILEDATA in
 * KVM_GET_SUPPORTED_CPUID.0xD.0, KVM's XFD (0xD.1:EAX[4]) and XFD for XTILEDATA
 * (0xD.18:ECX[2]). kvmfpu_vm_amx_supported() checks what needs no permission and requests
 * none; kvmfpu_vm_amx_require() also requests the guest permission (before the library
 * caches KVM_GET_SUPPORTED_CPUID for its vCPUs: call it first in a test) and checks KVM's AMX.
 */
bool kvmfpu_vm_amx_supported(char *why, size_t len);
bool kvmfpu_vm_amx_require(char *why, size_t len);

/* The AMX guest's configuration (all it has is the guest: XCR0 is set by its program). */
extern const struct kvmfpu_vm_config kvmfpu_vm_amx_config;

void kvmfpu_vm_create(struct kvmfpu_vm *v, const struct kvmfpu_vm_config *cfg);
void kvmfpu_vm_destroy(struct kvmfpu_vm *v);

/*
 * Swap guest: save its own view after re-entry with @insn instead of XSAVE. The guest must
 * have it in the CPUID KVM gives it (KVM_GET_CPUID2.(0xD,1):EAX bit 0 XSAVEOPT, bit 1 XSAVEC):
 * if not, returns false and says which bit is missing (for a skip). v->xsave takes the
 * instruction's format (compacted for XSAVEC).
 */
bool kvmfpu_vm_save_insn(struct kvmfpu_vm *v, enum kvmfpu_save_insn insn, char *why, size_t len);

/* AMX guest: load a program (up to KVMFPU_AMX_MAX_OPS - 1 operations), start at its first. */
void kvmfpu_vm_program(struct kvmfpu_vm *v, const struct kvmfpu_amx_op *ops, unsigned int n);
#define KVMFPU_VM_PROGRAM(v, ...)						\
	do {									\
		const struct kvmfpu_amx_op __ops[] = { __VA_ARGS__ };		\
		kvmfpu_vm_program(v, __ops, sizeof(__ops) / sizeof(__ops[0]));	\
	} while (0)
#define OP(o, ...)	{ .op = AMX_OP_##o, __VA_ARGS__ }

/*
 * KVM_RUN until the guest reports a stage (an OUT to KVMFPU_EXIT_PORT); EINTR runs again. An
 * exit the guest code does not produce fails the test with the exit explained.
 * kvmfpu_vm_run_host_regs() also loads the host process's registers of @host_mask from
 * @host_fill around the ioctl and stores them into @host_out (host_regs_kvm_run()).
 */
uint32_t kvmfpu_vm_run(struct kvmfpu_vm *v);
uint32_t kvmfpu_vm_run_host_regs(struct kvmfpu_vm *v, const struct ximage *host_fill,
				 struct ximage *host_out, uint64_t host_mask);
/* Run and fail unless the guest reports @stage; @what names the step for the message. */
void kvmfpu_vm_run_until(struct kvmfpu_vm *v, uint32_t stage, const char *what);

/* KVM_GET_XSAVE2 (KVM_GET_XSAVE without KVM_CAP_XSAVE2) into a new image of uabi_size. */
void kvmfpu_vm_get_image(struct kvmfpu_vm *v, struct ximage *img);
/* The same of another vCPU @vcpu of this VM (same uABI size and layout). */
void kvmfpu_vm_vcpu_get_image(struct kvmfpu_vm *v, struct kvm_vcpu *vcpu, struct ximage *img);
/* The same into @img, an image of uabi_size the caller allocated (and cleared, if it cares). */
void kvmfpu_vm_read_image(struct kvmfpu_vm *v, struct ximage *img);
/* KVM_SET_XSAVE; returns 0 or -errno. */
int kvmfpu_vm_set_image(struct kvmfpu_vm *v, const struct ximage *img);

/* One MSR through KVM_GET_MSRS / KVM_SET_MSRS: 0 or -1 when KVM refused it. */
int kvmfpu_vm_get_msr(struct kvmfpu_vm *v, uint32_t index, uint64_t *val);
int kvmfpu_vm_set_msr(struct kvmfpu_vm *v, uint32_t index, uint64_t val);
uint64_t kvmfpu_vm_msr(struct kvmfpu_vm *v, uint32_t index);	/* fails the test if refused */

/*
 * Live migration's steps on one host: save the vCPU's full state (registers, sregs, MSRs
 * including XFD and XFD_ERR, XCRs, the KVM_GET_XSAVE2 image, events, debug registers), close
 * the VM, create a new VM on the same guest memory with a new vCPU that gets the CPUID the
 * old one was given (v->cpuid, as the test set it: a VMM migrates its own CPUID, not KVM's
 * read-back of it), and load the state into it. Also checks the general registers came
 * through unchanged.
 */
void kvmfpu_vm_migrate(struct kvmfpu_vm *v);

/*
 * Migration into a vCPU with fewer features (swap guest with XSAVE only): the new vCPU's CPUID
 * is the guest CPUID of XCR0 @xcr0 (a subset of the guest's, with x87), then sregs (CR4.PKE
 * dropped without PKRU), XCR0 (the old value must be refused with EINVAL when it has a
 * dropped component; @xcr0 must be accepted), the source's whole KVM_GET_XSAVE2 image (must
 * be accepted), events, MP state, debug and general registers; MSRs are not carried. The VM
 * then describes the new guest: cfg.xcr0, guest_xcr0, allowed and guest_comps (also what the
 * guest fills and saves from now on) follow @xcr0. Returns 0, or -1 with what KVM did wrong
 * in @why (a KVM verdict for the caller to report).
 */
int kvmfpu_vm_migrate_fewer(struct kvmfpu_vm *v, uint64_t xcr0, char *why, size_t len);

/* XCR0 through KVM_GET_XCRS: 0 or -errno (-ENOENT when KVM lists no XCR0). */
int kvmfpu_vm_get_xcr0(struct kvmfpu_vm *v, uint64_t *xcr0);
/* The same, failing the test when KVM_GET_XCRS fails or lists no XCR0. */
uint64_t kvmfpu_vm_xcr0(struct kvmfpu_vm *v);
/* XCR0 through KVM_SET_XCRS: 0 or -errno (__kvm_set_xcr()'s refusal is -EINVAL). */
int kvmfpu_vm_set_xcr0(struct kvmfpu_vm *v, uint64_t xcr0);

/*
 * XCR0 guest: ask for one operation (enum kvmfpu_xcr0_op, guest_xcr0.h: XSETBV of @value,
 * MOV to CR4 of OSXSAVE, or only a report), run until the guest reports it and return with
 * v->xcr0_args->seen holding what the guest then saw. A #GP of the XSETBV is counted in
 * v->xcr0_args->gp_count; any other exit or stage fails the test, explained.
 */
void kvmfpu_vm_xcr0_op(struct kvmfpu_vm *v, enum kvmfpu_xcr0_op op, uint64_t value);

/* KVM_SET_CPUID2 of @c, raw (no library assertion): 0 or -errno. */
int kvmfpu_vm_set_cpuid(struct kvmfpu_vm *v, const struct kvm_cpuid2 *c);
/* The entry (@leaf, @subleaf) of @c, or NULL. */
struct kvm_cpuid_entry2 *kvmfpu_vm_cpuid_entry(struct kvm_cpuid2 *c, uint32_t leaf,
					       uint32_t subleaf);
/* A copy of @c (free() it). */
struct kvm_cpuid2 *kvmfpu_vm_cpuid_dup(const struct kvm_cpuid2 *c);

/*
 * Did KVM keep the guest CPUID that the checks' expected values rest on? @set is what
 * KVM_SET_CPUID2 was given, @got what KVM_GET_CPUID2 returns. Compared: the feature bits
 * kvmfpu sets (CPUID.1:ECX XSAVE, AVX; CPUID.7.0:EBX AVX-512, ECX PKU, EDX AMX-TILE),
 * CPUID.(0xD,0):EDX:EAX, from which KVM derives the guest's permitted xfeatures
 * (kvm_vcpu_after_set_cpuid()) and so what KVM_GET_XSAVE2 may report, and CPUID.(0xD,0):ECX,
 * the size of all of them, which KVM passes through. Bits KVM updates at run time by design
 * (OSXSAVE, OSPKE, 0xD.0 EBX: __kvm_update_cpuid_runtime()) are not compared. A KVM that
 * keeps its own view instead (kvm_pvm reports the host's leaves 1 and 0xD) cannot be judged
 * against the guest CPUID: returns false and says which leaf and register differ in @why.
 * Pure: unit-tested on synthetic tables (tests/unit/kvmfpu_unit_cpuid_kept_test.c).
 */
bool kvmfpu_vm_cpuid_kept(const struct kvm_cpuid2 *set, const struct kvm_cpuid2 *got,
			  char *why, size_t len);

/*
 * The one "# kvmfpu-env:" line printer. kvmfpu_vm_print_env(): KVM's xstate support, this
 * VM's guest (guest_xcr0 as the test last set it), the tier. kvmfpu_vm_print_kvm_env(): the
 * same without a VM, for a test that only asks KVM_GET_SUPPORTED_CPUID.
 */
void kvmfpu_vm_print_env(const struct kvmfpu_vm *v);
void kvmfpu_vm_print_kvm_env(void);

/*
 * The one mismatch reporter of the VM's checks: each differing register of @mask, the
 * layout before the first (ximage_report()); returns how many differ.
 */
unsigned int kvmfpu_vm_diff(const struct ximage *expected, const struct ximage *actual,
			    uint64_t mask, const char *check);

/*
 * AMX guest. kvmfpu_vm_fill(): put a pattern for @mask into the guest's fill image (tiles
 * unmasked: TILELOADD must zero what lies outside the configuration), prepare the save image
 * (amx_image_prepare_store()), and build @expected (allocated here, full KVM size): what the
 * guest's registers and KVM's image hold once the guest loaded @mask. Fails with a harness
 * error if the pattern's tile configuration would not load.
 */
void kvmfpu_vm_fill(struct kvmfpu_vm *v, uint64_t mask, const struct pattern_key *k,
		    struct ximage *expected);
/*
 * The usual AMX fixture setup: AMX usable here (else false, with the reason for a skip), a
 * new AMX VM, the pattern of @seed for @mask loaded into its fill image (kvmfpu_vm_fill()),
 * the env line for guest XCR0 @mask. kvmfpu_vm_amx_teardown() undoes it.
 */
bool kvmfpu_vm_amx_setup(struct kvmfpu_vm *v, uint64_t mask, uint64_t seed,
			 struct ximage *expected, char *why, size_t len);
void kvmfpu_vm_amx_teardown(struct kvmfpu_vm *v, struct ximage *expected);
/*
 * What the AMX guest stored, checked: @regs are the registers the guest should hold (full KVM
 * size); the save image (tile areas prepared by kvmfpu_vm_fill() with AMX_STORE_CANARY) must
 * hold them for @mask, the tiles as amx_image_stored_view() says TILESTORED leaves them.
 * Marks the save image as holding @mask (the guest stores registers, not an XSAVE header),
 * reports each differing register and returns how many differ.
 */
unsigned int kvmfpu_vm_check_stored(struct kvmfpu_vm *v, const struct ximage *regs,
				    uint64_t mask, const char *check);

#endif /* KVMFPU_VM_H */
