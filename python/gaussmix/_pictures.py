"""Pictures without a plotting library: grayscale PNG files from arrays.

A PNG (ISO/IEC 15948) is a signature and three chunks here: IHDR (width,
height, 8-bit grayscale), IDAT (the zlib-compressed rows, each led by a
filter byte, 0: none) and IEND; every chunk carries the CRC-32 of its type
and data.
"""

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(image):
    """The PNG file of a 2-D uint8 array (rows top to bottom), grayscale."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"image must be a non-empty 2-D uint8 array, got {image.dtype} {image.shape}")
    height, width = image.shape
    rows = np.hstack([np.zeros((height, 1), dtype=np.uint8), image])  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + _chunk(b"IEND", b""))


def read_png(data):
    """The uint8 array of a PNG file written by png_bytes (8-bit grayscale,
    no filters); raises ValueError on anything else."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    pos, chunks = len(_SIGNATURE), {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"PNG chunk {kind!r} fails its CRC")
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    if depth != 8 or color != 0:
        raise ValueError("only 8-bit grayscale PNG files are read")
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, width + 1)
    if np.any(rows[:, 0] != 0):
        raise ValueError("only unfiltered PNG rows are read")
    return rows[:, 1:].copy()


def tile(images, columns, scale=4, gap=2, background=255):
    """Square grayscale images (n, h, w) with values in [0, 1] (1: ink), laid
    out in rows of ``columns``, each pixel scale x scale, gap pixels apart:
    a uint8 image, dark ink on a light background."""
    images = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    n, h, w = images.shape
    rows = -(-n // columns)
    cell_h, cell_w = h * scale + gap, w * scale + gap
    out = np.full((rows * cell_h + gap, columns * cell_w + gap), background, dtype=np.uint8)
    big = np.kron(images, np.ones((1, scale, scale)))
    pixels = np.round(255.0 * (1.0 - big)).astype(np.uint8)
    r, c = np.divmod(np.arange(n), columns)
    for i in range(n):  # one copy per image (tens of them)
        y, x = gap + r[i] * cell_h, gap + c[i] * cell_w
        out[y:y + h * scale, x:x + w * scale] = pixels[i]
    return out
