"""Reading and validating IDX files (the format MNIST and Fashion-MNIST ship in).

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
Files may be gzip-compressed; compression is detected from the bytes, not the name.

Nothing is allocated beyond what the header's sizes justify, and reading stops
as soon as the file turns out shorter or longer than its header says.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from digitnet.errors import IdxFormatError

DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
# The largest payload we agree to read: far above MNIST's 47 MB, far below memory.
MAX_PAYLOAD_BYTES = 1 << 31
_CHUNK = 1 << 20
_GZIP_INPUT_STEP = 8 << 20  # compressed bytes taken from the file per zlib call


def _parse_header(head: bytes, name: str) -> tuple[np.dtype, tuple[int, ...]]:
    """Validate a header (magic + dims) and return the dtype and shape it declares."""
    if len(head) < 4:
        raise IdxFormatError(f"{name}: too short for an IDX header ({len(head)} bytes); the file is truncated")
    zero, code, ndim = head[:2], head[2], head[3]
    if zero != b"\x00\x00":
        raise IdxFormatError(
            f"{name}: not an IDX file (magic {head[:4].hex()} does not start with 0000); "
            "supply the original MNIST-style .idx/.gz file"
        )
    if code not in DTYPES:
        raise IdxFormatError(f"{name}: unknown IDX dtype code 0x{code:02x} (expected one of 08 09 0b 0c 0d 0e)")
    if ndim == 0:
        raise IdxFormatError(f"{name}: IDX header declares 0 dimensions")
    if len(head) < 4 + 4 * ndim:
        raise IdxFormatError(f"{name}: truncated IDX header (needs {4 + 4 * ndim} bytes, has {len(head)})")
    shape = struct.unpack(f">{ndim}I", head[4 : 4 + 4 * ndim])
    return DTYPES[code], tuple(int(d) for d in shape)


def _payload_size(dtype: np.dtype, shape: tuple[int, ...], name: str) -> int:
    size = dtype.itemsize
    for d in shape:
        size *= d
    if size > MAX_PAYLOAD_BYTES:
        raise IdxFormatError(
            f"{name}: header claims shape {shape} ({size:,} bytes), more than the {MAX_PAYLOAD_BYTES:,}-byte limit"
        )
    return size


def _check_length(name: str, shape: tuple[int, ...], expected: int, actual: int) -> None:
    if actual != expected:
        word = "truncated" if actual < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {word}: header shape {shape} needs {expected:,} data bytes, file has {actual:,}; "
            "re-download or replace the file"
        )


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes into a numpy array (native byte order)."""
    if len(data) >= 4:
        dtype, shape = _parse_header(data[: 4 + 4 * data[3]], name)
    else:
        dtype, shape = _parse_header(data, name)
    offset = 4 + 4 * len(shape)
    expected = _payload_size(dtype, shape, name)
    _check_length(name, shape, expected, len(data) - offset)
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=offset)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _read_exactly(stream, n: int) -> bytes:
    """Read up to n bytes in chunks, so memory grows only with what the file really holds."""
    parts, remaining = [], n
    while remaining > 0:
        chunk = stream.read(min(_CHUNK, remaining))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class _Gunzip:
    """A gzip file's decompressed bytes, read in few zlib calls and never more than asked for.

    Each zlib call releases the GIL, so a thread reading the data runs beside one that imports
    torch (gzip.GzipFile's 128 KB steps each wait for the GIL, and the two then take turns).
    Concatenated members, with zero padding between them, read as one stream, as GzipFile reads them.
    """

    def __init__(self, raw):
        self._raw = raw
        self._input = b""
        self._inflate = None
        self._in_member = False

    def _next_step(self) -> int:
        """What the next read takes: the file's rest, up to a step (read(n) allocates all n at once)."""
        try:
            rest = os.fstat(self._raw.fileno()).st_size - self._raw.tell()
        except (OSError, AttributeError):
            return _CHUNK
        return max(1, min(_GZIP_INPUT_STEP, rest))

    def read(self, n: int) -> bytes:
        parts = []
        while n > 0:
            if not self._input:
                self._input = self._raw.read(self._next_step())
                if not self._input:
                    if self._in_member:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    break
            if not self._in_member:
                self._input = self._input.lstrip(b"\0")
                if not self._input:
                    continue
                self._inflate, self._in_member = zlib.decompressobj(wbits=31), True
            out = self._inflate.decompress(self._input, n)
            if self._inflate.eof:
                self._input, self._in_member = self._inflate.unused_data, False
            else:
                self._input = self._inflate.unconsumed_tail
            parts.append(out)
            n -= len(out)
        return b"".join(parts)


def read_idx_bytes(path: str | os.PathLike, expected_size: int | None = None) -> bytes:
    """Return the decompressed IDX bytes of a file, gzipped or plain, checking only sizes.

    With expected_size (the known size of the original), a header that declares any other size is
    refused before the payload is read: a small .gz claiming millions of images costs nothing.
    """
    path = Path(path)
    name = str(path)
    compressed = False
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = _Gunzip(raw) if compressed else raw
            head = _read_exactly(stream, 4)
            if len(head) == 4:
                head += _read_exactly(stream, 4 * head[3])
            dtype, shape = _parse_header(head, name)
            expected = _payload_size(dtype, shape, name)
            if expected_size is not None and len(head) + expected != expected_size:
                raise IdxFormatError(f"{name}: its header declares {'x'.join(map(str, shape))} items "
                                     f"({len(head) + expected:,} bytes), not the original's {expected_size:,} bytes; "
                                     "the file is corrupt or not the original")
            # One byte more than needed tells "exact" from "trailing bytes".
            payload = stream.read(expected + 1) if compressed else _read_exactly(stream, expected + 1)
            _check_length(name, shape, expected, len(payload))
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise IdxFormatError(f"{name}: file not found") from None
        if isinstance(exc, IsADirectoryError | PermissionError):
            raise IdxFormatError(f"{name}: cannot read: {exc.strerror}") from None
        what = "corrupt gzip data" if compressed else "read error"
        raise IdxFormatError(f"{name}: {what} ({exc}); re-download or replace the file") from None
    return head + payload


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read and validate one IDX file, gzipped or plain."""
    return parse_idx(read_idx_bytes(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise an array as IDX bytes (used by tests and tools that write IDX files)."""
    codes = {dt.newbyteorder("=").str.lstrip("<>|="): c for c, dt in DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    key = native.str.lstrip("<>|=")
    if key not in codes:
        raise IdxFormatError(f"cannot write dtype {array.dtype} as IDX")
    code = codes[key]
    header = b"\x00\x00" + bytes([code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
