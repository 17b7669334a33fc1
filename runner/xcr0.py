"""XCR0 bits: which ones kvmfpu knows, which combinations are architecturally valid.

A copy, for planning without running a program, of lib/xstate.c: the component table
(comp_desc, xs_mask_str names) and xs_xcr0_valid(), which every program applies to --xcr0.
tests/runner/test_xcr0_c.py checks this copy against the built programs bit by bit.
"""
from __future__ import annotations

# User-state (XCR0) components by bit, named as lib/xstate.c names them. Bits 8, 10-16 are
# supervisor (XSS) state; bit 19 (APX) is a user component the C table does not have yet.
COMPONENTS = {
    0: "x87", 1: "sse", 2: "avx", 3: "bndregs", 4: "bndcsr", 5: "opmask",
    6: "zmm_hi256", 7: "hi16_zmm", 9: "pkru", 17: "xtilecfg", 18: "xtiledata",
}
DEFINED_MASK = sum(1 << b for b in COMPONENTS)

X87, SSE, AVX = 1 << 0, 1 << 1, 1 << 2
MPX = (1 << 3) | (1 << 4)
AVX512 = (1 << 5) | (1 << 6) | (1 << 7)
AMX = (1 << 17) | (1 << 18)


def parse_mask(value: object) -> int:
    """An XCR0 value from TOML or the command line: an int, or a decimal/0x-hex string."""
    if isinstance(value, bool):
        raise ValueError(f"XCR0 value {value!r} is not a number")
    if isinstance(value, int):
        mask = value
    elif isinstance(value, str):
        try:
            mask = int(value, 0)
        except ValueError:
            raise ValueError(f"XCR0 value {value!r} is not a number") from None
    else:
        raise ValueError(f"XCR0 value {value!r} is not a number")
    if mask < 0:
        raise ValueError(f"XCR0 value {value!r} is negative")
    return mask


def problems(mask: int) -> list[str]:
    """Why `mask` is not a valid XCR0 (empty list when it is)."""
    out = []
    undefined = mask & ~DEFINED_MASK
    if undefined:
        bits = ",".join(str(b) for b in range(undefined.bit_length()) if undefined >> b & 1)
        out.append(f"XCR0 {mask:#x}: bit(s) {bits} are not defined by any CPU or not "
                   f"supported by kvmfpu (valid: {', '.join(str(b) for b in COMPONENTS)})")
    if not mask & X87:
        out.append(f"XCR0 {mask:#x}: bit 0 (x87) must be set")
    if mask & AVX and not mask & SSE:
        out.append(f"XCR0 {mask:#x}: AVX (bit 2) needs SSE (bit 1)")
    if mask & AVX512 and mask & AVX512 != AVX512:
        out.append(f"XCR0 {mask:#x}: AVX-512 bits 5, 6, 7 must be set together")
    if mask & AVX512 and not mask & AVX:
        out.append(f"XCR0 {mask:#x}: AVX-512 (bits 5-7) needs AVX (bit 2)")
    if mask & MPX and mask & MPX != MPX:
        out.append(f"XCR0 {mask:#x}: MPX bits 3 and 4 must be set together")
    if mask & AMX and mask & AMX != AMX:
        out.append(f"XCR0 {mask:#x}: AMX bits 17 and 18 must be set together")
    return out


def is_valid(mask: int) -> bool:
    return not problems(mask)


def valid_subsets(supported: int) -> list[int]:
    """Every valid XCR0 whose bits are all in `supported`, ascending."""
    supported &= DEFINED_MASK
    bits = [b for b in range(supported.bit_length()) if supported >> b & 1]
    out = []
    for n in range(1 << len(bits)):
        mask = sum(1 << bits[i] for i in range(len(bits)) if n >> i & 1)
        if is_valid(mask):
            out.append(mask)
    return sorted(out)


def names(mask: int) -> list[str]:
    """The known components in `mask` (other bits are left out)."""
    return [COMPONENTS[b] for b in sorted(COMPONENTS) if mask >> b & 1]


def mask_str(mask: int) -> str:
    """"x87,sse,avx", "bit19" for a bit without a name, "none" for 0 (C: xs_mask_str)."""
    return ",".join(COMPONENTS.get(b, f"bit{b}") for b in range(64) if mask >> b & 1) or "none"
