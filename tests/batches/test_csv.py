"""CSV import (upload, preview with every row's problems, send exactly once) and CSV export (filters,
formula injection, BOM, owner only). The happy path sends to the sandbox over real HTTP."""

import csv
import io
import threading

import pytest
from django.urls import reverse

from submissions.batches import csv_parse, csv_rows, csv_services
from submissions.jobs import csv_export
from submissions.models import Batch, CsvUpload, Submission
from tests.batches.posting import HEADER, UPLOAD, csv_text, job, preview_of, send, upload
from tests.factories import make_member, make_submission

pytestmark = pytest.mark.django_db
State = Submission.State

def assert_nothing_created():
    assert Batch.objects.count() == 0
    assert Submission.objects.count() == 0


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


# --- Upload and preview ----------------------------------------------------------------------------


def test_the_pages_need_a_login(client):
    for url in (UPLOAD, reverse("submissions:csv_preview", args=[1]), reverse("submissions:history_export")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_upload_page_explains_the_columns(logged_in):
    page = logged_in.get(UPLOAD).content.decode()
    assert 'enctype="multipart/form-data"' in page
    for column in HEADER:
        assert column in page
    assert "5,000 rows" in page and "2 MB" in page


def test_a_valid_file_shows_every_row_and_a_send_button_and_sends_nothing(logged_in, user):
    stored, page = preview_of(logged_in, csv_text([job(1), job(2, language="", reference_id=""), job(3)]))
    assert (stored.created_by, stored.filename, stored.used_at) == (user, "episodes.csv", None)
    for line in (2, 3, 4):
        assert f"Line {line}" in page
    assert "https://cdn.example.com/episode-2.mp4" in page
    assert "de (German)" in page
    assert "Every row is valid." in page
    assert "Send 3 jobs" in page
    assert "errors" not in page
    assert_nothing_created()


ROW_ERRORS = [
    ({"video_url": "cdn.example.com/episode-2.mp4"}, "video_url", "Enter a full web address starting with http:// or https://."),
    ({"audio_url": "ftp://cdn.example.com/a.wav"}, "audio_url", "Enter a full web address starting with http:// or https://."),
    ({"video_url": ""}, "video_url", "Empty: every row needs the video&#x27;s URL."),
    ({"audio_url": "   "}, "audio_url", "Empty: every row needs the audio&#x27;s URL."),
    (
        {"video_url": "https://cdn.example.com/" + "v" * 2040},
        "video_url",
        "Keep the address to at most 2048 characters (it has 2064).",
    ),
    ({"language": "xx"}, "language", "“xx” is not a language code DubDash knows."),
    ({"reference_id": "ep 2"}, "reference_id", "Use only letters, digits, dots, underscores and hyphens."),
    ({"reference_id": "r" * 129}, "reference_id", "Ensure this value has at most 128 characters (it has 129)."),
    ({"title": "t" * 201}, "title", "Ensure this value has at most 200 characters (it has 201)."),
    ({"disable_active_speaker_detection": "maybe"}, "disable_active_speaker_detection", "“maybe” is not a yes or no"),
]


@pytest.mark.parametrize("changes, column, reason", ROW_ERRORS, ids=[f"{c}-{n}" for n, (_, c, _) in enumerate(ROW_ERRORS)])
def test_each_row_error_is_shown_with_its_line_and_reason_and_nothing_is_sent(logged_in, changes, column, reason):
    stored, page = preview_of(logged_in, csv_text([job(1), job(2, **changes), job(3)]))
    assert "1 row has errors: nothing will be sent until the file is fixed." in page
    assert f"Line 3</a>, {column}: {reason}" in page  # the summary
    assert 'id="line-3" class="csv-row-error"' in page  # the row, highlighted
    assert 'id="line-2" class="csv-row-error"' not in page
    assert 'id="line-4" class="csv-row-error"' not in page  # the form checking each row starts afresh
    assert "Upload the corrected file" in page
    assert "Send 3 jobs" not in page

    response = send(logged_in, stored)  # even a hand-made POST sends nothing
    assert response["Location"] == stored.get_absolute_url()
    assert messages_of(response) == [
        "Nothing was sent: 1 row of this file has errors (a reference id may have been used since the preview). "
        "Fix the file and upload it again."
    ]
    assert_nothing_created()
    stored.refresh_from_db()
    assert stored.used_at is None


def test_a_value_outside_the_header_columns_is_an_error_of_its_row(logged_in):
    text = csv_text([job(1)]) + "https://cdn.example.com/a.mp4,https://cdn.example.com/a.wav,de,,Pilot,no,German\r\n"
    _, page = preview_of(logged_in, text)
    assert "Line 3</a>: Column 7 has a value (“German”) but no name in the header." in page
    assert "must be in double quotes" in page


def test_several_rows_with_errors_are_all_listed(logged_in):
    rows = [job(n, video_url="nope") if n % 2 else job(n) for n in range(1, 8)]
    _, page = preview_of(logged_in, csv_text(rows))
    assert "4 rows have errors: nothing will be sent until the file is fixed." in page
    for line in (2, 4, 6, 8):
        assert f'id="line-{line}" class="csv-row-error"' in page


def test_language_codes_are_read_whatever_their_case_and_yes_no_words_are_accepted(logged_in):
    rows = [
        job(1, language="PT_BR", disable_active_speaker_detection="YES"),
        job(2, language=" de ", disable_active_speaker_detection="0"),
        job(3, language="", disable_active_speaker_detection="true"),
        job(4, language="fr", disable_active_speaker_detection="No"),
    ]
    stored, page = preview_of(logged_in, csv_text(rows))
    assert "Every row is valid." in page
    assert "pt-br (Brazilian Portuguese)" in page
    rows = csv_rows.check_rows(csv_parse.read_table(stored.content))
    assert [(row.job["target_language"], row.job["disable_active_speaker_detection"]) for row in rows] == [
        ("pt-br", True),
        ("de", False),
        ("", True),
        ("fr", False),
    ]


def test_reference_ids_must_be_unique_within_the_file(logged_in):
    rows = [job(1, reference_id="pilot"), job(2), job(3, reference_id="pilot"), job(4, reference_id="pilot")]
    _, page = preview_of(logged_in, csv_text(rows))
    assert "3 rows have errors" in page
    assert "Line 2</a>, reference_id: Also on lines 4, 5: each row needs its own reference id (or leave it blank)." in page
    assert "Line 4</a>, reference_id: Also on lines 2, 5:" in page
    assert "Line 5</a>, reference_id: Also on lines 2, 4:" in page


def test_reference_ids_already_used_in_dubdash_are_refused(logged_in, other_user):
    make_submission(other_user, reference_id="ep2-de")
    _, page = preview_of(logged_in, csv_text([job(1), job(2), job(3)]))
    assert "Line 3</a>, reference_id: Another submission already uses this reference id. Choose another one." in page
    assert "1 row has errors" in page


def test_blank_reference_ids_are_never_duplicates(logged_in):
    _, page = preview_of(logged_in, csv_text([job(1, reference_id=""), job(2, reference_id="  ")]))
    assert "Every row is valid." in page


FILE_ERRORS = [
    (b"", "The file is empty. It needs a header line and at least one row."),
    (b"\r\n \r\n", "The file is empty. It needs a header line and at least one row."),
    (",".join(HEADER).encode() + b"\r\n", "The file has a header but no rows."),
    (
        ",".join(HEADER).encode() + b"\r\nhttps://a.example/v.mp4,https://a.example/a.wav,fr,,\xc9pisode 1,\r\n",
        "The file is not UTF-8 text (the first character that is not is on line 2).",
    ),
    (b"video_url,language\r\nhttps://a.example/v.mp4,de\r\n", "The header lacks the required column “audio_url”."),
    (b"title\r\nPilot\r\n", "The header lacks the required columns “video_url”, “audio_url”."),
    (
        b"video_url,audio_url,lang,notes\r\nhttps://a.example/v.mp4,https://a.example/a.wav,de,x\r\n",
        "The header has 2 columns DubDash does not know: “lang”, “notes”.",
    ),
    (
        b"video_url,audio_url,Video_URL\r\nhttps://a.example/v.mp4,https://a.example/a.wav,x\r\n",
        "The header has “video_url” more than once: keep one of each.",
    ),
    (
        b"https://a.example/v.mp4,https://a.example/a.wav\r\nhttps://a.example/w.mp4,https://a.example/b.wav\r\n",
        "The first line must be the header (video_url, audio_url, language, reference_id, title, "
        "disable_active_speaker_detection), but the file starts with a data row.",
    ),
    (b"PK\x03\x04\x14\x00\x06\x00rest-of-a-workbook", "This is an Excel workbook, not a CSV file."),
    ((",".join(HEADER) + "\r\n").encode("utf-16-le"), "The file contains NUL characters"),
]


@pytest.mark.parametrize("content, message", FILE_ERRORS)
def test_a_file_that_cannot_be_used_is_refused_with_a_clear_message(logged_in, content, message):
    response = upload(logged_in, content)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was uploaded." in page
    assert message.replace("'", "&#x27;") in page
    assert CsvUpload.objects.count() == 0
    assert_nothing_created()


def test_no_file_at_all(logged_in):
    page = logged_in.post(UPLOAD, {"batch_name": "Pilot"}).content.decode()
    assert "Choose a CSV file to upload." in page
    assert 'value="Pilot"' in page  # what was typed is kept


def test_excel_files_with_a_bom_and_semicolons_are_read(logged_in, user, sandbox):
    french = "Épisode 1 \N{EN DASH} doublage"  # a real en dash, as French titles have
    text = csv_text([job(1, title=french), job(2, title="Ça va; oui")], delimiter=";")
    stored, page = preview_of(logged_in, "\ufeff".encode() + text.encode("utf-8"))
    assert not stored.content.startswith("\ufeff")
    assert "Every row is valid." in page
    assert french in page and "Ça va; oui" in page
    send(logged_in, stored)
    assert sorted(Submission.objects.values_list("title", flat=True)) == ["Ça va; oui", french]


def test_columns_in_any_order_and_any_case_and_optional_columns_left_out(logged_in, sandbox):
    text = "AUDIO_URL;Video_Url\r\nhttps://a.example/a.wav;https://a.example/v.mp4\r\n"
    stored, page = preview_of(logged_in, text)
    assert "Every row is valid." in page
    send(logged_in, stored)
    (submission,) = Submission.objects.all()
    assert (submission.video_url, submission.audio_url) == ("https://a.example/v.mp4", "https://a.example/a.wav")
    assert submission.reference_id.startswith("dubdash-")
    assert (submission.target_language, submission.title, submission.disable_active_speaker_detection) == ("", "", False)


def test_a_comma_file_whose_titles_contain_semicolons_stays_a_comma_file():
    assert csv_parse.detect_delimiter(csv_text([job(1, title="a;b;c;d;e;f;g")])) == ","
    assert csv_parse.detect_delimiter(csv_text([job(1, title="a,b,c,d,e,f,g")], delimiter=";")) == ";"


def test_line_numbers_are_the_spreadsheets_rows(logged_in):
    # A quoted value with a line break is one spreadsheet row; an empty line is a row too.
    text = csv_text([job(1, title="Two\nlines")]) + "\r\n" + csv_text([job(3, video_url="oops")]).split("\r\n", 1)[1]
    _, page = preview_of(logged_in, text)
    assert "Line 4</a>, video_url: Enter a full web address" in page


def test_a_file_over_2_mb_is_refused_before_it_is_read(logged_in, monkeypatch):
    def must_not_decode(data):
        raise AssertionError("decoded a file over the limit")

    monkeypatch.setattr(csv_parse, "decode", must_not_decode)
    content = csv_text([job(1)]).encode() + b"x" * (2 * 1024 * 1024)
    page = upload(logged_in, content).content.decode()
    assert "The file is too large (2.1 MB); the limit is 2 MB." in page  # rounded up: never reads as the limit
    assert CsvUpload.objects.count() == 0


def test_a_file_of_exactly_2_mb_is_accepted(logged_in):
    text = csv_text([job(1)])
    padding = 2 * 1024 * 1024 - len(text.encode()) - 2
    text += "\r\n" * (padding // 2)
    assert len(text.encode()) <= 2 * 1024 * 1024
    _stored, page = preview_of(logged_in, text)
    assert "Send 1 job" in page


def test_5000_rows_are_accepted_and_5001_refused(logged_in):
    rows = [job(n) for n in range(1, 5001)]
    _stored, page = preview_of(logged_in, csv_text(rows))
    assert "Send 5000 jobs" in page
    assert "Line 5001" in page

    page = upload(logged_in, csv_text([*rows, job(5001)])).content.decode()
    assert "The file has 5,001 rows; the limit is 5,000 per file. Split it into several files." in page
    assert CsvUpload.objects.count() == 1


def test_blank_rows_do_not_count(logged_in):
    text = csv_text([job(1)]) + ",,,,,\r\n , ,\r\n\r\n"
    _, page = preview_of(logged_in, text)
    assert "Send 1 job" in page


# --- Correcting and sending --------------------------------------------------------------------------


def test_the_corrected_file_is_uploaded_from_the_preview(logged_in):
    bad, _ = preview_of(logged_in, csv_text([job(1), job(2, video_url="episode-2.mp4")]), batch_name="Season 1")
    assert "Season 1" in logged_in.get(bad.get_absolute_url()).content.decode()
    response = upload(logged_in, csv_text([job(1), job(2)]), url=bad.get_absolute_url(), batch_name="Season 1")
    fixed = CsvUpload.objects.latest("pk")
    assert fixed.pk != bad.pk
    assert response["Location"] == fixed.get_absolute_url()
    page = logged_in.get(fixed.get_absolute_url()).content.decode()
    assert "Send 2 jobs" in page
    assert "Batch “Season 1”" in page


def test_a_bad_corrected_file_is_explained_on_the_preview(logged_in):
    bad, _ = preview_of(logged_in, csv_text([job(1, video_url="x")]))
    response = upload(logged_in, b"", url=bad.get_absolute_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was uploaded." in page and "The file is empty." in page
    assert "Line 2" in page  # the previous preview is still there
    assert CsvUpload.objects.count() == 1


def test_sending_creates_one_batch_sends_what_the_budget_allows_and_queues_the_rest(logged_in, user, sandbox):
    rows = [job(n, disable_active_speaker_detection="yes" if n == 1 else "") for n in range(1, 11)]
    rows[2]["reference_id"] = ""
    stored, _ = preview_of(logged_in, csv_text(rows), name="season-1.csv")

    response = send(logged_in, stored)

    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("submissions:batch", args=[batch.pk]) == f"/batches/{batch.pk}/"
    assert (batch.name, batch.created_by) == ("season-1.csv", user)
    submissions = list(batch.submissions.order_by("pk"))
    assert [s.title for s in submissions] == [f"Episode {n} (German)" for n in range(1, 11)]
    assert all(s.created_by == user and s.target_language == "de" for s in submissions)
    assert submissions[0].disable_active_speaker_detection and not submissions[1].disable_active_speaker_detection
    assert submissions[2].reference_id.startswith("dubdash-")
    assert submissions[3].reference_id == "ep4-de"

    jobs = sandbox.jobs()
    sent = [s for s in submissions if s.request_id]
    assert 0 < len(jobs) < 10  # the shared rate budget's burst, not the whole file at once
    assert {job["id"] for job in jobs} == {s.request_id for s in sent}
    assert {job["reference_id"] for job in jobs} == {s.reference_id for s in sent}
    assert all(s.state == State.QUEUED for s in sent)
    waiting = [s for s in submissions if not s.request_id]
    assert len(waiting) == 10 - len(jobs)
    assert all(s.state == State.PENDING for s in waiting)
    assert messages_of(response) == [
        f"Batch saved: 10 jobs, {len(jobs)} sent to Chamelaion now; the rest go out in turn within the rate limit."
    ]
    stored.refresh_from_db()
    assert stored.used_at is not None and stored.batch == batch


def test_5000_rows_make_one_batch(logged_in, sandbox):
    stored, _ = preview_of(logged_in, csv_text([job(n) for n in range(1, 5001)]))
    send(logged_in, stored)
    batch = Batch.objects.get()
    assert batch.submissions.count() == 5000
    sent = batch.submissions.exclude(request_id=None).count()
    assert sent == len(sandbox.jobs()) > 0
    assert batch.submissions.filter(state=State.PENDING).count() == 5000 - sent


def test_a_custom_batch_name_is_used(logged_in, sandbox):
    stored, _ = preview_of(logged_in, csv_text([job(1)]), batch_name="Pilot, all languages")
    send(logged_in, stored)
    assert Batch.objects.get().name == "Pilot, all languages"


def test_sending_twice_creates_one_batch(logged_in, sandbox):
    stored, _ = preview_of(logged_in, csv_text([job(1), job(2)]))
    first = send(logged_in, stored)
    second = send(logged_in, stored)  # double click, or the back button and Send again
    batch = Batch.objects.get()
    assert Submission.objects.count() == 2
    assert len(sandbox.jobs()) == 2
    assert first["Location"] == second["Location"] == f"/batches/{batch.pk}/"
    assert messages_of(second)[-1] == "This file was already sent: it is never sent twice."
    page = logged_in.get(stored.get_absolute_url()).content.decode()
    assert "This file was sent." in page
    assert f'href="/batches/{batch.pk}/"' in page
    assert "Send 2 jobs" not in page


@pytest.mark.django_db(transaction=True)
def test_two_sends_at_the_same_moment_create_one_batch(user, sandbox):
    from django.db import connection

    stored = csv_services.store_upload(user=user, filename="pilot.csv", content=csv_text([job(1), job(2)]))
    start = threading.Barrier(2)
    outcomes = []

    def press_send():
        start.wait()
        try:
            outcomes.append(csv_services.send_upload(upload=CsvUpload.objects.get(pk=stored.pk)))
        except csv_services.AlreadySent as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=press_send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["AlreadySent", "Batch"]
    assert Batch.objects.count() == 1
    assert Submission.objects.count() == 2
    assert len(sandbox.jobs()) == 2


def test_a_send_already_under_way_is_not_repeated(logged_in, sandbox):
    stored, _ = preview_of(logged_in, csv_text([job(1)]))
    CsvUpload.objects.filter(pk=stored.pk).update(used_at=stored.created_at)  # another request claimed it
    response = send(logged_in, stored)
    assert response["Location"] == stored.get_absolute_url()
    assert_nothing_created()


def test_a_reference_id_taken_after_the_preview_sends_nothing_and_can_be_fixed(logged_in, user, sandbox):
    stored, _ = preview_of(logged_in, csv_text([job(1), job(2)]))
    make_submission(user, reference_id="ep2-de")
    response = send(logged_in, stored)
    assert response["Location"] == stored.get_absolute_url()
    assert Batch.objects.count() == 0 and Submission.objects.count() == 1
    assert sandbox.jobs() == []
    stored.refresh_from_db()
    assert stored.used_at is None  # not sent: once fixed it may be sent
    page = logged_in.get(stored.get_absolute_url()).content.decode()
    assert "Another submission already uses this reference id." in page


def test_a_clash_at_the_insert_itself_sends_nothing(logged_in, user, sandbox, monkeypatch):
    stored, _ = preview_of(logged_in, csv_text([job(1)]))
    monkeypatch.setattr(csv_rows, "taken_reference_ids", lambda candidates: set())  # the race: checked, then taken
    make_submission(user, reference_id="ep1-de", video_url="https://other.example/unrelated.mp4")
    response = send(logged_in, stored)
    assert messages_of(response)[-1].startswith("Nothing was sent: a reference id in this file was taken")
    assert Batch.objects.count() == 0
    stored.refresh_from_db()
    assert stored.used_at is None


def test_only_the_uploader_sees_and_sends_an_upload(client, logged_in, other_user, sandbox):
    stored, _ = preview_of(logged_in, csv_text([job(1)]))
    client.force_login(other_user)
    assert client.get(stored.get_absolute_url()).status_code == 404
    assert send(client, stored).status_code == 404
    assert upload(client, csv_text([job(2)]), url=stored.get_absolute_url()).status_code == 404
    assert_nothing_created()


def test_send_only_accepts_post(logged_in):
    stored, _ = preview_of(logged_in, csv_text([job(1)]))
    assert logged_in.get(reverse("submissions:csv_send", args=[stored.pk])).status_code == 405


# --- Export ----------------------------------------------------------------------------------------------


def exported(response) -> list[dict]:
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="dubdash-')
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the accents
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_the_history_export_has_every_column_and_applies_the_filters(logged_in, user, other_user):
    season = Batch.objects.create(name="Season 1", created_by=user)
    other = Batch.objects.create(name="Pilot", created_by=user)
    make_submission(
        user,
        title="Épisode 1",
        target_language="fr",
        batch=season,
        request_id="req-1",
        state=State.FAILED,
        upstream_error_message="video URL is not accessible",
    )
    make_submission(user, title="Episode 2", batch=season, state=State.PENDING, last_error="Sending is paused.")
    make_submission(user, title="Pilot", batch=other, state=State.COMPLETED, output_url="https://out.example/p.mp4")
    make_submission(other_user, title="Somebody else's", batch=Batch.objects.create(name="Season 1", created_by=other_user))

    everything = exported(logged_in.get(reverse("submissions:history_export")))
    assert [row["title"] for row in everything] == ["Pilot", "Episode 2", "Épisode 1"]
    assert list(everything[0]) == list(csv_export.EXPORT_COLUMNS)

    rows = exported(logged_in.get(reverse("submissions:history_export") + f"?batch={season.pk}"))
    assert [row["title"] for row in rows] == ["Episode 2", "Épisode 1"]
    failed = rows[1]
    assert failed["language"] == "fr"
    assert failed["state"] == "Failed"
    assert failed["request_id"] == "req-1"
    assert failed["error"] == "video URL is not accessible"
    assert failed["submitted_by"] == "maria"
    assert failed["batch"] == "Season 1"
    assert failed["video_url"] == "https://cdn.example.com/episode-1.mp4"
    assert rows[0]["error"] == "Sending is paused."
    assert rows[0]["state"] == "Waiting to send"

    by_name = exported(logged_in.get(reverse("submissions:history_export") + "?batch_name=pilo"))
    assert [(row["title"], row["output_url"]) for row in by_name] == [("Pilot", "https://out.example/p.mp4")]


FORMULAS = ['=HYPERLINK("http://evil")', "+1", "-1", "@SUM(1)", "\tcmd", "\r=1", " =1+1", "\N{FULLWIDTH EQUALS SIGN}1+1"]


@pytest.mark.parametrize("title", FORMULAS)
def test_the_export_neutralises_formulas(logged_in, user, title):
    make_submission(user, title=title, reference_id="-starts-with-a-hyphen")
    (row,) = exported(logged_in.get(reverse("submissions:history_export")))
    assert row["title"] == "'" + title
    assert row["reference_id"] == "'-starts-with-a-hyphen"


def test_harmless_cells_are_left_alone():
    for value in ("Episode 1", "1-2", "a=b", "https://x.example/a.mp4", "", "2024-01-01 10:00:00"):
        assert csv_export.neutralise(value) == value


def test_batch_names_and_usernames_are_neutralised_too(logged_in, client):
    mallory = make_member("@mallory")  # on no team: exports their own batch
    batch = Batch.objects.create(name="=cmd|' /C calc'!A0", created_by=mallory)
    make_submission(mallory, batch=batch)
    client.force_login(mallory)
    (row,) = exported(client.get(reverse("submissions:batch_export", args=[batch.pk])))
    assert row["batch"] == "'=cmd|' /C calc'!A0"
    assert row["submitted_by"] == "'@mallory"


def test_the_batch_export_is_the_batch_in_file_order_for_the_team_only(client, logged_in, user, cast):
    batch = Batch.objects.create(name="Season 1", created_by=user)
    for n in range(1, 4):
        make_submission(user, title=f"Episode {n}", batch=batch, created_at=batch.created_at)
    make_submission(user, title="Not in the batch")
    rows = exported(logged_in.get(reverse("submissions:batch_export", args=[batch.pk])))
    assert [row["title"] for row in rows] == ["Episode 1", "Episode 2", "Episode 3"]

    assert logged_in.get(reverse("submissions:batch_export", args=[batch.pk + 100])).status_code == 404
    client.force_login(cast.no_role)  # not on the team
    assert client.get(reverse("submissions:batch_export", args=[batch.pk])).status_code == 404


def test_the_export_streams_in_chunks(user, django_assert_max_num_queries):
    for n in range(1, 1202):
        make_submission(user, title=f"Episode {n}")
    lines = csv_export.export_lines(Submission.objects.all())
    with django_assert_max_num_queries(3):
        chunks = list(lines)
    assert len(chunks) == 1 + 3  # the header, then 500 + 500 + 201 rows
    assert sum(chunk.count("\r\n") for chunk in chunks) == 1202


def test_rows_sent_before_need_a_confirmation(logged_in, user, sandbox):
    from submissions.models import Batch, CsvUpload
    from tests.factories import make_submission

    make_submission(user, video_url="https://cdn.example.com/ep9.mp4", audio_url="https://cdn.example.com/ep9-de.wav")
    content = (
        "video_url,audio_url,language\n"
        "https://cdn.example.com/ep9.mp4,https://cdn.example.com/ep9-de.wav,de\n"
        "https://cdn.example.com/ep9.mp4,https://cdn.example.com/ep9-fr.wav,fr\n"
    )
    upload = CsvUpload.objects.create(created_by=user, filename="ep9.csv", content=content, batch_name="Ep 9")
    preview = logged_in.get(reverse("submissions:csv_preview", args=[upload.pk])).content.decode()
    assert "1 row was sent before" in preview and "Line 2: " in preview and "sent by maria on" in preview
    assert 'name="confirm_duplicates"' in preview

    refused = logged_in.post(reverse("submissions:csv_send", args=[upload.pk]), follow=True).content.decode()
    assert "1 rows were sent before. Tick the box to send them anyway." in refused
    assert not Batch.objects.exists() and sandbox.jobs() == []

    sent = logged_in.post(reverse("submissions:csv_send", args=[upload.pk]), {"confirm_duplicates": "1"})
    assert sent.status_code == 302 and Batch.objects.get().submissions.count() == 2


def test_a_sent_files_preview_shows_its_rows_without_errors(logged_in, sandbox):
    """Checked again after sending, every row's reference id would be found taken by the batch's own jobs."""
    stored, _ = preview_of(logged_in, csv_text([job(1, reference_id="ep1-de"), job(2, reference_id="ep2-de")]))
    send(logged_in, stored)
    page = logged_in.get(stored.get_absolute_url()).content.decode()
    assert "This file was sent." in page
    assert 'id="line-2"' in page and 'id="line-3"' in page
    assert "csv-row-error" not in page and "already uses this reference id" not in page
