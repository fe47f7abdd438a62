"""A strict reader for the idx file format of MNIST and Fashion-MNIST.

An idx file is a header followed by a dense array, all big-endian:

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions, d
    4*d bytes   the size of each dimension as an unsigned 32-bit integer
    payload     prod(sizes) elements, row-major

The reader accepts the file raw or gzip-compressed (recognised by its content,
not by its name) and refuses anything that does not match the header exactly:
a short payload, trailing bytes, or a damaged gzip stream raise
`IdxFormatError`, never silently return less data.

Course: ch2.3 Regularization methods (the data behind standardization)
"""

import gzip
import os
import zlib

import numpy as np

__all__ = ["IdxFormatError", "read_idx"]

# idx element type code -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IdxFormatError(ValueError):
    """A dataset file is corrupt, truncated or inconsistent with its partner.

    The message names the file and what is wrong with it.
    """


def _read_bytes(path):
    """Returns the (decompressed) content of `path`."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise IdxFormatError(
            f"{path}: damaged gzip stream ({type(e).__name__}: {e}); "
            "the file is probably truncated, download or install it again"
        ) from None


def read_idx(path, *, ndim=None):
    """Reads an idx file (raw or gzip-compressed) into a NumPy array.

    Args:
        path: the file, `*-idx?-ubyte` or `*-idx?-ubyte.gz`.
        ndim: if given, the number of dimensions the file must have
            (3 for images, 1 for labels).

    Returns:
        An array with the file's shape and native-endian dtype (uint8 for
        MNIST-style files). uint8 arrays are read-only views of the file
        content; copy before modifying.

    Raises:
        FileNotFoundError: `path` does not exist.
        IdxFormatError: bad magic number, unknown element type, wrong number
            of dimensions, a payload shorter or longer than the header says,
            or a damaged gzip stream.
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxFormatError(f"{path}: file too short for an idx header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise IdxFormatError(
            f"{path}: bad idx magic number 0x{data[:4].hex()} "
            "(expected 0x0000 followed by a type code 08/09/0b/0c/0d/0e and the number of dimensions)"
        )
    dtype = IDX_DTYPES[data[2]]
    file_ndim = data[3]
    if ndim is not None and file_ndim != ndim:
        raise IdxFormatError(f"{path}: expected {ndim} dimension(s), the header says {file_ndim}")
    header_len = 4 + 4 * file_ndim
    if len(data) < header_len:
        raise IdxFormatError(
            f"{path}: truncated header: {file_ndim} dimensions need {header_len} bytes, "
            f"the file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=file_ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated payload" if actual < expected else "extra bytes after the payload"
        raise IdxFormatError(
            f"{path}: {what}: shape {shape} of {dtype.name} needs {expected} bytes, "
            f"the file has {actual}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    if dtype.byteorder == ">":
        array = array.astype(dtype.newbyteorder("="))
    return array
