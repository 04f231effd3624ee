"""Serving a kept copy's bytes: the byte range a player asks for (206, 416, or the whole file when the range is
one this does not honour), If-Range, HEAD answered as GET without a body, the file closed however the
response ends; and the range parser on any header. Who may download, names and fallbacks: test_serving.py."""

from __future__ import annotations

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.signals import request_finished
from django.db import close_old_connections
from hypothesis import given
from hypothesis import strategies as st

from submissions.outputs import serving
from tests.outputs.serving_scene import SAMPLE, SIZE, body, get, keep, url_of

# --- Setting the scene -------------------------------------------------------------------------------


# --- Ranges -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        ("bytes=-99999999", 0, SIZE - 1),
        (f"bytes=1000-{SIZE * 5}", 1000, SIZE - 1),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
    ],
)
def test_a_range_gets_206_with_exactly_those_bytes(client, owner, media, job, asked, start, end):
    keep(job)
    response = get(client, owner, job, range=asked)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert body(response) == SAMPLE[start : end + 1]


@pytest.mark.parametrize("asked", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_a_range_past_the_end_is_416(client, owner, media, job, asked):
    keep(job)
    response = get(client, owner, job, range=asked)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    "asked",
    ["bytes=abc", "bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes 0-1", "bytes=٣-٤", "0-1", "bytes=" + "9" * 300],
)
def test_a_range_this_does_not_honour_is_ignored_and_the_whole_file_sent(client, owner, media, job, asked):
    keep(job)
    response = get(client, owner, job, range=asked)
    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == SAMPLE


def test_a_long_range_is_streamed_in_bounded_chunks(client, owner, media, job, monkeypatch):
    monkeypatch.setattr(serving, "CHUNK_BYTES", 1000)
    keep(job)
    response = get(client, owner, job, range="bytes=10-")
    chunks = list(response.streaming_content)
    assert max(len(chunk) for chunk in chunks) == 1000 and len(chunks) == -(-(SIZE - 10) // 1000)
    assert b"".join(chunks) == SAMPLE[10:]


def test_if_range_honours_the_range_only_for_the_same_file(client, owner, media, job):
    copy = keep(job)
    same = get(client, owner, job, range="bytes=0-9", if_range=f'"{copy.sha256}"')
    changed = get(client, owner, job, range="bytes=0-9", if_range='"0123"')
    dated = get(client, owner, job, range="bytes=0-9", if_range="Wed, 21 Oct 2015 07:28:00 GMT")
    assert (same.status_code, body(same)) == (206, SAMPLE[:10])
    assert (changed.status_code, body(changed)) == (200, SAMPLE)
    assert (dated.status_code, body(dated)) == (200, SAMPLE)


def test_head_answers_as_get_would_without_a_body(client, owner, media, job):
    keep(job)
    client.force_login(owner)
    whole = client.head(url_of(job))
    part = client.head(url_of(job), headers={"range": "bytes=-500"})
    assert (whole.status_code, whole["Content-Length"], whole.content) == (200, str(SIZE), b"")
    assert (part.status_code, part["Content-Length"], part["Content-Range"]) == (
        206,
        "500",
        f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}",
    )
    assert whole["Content-Type"] == "video/mp4" and whole["Content-Disposition"].startswith("attachment;")


@pytest.fixture
def opened(monkeypatch):
    """Every file the outputs storage opens, to see that each one is closed."""
    files = []
    real_open = FileSystemStorage.open

    def spy(self, name, mode="rb"):
        files.append(real_open(self, name, mode))
        return files[-1]

    monkeypatch.setattr(FileSystemStorage, "open", spy)
    return files


def test_the_file_is_closed_when_the_response_is_closed_even_half_read(client, owner, media, job, opened):
    copy = keep(job)
    client.force_login(owner)
    full = client.get(url_of(job))
    assert body(full) == SAMPLE and opened[-1].closed  # the test client closes the response when read

    # Straight from serving (the test client wraps a response's closing in its own): half read, then closed
    # as the WSGI server closes it when the client goes away.
    half = serving.kept_response(copy=copy, disposition="attachment", head=False, range_header="", if_range="")
    assert half is not None
    next(iter(half))
    assert not opened[-1].closed
    request_finished.disconnect(close_old_connections)  # closing a response signals the end of a request
    try:
        half.close()
    finally:
        request_finished.connect(close_old_connections)
    assert opened[-1].closed

    # Without a body to stream (HEAD, 416) the file is closed before the response is even returned.
    for response in (client.head(url_of(job)), client.get(url_of(job), headers={"range": f"bytes={SIZE}-"})):
        assert response.status_code in (200, 416)
        assert opened[-1].closed


# --- The range parser, on any header ------------------------------------------------------------------

_numbers = st.one_of(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**30))
_specs = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", _numbers, _numbers),
    st.builds(lambda a: f"bytes={a}-", _numbers),
    st.builds(lambda b: f"bytes=-{b}", _numbers),
    st.builds(lambda a, b, c, d: f"bytes={a}-{b},{c}-{d}", _numbers, _numbers, _numbers, _numbers),
)
_headers = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="bytes=0123456789-, \t;xBYTES*", max_size=60),
    _specs,
    st.builds(
        lambda pad, spec, tail: pad + spec + tail,
        st.sampled_from(["", " ", "\t", "\n"]),
        _specs,
        st.sampled_from(["", " ", "\n", "x"]),
    ),
)


@given(header=_headers, size=st.integers(min_value=0, max_value=10**12))
def test_any_range_header_gives_a_span_inside_the_file_or_the_documented_refusal(header, size):
    try:
        span = serving.parse_range(header, size=size)
    except serving.RangeNotSatisfiable:
        return
    if span is not None:
        assert 0 <= span.start <= span.end < size
        assert span.length == span.end - span.start + 1 >= 1


@given(size=st.integers(min_value=1, max_value=10**9), data=st.data())
def test_a_range_inside_the_file_is_returned_as_asked(size, data):
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    end = data.draw(st.integers(min_value=start, max_value=size - 1))
    assert serving.parse_range(f"bytes={start}-{end}", size=size) == serving.Span(start, end)
    assert serving.parse_range(f"bytes={start}-", size=size) == serving.Span(start, size - 1)
    suffix = data.draw(st.integers(min_value=1, max_value=2 * size))
    assert serving.parse_range(f"bytes=-{suffix}", size=size) == serving.Span(max(0, size - suffix), size - 1)


@given(size=st.integers(min_value=0, max_value=10**9), beyond=st.integers(min_value=0, max_value=10**12))
def test_a_range_starting_at_or_past_the_end_is_unsatisfiable(size, beyond):
    with pytest.raises(serving.RangeNotSatisfiable):
        serving.parse_range(f"bytes={size + beyond}-", size=size)
