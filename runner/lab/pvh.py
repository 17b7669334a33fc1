"""The kernel under test as QEMU boots it fastest: its own uncompressed ELF, entered at PVH.

A bzImage makes QEMU run SeaBIOS, the real-mode setup and the kernel's decompressor before the
kernel proper starts; under TCG that was 1.5 s of a 20 s lab run. The ELF inside the bzImage
(arch/x86/boot/compressed: the payload is the compressed, stripped vmlinux) carries, with
CONFIG_PVH, the note XEN_ELFNOTE_PHYS32_ENTRY, and QEMU's -kernel enters such an ELF directly
in 32-bit protected mode with the command line and the initrd in an hvm_start_info
(arch/x86/platform/pvh/head.S): 0.6 s to the first kernel line. The kernel that runs is the
same; only the decompression before it is skipped. A kernel without CONFIG_PVH, or a payload
this machine cannot decompress, boots as a bzImage as before.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

XEN_ELFNOTE_PHYS32_ENTRY = 18
PT_NOTE = 4


def payload(image: bytes) -> bytes | None:
    """The compressed vmlinux of a bzImage (boot protocol 2.08+: payload_offset and
    payload_length, from the protected-mode code after the setup sectors), without the
    4-byte uncompressed size the build appends; None if @image is no such bzImage."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    if struct.unpack_from("<H", image, 0x206)[0] < 0x208:
        return None
    setup_sects = image[0x1f1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if length < 8 or start + length > len(image):
        return None
    return image[start:start + length - 4]


def decompress(data: bytes) -> bytes | None:
    """@data by its magic: gzip, xz, bzip2 in Python, zstd with the zstd tool; None for
    anything else (lz4, lzo, lzma) or when it fails."""
    try:
        if data.startswith(b"\x1f\x8b"):
            return gzip.decompress(data)
        if data.startswith(b"\xfd7zXZ\x00"):
            return lzma.decompress(data, format=lzma.FORMAT_XZ)
        if data.startswith(b"BZh"):
            return bz2.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    if data.startswith(b"\x28\xb5\x2f\xfd") and shutil.which("zstd"):
        r = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=False)
        return r.stdout if r.returncode == 0 and r.stdout else None
    return None


def has_pvh_entry(elf: bytes) -> bool:
    """Is @elf a 64-bit little-endian ELF with a "Xen" note XEN_ELFNOTE_PHYS32_ENTRY?"""
    if len(elf) < 64 or elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + 56 > len(elf):
            return False
        p_type, = struct.unpack_from("<I", elf, at)
        if p_type != PT_NOTE:
            continue
        off, = struct.unpack_from("<Q", elf, at + 8)
        size, = struct.unpack_from("<Q", elf, at + 32)
        end = min(off + size, len(elf))
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, off)
            name = elf[off + 12:off + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            off += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def elf_for(image: Path, cache: Path) -> Path | None:
    """The PVH-bootable ELF inside bzImage @image, kept in @cache (by the image's path, size
    and modification time: a rebuilt or re-fetched kernel is unpacked anew); None when @image
    has none."""
    try:
        st = image.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{image.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    out = cache / f"{image.name}-{key.hexdigest()[:16]}.elf"
    no = out.with_suffix(".no-pvh")
    if out.is_file():
        os.utime(out)   # most recently used: kept by _prune()
        return out
    if no.is_file():
        return None
    try:
        packed = payload(image.read_bytes())
    except OSError:
        return None
    if packed is None:
        return None
    elf = decompress(packed)
    if elf is None:     # no tool for it here: tried again next time
        return None
    cache.mkdir(parents=True, exist_ok=True)
    if not has_pvh_entry(elf):
        no.touch()      # a kernel without CONFIG_PVH: not decompressed again
        return None
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)
    _prune(cache, keep=out)
    return out


KEEP = 4        # ELFs kept: each is the whole kernel, 50-60 MB; a bisect makes one a step


def _prune(cache: Path, keep: Path) -> None:
    """All but the KEEP most recently used ELFs in @cache go (@keep, just made, stays)."""
    elfs = sorted(cache.glob("*.elf"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in elfs[KEEP:]:
        if old != keep:
            old.unlink(missing_ok=True)
