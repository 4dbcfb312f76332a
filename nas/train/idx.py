"""Reading IDX files, the format of the original MNIST and Fashion-MNIST releases (gzipped or not).

    images = read_idx(Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))  # (60000, 28, 28) uint8

The format: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, each dimension
as a big-endian uint32, then the values big-endian in C order. Files are only read, never extracted or
copied, so a read-only system folder works. torchvision reads these files too, but only from its own
folder layout (<root>/<Class>/raw), extracting archives next to them; this reader takes any path.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from nas.errors import NasError

TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMS = 4


class IdxError(NasError):
    """An IDX file is missing, truncated or not an IDX file."""


def read_idx(path: Path) -> np.ndarray:
    """The array an IDX file holds (``.gz`` files are decompressed in memory)."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: cannot read ({' '.join(str(error).split()) or type(error).__name__})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES or not 1 <= raw[3] <= MAX_DIMS:
        raise IdxError(f"{path}: not an IDX file (bad header)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(TYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IdxError(f"{path}: {len(raw) - header} bytes of data, the header {tuple(shape)} says {expected}")
    # a writable copy in native byte order (the buffer itself is read-only bytes)
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
