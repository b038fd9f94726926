"""A reader of TensorFlow's tensor-bundle checkpoints (``.index`` + ``.data-00000-of-00001``), no TensorFlow.

The format, as TensorFlow writes it (``tensorflow/core/util/tensor_bundle``):

- ``.index`` is a LevelDB table (SSTable). Its last 48 bytes are the footer: two block handles
  (metaindex, index; each two base-128 varints: offset, size), zero padding up to 40 bytes, then the
  magic number ``0xdb4775248b80fb57`` as a little-endian fixed64. Every block is followed by a
  5-byte trailer: a compression byte (0 = none; the only kind TensorFlow's bundles use) and the
  masked crc32c of the block plus that byte. A block holds entries ``shared, non_shared, value_len``
  (varints), the ``non_shared`` key bytes (the first ``shared`` bytes come from the previous key),
  then the value; it ends with the restart offsets (fixed32 each) and their count (fixed32).
  The index block maps the last key of each data block to that block's handle.
- The entry with the empty key is a ``BundleHeaderProto`` (shard count, endianness, version); every
  other key is a tensor name whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset,
  size, masked crc32c of the tensor's bytes) pointing into the data shard.

Protobuf messages are decoded here by hand from the wire format (only the fields listed above).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from music_classifier.features.musicnn.errors import MusicnnError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
_MASK_DELTA = 0xA282EAD8

#: TensorFlow ``DataType`` enum values this reader understands -> numpy dtypes (little-endian).
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    19: np.dtype("<f2"),  # DT_HALF
}


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lies in the data shard, as the ``.index`` describes it."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C (Castagnoli) of ``data`` (the C implementation of ``google-crc32c``)."""
    import google_crc32c

    return google_crc32c.value(bytes(data))


def mask_crc(crc: int) -> int:
    """LevelDB's/TensorFlow's masked CRC: rotate right by 15 bits, add a constant (mod 2**32)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Inverse of :func:`mask_crc`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MusicnnError("checkpoint index is truncated (a varint runs past the end)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MusicnnError("checkpoint index is corrupt (a varint is longer than 10 bytes)")


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of every field of a protobuf message; varints as int, others as bytes/int."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise MusicnnError(f"checkpoint index is corrupt (protobuf wire type {wire})")
        if pos > len(buf):
            raise MusicnnError("checkpoint index is corrupt (a protobuf field runs past its message)")
        fields.append((number, value))
    return fields


def _int(value: int | bytes, what: str) -> int:
    if not isinstance(value, int):
        raise MusicnnError(f"checkpoint index is corrupt ({what} is not an integer field)")
    return value


def _bytes(value: int | bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MusicnnError(f"checkpoint index is corrupt ({what} is not a length-delimited field)")
    return value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_shape(buf: bytes) -> tuple[int, ...]:
    """``TensorShapeProto`` -> dims (field 2, each a ``Dim`` whose field 1 is the size)."""
    dims = []
    for number, value in _proto_fields(buf):
        if number == 2:
            size = 0
            for dim_number, dim_value in _proto_fields(_bytes(value, "a shape dim")):
                if dim_number == 1:
                    size = _signed64(_int(dim_value, "a dim size"))
            dims.append(size)
        elif number == 3 and value:
            raise MusicnnError("checkpoint tensor has an unknown rank")
    return tuple(dims)


def parse_entry(name: str, buf: bytes) -> BundleEntry:
    """``BundleEntryProto`` (1 dtype, 2 shape, 3 shard_id, 4 offset, 5 size, 6 crc32c, 7 slices)."""
    ints = {1: 0, 3: 0, 4: 0, 5: 0, 6: 0}  # dtype, shard_id, offset, size, crc32c
    shape: tuple[int, ...] = ()
    for number, value in _proto_fields(buf):
        if number in ints:
            ints[number] = _int(value, f"field {number} of {name}")
        elif number == 2:
            shape = parse_shape(_bytes(value, f"the shape of {name}"))
        elif number == 7:
            raise MusicnnError(f"checkpoint tensor {name} is stored in slices (not supported)")
    return BundleEntry(name, ints[1], shape, ints[3], ints[4], ints[5], ints[6])


def _block(data: bytes, offset: int, size: int) -> bytes:
    """The contents of the block at (offset, size), its trailer checked."""
    end = offset + size
    if offset < 0 or end + BLOCK_TRAILER_SIZE > len(data):
        raise MusicnnError("checkpoint index is corrupt (a block lies outside the file)")
    contents = data[offset:end]
    kind = data[end]
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if unmask_crc(stored) != crc32c(data[offset : end + 1]):
        raise MusicnnError("checkpoint index is corrupt (block checksum mismatch)")
    if kind != 0:
        raise MusicnnError(f"checkpoint index uses block compression {kind} (only uncompressed is supported)")
    return contents


def block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) of every entry of a table block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise MusicnnError("checkpoint index is corrupt (block shorter than its restart count)")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise MusicnnError("checkpoint index is corrupt (restart array larger than its block)")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise MusicnnError("checkpoint index is corrupt (an entry runs past its block)")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of an uncompressed LevelDB table, in key order."""
    if len(data) < FOOTER_SIZE:
        raise MusicnnError("checkpoint index is truncated (shorter than a table footer)")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise MusicnnError(f"checkpoint index is not a LevelDB table (magic {magic:#x})")
    pos = 0
    _meta_offset, pos = read_varint(footer, pos)
    _meta_size, pos = read_varint(footer, pos)
    index_offset, pos = read_varint(footer, pos)
    index_size, pos = read_varint(footer, pos)
    entries: list[tuple[bytes, bytes]] = []
    for _last_key, handle in block_entries(_block(data, index_offset, index_size)):
        offset, hpos = read_varint(handle, 0)
        size, _ = read_varint(handle, hpos)
        entries.extend(block_entries(_block(data, offset, size)))
    return entries


def read_index(index_path: Path) -> dict[str, BundleEntry]:
    """Tensor name -> :class:`BundleEntry` of a bundle's ``.index`` file (header checked)."""
    header_seen = False
    entries: dict[str, BundleEntry] = {}
    for key, value in read_table(index_path.read_bytes()):
        if key == b"":
            header = dict(_proto_fields(value))  # 1 num_shards, 2 endianness (0 little), 3 version
            if _int(header.get(1, 1), "num_shards") != 1:
                raise MusicnnError("checkpoint has several data shards (only one is supported)")
            if _int(header.get(2, 0), "endianness") != 0:
                raise MusicnnError("checkpoint is big-endian (only little-endian is supported)")
            header_seen = True
            continue
        name = key.decode("utf-8")
        entries[name] = parse_entry(name, value)
    if not header_seen:
        raise MusicnnError("checkpoint index has no bundle header")
    return entries


def read_bundle(*, index_path: Path, data_path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a single-shard checkpoint.

    Parameters
    ----------
    index_path : Path
        The ``.index`` file (for musicnn's ``MSD_musicnn/`` checkpoint the file is named just ``.index``).
    data_path : Path
        The ``.data-00000-of-00001`` file next to it.

    Returns
    -------
    dict of str -> np.ndarray
        Tensor name -> a read-only array of the stored dtype and shape, each one's crc32c verified.

    Raises
    ------
    MusicnnError
        A malformed index, a tensor outside the data file, an unsupported layout or a checksum mismatch.
    """
    index = read_index(index_path)
    data = data_path.read_bytes()
    tensors: dict[str, np.ndarray] = {}
    for name, entry in index.items():
        dtype = TF_DTYPES.get(entry.dtype)
        if dtype is None:
            raise MusicnnError(f"checkpoint tensor {name} has unsupported dtype {entry.dtype}")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * dtype.itemsize
        if entry.size != expected or entry.offset + entry.size > len(data):
            raise MusicnnError(f"checkpoint tensor {name} does not fit its shape {entry.shape} or the data file")
        raw = data[entry.offset : entry.offset + entry.size]
        if crc32c(raw) != unmask_crc(entry.crc32c):
            raise MusicnnError(f"checkpoint tensor {name} fails its crc32c check (corrupt data file)")
        array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        tensors[name] = array
    return tensors
