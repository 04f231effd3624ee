"""A ZIP of stored (uncompressed) files whose sizes and CRC-32 are known before a byte is sent: DubDash
records both when it keeps a copy. So the archive's length is known up front (a download with a real
progress bar), and streaming it costs no more than reading the files: no checksum of every byte on every
download (zipstream-ng computes one as it streams, measured at under half the speed of `cat` here), no
archive built in memory or on disk. MP4 does not compress, so nothing is lost by storing.

APPNOTE.TXT 6.3: local header, the data, then the central directory; Zip64 records where a size, an offset
or the number of files reaches the classic field's maximum (0xFFFFFFFF or 0xFFFF in one of them means "see
the Zip64 record", so a value of exactly that must be Zip64 too). Imports nothing from Django."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

UTF8_NAMES = 0x0800  # general purpose flag bit 11: names are UTF-8
MADE_BY_UNIX = (3 << 8) | 45  # so the external attributes below are read as Unix permissions
ZIP64_VERSION = 45
CLASSIC_VERSION = 20
MAX_32 = 0xFFFFFFFF
MAX_16 = 0xFFFF
FILE_MODE = 0o100644 << 16


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    crc32: int
    modified: datetime
    chunks: Callable[[], Iterator[bytes]]  # opened when its turn comes, so only one file is open at a time


def in_memory(name: str, data: bytes, modified: datetime) -> Member:
    """A small member made here (the manifest)."""
    return Member(name=name, size=len(data), crc32=zlib.crc32(data), modified=modified, chunks=lambda: iter((data,)))


def _dos_time(moment: datetime) -> tuple[int, int]:
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return time, date


def _local_header(member: Member) -> bytes:
    name = member.name.encode()
    zip64 = member.size >= MAX_32
    extra = struct.pack("<HHQQ", 0x0001, 16, member.size, member.size) if zip64 else b""
    size_field = MAX_32 if zip64 else member.size
    time, date = _dos_time(member.modified)
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            ZIP64_VERSION if zip64 else CLASSIC_VERSION,
            UTF8_NAMES,
            0,  # stored
            time,
            date,
            member.crc32 & MAX_32,
            size_field,
            size_field,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def _central_header(member: Member, offset: int) -> bytes:
    """A record that needs the Zip64 field at all (its size or its offset does not fit in 32 bits: a value of
    exactly 0xFFFFFFFF would read as "see the Zip64 field") carries both sizes in it, their 32-bit fields
    set to 0xFFFFFFFF as APPNOTE 4.5.3 asks, even when only the offset needed it. Info-ZIP's unzip (6.0)
    looks for a size in the Zip64 field when this record's size field, or the size it read before, is
    0xFFFFFFFF: after a file of exactly 0xFFFFFFFF bytes it took the next record's offset for its size and
    found no offset, so it listed wrong sizes and could not extract any file after that one."""
    name = member.name.encode()
    big_size, big_offset = member.size >= MAX_32, offset >= MAX_32
    zip64 = big_size or big_offset
    fields = ([member.size, member.size] if zip64 else []) + ([offset] if big_offset else [])
    extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields) if fields else b""
    size_field = MAX_32 if zip64 else member.size
    time, date = _dos_time(member.modified)
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            MADE_BY_UNIX,
            ZIP64_VERSION if zip64 else CLASSIC_VERSION,
            UTF8_NAMES,
            0,
            time,
            date,
            member.crc32 & MAX_32,
            size_field,
            size_field,
            len(name),
            len(extra),
            0,  # no comment
            0,  # disk number
            0,  # internal attributes
            FILE_MODE,
            MAX_32 if big_offset else offset,
        )
        + name
        + extra
    )


def _end(count: int, directory_offset: int, directory_size: int) -> bytes:
    zip64 = count >= MAX_16 or directory_offset >= MAX_32 or directory_size >= MAX_32
    records = b""
    if zip64:
        zip64_end_offset = directory_offset + directory_size
        records += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, MADE_BY_UNIX, ZIP64_VERSION, 0, 0, count, count, directory_size, directory_offset
        )
        records += struct.pack("<IIQI", 0x07064B50, 0, zip64_end_offset, 1)
    return records + struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        min(count, MAX_16),
        min(count, MAX_16),
        min(directory_size, MAX_32),
        min(directory_offset, MAX_32),
        0,
    )


def archive_size(members: list[Member]) -> int:
    """The archive's exact length in bytes, before anything is read."""
    offset = 0
    directory = 0
    for member in members:
        directory += len(_central_header(member, offset))
        offset += len(_local_header(member)) + member.size
    return offset + directory + len(_end(len(members), offset, directory))


def stream(members: Iterable[Member]) -> Iterator[bytes]:
    """The archive, piece by piece. A file that yields more or fewer bytes than its recorded size stops the
    stream (RuntimeError): a ZIP with a wrong size in its headers would be corrupt without saying so."""
    written: list[tuple[Member, int]] = []
    offset = 0
    for member in members:
        header = _local_header(member)
        yield header
        written.append((member, offset))
        sent = 0
        for chunk in member.chunks():
            sent += len(chunk)
            if sent > member.size:
                raise RuntimeError(f"{member.name} is larger than its recorded {member.size} bytes")
            yield chunk
        if sent != member.size:
            raise RuntimeError(f"{member.name} has {sent} bytes, not its recorded {member.size}")
        offset += len(header) + member.size
    directory = b"".join(_central_header(member, at) for member, at in written)
    yield directory
    yield _end(len(written), offset, len(directory))
