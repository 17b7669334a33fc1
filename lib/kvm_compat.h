/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What kvmfpu needs from the KVM selftest library, over the versions it builds against
 * (6.1 onwards). Differences are feature-tested, not version-tested: a definition is supplied
 * only where the library lacks it. The rest of kvmfpu includes this instead of the library.
 *
 * - kvm_util_base.h was folded into kvm_util.h in 6.10; kvm_util.h works for both.
 * - The library has no AVX/AVX-512 feature descriptors (and 6.1 none for OSPKE); they are
 *   defined here from the SDM's CPUID bits with the library's own descriptor macro.
 * - vcpu_xcrs_set() appears in 6.4; kvmfpu issues KVM_SET_XCRS itself.
 * - Up to 6.5 test_util.h defines its own ASSERT_EQ, which the kselftest harness defines
 *   again: it is dropped here, so include this before kselftest_harness.h.
 */
#ifndef KVMFPU_KVM_COMPAT_H
#define KVMFPU_KVM_COMPAT_H

#include "kvm_util.h"
#include "processor.h"

#if defined(ASSERT_EQ) && !defined(TEST_ASSERT_EQ)
#undef ASSERT_EQ
#endif

#define KVMFPU_FEATURE_XSAVE	KVM_X86_CPU_FEATURE(0x1, 0, ECX, 26)
#define KVMFPU_FEATURE_OSXSAVE	KVM_X86_CPU_FEATURE(0x1, 0, ECX, 27)
#define KVMFPU_FEATURE_AVX	KVM_X86_CPU_FEATURE(0x1, 0, ECX, 28)
#define KVMFPU_FEATURE_AVX512F	KVM_X86_CPU_FEATURE(0x7, 0, EBX, 16)
#define KVMFPU_FEATURE_AVX512BW	KVM_X86_CPU_FEATURE(0x7, 0, EBX, 30)
#define KVMFPU_FEATURE_PKU	KVM_X86_CPU_FEATURE(0x7, 0, ECX, 3)
#define KVMFPU_FEATURE_OSPKE	KVM_X86_CPU_FEATURE(0x7, 0, ECX, 4)
#define KVMFPU_FEATURE_AMX_TILE	KVM_X86_CPU_FEATURE(0x7, 0, EDX, 24)

#ifndef KVM_CAP_XSAVE2
#define KVM_CAP_XSAVE2 208
#endif

/*
 * Guest exception handlers (vm_install_exception_handler()): up to 6.9 a test sets up the IDT
 * itself with vm_init_descriptor_tables() and vcpu_init_descriptor_tables(); from 6.10 the
 * library does it for every VM and vCPU it creates and those functions are static. Declared
 * weak here, they are called where the library exports them and skipped where it does not
 * (an undefined weak function has address 0): a link-time feature test, not a version test.
 */
void vm_init_descriptor_tables(struct kvm_vm *vm) __attribute__((weak));
void vcpu_init_descriptor_tables(struct kvm_vcpu *vcpu) __attribute__((weak));

static inline void kvmfpu_init_descriptor_tables(struct kvm_vm *vm, struct kvm_vcpu *vcpu)
{
	if (vm_init_descriptor_tables)
		vm_init_descriptor_tables(vm);
	if (vcpu_init_descriptor_tables)
		vcpu_init_descriptor_tables(vcpu);
}

#endif /* KVMFPU_KVM_COMPAT_H */
