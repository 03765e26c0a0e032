import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import write_idx
from digitnet.data.idx import idx_bytes, parse_idx, read_idx
from digitnet.errors import IdxFormatError


def test_roundtrip_plain_and_gzip(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for compress in (False, True):
        path = write_idx(tmp_path / f"x{compress}", images, compress)
        np.testing.assert_array_equal(read_idx(path), images)


def test_big_endian_dtypes_are_read_in_native_order():
    values = np.array([[1, -2], [300, 70000]], dtype=np.int32)
    parsed = parse_idx(idx_bytes(values))
    assert parsed.dtype == np.dtype("int32") and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, values)
    assert idx_bytes(values)[:4] == b"\x00\x00\x0c\x02"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX dtype code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 1), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00" * 4, r"truncated: header shape \(5,\) needs 5"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00" * 6, "has trailing bytes"),
    ],
)
def test_parse_errors_name_the_problem(data, message, tmp_path):
    with pytest.raises(IdxFormatError, match=message):
        parse_idx(data, "f.idx")
    path = tmp_path / "f.idx"
    path.write_bytes(data)
    with pytest.raises(IdxFormatError, match=str(path).replace(".", r"\.")):
        read_idx(path)


def test_header_claiming_a_billion_images_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">III", 10**9, 28, 28) + b"\x00" * 100)
    with pytest.raises(IdxFormatError, match="limit"):
        read_idx(path)


def test_truncated_gzip_is_an_idx_error(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IdxFormatError, match="cut.gz"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(IdxFormatError, match="file not found"):
        read_idx(tmp_path / "nope")


shapes = st.lists(st.integers(0, 6), min_size=1, max_size=4)
dtypes = st.sampled_from(["u1", "i1", "i2", "i4", "f4", "f8"])


@given(shape=shapes, dtype=dtypes, data=st.data())
def test_any_array_roundtrips(shape, dtype, data):
    size = int(np.prod(shape))
    raw = data.draw(st.binary(min_size=size * np.dtype(dtype).itemsize, max_size=size * np.dtype(dtype).itemsize))
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    parsed = parse_idx(idx_bytes(array))
    assert parsed.shape == tuple(shape)
    assert parsed.tobytes() == array.tobytes()


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_idx_errors(data):
    try:
        parse_idx(data)
    except IdxFormatError:
        pass


def _peak_bytes_while(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("compress", [False, True])
def test_a_header_that_lies_costs_only_the_bytes_really_there(tmp_path, compress):
    # The header claims 1.9 million images (1.5 GB, under the hard limit); the file holds 100 bytes.
    data = b"\x00\x00\x08\x03" + struct.pack(">III", 1_900_000, 28, 28) + b"\x00" * 100
    path = tmp_path / "liar"
    path.write_bytes(gzip.compress(data) if compress else data)

    def read():
        with pytest.raises(IdxFormatError, match="truncated"):
            read_idx(path)

    assert _peak_bytes_while(read) < 4 << 20


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), compress=st.booleans())
def test_arbitrary_files_raise_only_idx_errors(data, compress):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f"
        path.write_bytes(gzip.compress(data) if compress else data)
        try:
            read_idx(path)
        except IdxFormatError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=10, max_size=300), st.integers(0, 299))
def test_corrupted_gzip_streams_raise_only_idx_errors(payload, cut):
    import tempfile
    from pathlib import Path

    blob = bytearray(gzip.compress(idx_bytes(np.frombuffer(payload, np.uint8))))
    blob[cut % len(blob)] ^= 0x5A
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.gz"
        path.write_bytes(bytes(blob))
        try:
            read_idx(path)
        except IdxFormatError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=3), st.integers(0, 3))
def test_concatenated_gzip_members_read_as_gzip_reads_them(payload, cuts, padding):
    """A file of several gzip members (bgzip, `cat a.gz b.gz`), zero padding between them, reads as
    one stream: the same bytes gzip.decompress gives, so the same array."""
    import tempfile
    from pathlib import Path

    data = idx_bytes(np.frombuffer(payload, np.uint8))
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    blob = (b"\x00" * padding).join(gzip.compress(data[a:b]) for a, b in zip(bounds, bounds[1:]))
    assert gzip.decompress(blob) == data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.gz"
        path.write_bytes(blob)
        assert read_idx(path).tobytes() == payload
