#!/usr/bin/env python3
"""Writes the image fixtures stb_image_write cannot produce: a 16-bit PNG and a two-frame GIF.
Standard library only (zlib, struct). Run from this directory: python3 make_fixtures.py"""
import struct
import zlib


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def gray16_png(path, width, height, value):
    rows = b"".join(b"\x00" + b"".join(struct.pack(">H", value(x, y)) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)  # 16-bit grayscale
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def lzw_literals(indices, min_code_size=2):
    """GIF LZW data using only literal codes, with a clear code before every two literals so the
    decoder's dictionary (and code width) never grows."""
    clear, end, width = 1 << min_code_size, (1 << min_code_size) + 1, min_code_size + 1
    codes = []
    for i in range(0, len(indices), 2):
        codes += [clear] + indices[i:i + 2]
    codes.append(end)
    bits, nbits, out = 0, 0, bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return bytes([min_code_size]) + blocks + b"\x00"


def two_frame_gif(path, width, height, frames, palette):
    data = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x81, 0, 0)  # global table of 4 colours
    data += b"".join(bytes(c) for c in palette)
    for frame in frames:
        data += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 0.1 s, no transparency
        data += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + lzw_literals(frame)
    with open(path, "wb") as f:
        f.write(data + b"\x3b")


if __name__ == "__main__":
    # 5x3, value 1000·(x + 5y) + 7: consecutive 16-bit levels that 8 bits cannot tell apart
    gray16_png("gray16.png", 5, 3, lambda x, y: 1000 * (x + 5 * y) + 7)
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
    first = [(x + y) % 4 for y in range(3) for x in range(4)]
    second = [3] * 12
    two_frame_gif("two_frames.gif", 4, 3, [first, second], palette)
