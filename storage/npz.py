"""The layout of an uncompressed `.npz`, computed without its data.

`np.savez` writes a zip of stored (not deflated) `NAME.npy` entries, each local
header with a Zip64 extra field (numpy forces it), dated 1980-01-01, mode 0600.
Given each entry's size and CRC-32, which the worker recorded when it stored
the `.npy`, the whole archive is known in advance: its headers are computed
here and the data between them is streamed from the store as it is, so the
archive has a `Content-Length` and is never held in memory. The bytes equal
what `np.savez` writes for the same arrays.
"""

import struct
from dataclasses import dataclass

ZIP64_LIMIT = (1 << 31) - 1  # zipfile switches to Zip64 fields past this
_FILECOUNT_LIMIT = (1 << 16) - 1
_VERSION = 45  # Zip64
_DOS_DATE = 0x21  # 1980-01-01
_UNIX = 3
_MODE_0600 = 0o600 << 16


@dataclass(frozen=True)
class Entry:
    name: str  # without ".npy"
    size: int
    crc32: int


@dataclass(frozen=True)
class Part:
    """A piece of the archive: literal bytes, or an entry's data (`entry` set)."""

    data: bytes = b""
    entry: Entry | None = None

    @property
    def length(self) -> int:
        return self.entry.size if self.entry is not None else len(self.data)


def layout(entries: list[Entry]) -> list[Part]:
    """The archive as parts in order; their lengths sum to its size."""
    parts: list[Part] = []
    offsets = []
    position = 0
    for entry in entries:
        header = _local_header(entry)
        offsets.append(position)
        parts += [Part(header), Part(entry=entry)]
        position += len(header) + entry.size
    directory = b"".join(
        _central_header(entry, offset) for entry, offset in zip(entries, offsets, strict=True)
    )
    parts.append(Part(directory + _end_records(len(entries), len(directory), position)))
    return parts


def size(parts: list[Part]) -> int:
    return sum(part.length for part in parts)


def _local_header(entry: Entry) -> bytes:
    name = f"{entry.name}.npy".encode()
    extra = struct.pack("<HHQQ", 1, 16, entry.size, entry.size)
    fixed = struct.pack(
        "<4sHHHHHIIIHH",
        b"PK\x03\x04",
        _VERSION,
        0,
        0,
        0,
        _DOS_DATE,
        entry.crc32,
        0xFFFFFFFF,
        0xFFFFFFFF,
        len(name),
        len(extra),
    )
    return fixed + name + extra


def _central_header(entry: Entry, offset: int) -> bytes:
    name = f"{entry.name}.npy".encode()
    zip64: list[int] = []
    size32 = entry.size
    if entry.size > ZIP64_LIMIT:
        zip64 += [entry.size, entry.size]
        size32 = 0xFFFFFFFF
    offset32 = offset
    if offset > ZIP64_LIMIT:
        zip64.append(offset)
        offset32 = 0xFFFFFFFF
    extra = struct.pack(f"<HH{len(zip64)}Q", 1, 8 * len(zip64), *zip64) if zip64 else b""
    fixed = struct.pack(
        "<4sBBHHHHHIIIHHHHHII",
        b"PK\x01\x02",
        _VERSION,
        _UNIX,
        _VERSION,
        0,
        0,
        0,
        _DOS_DATE,
        entry.crc32,
        size32,
        size32,
        len(name),
        len(extra),
        0,
        0,
        0,
        _MODE_0600,
        offset32,
    )
    return fixed + name + extra


def _end_records(count: int, directory_size: int, directory_offset: int) -> bytes:
    records = b""
    if count > _FILECOUNT_LIMIT or directory_offset > ZIP64_LIMIT or directory_size > ZIP64_LIMIT:
        end64_offset = directory_offset + directory_size
        records += struct.pack(
            "<4sQHHIIQQQQ",
            b"PK\x06\x06",
            44,
            _VERSION,
            _VERSION,
            0,
            0,
            count,
            count,
            directory_size,
            directory_offset,
        )
        records += struct.pack("<4sIQI", b"PK\x06\x07", 0, end64_offset, 1)
        count = min(count, 0xFFFF)
        directory_size = min(directory_size, 0xFFFFFFFF)
        directory_offset = min(directory_offset, 0xFFFFFFFF)
    records += struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, directory_size, directory_offset, 0
    )
    return records
