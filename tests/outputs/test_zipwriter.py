"""The streamed ZIP writer: what it writes is a ZIP that Python's zipfile and Info-ZIP's unzip read back
whole, of exactly the length announced before the first byte, Zip64 included."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile
import zlib
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from submissions.outputs import zipwriter

WHEN = datetime(2026, 12, 1, 10, 30, 2)


def member(name: str, data: bytes) -> zipwriter.Member:
    return zipwriter.in_memory(name, data, WHEN)


def chunked(name: str, data: bytes, *, size: int | None = None, chunk: int = 7) -> zipwriter.Member:
    return zipwriter.Member(
        name=name,
        size=len(data) if size is None else size,
        crc32=zlib.crc32(data),
        modified=WHEN,
        chunks=lambda: iter([data[i : i + chunk] for i in range(0, len(data), chunk)]),
    )


def test_an_archive_reads_back_whole_with_names_times_and_bytes(tmp_path):
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    members = [chunked("Épisode 1_fr_take2.mp4", video), member("manifest.csv", b"a,b\r\n")]
    blob = b"".join(zipwriter.stream(members))

    assert len(blob) == zipwriter.archive_size(members)
    archive = zipfile.ZipFile(io.BytesIO(blob))
    assert archive.testzip() is None
    assert archive.namelist() == ["Épisode 1_fr_take2.mp4", "manifest.csv"]
    assert archive.read("manifest.csv") == b"a,b\r\n"
    info = archive.getinfo("Épisode 1_fr_take2.mp4")
    assert info.compress_type == zipfile.ZIP_STORED and info.date_time == (2026, 12, 1, 10, 30, 2)
    assert info.external_attr >> 16 == 0o100644

    unzip = shutil.which("unzip")
    assert unzip, "Info-ZIP's unzip is part of the machine's base tools"
    (tmp_path / "a.zip").write_bytes(blob)
    checked = subprocess.run([unzip, "-t", str(tmp_path / "a.zip")], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "No errors detected" in checked.stdout


def test_an_empty_archive_is_a_valid_zip():
    blob = b"".join(zipwriter.stream([]))
    assert len(blob) == zipwriter.archive_size([]) == 22
    assert zipfile.ZipFile(io.BytesIO(blob)).namelist() == []


def test_more_files_than_the_classic_format_counts_get_zip64_records():
    members = [member(f"{n}.txt", str(n).encode()) for n in range(70_000)]
    blob = b"".join(zipwriter.stream(members))

    assert len(blob) == zipwriter.archive_size(members)
    assert struct.pack("<I", 0x06064B50) in blob[-200:]  # the Zip64 end of central directory record
    archive = zipfile.ZipFile(io.BytesIO(blob))
    assert len(archive.namelist()) == 70_000 and archive.read("69999.txt") == b"69999"


def test_offsets_past_four_gigabytes_move_into_the_zip64_extra_field():
    header = zipwriter._central_header(member("late.mp4", b"x"), offset=5 * 2**30)
    (offset_field,) = struct.unpack_from("<I", header, 42)
    assert offset_field == 0xFFFFFFFF
    # Both sizes come first, their fields saying 0xFFFFFFFF, then the offset (why: the 0xFFFFFFFF-byte test below).
    assert struct.unpack_from("<II", header, 20) == (0xFFFFFFFF, 0xFFFFFFFF)
    extra_id, extra_size, size, packed, real_offset = struct.unpack_from("<HHQQQ", header, 46 + len("late.mp4"))
    assert (extra_id, extra_size, size, packed, real_offset) == (0x0001, 24, 1, 1, 5 * 2**30)


@pytest.mark.parametrize(("declared", "message"), [(10, "larger than its recorded"), (1000, "not its recorded")])
def test_a_file_whose_size_changed_stops_the_stream_rather_than_corrupt_the_archive(declared, message):
    with pytest.raises(RuntimeError, match=message):
        b"".join(zipwriter.stream([chunked("a.mp4", b"y" * 100, size=declared)]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s), st.binary(max_size=300)),
        max_size=6,
        unique_by=lambda item: item[0],
    )
)
def test_any_names_and_contents_read_back_exactly(files):
    members = [chunked(name, data, chunk=13) for name, data in files]
    blob = b"".join(zipwriter.stream(members))
    assert len(blob) == zipwriter.archive_size(members)
    archive = zipfile.ZipFile(io.BytesIO(blob))
    assert [(info.filename, archive.read(info)) for info in archive.infolist()] == files


# --- The Zip64 boundaries: 0xFFFFFFFF and 0xFFFF mean "see the Zip64 record", so a value of exactly that is Zip64 ---

MAX_32 = 0xFFFFFFFF
# The CRC-32 of that many zero bytes, computed once (reading 4 GiB to compute it takes seconds), so the sparse
# archives below are valid through and through (`unzip -t` and zipfile's testzip() pass them).
ZEROS_CRC32 = {MAX_32 - 1: 0x0F6A7026, MAX_32: 0x00000000}


class Hole:
    """A run of zero bytes that write_sparse skips over instead of writing: stream() only counts its length, so
    an archive with a 4 GiB member costs a few blocks of disk and no 4 GiB in memory."""

    def __init__(self, length: int):
        self.length = length

    def __len__(self) -> int:
        return self.length


def zeros(name: str, size: int) -> zipwriter.Member:
    return zipwriter.Member(name=name, size=size, crc32=ZEROS_CRC32[size], modified=WHEN, chunks=lambda: iter([Hole(size)]))


def write_sparse(path, members: list[zipwriter.Member]) -> None:
    with path.open("wb") as out:
        for piece in zipwriter.stream(members):
            if isinstance(piece, Hole):
                out.seek(len(piece), io.SEEK_CUR)
            else:
                out.write(piece)


def unzip(*arguments: str) -> subprocess.CompletedProcess[bytes]:
    found = shutil.which("unzip")
    assert found, "Info-ZIP's unzip is part of the machine's base tools"
    return subprocess.run([found, *arguments], capture_output=True, check=False)


def zip64_values(extra: bytes, *, present: list[bool]) -> list[int]:
    """The Zip64 extra field read as APPNOTE 4.5.3 says: a value for each header field that says 0xFFFFFFFF,
    in order, and nothing else (these headers have no other extra field)."""
    if not any(present):
        assert extra == b""
        return []
    tag, length = struct.unpack_from("<HH", extra)
    assert (tag, length, len(extra)) == (0x0001, 8 * sum(present), 4 + 8 * sum(present))
    return list(struct.unpack_from(f"<{sum(present)}Q", extra, 4))


@pytest.mark.parametrize("size", [0, MAX_32 - 1, MAX_32, MAX_32 + 1, 2**40])
def test_the_local_header_has_both_sizes_in_zip64_exactly_when_the_size_does_not_fit(size):
    header = zipwriter._local_header(zipwriter.Member(name="a.mp4", size=size, crc32=0, modified=WHEN, chunks=lambda: iter(())))
    needed, packed, unpacked, name_length, extra_length = struct.unpack_from("<H12xIIHH", header, 4)
    extra = header[30 + name_length :]
    assert len(extra) == extra_length
    big = size >= MAX_32
    assert (packed, unpacked, needed) == ((MAX_32, MAX_32, 45) if big else (size, size, 20))
    # APPNOTE 4.5.3: in a local header the Zip64 field holds both sizes, or is not there.
    assert zip64_values(extra, present=[big, big]) == ([size, size] if big else [])


@pytest.mark.parametrize("size", [0, MAX_32 - 1, MAX_32, 2**40])
@pytest.mark.parametrize("offset", [0, MAX_32 - 1, MAX_32, 2**40])
def test_the_central_header_reads_back_its_size_and_offset_by_the_rule(size, offset):
    header = zipwriter._central_header(
        zipwriter.Member(name="a.mp4", size=size, crc32=0, modified=WHEN, chunks=lambda: iter(())), offset
    )
    needed, packed, unpacked, name_length, extra_length = struct.unpack_from("<H12xIIHH", header, 6)
    (offset_field,) = struct.unpack_from("<I", header, 42)
    extra = header[46 + name_length :]
    assert len(extra) == extra_length
    values = zip64_values(extra, present=[unpacked == MAX_32, packed == MAX_32, offset_field == MAX_32])
    read = iter(values)
    decoded = [next(read) if field == MAX_32 else field for field in (unpacked, packed, offset_field)]
    assert decoded == [size, size, offset]
    zip64 = size >= MAX_32 or offset >= MAX_32
    assert (offset_field == MAX_32) == (offset >= MAX_32)
    # Whenever the record has a Zip64 field, both sizes are in it (Info-ZIP's unzip needs that: see below).
    assert (packed, unpacked, needed) == ((MAX_32, MAX_32, 45) if zip64 else (size, size, 20))


@pytest.mark.parametrize(
    ("count", "directory_offset", "directory_size", "zip64"),
    [
        (0xFFFE, 0, 0, False),
        (0xFFFF, 0, 0, True),
        (1, MAX_32 - 1, 100, False),
        (1, MAX_32, 100, True),
        (1, 0, MAX_32 - 1, False),
        (1, 0, MAX_32, True),
    ],
)
def test_the_end_records_go_zip64_when_a_value_reaches_the_classic_maximum(count, directory_offset, directory_size, zip64):
    end = zipwriter._end(count, directory_offset, directory_size)
    classic = struct.unpack("<IHHHHIIH", end[-22:])
    if not zip64:
        assert len(end) == 22
        assert classic == (0x06054B50, 0, 0, count, count, directory_size, directory_offset, 0)
        return
    assert len(end) == 56 + 20 + 22
    record = struct.unpack_from("<IQHHIIQQQQ", end)
    assert record[0] == 0x06064B50 and record[6:] == (count, count, directory_size, directory_offset)
    assert struct.unpack_from("<IIQI", end, 56) == (0x07064B50, 0, directory_offset + directory_size, 1)
    assert classic[3:7] == (min(count, 0xFFFF), min(count, 0xFFFF), min(directory_size, MAX_32), min(directory_offset, MAX_32))


@pytest.mark.parametrize("count", [0xFFFE, 0xFFFF])
def test_an_archive_of_0xffff_files_reads_back_in_python_and_info_zip(tmp_path, count):
    members = [member(f"{n}.txt", b"") for n in range(count)]
    path = tmp_path / "many.zip"
    path.write_bytes(b"".join(zipwriter.stream(members)))

    assert path.stat().st_size == zipwriter.archive_size(members)
    with zipfile.ZipFile(path) as archive:
        assert len(archive.infolist()) == count
    listed = unzip("-l", str(path))
    assert (listed.returncode, listed.stderr) == (0, b"")
    assert listed.stdout.rstrip().endswith(f"{count} files".encode())


@pytest.mark.parametrize("size", [MAX_32 - 1, MAX_32])
def test_a_file_of_4_gib_less_one_byte_and_those_after_it_read_back(tmp_path, size):
    """A video of exactly 0xFFFFFFFF bytes is recorded in Zip64 (the classic field would say "see Zip64").
    Before the central records carried both sizes whenever they had a Zip64 field, Info-ZIP's unzip listed
    the file after it with its offset for a size and could not find it."""
    members = [member("first.txt", b"one"), zeros("big.mp4", size), member("after.txt", b"hello")]
    path = tmp_path / "big.zip"
    write_sparse(path, members)

    assert path.stat().st_size == zipwriter.archive_size(members)
    first_header = 30 + len("first.txt") + 3
    big_header = 30 + len("big.mp4") + (20 if size >= MAX_32 else 0)
    with zipfile.ZipFile(path) as archive:
        assert [(info.filename, info.file_size, info.compress_size, info.header_offset) for info in archive.infolist()] == [
            ("first.txt", 3, 3, 0),
            ("big.mp4", size, size, first_header),
            ("after.txt", 5, 5, first_header + big_header + size),
        ]
        assert archive.read("after.txt") == b"hello"  # found where the central directory says, after the 4 GiB
        with archive.open("big.mp4") as big:  # its local header read back (checking all 4 GiB takes 3 to 10 s)
            assert big.read(4) == bytes(4)

    listed = unzip("-l", str(path))
    assert (listed.returncode, listed.stderr) == (0, b"")
    rows = [line.split() for line in listed.stdout.decode().splitlines() if line.endswith((".txt", ".mp4"))]
    sizes = {row[-1]: int(row[0]) for row in rows}
    assert sizes == {"first.txt": 3, "big.mp4": size, "after.txt": 5}
    extracted = unzip("-p", str(path), "after.txt")
    assert (extracted.returncode, extracted.stdout, extracted.stderr) == (0, b"hello", b"")
