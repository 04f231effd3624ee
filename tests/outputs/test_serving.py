"""Serving outputs from DubDash: the kept copy to whoever may see the job, under the job's own file name;
Chamelaion's link until a copy is kept, or when its file is gone from storage (a plain 404 when there is no
link either); on S3, a presigned redirect (or the bytes through DubDash); and asking again to keep a copy
that could not be made. The bytes themselves (ranges, HEAD, closing the file) are test_serving_ranges.py."""

from __future__ import annotations

import hashlib
import re

import pytest
import requests
from django.contrib.messages import get_messages
from django.urls import reverse
from werkzeug.http import parse_options_header

from submissions.models import OutputCopy, Submission
from submissions.outputs import names, serving, views
from submissions.outputs.storage import outputs_storage
from tests.factories import make_part
from tests.outputs.serving_scene import CHAMELAION_URL, SAMPLE, SIZE, State, body, completed, get, keep, url_of

# --- Setting the scene -------------------------------------------------------------------------------


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


def test_on_s3_a_store_that_refuses_to_say_whether_it_has_the_copy_still_gets_a_signed_link(
    client, owner, s3_outputs, settings, monkeypatch, caplog
):
    from botocore.exceptions import ClientError

    settings.OUTPUT_S3_REDIRECT = True
    job = completed(owner)
    keep(job)
    client.force_login(owner)

    def forbidden(self, name):  # what S3 answers a HEAD without s3:ListBucket
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    # keep() has set the lazy storage up: its backend's class is the one patched.
    monkeypatch.setattr(type(outputs_storage()._wrapped), "exists", forbidden)  # type: ignore[attr-defined]
    response = client.get(url_of(job))
    assert response.status_code == 302
    assert requests.get(response["Location"], timeout=10).content == SAMPLE
    assert "Could not ask storage whether submission" in caplog.text


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


# --- A kept copy whose file has gone from storage ---------------------------------------------------------


@pytest.fixture(params=[("local", False), ("s3", False), ("s3", True)], ids=["local", "s3-streamed", "s3-redirected"])
def served_from(request, settings):
    """Each way a kept copy is served: from local storage, from S3 through DubDash, from S3 by a presigned link."""
    kind, redirected = request.param
    request.getfixturevalue("local_outputs" if kind == "local" else "s3_outputs")
    settings.OUTPUT_KEEP = True
    settings.OUTPUT_S3_REDIRECT = redirected
    return request.param


def gone(job: Submission) -> OutputCopy:
    """A copy recorded as kept whose file was then deleted from the storage (by hand, a bucket emptied)."""
    copy = keep(job)
    outputs_storage().delete(copy.file.name)
    assert not outputs_storage().exists(copy.file.name)
    return copy


@pytest.mark.parametrize("method", ["get", "head"])
def test_a_copy_gone_from_storage_falls_back_to_chamelaion_however_it_is_served(client, owner, job, served_from, method, caplog):
    gone(job)
    client.force_login(owner)

    response = getattr(client, method)(url_of(job))

    # Never a presigned link to an object that is not there (S3 would answer it 404, in XML).
    assert (response.status_code, response["Location"]) == (302, CHAMELAION_URL)
    assert "no-store" in response["Cache-Control"]
    assert f"Kept copy of submission {job.pk} is missing from storage" in caplog.text


@pytest.mark.parametrize("method", ["get", "head"])
def test_a_copy_gone_from_storage_with_no_chamelaion_link_is_a_404_in_plain_words(client, owner, served_from, method):
    job = completed(owner, output_url="")
    gone(job)
    client.force_login(owner)

    response = getattr(client, method)(url_of(job))

    assert response.status_code == 404
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    if method == "get":  # a HEAD answers the same status and headers, without the words
        assert response.content.decode() == views.COPY_MISSING
