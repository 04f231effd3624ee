"""Serving outputs from DubDash: the kept copy streamed to whoever may see the job (whole, or the byte range a
player asks for), under the job's own file name; Chamelaion's link until a copy is kept; on S3, a presigned
redirect (or the bytes through DubDash); and asking again to keep a copy that could not be made."""

from __future__ import annotations

import hashlib
import re

import pytest
import requests
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.signals import request_finished
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.http import parse_options_header

from submissions.models import OutputCopy, Submission
from submissions.outputs import names, serving
from submissions.outputs.storage import outputs_storage
from submissions.sandbox.media import MEDIA_DIR
from tests.factories import make_part, make_submission

SAMPLE = (MEDIA_DIR / "sample.mp4").read_bytes()
SIZE = len(SAMPLE)
CHAMELAION_URL = "https://cdn.chamelaion.example/outputs/job-1.mp4"
State = OutputCopy.State


# --- Setting the scene -------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    """The default outputs storage (a FileSystemStorage without a location of its own) under this test's
    MEDIA_ROOT: it follows the setting, so nothing here touches var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OUTPUT_KEEP = True
    return tmp_path / "media"


@pytest.fixture
def owner(cast):
    return cast.submitter


@pytest.fixture
def job(owner):
    return completed(owner, title="Episode 1", target_language="de")


def completed(user, **fields) -> Submission:
    fields = {"state": Submission.State.COMPLETED, "output_url": CHAMELAION_URL, "finished_at": timezone.now(), **fields}
    return make_submission(user, **fields)


def keep(job: Submission, data: bytes = SAMPLE, **fields) -> OutputCopy:
    """A kept copy, written into the outputs storage as the worker writes it."""
    name = outputs_storage().save(f"outputs/tests/{job.reference_id}.mp4", ContentFile(data))
    defaults = {"state": State.DONE, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "kept_at": timezone.now()}
    return OutputCopy.objects.create(submission=job, file=name, **{**defaults, **fields})


def url_of(job: Submission, **query: str) -> str:
    url = reverse("submissions:output", args=[job.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def get(client, user, job, **headers):
    client.force_login(user)
    return client.get(url_of(job), headers=headers)


# --- Who may download -------------------------------------------------------------------------------


def test_the_kept_file_lands_under_media_root(media, job):
    copy = keep(job)
    assert (media / copy.file.name).read_bytes() == SAMPLE


@pytest.mark.parametrize("part", ["submitter", "viewer", "team_admin", "staff_team_admin", "superuser"])
def test_whoever_may_see_the_job_gets_the_whole_file(client, cast, media, job, part):
    keep(job)
    response = get(client, getattr(cast, part), job)

    assert response.status_code == 200
    assert body(response) == SAMPLE
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(SIZE)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == "private"
    assert response["ETag"] == f'"{hashlib.sha256(SAMPLE).hexdigest()}"'
    assert response["Content-Disposition"] == 'attachment; filename="Episode 1_de_take1.mp4"'


def test_another_submitter_sees_the_team_s_jobs(client, media, job):
    keep(job)
    assert get(client, make_part("submitter", username="kenji"), job).status_code == 200


def test_a_member_without_a_role_gets_their_own_job_but_not_anyone_else_s(client, cast, media, job):
    keep(job)
    assert get(client, cast.no_role, job).status_code == 404
    own = completed(cast.no_role)
    keep(own)
    assert get(client, cast.no_role, own).status_code == 200


def test_a_job_nobody_can_see_is_404_even_for_its_file(client, cast, media, job):
    keep(job)
    client.force_login(cast.no_role)
    assert client.get(url_of(job, inline="1")).status_code == 404
    assert client.get(reverse("submissions:output", args=[job.pk + 1000])).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, media, job):
    keep(job)
    response = client.get(url_of(job))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_only_get_and_head(client, owner, media, job):
    keep(job)
    client.force_login(owner)
    assert client.post(url_of(job)).status_code == 405


# --- The name it is saved under ---------------------------------------------------------------------


def test_the_player_gets_it_inline_under_the_same_name(client, owner, media, job):
    keep(job)
    client.force_login(owner)
    response = client.get(url_of(job, inline="1"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'inline; filename="Episode 1_de_take1.mp4"'
    assert body(response) == SAMPLE


@pytest.mark.parametrize(
    "title",
    [
        "Café \u2013 Folge 1",
        "Trailer 🎬 final",
        "a/b\\c",
        'He said "dub it"',
        "日本語のタイトル",
        "naïve; filename=evil.exe",
        "100% done",
    ],
)
def test_any_title_gives_a_header_that_parses_to_the_download_name(client, owner, media, title):
    job = completed(owner, title=title, target_language="ja")
    keep(job)
    header = get(client, owner, job)["Content-Disposition"]
    expected = names.download_name(job)

    kind, params = parse_options_header(header)
    assert kind == "attachment"
    assert params["filename"] == expected  # what a browser saves (filename* when present)
    fallback = re.fullmatch(r'attachment; filename="([^"\\]*)"(?:; filename\*=UTF-8\'\'([A-Za-z0-9%._~!#$&+^`|-]+))?', header)
    assert fallback is not None, header
    assert fallback.group(1).isascii() and fallback.group(1).endswith(".mp4")
    assert "/" not in fallback.group(1) and "%" not in fallback.group(1) and ";" not in fallback.group(1)
    # filename* exactly when the fallback is not the real name: always for non-ASCII, and for "%" (folded).
    assert (fallback.group(2) is None) == (fallback.group(1) == expected)
    assert expected.isascii() or fallback.group(2) is not None


def test_non_ascii_names_get_both_forms():
    header = serving.content_disposition("Café 🎬_de_take2.mp4", inline=False)
    assert header == "attachment; filename=\"Cafe _de_take2.mp4\"; filename*=UTF-8''Caf%C3%A9%20%F0%9F%8E%AC_de_take2.mp4"
    assert parse_options_header(header)[1]["filename"] == "Café 🎬_de_take2.mp4"


@pytest.mark.parametrize("name", ['a "quoted" name.mp4', "back\\slash.mp4", "🎬.mp4", "...mp4", "x%41.mp4", "a\r\nb.mp4"])
def test_the_ascii_fallback_is_always_a_safe_quoted_string(name):
    header = serving.content_disposition(name, inline=True)
    fallback = re.match(r'inline; filename="([^"]*)"', header)
    assert fallback is not None, header
    assert re.fullmatch(r"[A-Za-z0-9 ._()\[\]+,!#&'@=~-]+\.mp4", fallback.group(1))
    assert "\r" not in header and "\n" not in header
    assert parse_options_header(header)[1]["filename"] == name  # from filename* whenever the fallback differs


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


# --- Before a copy is kept ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, State.WAITING, State.RUNNING, State.FAILED])
def test_until_a_copy_is_kept_it_redirects_to_chamelaion_s_link(client, owner, media, job, state):
    if state is not None:
        OutputCopy.objects.create(submission=job, state=state, last_error="Timed out" if state == State.FAILED else "")
    response = get(client, owner, job)
    assert response.status_code == 302
    assert response["Location"] == CHAMELAION_URL
    assert "no-store" in response["Cache-Control"]


def test_with_copying_off_a_kept_copy_is_not_served(client, owner, media, job, settings):
    keep(job)
    settings.OUTPUT_KEEP = False
    response = get(client, owner, job)
    assert (response.status_code, response["Location"]) == (302, CHAMELAION_URL)


def test_a_copy_whose_file_has_gone_falls_back_to_chamelaion(client, owner, media, job):
    copy = keep(job)
    outputs_storage().delete(copy.file.name)
    response = get(client, owner, job)
    assert (response.status_code, response["Location"]) == (302, CHAMELAION_URL)


@pytest.mark.parametrize(
    "fields", [{"state": Submission.State.IN_FLIGHT, "output_url": ""}, {"output_url": "javascript:alert(1)"}]
)
def test_with_nothing_to_serve_it_is_a_plain_404(client, owner, media, fields):
    job = completed(owner, **fields)
    response = get(client, owner, job)
    assert response.status_code == 404
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"no video" in response.content


# --- Asking again to keep a copy ----------------------------------------------------------------------


def retry(client, user, job):
    client.force_login(user)
    response = client.post(reverse("submissions:output_retry", args=[job.pk]))
    return response, [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("part", ["submitter", "team_admin", "superuser"])
def test_the_owner_or_an_admin_may_ask_again_after_a_failed_copy(client, cast, media, job, part):
    copy = OutputCopy.objects.create(submission=job, state=State.FAILED, attempts=6, last_error="Timed out")
    response, said = retry(client, getattr(cast, part), job)

    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert said == ["DubDash will try again to keep a copy."]
    copy.refresh_from_db()
    assert (copy.state, copy.attempts, copy.last_error) == (State.WAITING, 0, "")


@pytest.mark.parametrize(("part", "status"), [("viewer", 403), ("no_role", 404)])
def test_others_may_not_ask_again(client, cast, media, job, part, status):
    copy = OutputCopy.objects.create(submission=job, state=State.FAILED, attempts=6, last_error="Timed out")
    response, _said = retry(client, getattr(cast, part), job)
    assert response.status_code == status
    copy.refresh_from_db()
    assert (copy.state, copy.attempts) == (State.FAILED, 6)
    other = make_part("submitter", username="kenji")
    assert retry(client, other, job)[0].status_code == 403


def test_asking_again_needs_a_post_and_a_login(client, owner, job):
    url = reverse("submissions:output_retry", args=[job.pk])
    assert client.post(url)["Location"].startswith(reverse("login"))
    client.force_login(owner)
    assert client.get(url).status_code == 405


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (None, "DubDash has not started keeping a copy of this job's video."),
        (State.WAITING, "DubDash is already keeping a copy of this video."),
        (State.DONE, "DubDash already keeps a copy of this video."),
    ],
)
def test_there_is_nothing_to_retry_unless_the_copy_failed(client, owner, media, job, state, reason):
    if state == State.DONE:
        keep(job)
    elif state is not None:
        OutputCopy.objects.create(submission=job, state=state)
    response, said = retry(client, owner, job)
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert said == [f"There is nothing to retry: {reason}"]


def test_nothing_to_retry_with_copying_off(client, owner, media, job, settings):
    OutputCopy.objects.create(submission=job, state=State.FAILED)
    settings.OUTPUT_KEEP = False
    _response, said = retry(client, owner, job)
    assert said == ["There is nothing to retry: DubDash is not keeping copies of outputs (OUTPUT_KEEP is off)."]
    assert OutputCopy.objects.get(submission=job).state == State.FAILED


# --- On S3 --------------------------------------------------------------------------------------------


def test_on_s3_a_download_redirects_to_a_presigned_link_with_the_same_name(client, owner, s3_outputs, settings):
    settings.OUTPUT_S3_REDIRECT = True
    job = completed(owner, title="Café 🎬", target_language="de")
    keep(job)
    client.force_login(owner)

    response = client.get(url_of(job))
    assert response.status_code == 302
    link = response["Location"]
    # Signed (SigV2 or SigV4, as the storage's signature_version says), expiring.
    assert re.search(r"[?&](X-Amz-Signature|Signature)=", link) and re.search(r"[?&](X-Amz-Expires|Expires)=", link)
    assert link.startswith(s3_outputs[0].meta.endpoint_url + "/" + s3_outputs[1] + "/")
    assert "no-store" in response["Cache-Control"]
    fetched = requests.get(link, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == SAMPLE
    assert fetched.headers["Content-Type"] == "video/mp4"
    assert fetched.headers["Content-Disposition"] == serving.content_disposition(names.download_name(job), inline=False)
    assert parse_options_header(fetched.headers["Content-Disposition"])[1]["filename"] == "Café 🎬_de_take1.mp4"

    inline = client.get(url_of(job, inline="1"))
    assert requests.get(inline["Location"], timeout=10).headers["Content-Disposition"].startswith("inline;")
    # A HEAD is redirected to a link signed for HEAD (a GET link is refused for it).
    head = client.head(url_of(job))
    assert requests.head(head["Location"], timeout=10).status_code == 200


def test_on_s3_without_redirects_the_bytes_stream_through_dubdash(client, owner, job, s3_outputs, settings, monkeypatch):
    from storages.backends.s3 import S3File

    settings.OUTPUT_S3_REDIRECT = False

    def whole_object_read(self):
        raise AssertionError("the whole object was read into a buffer")

    keep(job)
    # Reading through S3File downloads the whole object first (into memory, by default): never done here.
    monkeypatch.setattr(S3File, "file", property(whole_object_read))
    client.force_login(owner)

    whole = client.get(url_of(job))
    assert (whole.status_code, body(whole), whole["Content-Length"]) == (200, SAMPLE, str(SIZE))
    part = client.get(url_of(job), headers={"range": "bytes=100-199"})
    assert (part.status_code, part["Content-Range"], body(part)) == (206, f"bytes 100-199/{SIZE}", SAMPLE[100:200])
    suffix = client.get(url_of(job), headers={"range": "bytes=-500"})
    assert (suffix.status_code, body(suffix)) == (206, SAMPLE[-500:])
    beyond = client.get(url_of(job), headers={"range": f"bytes={SIZE}-"})
    assert (beyond.status_code, beyond["Content-Range"]) == (416, f"bytes */{SIZE}")
    head = client.head(url_of(job))
    assert (head.status_code, head["Content-Length"]) == (200, str(SIZE))


def test_on_s3_a_missing_object_falls_back_to_chamelaion(client, owner, job, s3_outputs, settings):
    settings.OUTPUT_S3_REDIRECT = False
    copy = keep(job)
    outputs_storage().delete(copy.file.name)
    response = get(client, owner, job)
    assert (response.status_code, response["Location"]) == (302, CHAMELAION_URL)


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
