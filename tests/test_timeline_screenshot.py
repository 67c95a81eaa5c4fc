"""A screenshot of the timeline page with headless Chromium: the bands really render.

Skipped (with the reason) where no Chromium is installed; CI does not install one.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.test_timeline_svg import known_history, write_history
from tribesqa.reporting.timeline_page import write_timeline_page

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def png_pixels(data: bytes) -> set[tuple[int, int, int]]:
    """The distinct RGB colours of an 8-bit RGB/RGBA PNG (the five standard row filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, width, height, channels = 8, b"", 0, 0, 3
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"unexpected PNG format {depth}/{colour}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw, stride, colours = zlib.decompress(idat), width * channels, set()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        colours.update((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels))
        previous = line
    return colours


def test_the_timeline_page_renders_its_bands_in_a_browser(tmp_path: Path) -> None:
    chromium = browser()
    if chromium is None:
        pytest.skip(f"no headless Chromium on this machine (looked for {', '.join(BROWSERS)})")
    write_history(tmp_path, "Suite", known_history())
    page = write_timeline_page(tmp_path)
    shot = tmp_path / "timeline.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1000,700", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    colours = png_pixels(shot.read_bytes())
    assert (0x4C, 0xAF, 0x50) in colours, "no 'active' band painted"
    assert (0xF2, 0xC1, 0x4E) in colours, "no 'syncing' band painted"
    assert (0xD3, 0x2F, 0x2F) in colours, "no fault marker painted"


def test_the_png_reader_undoes_row_filters() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"\x00" + bytes([76, 175, 80, 255, 255, 255]) + b"\x01" + bytes([242, 193, 78, 1, 2, 3])
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    assert png_pixels(png) == {(76, 175, 80), (255, 255, 255), (242, 193, 78), (243, 195, 81)}
