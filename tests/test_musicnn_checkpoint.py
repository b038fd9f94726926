"""The tensor-bundle reader: on hand-built LevelDB tables and on musicnn's real checkpoint."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from music_classifier.features.musicnn import checkpoint
from music_classifier.features.musicnn.checkpoint import (
    TABLE_MAGIC,
    crc32c,
    mask_crc,
    read_bundle,
    read_table,
    unmask_crc,
)
from music_classifier.features.musicnn.errors import MusicnnError


# --- a minimal writer of the same format, written from the format's description --------------------------------
def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire) + payload


def build_block(entries: list[tuple[bytes, bytes]], restart_interval: int = 2) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    for offset in restarts:
        out += struct.pack("<I", offset)
    return bytes(out + struct.pack("<I", len(restarts)))


def with_trailer(block: bytes, kind: int = 0) -> bytes:
    return block + bytes([kind]) + struct.pack("<I", mask_crc(crc32c(block + bytes([kind]))))


def build_table(blocks: list[list[tuple[bytes, bytes]]], *, magic: int = TABLE_MAGIC, kind: int = 0) -> bytes:
    data, index_entries = bytearray(), []
    for entries in blocks:
        block = build_block(entries)
        index_entries.append((entries[-1][0], varint(len(data)) + varint(len(block))))
        data += with_trailer(block, kind)
    meta = build_block([])
    meta_handle = varint(len(data)) + varint(len(meta))
    data += with_trailer(meta)
    index = build_block(index_entries, restart_interval=1)
    index_handle = varint(len(data)) + varint(len(index))
    data += with_trailer(index)
    handles = meta_handle + index_handle
    return bytes(data + handles + bytes(40 - len(handles)) + struct.pack("<Q", magic))


def entry_proto(*, dtype: int, shape: tuple[int, ...], offset: int, raw: bytes) -> bytes:
    shape_proto = b"".join(field(2, 2, varint(len(d)) + d) for d in (field(1, 0, varint(n)) for n in shape))
    return (
        field(1, 0, varint(dtype)) + field(2, 2, varint(len(shape_proto)) + shape_proto)
        + field(4, 0, varint(offset)) + field(5, 0, varint(len(raw)))
        + field(6, 5, struct.pack("<I", mask_crc(crc32c(raw))))
    )


def write_bundle(
    folder: Path, tensors: dict[str, np.ndarray], *, corrupt: str | None = None, shards: int = 1
) -> tuple[Path, Path]:
    header = field(1, 0, varint(shards)) + field(3, 2, varint(2) + field(1, 0, varint(1)))
    data, entries = bytearray(), [(b"", header)]
    dtypes = {np.dtype("float32"): 1, np.dtype("int64"): 9, np.dtype("int32"): 3}
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).tobytes()
        entries.append((name.encode(), entry_proto(
            dtype=dtypes[tensors[name].dtype], shape=tensors[name].shape, offset=len(data), raw=raw)))
        data += raw if name != corrupt else bytes([raw[0] ^ 1]) + raw[1:]
    index_path, data_path = folder / "t.index", folder / "t.data-00000-of-00001"
    index_path.write_bytes(build_table([entries[:3], entries[3:]]))
    data_path.write_bytes(bytes(data))
    return index_path, data_path


def sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "conv2d/kernel": rng.standard_normal((7, 3, 1, 4)).astype(np.float32),
        "conv2d/bias": rng.standard_normal(4).astype(np.float32),
        "conv2d_1/kernel": rng.standard_normal((2, 5)).astype(np.float32),
        "global_step": np.array(12345, dtype=np.int64),
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
    }


# --- tests ----------------------------------------------------------------------------------------------------
def test_crc32c_and_mask_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert unmask_crc(mask_crc(value)) == value
    assert mask_crc(0) == 0xA282EAD8


def test_table_keys_rebuilt_from_shared_prefixes():
    entries = [(f"layer/{name}".encode(), bytes([i])) for i, name in enumerate(["alpha", "alphabet", "beta", "bz"])]
    assert read_table(build_table([entries[:3], entries[3:]])) == entries


def test_bundle_roundtrip_dtypes_shapes_and_values(tmp_path):
    tensors = sample_tensors()
    index_path, data_path = write_bundle(tmp_path, tensors)
    read = read_bundle(index_path=index_path, data_path=data_path)
    assert sorted(read) == sorted(tensors)
    for name, array in tensors.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape
        np.testing.assert_array_equal(read[name], array)


def test_corrupt_tensor_fails_its_crc(tmp_path):
    index_path, data_path = write_bundle(tmp_path, sample_tensors(), corrupt="conv2d/bias")
    with pytest.raises(MusicnnError, match="conv2d/bias fails its crc32c"):
        read_bundle(index_path=index_path, data_path=data_path)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-8] + struct.pack("<Q", 0x1234), "not a LevelDB table"),
        (lambda b: b[:20], "truncated"),
        (lambda b: bytes([b[0] ^ 0xFF]) + b[1:], "block checksum mismatch"),
    ],
)
def test_malformed_index_is_one_domain_error(tmp_path, mutate, message):
    index_path, data_path = write_bundle(tmp_path, sample_tensors())
    index_path.write_bytes(mutate(index_path.read_bytes()))
    with pytest.raises(MusicnnError, match=message):
        read_bundle(index_path=index_path, data_path=data_path)


def test_sharded_bundles_are_refused(tmp_path):
    index_path, data_path = write_bundle(tmp_path, sample_tensors(), shards=2)
    with pytest.raises(MusicnnError, match="several data shards"):
        read_bundle(index_path=index_path, data_path=data_path)


def test_compressed_blocks_are_refused():
    table = build_table([[(b"a", b"1")]], kind=1)
    with pytest.raises(MusicnnError, match="compression 1"):
        read_table(table)


def test_data_file_too_short_is_reported(tmp_path):
    index_path, data_path = write_bundle(tmp_path, sample_tensors())
    data_path.write_bytes(data_path.read_bytes()[:10])
    with pytest.raises(MusicnnError, match="does not fit"):
        read_bundle(index_path=index_path, data_path=data_path)


def test_real_msd_musicnn_checkpoint_shapes(musicnn_checkpoint):
    tensors = read_bundle(index_path=musicnn_checkpoint / ".index",
                          data_path=musicnn_checkpoint / ".data-00000-of-00001")
    expected = {
        "conv2d/kernel": (7, 38, 1, 204), "conv2d_1/kernel": (7, 67, 1, 204),
        "conv2d_2/kernel": (128, 1, 1, 51), "conv2d_3/kernel": (64, 1, 1, 51), "conv2d_4/kernel": (32, 1, 1, 51),
        "conv2d_5/kernel": (7, 561, 1, 64), "conv2d_6/kernel": (7, 64, 1, 64), "conv2d_7/kernel": (7, 64, 1, 64),
        "batch_normalization/moving_mean": (1,), "batch_normalization_9/gamma": (1506,),
        "dense/kernel": (1506, 200), "dense/bias": (200,), "dense_1/kernel": (200, 50), "dense_1/bias": (50,),
    }
    for name, shape in expected.items():
        assert tensors[name].shape == shape and tensors[name].dtype == np.float32, name
    assert all(np.all(np.isfinite(t)) for t in tensors.values())
    assert np.all(tensors["batch_normalization_10/moving_variance"] > 0)
    assert checkpoint.TF_DTYPES[1] == np.float32
