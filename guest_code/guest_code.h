/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-side routines. Each component's fill loads every register of that component from a
 * standard-format XSAVE image with explicit instructions, and its save stores every register
 * back to the same place. guest_code/ is built with -mgeneral-regs-only, so the compiler emits
 * no FPU/SIMD instruction of its own between a fill, the exit and the save.
 */
#ifndef KVMFPU_GUEST_CODE_H
#define KVMFPU_GUEST_CODE_H

#include <stdint.h>

#include "guest_fpu.h"

void guest_x87_fill(const uint8_t *img);
void guest_x87_save(uint8_t *img);
void guest_sse_fill(const uint8_t *img);
void guest_sse_save(uint8_t *img);
/* @area: the component's area (image + its offset). */
void guest_avx_fill(const uint8_t *area);
void guest_avx_save(uint8_t *area);
void guest_opmask_fill(const uint8_t *area);
void guest_opmask_save(uint8_t *area);
void guest_zmm_hi256_fill(const uint8_t *area);
void guest_zmm_hi256_save(uint8_t *area);
void guest_hi16_zmm_fill(const uint8_t *area);
void guest_hi16_zmm_save(uint8_t *area);
void guest_pkru_fill(const uint8_t *area);
void guest_pkru_save(uint8_t *area);
uint64_t guest_xgetbv0(void);

/* guest_code/cpu.c: the stage report to the host, CPUID, CR0 and CR4. */
void guest_exit(uint32_t stage);
void guest_cpuid_count(uint32_t leaf, uint32_t subleaf, uint32_t r[4]);
uint64_t guest_read_cr0(void);
void guest_write_cr0(uint64_t cr0);
uint64_t guest_read_cr4(void);
void guest_write_cr4(uint64_t cr4);

/*
 * Every register of @comps from/to the standard-format image at @image, whose components sit
 * at @offset[i] (x87 and SSE in the legacy region). Components without guest code are skipped.
 */
void guest_fill_comps(uint64_t comps, uint64_t image, const uint32_t *offset);
void guest_save_comps(uint64_t comps, uint64_t image, const uint32_t *offset);
void guest_xsave(uint8_t *img, uint64_t rfbm);
void guest_xsaveopt(uint8_t *img, uint64_t rfbm);
void guest_xsavec(uint8_t *img, uint64_t rfbm);

/* AMX (guest_code/amx.c). @area: the XTILEDATA area of a standard-format image. */
struct ex_regs;
void guest_ldtilecfg(const uint8_t *cfg);
void guest_sttilecfg(uint8_t *cfg);
void guest_tileloadd_all(const uint8_t *area);
void guest_tilestored_all(uint8_t *area);
void guest_tilerelease(void);
uint64_t guest_rdmsr(uint32_t msr);
void guest_wrmsr(uint32_t msr, uint64_t val);
/* Registered with vm_install_exception_handler(vm, KVMFPU_NM_VECTOR, ...). */
void kvmfpu_guest_nm_handler(struct ex_regs *regs);
/* The AMX guest's entry point: runs the program in @args (guest_amx.h). */
struct kvmfpu_amx_args;
void kvmfpu_guest_amx_main(struct kvmfpu_amx_args *args);

/* The guest entry point: see enum kvmfpu_guest_mode. */
void kvmfpu_guest_main(struct kvmfpu_guest_args *args);

#endif /* KVMFPU_GUEST_CODE_H */
