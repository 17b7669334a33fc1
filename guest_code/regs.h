/* SPDX-License-Identifier: GPL-2.0 */
/* Repeat an asm line per register number. Guest code only. */
#ifndef KVMFPU_GUEST_REGS_H
#define KVMFPU_GUEST_REGS_H

#define REP8(m)		m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7)
#define REP16(m)	REP8(m) m(8) m(9) m(10) m(11) m(12) m(13) m(14) m(15)
#define REP16_HI(m)	m(16) m(17) m(18) m(19) m(20) m(21) m(22) m(23) \
			m(24) m(25) m(26) m(27) m(28) m(29) m(30) m(31)

#endif /* KVMFPU_GUEST_REGS_H */
