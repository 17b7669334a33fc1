"""The PVH boot of the QEMU labs: the ELF inside a bzImage, used only when it has the entry."""
from __future__ import annotations

import gzip
import lzma
import os
import struct
import tempfile
import unittest
from pathlib import Path

from runner.lab import kernel, pvh


def elf_with_notes(notes: list[tuple[bytes, int]]) -> bytes:
    """A minimal ELF64 with one PT_NOTE segment holding @notes (name, type)."""
    body = b""
    for name, ntype in notes:
        n = name + b"\0"
        body += struct.pack("<III", len(n), 4, ntype) + n + b"\0" * (-len(n) % 4)
        body += b"\0\0\x00\x01"                 # a 4-byte descriptor
    ehdr = bytearray(64)
    ehdr[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", ehdr, 0x20, 64)          # e_phoff
    struct.pack_into("<HH", ehdr, 0x36, 56, 1)      # e_phentsize, e_phnum
    phdr = bytearray(56)
    struct.pack_into("<I", phdr, 0, pvh.PT_NOTE)
    struct.pack_into("<Q", phdr, 8, 64 + 56)        # p_offset
    struct.pack_into("<Q", phdr, 32, len(body))     # p_filesz
    return bytes(ehdr + phdr) + body


def bzimage(packed: bytes, version: int = 0x20f, setup_sects: int = 1) -> bytes:
    """A bzImage-shaped file: setup header, setup sectors, then the payload (with the 4-byte
    size the kernel's build appends) at payload_offset."""
    head = bytearray((setup_sects + 1) * 512)
    head[0x1f1] = setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, version)
    struct.pack_into("<II", head, 0x248, 16, len(packed) + 4)
    return bytes(head) + b"\0" * 16 + packed + struct.pack("<I", 1234) + b"tail"


class PvhTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.addCleanup(self.tmp.cleanup)

    def test_the_entry_note_is_what_counts(self):
        self.assertTrue(pvh.has_pvh_entry(elf_with_notes(
            [(b"GNU", 3), (b"Xen", pvh.XEN_ELFNOTE_PHYS32_ENTRY)])))
        self.assertFalse(pvh.has_pvh_entry(elf_with_notes([(b"Xen", 6), (b"GNU", 18)])))
        self.assertFalse(pvh.has_pvh_entry(b"\x7fELF\x01\x01" + b"\0" * 100))    # 32-bit
        self.assertFalse(pvh.has_pvh_entry(b"MZ not an ELF"))

    def test_the_payload_is_found_and_unpacked(self):
        elf = elf_with_notes([(b"Xen", pvh.XEN_ELFNOTE_PHYS32_ENTRY)])
        for packed in (gzip.compress(elf), lzma.compress(elf, format=lzma.FORMAT_XZ)):
            with self.subTest(magic=packed[:2]):
                self.assertEqual(pvh.payload(bzimage(packed, setup_sects=3)), packed)
                self.assertEqual(pvh.decompress(pvh.payload(bzimage(packed))), elf)
        self.assertIsNone(pvh.payload(bzimage(b"x", version=0x207)))   # no payload fields
        self.assertIsNone(pvh.payload(b"\0" * 0x300))                  # no HdrS
        self.assertIsNone(pvh.decompress(b"\x02\x21\x4c\x18lz4"))       # not one we read

    def test_cached_when_bootable_bzimage_when_not(self):
        good = self.dir / "vmlinuz-good"
        good.write_bytes(bzimage(gzip.compress(elf_with_notes(
            [(b"Xen", pvh.XEN_ELFNOTE_PHYS32_ENTRY)]))))
        out = pvh.elf_for(good, self.dir / "cache")
        self.assertIsNotNone(out)
        self.assertTrue(pvh.has_pvh_entry(out.read_bytes()))
        self.assertEqual(pvh.elf_for(good, self.dir / "cache"), out)   # kept
        plain = self.dir / "vmlinuz-plain"                 # CONFIG_PVH unset
        plain.write_bytes(bzimage(gzip.compress(elf_with_notes([(b"GNU", 3)]))))
        self.assertIsNone(pvh.elf_for(plain, self.dir / "cache"))
        self.assertIsNone(pvh.elf_for(self.dir / "missing", self.dir / "cache"))

    def test_only_the_most_recently_used_elfs_are_kept(self):
        """Each ELF is a whole kernel; a bisect over kernels with CONFIG_PVH makes one a step."""
        cache = self.dir / "cache"
        made = []
        for i in range(pvh.KEEP + 2):
            image = self.dir / f"vmlinuz-{i}"
            image.write_bytes(bzimage(gzip.compress(elf_with_notes(
                [(b"Xen", pvh.XEN_ELFNOTE_PHYS32_ENTRY), (b"GNU", i)]))))
            made.append(pvh.elf_for(image, cache))
            os.utime(made[-1], (i, i))      # made in this order
            if i == 0:
                first = image
        self.assertEqual(len(list(cache.glob("*.elf"))), pvh.KEEP)
        self.assertFalse(made[0].exists())
        self.assertTrue(made[-1].exists())
        self.assertEqual(pvh.elf_for(first, cache), made[0])    # made again when asked

    def test_debians_kernel_has_the_entry(self):
        """Debian's 6.12 image (zstd, CONFIG_PVH=y), when the labs have fetched it."""
        images = sorted((kernel.CACHE / "kernels").glob(
            "linux-image-6.12.*-amd64-unsigned/boot/vmlinuz-*"))
        if not images:
            self.skipTest("no Debian 6.12 kernel in .cache/lab (a lab run fetches it)")
        packed = pvh.payload(images[-1].read_bytes())
        self.assertIsNotNone(packed)
        if not packed.startswith(b"\x28\xb5\x2f\xfd"):
            self.skipTest("not zstd-compressed")
        elf = pvh.decompress(packed)
        if elf is None:
            self.skipTest("no zstd tool here")
        self.assertTrue(pvh.has_pvh_entry(elf))


if __name__ == "__main__":
    unittest.main()
