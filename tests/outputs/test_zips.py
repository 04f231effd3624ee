"""Kept outputs as one ZIP: a batch as a deliverable (the latest take of every language, with a manifest of
every language, kept or not), and the jobs ticked in the history. Streamed, sized, named safely, and shown
only to whoever may see the batch or the jobs."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import struct
import zipfile
import zlib
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.shortcuts import render
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from storages.backends.s3 import S3File

from submissions.jobs import views as job_views
from submissions.models import Batch, OutputCopy, Submission
from submissions.outputs import zips
from submissions.sandbox.media import MEDIA_DIR
from tests.factories import make_member, make_part, make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
SAMPLE = (MEDIA_DIR / "sample.mp4").read_bytes()
HEADER = ["language", "title", "take", "request id", "reference id", "state", "SHA-256", "size", "duration", "finished at",
          "file"]
FINISHED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HISTORY_ZIP = reverse("submissions:history_zip")
REQUEST_NUMBERS = itertools.count(1)


@pytest.fixture(autouse=True)
def _outputs_in_a_folder_of_the_tests_own(request):
    """Kept copies go to the test's own folder (or, for tests that take outputs_storage_kind, to S3 too), set
    up before any fixture keeps a copy."""
    request.getfixturevalue("outputs_storage_kind" if "outputs_storage_kind" in request.fixturenames else "local_outputs")


def mp4(extra: int = 0) -> bytes:
    """The sample video, made distinct by a `free` box of `extra` bytes at its end (still a playable MP4)."""
    return SAMPLE + struct.pack(">I4s", 8 + extra, b"free") + bytes(range(256)) * (extra // 256) + b"x" * (extra % 256)


def job(owner, *, title: str, language: str, state: str = State.COMPLETED, **fields) -> Submission:
    defaults = {"request_id": f"req-{next(REQUEST_NUMBERS)}", "finished_at": FINISHED}
    return make_submission(owner, title=title, target_language=language, state=state, **{**defaults, **fields})


def keep(submission: Submission, data: bytes, **fields) -> OutputCopy:
    """A kept copy of `data`, as the worker leaves it: the file in the outputs storage, its facts recorded."""
    copy = OutputCopy(
        submission=submission,
        state=OutputCopy.State.DONE,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        crc32=zlib.crc32(data),
        duration_seconds=2.02,
        kept_at=FINISHED,
    )
    for field, value in fields.items():
        setattr(copy, field, value)
    copy.file.save(f"{submission.reference_id}.mp4", ContentFile(data), save=False)
    copy.save()
    return copy


def unzipped(response) -> zipfile.ZipFile:
    assert response.status_code == 200
    assert response.streaming is True
    body = b"".join(response.streaming_content)
    if response.has_header("Content-Length"):
        assert int(response["Content-Length"]) == len(body)
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None  # every member's CRC matches
    return archive


def manifest_rows(archive: zipfile.ZipFile) -> list[list[str]]:
    text = archive.read("manifest.csv").decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads accents only with the BOM
    return list(csv.reader(io.StringIO(text[1:])))


def kept_row(submission: Submission, data: bytes, name: str) -> list[str]:
    return [
        submission.target_language, submission.title, str(submission.take), submission.request_id, submission.reference_id,
        "Completed — Kept", hashlib.sha256(data).hexdigest(), str(len(data)), "2.02", "2026-03-01 13:00:00", name,
    ]


def row(submission: Submission, state: str, finished: str = "2026-03-01 13:00:00") -> list[str]:
    return [
        submission.target_language, submission.title, str(submission.take), submission.request_id or "",
        submission.reference_id or "", state, "", "", "", finished, "",
    ]


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"  # finished at 12:00 UTC reads 13:00 in the manifest


# --- The batch as a deliverable -----------------------------------------------------------------------------


@pytest.fixture
def episode(user):
    """A batch entered as French, German, Italian, Spanish, Japanese: German's take 1 failed and take 2
    replaced it; Spanish is still being kept; Italian failed; Japanese completed before copies were kept."""
    batch = Batch.objects.create(name="Episode 4", created_by=user)
    fr = job(user, title="Episode 4 (French)", language="fr", batch=batch)
    de1 = job(user, title="Episode 4 (German)", language="de", batch=batch, state=State.FAILED)
    it = job(user, title="Episode 4 (Italian)", language="it", batch=batch, state=State.FAILED)
    es = job(user, title="Episode 4 (Spanish)", language="es", batch=batch)
    ja = job(user, title="Episode 4 (Japanese)", language="ja", batch=batch, finished_at=None)
    de2 = job(user, title="Episode 4 (German)", language="de", batch=batch, take=2, first_take=de1, retry_of=de1)
    files = {"fr": mp4(10), "de1": mp4(20), "de2": mp4(700_000)}  # German's take 2 spans several chunks
    keep(fr, files["fr"])
    keep(de1, files["de1"])  # an old take's copy: never in the deliverable
    keep(de2, files["de2"])
    OutputCopy.objects.create(submission=es)  # waiting: "Keeping a copy"
    return batch, {"fr": fr, "de1": de1, "de2": de2, "it": it, "es": es, "ja": ja}, files


def test_the_batch_zip_holds_the_latest_take_of_every_kept_language_and_a_manifest_of_all(
    outputs_storage_kind, logged_in, episode, berlin, monkeypatch
):
    batch, jobs, files = episode
    if outputs_storage_kind == "s3":
        # S3File's own reading first downloads the whole object into a buffer: the ZIP reads the body as it comes.
        monkeypatch.setattr(S3File, "file", property(lambda self: pytest.fail("an S3 object was read whole")))

    response = logged_in.get(reverse("submissions:batch_zip", args=[batch.pk]))

    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="Episode 4.zip"'
    assert response.has_header("Content-Length")  # every size known: the browser can show progress
    archive = unzipped(response)
    assert archive.namelist() == ["manifest.csv", "Episode 4 (French)_fr_take1.mp4", "Episode 4 (German)_de_take2.mp4"]
    assert archive.read("Episode 4 (French)_fr_take1.mp4") == files["fr"]
    assert archive.read("Episode 4 (German)_de_take2.mp4") == files["de2"]
    for name in archive.namelist()[1:]:
        assert archive.read(name)[4:8] == b"ftyp"  # an MP4 begins with its ftyp box
        assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED
    assert manifest_rows(archive) == [
        HEADER,
        kept_row(jobs["fr"], files["fr"], "Episode 4 (French)_fr_take1.mp4"),
        kept_row(jobs["de2"], files["de2"], "Episode 4 (German)_de_take2.mp4"),
        row(jobs["it"], "Failed"),
        row(jobs["es"], "Completed — Keeping a copy"),
        row(jobs["ja"], "Completed — No copy kept", finished=""),
    ]


def test_the_files_in_the_zip_are_the_files_in_storage(logged_in, episode):
    batch, jobs, _files = episode
    archive = unzipped(logged_in.get(reverse("submissions:batch_zip", args=[batch.pk])))
    for key, name in (("fr", "Episode 4 (French)_fr_take1.mp4"), ("de2", "Episode 4 (German)_de_take2.mp4")):
        copy = OutputCopy.objects.get(submission=jobs[key])
        with copy.file.open("rb") as stored:
            assert archive.read(name) == stored.read()


def test_a_kept_copy_missing_from_storage_is_listed_not_zipped(logged_in, episode):
    batch, jobs, _files = episode
    copy = OutputCopy.objects.get(submission=jobs["fr"])
    copy.file.storage.delete(copy.file.name)

    archive = unzipped(logged_in.get(reverse("submissions:batch_zip", args=[batch.pk])))

    assert archive.namelist() == ["manifest.csv", "Episode 4 (German)_de_take2.mp4"]
    assert manifest_rows(archive)[1][5:] == ["Completed — Kept copy not found in storage", "", "", "", "2026-03-01 12:00:00", ""]


def test_a_batch_with_nothing_kept_is_a_zip_of_its_manifest(logged_in, user):
    batch = Batch.objects.create(name="Pilot", created_by=user)
    failed = job(user, title="Pilot (German)", language="de", batch=batch, state=State.SEND_FAILED, finished_at=None)
    archive = unzipped(logged_in.get(reverse("submissions:batch_zip", args=[batch.pk])))
    assert archive.namelist() == ["manifest.csv"]
    assert manifest_rows(archive) == [HEADER, row(failed, "Could not be sent", finished="")]


def test_copies_switched_off_are_not_served_in_a_zip_either(logged_in, episode, settings):
    batch, _jobs, _files = episode
    settings.OUTPUT_KEEP = False
    archive = unzipped(logged_in.get(reverse("submissions:batch_zip", args=[batch.pk])))
    assert archive.namelist() == ["manifest.csv"]
    assert [line[5] for line in manifest_rows(archive)[1:]] == [
        "Completed — No copy kept", "Completed — No copy kept", "Failed", "Completed — No copy kept", "Completed — No copy kept",
    ]


# --- Names --------------------------------------------------------------------------------------------------


def test_unsafe_and_non_ascii_titles_make_safe_names(logged_in, user):
    batch = Batch.objects.create(name='Épisode "1"/Final: 日本', created_by=user)
    title = 'Épisode "1"/Final\\x'
    data = mp4(1)
    keep(job(user, title=title, language="ja", batch=batch), data)

    response = logged_in.get(reverse("submissions:batch_zip", args=[batch.pk]))

    assert response["Content-Disposition"] == (
        "attachment; filename=\"Episode -1-Final-.zip\"; filename*=UTF-8''%C3%89pisode%20-1-Final-%20%E6%97%A5%E6%9C%AC.zip"
    )
    archive = unzipped(response)
    name = "Épisode -1-Final-x_ja_take1.mp4"
    assert archive.namelist() == ["manifest.csv", name]
    assert archive.getinfo(name).flag_bits & 0x800  # stored as UTF-8, so every unzip tool reads the accents
    assert archive.read(name) == data
    assert manifest_rows(archive)[1][1] == title and manifest_rows(archive)[1][10] == name


def test_the_same_name_twice_gets_a_number(logged_in, user):
    jobs = [job(user, title=title, language="de") for title in ("Trailer", "Trailer", "TRAILER", "Trailer_de_take1 (2)")]
    data = [mp4(n) for n in range(4)]
    for submission, content in zip(jobs, data, strict=True):
        keep(submission, content)

    archive = unzipped(logged_in.get(HISTORY_ZIP, {"job": [j.pk for j in jobs]}))

    names = ["Trailer_de_take1.mp4", "Trailer_de_take1 (2).mp4", "TRAILER_de_take1 (3).mp4", "Trailer_de_take1 (2)_de_take1.mp4"]
    assert archive.namelist() == ["manifest.csv", *names]
    for name, content in zip(names, data, strict=True):
        assert archive.read(name) == content
    assert [line[10] for line in manifest_rows(archive)[1:]] == names


def test_unique_name_never_repeats_a_name_in_any_case():
    taken = {"manifest.csv"}
    given_names = ["a.mp4", "A.mp4", "a (2).mp4", "a.mp4", "MANIFEST.csv", "noext"]
    assert [zips.unique_name(name, taken=taken) for name in given_names] == [
        "a.mp4", "A (2).mp4", "a (2) (2).mp4", "a (3).mp4", "MANIFEST (2).csv", "noext",
    ]


def test_manifest_cells_never_run_as_formulas(logged_in, user):
    evil = job(user, title="=HYPERLINK(\"http://evil.example\")", language="de", state=State.FAILED)
    archive = unzipped(logged_in.get(HISTORY_ZIP, {"job": [evil.pk]}))
    assert manifest_rows(archive)[1][1] == "'=HYPERLINK(\"http://evil.example\")"


# --- Streaming -----------------------------------------------------------------------------------------------


def test_files_are_opened_one_at_a_time_and_closed_when_the_client_goes_away(logged_in, episode, monkeypatch):
    batch, _jobs, _files = episode
    opened = []

    def recording_open(storage, name, mode="rb"):
        assert all(handle.closed for handle in opened)  # one open file at a time, however many videos
        handle = Storage.open(storage, name, mode)
        opened.append(handle)
        return handle

    monkeypatch.setattr(FileSystemStorage, "open", recording_open)
    monkeypatch.setattr(zips, "CHUNK_BYTES", 1024)
    response = logged_in.get(reverse("submissions:batch_zip", args=[batch.pk]))
    assert opened == []  # nothing is read before the ZIP reaches it

    chunks = iter(response.streaming_content)
    received = 0
    while received < 20_000:  # into the first video, not through it
        received += len(next(chunks))
    assert len(opened) == 1 and not opened[0].closed
    response.close()  # what the server does when the client disconnects

    assert opened[0].closed


def test_copies_kept_without_a_crc_make_the_same_zip_checksummed_as_it_streams(logged_in, episode):
    batch, _jobs, files = episode
    OutputCopy.objects.update(crc32=None)  # put there by hand: zipstream-ng computes each CRC as it goes

    response = logged_in.get(reverse("submissions:batch_zip", args=[batch.pk]))

    assert response.has_header("Content-Length")  # still sized: every file's size is known
    archive = unzipped(response)
    assert archive.namelist() == ["manifest.csv", "Episode 4 (French)_fr_take1.mp4", "Episode 4 (German)_de_take2.mp4"]
    assert archive.read("Episode 4 (German)_de_take2.mp4") == files["de2"]


def test_a_store_that_cannot_tell_sizes_still_streams_a_zip_without_a_length(logged_in, episode, monkeypatch):
    batch, _jobs, files = episode

    def no_size(storage, name):
        raise NotImplementedError

    monkeypatch.setattr(FileSystemStorage, "size", no_size)
    response = logged_in.get(reverse("submissions:batch_zip", args=[batch.pk]))
    assert not response.has_header("Content-Length")
    assert unzipped(response).read("Episode 4 (German)_de_take2.mp4") == files["de2"]


# --- Who may download ------------------------------------------------------------------------------------------


# The rows of tests/e2e/test_permission_matrix.py for these two views, checked here too.
#              anonymous no_role viewer owner other_submitter team_admin superuser
WHO_MAY = {
    "batch_zip": ("login", 404, 200, 200, 200, 200, 200),
    "history_zip": ("login", 302, 200, 200, 200, 200, 200),  # no_role: the job is not theirs to see
}
ACTORS = ["anonymous", "no_role", "viewer", "owner", "other_submitter", "team_admin", "superuser"]


@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_download_what(client, actor):
    parts = {"no_role": "no_role", "viewer": "viewer", "owner": "submitter", "other_submitter": "submitter",
             "team_admin": "team_admin", "superuser": "superuser"}
    people = {name: make_part(part, username=name) for name, part in parts.items()}
    batch = Batch.objects.create(name="Episode 1", created_by=people["owner"])
    owned = job(people["owner"], title="Episode 1 (German)", language="de", batch=batch)
    keep(owned, mp4(9))
    urls = {"batch_zip": reverse("submissions:batch_zip", args=[batch.pk]), "history_zip": f"{HISTORY_ZIP}?job={owned.pk}"}
    if actor != "anonymous":
        client.force_login(people[actor])
    for view, url in urls.items():
        expected = WHO_MAY[view][ACTORS.index(actor)]
        response = client.get(url)
        if expected == "login":
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), view
        else:
            assert response.status_code == expected, view
        if expected == 200:
            assert "Episode 1 (German)_de_take1.mp4" in unzipped(response).namelist()
    if actor != "anonymous":
        assert client.get(reverse("submissions:batch_zip", args=[batch.pk + 1000])).status_code == 404


def test_ticked_jobs_the_user_may_not_see_are_listed_nowhere(client, user):
    nobody = make_member("nobody")
    own = job(nobody, title="Mine", language="de")
    keep(own, mp4(3))
    theirs = job(user, title="Theirs", language="fr")
    keep(theirs, mp4(4))
    client.force_login(nobody)

    archive = unzipped(client.get(HISTORY_ZIP, {"job": [theirs.pk, own.pk]}))

    assert archive.namelist() == ["manifest.csv", "Mine_de_take1.mp4"]
    assert [line[1] for line in manifest_rows(archive)] == ["title", "Mine"]
    assert b"Theirs" not in archive.read("manifest.csv")

    response = client.get(HISTORY_ZIP, {"job": [theirs.pk]})  # nothing of it visible: as if it did not exist
    assert response.status_code == 302 and response["Location"] == reverse("submissions:history")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [zips.NONE_FOUND]


# --- The history's ZIP: ticks, the maximum, bad ids -----------------------------------------------------------------


def test_the_history_zip_keeps_the_ticked_order_and_each_job_once(logged_in, user, berlin):
    older = job(user, title="Older", language="de", take=1)
    newer = job(user, title="Newer", language="de", state=State.PROCESSING, finished_at=None)
    keep(older, mp4(5))

    archive = unzipped(logged_in.get(HISTORY_ZIP, {"job": [newer.pk, older.pk, newer.pk]}))

    assert archive.namelist() == ["manifest.csv", "Older_de_take1.mp4"]
    assert manifest_rows(archive) == [
        HEADER, row(newer, "Processing", finished=""), kept_row(older, mp4(5), "Older_de_take1.mp4"),
    ]


def test_nothing_ticked_leads_back_to_the_history_page_it_came_from(logged_in):
    response = logged_in.get(HISTORY_ZIP, {"back": "/?scope=team&state=failed"})
    assert response.status_code == 302 and response["Location"] == "/?scope=team&state=failed"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [zips.NOTHING_TICKED]
    assert logged_in.get(HISTORY_ZIP, {"job": ""})["Location"] == reverse("submissions:history")
    for elsewhere in ("//evil.example/", "https://evil.example/?scope=team", "/admin/", "javascript:alert(1)"):
        assert logged_in.get(HISTORY_ZIP, {"back": elsewhere})["Location"] == reverse("submissions:history")


def test_more_jobs_than_one_zip_holds_is_refused_saying_the_maximum(logged_in, user, settings):
    settings.HISTORY_ZIP_MAX_JOBS = 2
    jobs = [job(user, title=f"Job {n}", language="de") for n in range(3)]

    response = logged_in.get(HISTORY_ZIP, {"job": [j.pk for j in jobs]})

    assert response.status_code == 400 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert "3 jobs were ticked, and one ZIP holds at most 2" in response.content.decode()
    assert logged_in.get(HISTORY_ZIP, {"job": [jobs[0].pk, jobs[1].pk, jobs[0].pk]}).status_code == 200  # 2 jobs

    settings.HISTORY_ZIP_MAX_JOBS = 0
    assert "turned off" in logged_in.get(HISTORY_ZIP, {"job": [jobs[0].pk]}).content.decode()


@pytest.mark.parametrize("value", ["abc", "-1", "1.0", " 1", "1e3", "\uff10", "²", "0x1", "1,2"])
def test_a_job_that_is_not_a_number_is_a_400_in_plain_words(logged_in, user, value):
    ok = job(user, title="Fine", language="de")
    response = logged_in.get(HISTORY_ZIP, {"job": [ok.pk, value]})
    assert response.status_code == 400
    assert "one of them is not a number" in response.content.decode()


@pytest.mark.parametrize("value", ["0", "9" * 19, "9" * 5000, "9223372036854775808"])
def test_a_number_that_no_job_has_is_not_found(logged_in, value):
    response = logged_in.get(HISTORY_ZIP, {"job": [value]})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [zips.NONE_FOUND]


any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
job_values = st.one_of(
    any_text,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "0", "1", "2", "3", "9" * 5000, "²", "٣", "1\x00", "%", "&job=1"]),
)


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the working tree; every run draws afresh
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(job_values, max_size=8), limit=st.integers(min_value=0, max_value=5))
def test_no_query_string_of_job_ids_answers_500(logged_in, user, settings, values, limit):
    settings.HISTORY_ZIP_MAX_JOBS = limit
    # The test client raises what a view raises: a 500 would fail here.
    response = logged_in.get(HISTORY_ZIP, {"job": values, "back": values[0] if values else ""})
    assert response.status_code in (200, 302, 400)
    if response.status_code == 200:
        assert unzipped(response).namelist()[0] == "manifest.csv"
    if response.status_code == 302:
        assert response["Location"].startswith("/") and not response["Location"].startswith("//")


# --- The history page's tick boxes ------------------------------------------------------------------------------------


def test_every_row_has_a_labelled_tick_box_that_survives_the_poll(logged_in, user):
    queued = job(user, title='Ep "7" <b>', language="de", state=State.QUEUED, finished_at=None)
    page = logged_in.get(reverse("submissions:history")).content.decode()

    assert f'<form id="history-zip" method="get" action="{HISTORY_ZIP}">' in page
    assert '<button type="submit" aria-describedby="history-zip-hint">Download ticked (ZIP)</button>' in page
    box = (
        f'<input type="checkbox" id="tick-{queued.pk}" name="job" value="{queued.pk}" form="history-zip" hx-preserve '
        'aria-label="Select Ep &quot;7&quot; &lt;b&gt;">'
    )
    assert box in page
    # The rows poll (outerHTML of the tbody) while the job is in flight: the same box, id and hx-preserve, comes
    # back in every fragment, so htmx keeps the one on the page, ticked or not.
    fragment = logged_in.get(reverse("submissions:history"), headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 3s"' in fragment and box in fragment


def test_the_hint_names_the_maximum_when_the_page_is_given_it(logged_in, user, settings, monkeypatch):
    # The history view passes HISTORY_ZIP_MAX_JOBS as zip_max; this gives it to the template either way.
    settings.HISTORY_ZIP_MAX_JOBS = 40
    monkeypatch.setattr(
        job_views, "render", lambda request, template, context: render(request, template, {"zip_max": 40, **context})
    )
    job(user, title="Any", language="de")
    page = logged_in.get(reverse("submissions:history")).content.decode()
    assert "Up to 40 jobs in one ZIP" in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_tick_survives_the_rows_poll_and_downloads_the_zip(logged_in_page, live_server):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    maria = get_user_model().objects.get(username="maria")
    kept_job = job(maria, title="Kept one", language="de")
    keep(kept_job, mp4(11))
    job(maria, title="Still going", language="fr", state=State.QUEUED, finished_at=None)  # the rows poll meanwhile
    page = logged_in_page
    page.goto(live_server.url + "/")
    tick = page.get_by_role("checkbox", name="Select Kept one")
    tick.check()

    with page.expect_response(lambda answer: answer.request.headers.get("hx-request") == "true", timeout=15_000):
        pass  # a poll replaced the rows
    page.wait_for_load_state("networkidle")
    expect(tick).to_be_checked()
    expect(page.get_by_role("checkbox", name="Select Still going")).not_to_be_checked()

    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download ticked (ZIP)").click()
    download = downloading.value
    assert download.suggested_filename.startswith("dubdash-jobs-") and download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.namelist() == ["manifest.csv", "Kept one_de_take1.mp4"]
        assert archive.read("Kept one_de_take1.mp4") == mp4(11)
