"""An inline SVG picture of a failed XSAVE image comparison.

Drawn from a test's `kvmfpu-layout` (component regions) and `kvmfpu-mismatch` (differing
registers, expected and actual bytes in image order) records: one cell per byte, 64 bytes a
row, components as coloured regions, differing bytes in red with expected/actual on hover.
"""
from __future__ import annotations

import dataclasses
from html import escape
from typing import Any

ROW = 64
CELL = 11
LEFT = 56
TOP = 4
PALETTE = ("#cfe2f3", "#d9ead3", "#fff2cc", "#fce5cd", "#ead1dc", "#d0e0e3", "#e6b8af",
           "#d9d2e9", "#c9daf8", "#f4cccc", "#b6d7a8", "#ffe599")


@dataclasses.dataclass
class Image:
    check: str
    layout: list[dict[str, str]]
    mismatches: list[dict[str, str]]


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "", 0)
    except ValueError:
        return default


def _bytes(hexstr: str | None) -> bytes | None:
    if not hexstr:
        return None
    text = hexstr[2:] if hexstr.lower().startswith("0x") else hexstr
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def images(records: list[dict[str, Any]]) -> list[Image]:
    """Split a test's records into images: layout lines start an image's description."""
    out: list[Image] = []
    cur: Image | None = None
    for r in records:
        if r["kind"] == "layout":
            if cur is None or cur.mismatches:
                cur = Image(check="", layout=[], mismatches=[])
                out.append(cur)
            cur.layout.append(r)
        elif r["kind"] == "mismatch":
            if cur is None:
                cur = Image(check="", layout=[], mismatches=[])
                out.append(cur)
            cur.mismatches.append(r)
            cur.check = cur.check or r.get("check", "")
    return [i for i in out if i.mismatches]


def _cells(offset: int, size: int) -> list[tuple[int, int, int]]:
    """(row, first column, length) segments covering bytes [offset, offset+size)."""
    segs = []
    pos, end = offset, offset + size
    while pos < end:
        row, col = divmod(pos, ROW)
        n = min(ROW - col, end - pos)
        segs.append((row, col, n))
        pos += n
    return segs


def _rect(row: int, col: int, n: int, fill: str, title: str, extra: str = "") -> str:
    x, y = LEFT + col * CELL, TOP + row * CELL
    return (f'<rect x="{x}" y="{y}" width="{n * CELL}" height="{CELL}" fill="{fill}"{extra}>'
            f'<title>{escape(title)}</title></rect>')


def _image_order(exp: bytes, act: bytes, first_byte: int) -> tuple[bytes, bytes]:
    """expected/actual in image byte order.

    docs/test-programs.md says the hex is in image byte order; lib/ximage.c prints it most
    significant byte first, as the register reads. first_byte (an image offset within the
    register) tells which: the first differing byte in image order must be first_byte.
    """
    def first_diff(e: bytes, a: bytes) -> int | None:
        return next((i for i in range(min(len(e), len(a))) if e[i] != a[i]), None)

    if first_diff(exp, act) == first_byte:
        return exp, act
    if first_diff(exp[::-1], act[::-1]) == first_byte:
        return exp[::-1], act[::-1]
    return exp, act


def byte_diffs(m: dict[str, str]) -> list[tuple[int, int | None, int | None]]:
    """(offset, expected, actual) of each differing byte of a mismatch record."""
    off, size = _int(m.get("offset")), _int(m.get("size"), 1)
    exp, act = _bytes(m.get("expected")), _bytes(m.get("actual"))
    if exp is None or act is None:
        first = _int(m.get("first_byte"))
        return [(off + first, None, None)]
    exp, act = _image_order(exp, act, _int(m.get("first_byte"), -1))
    out = []
    for i in range(min(size, max(len(exp), len(act)))):
        e = exp[i] if i < len(exp) else None
        a = act[i] if i < len(act) else None
        if e != a:
            out.append((off + i, e, a))
    return out


def render(img: Image) -> str:
    extent = 0
    for r in img.layout + img.mismatches:
        extent = max(extent, _int(r.get("offset")) + _int(r.get("size"), 1))
    rows = max(1, -(-extent // ROW))
    colours: dict[str, str] = {}
    parts = []
    for r in img.layout:
        comp = r.get("component", "?")
        colour = colours.setdefault(comp, PALETTE[len(colours) % len(PALETTE)])
        off, size = _int(r.get("offset")), _int(r.get("size"))
        title = f"{comp}: offset {off:#x}, {size} bytes"
        for row, col, n in _cells(off, size):
            parts.append(_rect(row, col, n, colour, title))
    for m in img.mismatches:
        off, size = _int(m.get("offset")), _int(m.get("size"), 1)
        title = f"{m.get('component', '?')} {m.get('reg', '?')}: offset {off:#x}, {size} bytes"
        for row, col, n in _cells(off, size):
            parts.append(_rect(row, col, n, "none", title,
                               ' stroke="#333" stroke-width="1" class="reg"'))
        for pos, e, a in byte_diffs(m):
            hexe = "?" if e is None else f"{e:#04x}"
            hexa = "?" if a is None else f"{a:#04x}"
            t = (f"{m.get('component', '?')} {m.get('reg', '?')} byte +{pos - off} "
                 f"(offset {pos:#x}): expected {hexe}, actual {hexa}")
            parts.append(_rect(*divmod(pos, ROW), 1, "#d00000", t, ' class="diff"'))
    labels = [f'<text x="{LEFT - 4}" y="{TOP + r * CELL + CELL - 1}" text-anchor="end" '
              f'font-size="8">{r * ROW:#06x}</text>' for r in range(0, rows, 4)]
    height = TOP + rows * CELL + 4
    legend_y = height + 10
    legend = []
    for i, (comp, colour) in enumerate(colours.items()):
        x = LEFT + (i % 6) * 90
        y = legend_y + (i // 6) * 14
        legend.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{colour}"/>'
                      f'<text x="{x + 14}" y="{y}" font-size="10">{escape(comp)}</text>')
    legend.append(f'<rect x="{LEFT + 0}" y="{legend_y + 6 + (len(colours) // 6) * 14}" '
                  f'width="10" height="10" fill="#d00000"/><text x="{LEFT + 14}" '
                  f'y="{legend_y + 14 + (len(colours) // 6) * 14}" font-size="10">'
                  'byte differs (hover: expected vs actual)</text>')
    total_h = legend_y + 24 + (len(colours) // 6) * 14
    width = LEFT + ROW * CELL + 8
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="ximage" width="{width}" '
            f'height="{total_h}" viewBox="0 0 {width} {total_h}" role="img" '
            f'aria-label="XSAVE image {escape(img.check)}: {len(img.mismatches)} mismatching '
            f'register(s)"><rect x="{LEFT}" y="{TOP}" width="{ROW * CELL}" '
            f'height="{rows * CELL}" fill="#f8f8f8" stroke="#999"/>'
            + "".join(labels) + "".join(parts) + "".join(legend) + "</svg>")
