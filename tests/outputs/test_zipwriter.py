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
    extra_id, extra_size, real_offset = struct.unpack_from("<HHQ", header, 46 + len("late.mp4"))
    assert (extra_id, extra_size, real_offset) == (0x0001, 8, 5 * 2**30)


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
