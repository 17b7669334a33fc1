// SPDX-License-Identifier: GPL-2.0
/*
 * AMX in the guest: tile configuration and the eight tiles, the XFD MSRs, CR0.TS, and an #NM
 * handler; plus the interpreter that runs the host's program (guest_amx.h).
 *
 * Tile instructions are emitted as .byte sequences with fixed registers (base RAX, stride
 * RDX, scale 1), as the kernel's amx_test does, so the programs build with assemblers older
 * than AMX (binutils < 2.36). The bytes were checked against GNU as 2.40:
 *   LDTILECFG (%rax)                  VEX.128.NP.0F38.W0 49 /0   c4 e2 78 49 00
 *   STTILECFG (%rax)                  VEX.128.66.0F38.W0 49 /0   c4 e2 79 49 00
 *   TILERELEASE                       VEX.128.NP.0F38.W0 49 C0   c4 e2 78 49 c0
 *   TILELOADD (%rax,%rdx,1), %tmmN    VEX.128.F2.0F38.W0 4B /r   c4 e2 7b 4b (04|N<<3) 10
 *   TILESTORED %tmmN, (%rax,%rdx,1)   VEX.128.F3.0F38.W0 4B /r   c4 e2 7a 4b (04|N<<3) 10
 * (ModRM 04+8N: mod 00, reg = tmmN, r/m 100 = SIB; SIB 10: scale 1, index RDX, base RAX.)
 *
 * The XTILEDATA component of a standard-format XSAVE image holds tmm0-7 at 1024-byte
 * intervals, each as 16 rows of 64 bytes (SDM Vol. 1, Chapter 13, the AMX state components; CPUID
 * 0x1D.1: bytes_per_tile 1024, bytes_per_row 64, max_rows 16). Loading tile N from area + 1024 * N with a 64-byte stride therefore
 * reads the tile from exactly where XSAVE puts it, and storing it the same way writes it there.
 *
 * Like the rest of guest_code/ this is built with -mgeneral-regs-only and calls nothing in
 * the KVM selftest library. The #NM handler is reached through the library's IDT stubs and
 * route_exception() (registered with vm_install_exception_handler() by the host); those
 * save and restore general registers only.
 */
#include "guest_code.h"
#include "guest_amx.h"

#define TILE_BYTES	1024
#define ROW_STRIDE	64ul

#define TILELOADD(n, area)						\
	asm volatile(".byte 0xc4,0xe2,0x7b,0x4b,0x04+8*" #n ",0x10"	\
		     : : "a"((area) + (n) * TILE_BYTES), "d"(ROW_STRIDE) : "memory")
#define TILESTORED(n, area)						\
	asm volatile(".byte 0xc4,0xe2,0x7a,0x4b,0x04+8*" #n ",0x10"	\
		     : : "a"((area) + (n) * TILE_BYTES), "d"(ROW_STRIDE) : "memory")

static struct kvmfpu_amx_args *amx_args;

void guest_ldtilecfg(const uint8_t *cfg)
{
	asm volatile(".byte 0xc4,0xe2,0x78,0x49,0x00" : : "a"(cfg) : "memory");
}

void guest_sttilecfg(uint8_t *cfg)
{
	asm volatile(".byte 0xc4,0xe2,0x79,0x49,0x00" : : "a"(cfg) : "memory");
}

void guest_tileloadd_all(const uint8_t *area)
{
	TILELOADD(0, area);
	TILELOADD(1, area);
	TILELOADD(2, area);
	TILELOADD(3, area);
	TILELOADD(4, area);
	TILELOADD(5, area);
	TILELOADD(6, area);
	TILELOADD(7, area);
}

void guest_tilestored_all(uint8_t *area)
{
	TILESTORED(0, area);
	TILESTORED(1, area);
	TILESTORED(2, area);
	TILESTORED(3, area);
	TILESTORED(4, area);
	TILESTORED(5, area);
	TILESTORED(6, area);
	TILESTORED(7, area);
}

void guest_tilerelease(void)
{
	asm volatile(".byte 0xc4,0xe2,0x78,0x49,0xc0" : : : "memory");
}

uint64_t guest_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
	return lo | ((uint64_t)hi << 32);
}

void guest_wrmsr(uint32_t msr, uint64_t val)
{
	asm volatile("wrmsr"
		     : : "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)) : "memory");
}

/* CPUID into four of the program's 64-bit output slots: EAX, EBX, ECX, EDX. */
static void cpuid_out(uint32_t leaf, uint32_t subleaf, uint64_t *out)
{
	uint32_t r[4];
	unsigned int i;

	guest_cpuid_count(leaf, subleaf, r);
	for (i = 0; i < 4; i++)
		out[i] = r[i];
}

/*
 * #NM. With CR0.TS=1 it is the legacy device-not-available fault: clear TS and retry,
 * touching neither XFD nor XFD_ERR (SDM Vol. 1, Chapter 13, "Extended Feature Disable": XFD_ERR
 * is written only by an XFD-caused #NM). Otherwise it is XFD's: the faulting instruction used a component whose
 * XFD bit is set and the CPU wrote those bits to XFD_ERR. Record it, optionally exit so the
 * host can look at XFD_ERR from outside (and move the vCPU elsewhere), read it again after
 * re-entry, then do what an OS does: clear XFD_ERR, clear XFD, and retry.
 */
void kvmfpu_guest_nm_handler(struct ex_regs *regs)
{
	struct kvmfpu_amx_args *a = amx_args;
	uint64_t cr0 = guest_read_cr0();

	a->nm.count++;
	a->nm.cr0 = cr0;
	a->nm.xfd = guest_rdmsr(KVMFPU_MSR_IA32_XFD);
	a->nm.xfd_err = guest_rdmsr(KVMFPU_MSR_IA32_XFD_ERR);
	if (cr0 & KVMFPU_CR0_TS) {
		guest_write_cr0(cr0 & ~KVMFPU_CR0_TS);
		return;
	}
	if (a->nm_exit) {
		guest_exit(AMX_STAGE_NM);
		a->nm.xfd_err_after_exit = guest_rdmsr(KVMFPU_MSR_IA32_XFD_ERR);
	}
	guest_wrmsr(KVMFPU_MSR_IA32_XFD_ERR, 0);
	guest_wrmsr(KVMFPU_MSR_IA32_XFD, 0);
}

static uint8_t *area(uint64_t image, const struct kvmfpu_amx_args *a, unsigned int comp)
{
	return (uint8_t *)image + (comp < 2 ? 0 : a->offset[comp]);
}

static void run_op(struct kvmfpu_amx_args *a, const struct kvmfpu_amx_op *op)
{
	switch (op->op) {
	case AMX_OP_EXIT:
		guest_exit(AMX_STAGE_EXIT + (uint32_t)op->a);
		break;
	case AMX_OP_XSETBV:
		asm volatile("xsetbv"
			     : : "a"((uint32_t)op->a), "d"((uint32_t)(op->a >> 32)), "c"(0));
		break;
	case AMX_OP_XGETBV:
		a->out[op->c] = guest_xgetbv0();
		break;
	case AMX_OP_CPUID:
		cpuid_out(op->a, op->b, &a->out[op->c]);
		break;
	case AMX_OP_WRMSR:
		guest_wrmsr(op->a, op->b);
		break;
	case AMX_OP_RDMSR:
		a->out[op->c] = guest_rdmsr(op->a);
		break;
	case AMX_OP_LDTILECFG:
		guest_ldtilecfg(area(a->fill_gva, a, 17));
		break;
	case AMX_OP_STTILECFG:
		guest_sttilecfg(area(a->save_gva, a, 17));
		break;
	case AMX_OP_TILELOADD:
		guest_tileloadd_all(area(a->fill_gva, a, 18));
		break;
	case AMX_OP_TILESTORED:
		guest_tilestored_all(area(a->save_gva, a, 18));
		break;
	case AMX_OP_TILERELEASE:
		guest_tilerelease();
		break;
	case AMX_OP_FILL:
		guest_fill_comps(op->a, a->fill_gva, a->offset);
		break;
	case AMX_OP_SAVE:
		guest_save_comps(op->a, a->save_gva, a->offset);
		break;
	case AMX_OP_SET_TS:
		guest_write_cr0(guest_read_cr0() | KVMFPU_CR0_TS);
		break;
	case AMX_OP_FNOP:
		asm volatile("fnop" : : : "memory");
		break;
	default:
		/* An unknown operation is reported as the end with its opcode. */
		for (;;)
			guest_exit(AMX_STAGE_END + op->op);
	}
}

void kvmfpu_guest_amx_main(struct kvmfpu_amx_args *a)
{
	amx_args = a;
	for (;;) {
		const struct kvmfpu_amx_op *op;

		if (a->pc >= KVMFPU_AMX_MAX_OPS)
			for (;;)
				guest_exit(AMX_STAGE_END);
		op = &a->ops[a->pc++];
		if (op->op == AMX_OP_END) {
			a->pc--;	/* stay at the end: every re-entry reports it again */
			guest_exit(AMX_STAGE_END);
			continue;
		}
		run_op(a, op);
	}
}
