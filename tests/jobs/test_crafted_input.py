"""Issue 9, items 5, 8 and 10: crafted or unlucky input gets a clear message on the page (or a 400), never
a 500, and loses nothing typed. Runs on SQLite and PostgreSQL (where NUL and integer overflow differ)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from submissions.core import paging
from submissions.models import Batch, CsvUpload, Submission
from tests.batches.posting import NEW_BATCH, batch_post, csv_text, job, preview_of
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
NEW = reverse("submissions:new")
HISTORY = reverse("submissions:history")
EXPORT = reverse("submissions:history_export")
GOOD = {"video_url": "https://cdn.example.com/episode-1.mp4", "audio_url": "https://cdn.example.com/episode-1-de.wav"}
CONTROL = "invisible control character"


# --- Item 5: control characters -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["video_url", "audio_url"])
def test_a_nul_character_in_a_url_is_refused_with_a_clear_message(logged_in, sandbox, field):
    data = {**GOOD, "title": "Episode 1", field: "http://example.com/a\x00.mp4"}
    response = logged_in.post(NEW, data)
    page = response.content.decode()
    assert response.status_code == 200
    assert f"{CONTROL} (U+0000) at position 21" in page
    assert 'value="Episode 1"' in page  # nothing typed is lost
    assert Submission.objects.count() == 0 and sandbox.jobs() == []


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f"])
def test_control_characters_in_titles_and_reference_ids_are_refused(logged_in, sandbox, character):
    page = logged_in.post(NEW, {**GOOD, "title": f"Episode{character}1", "reference_id": f"ep{character}1"}).content.decode()
    assert page.count(CONTROL) == 2 and Submission.objects.count() == 0


def test_a_tab_in_a_title_is_ordinary_text(logged_in, sandbox):
    logged_in.post(NEW, {**GOOD, "title": "Episode\t1"})
    assert Submission.objects.get().title == "Episode\t1"


def test_a_control_character_in_a_batch_is_refused_and_the_rows_kept(logged_in, sandbox):
    data = batch_post(["de", "fr"], name="Episode\x004")
    data["rows-1-audio_url"] = "https://cdn.example.com/fr\x07.wav"
    page = logged_in.post(NEW_BATCH, data).content.decode()
    assert page.count(CONTROL) == 2 and Batch.objects.count() == 0
    assert 'value="https://cdn.example.com/episode-4-de.wav"' in page


def test_a_control_character_in_a_csv_cell_is_an_error_of_its_row(logged_in):
    _, page = preview_of(logged_in, csv_text([job(1), job(2, title="Bell\x07"), job(3, video_url="http://x.com/\x01.mp4")]))
    assert "Line 3</a>, title: This contains an invisible control character (U+0007)" in page
    assert "Line 4</a>, video_url: This contains an invisible control character (U+0001)" in page


def test_control_characters_in_search_filters_are_a_field_error_not_a_500(logged_in, user):
    make_submission(user, title="Episode 1")
    response = logged_in.get(HISTORY, {"q": "Epi\x00sode", "batch_name": "x\x00"})
    page = response.content.decode()
    assert response.status_code == 200 and page.count(CONTROL) == 2


# --- Item 8: crafted input that answered 500 --------------------------------------------------------


@pytest.mark.parametrize("remove_row", ["2", "3", "99", "9" * 5000, "-1", "\N{FULLWIDTH DIGIT ONE}", "²"])
def test_removing_a_batch_row_that_does_not_exist_removes_nothing(logged_in, remove_row):
    response = logged_in.post(NEW_BATCH, batch_post(["de", "fr"], remove_row=remove_row))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="rows-TOTAL_FORMS" value="2"' in page
    assert "episode-4-de.wav" in page and "episode-4-fr.wav" in page


def test_removing_an_existing_batch_row_still_works(logged_in):
    page = logged_in.post(NEW_BATCH, batch_post(["de", "fr"], remove_row="0")).content.decode()
    assert 'name="rows-TOTAL_FORMS" value="1"' in page and "episode-4-de.wav" not in page


@pytest.mark.parametrize(
    ("batch", "error"),
    [
        ("99999999999999999999999", "Ensure this value is less than or equal to"),
        (str(2**63), "Ensure this value is less than or equal to"),
        ("9" * 5000, "Enter a whole number."),  # past Python's own limit on digits
    ],
)
def test_a_batch_id_too_large_for_the_database_is_a_field_error(logged_in, user, batch, error):
    make_submission(user, title="Episode 1")
    response = logged_in.get(HISTORY, {"batch": batch})
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="field-error">{error}' in page
    assert "Episode 1" in page  # the bad filter is not applied; the page says so next to it


def test_the_largest_batch_id_is_just_no_batch(logged_in, user):
    make_submission(user, title="Episode 1")
    response = logged_in.get(HISTORY, {"batch": str(paging.MAX_ID)})
    assert response.status_code == 200 and "Episode 1" not in response.content.decode()


def test_an_export_with_a_filter_it_cannot_apply_is_a_400_not_a_different_file(logged_in, user):
    make_submission(user, title="Episode 1")
    response = logged_in.get(EXPORT, {"batch": "99999999999999999999999"})
    assert response.status_code == 400
    assert "Nothing was exported" in response.content.decode() and "batch" in response.content.decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "9999-12-31T23:59:59-14:00_1",
        "0001-01-01T00:00:00+14:00_1",
        "2026-01-01T00:00:00_1",  # naive: DubDash never writes one
        "2026-01-01T00:00:00+00:00_99999999999999999999999",
        "2026-01-01T00:00:00+00:00_-5",
        "2026-01-01T00:00:00+00:00_" + "9" * 5000,
    ],
)
@pytest.mark.parametrize("direction", ["after", "before"])
def test_a_crafted_page_cursor_shows_the_first_page(logged_in, user, cursor, direction):
    make_submission(user, title="Episode 1")
    response = logged_in.get(HISTORY, {direction: cursor})
    assert response.status_code == 200 and "Episode 1" in response.content.decode()


def test_a_crafted_resubmit_id_is_ignored(logged_in, sandbox):
    response = logged_in.post(NEW, {**GOOD, "resubmit": "99999999999999999999999"})
    assert response.status_code == 302 and Submission.objects.count() == 1


def test_the_admin_batch_filter_with_a_huge_id_shows_no_jobs(client, user, cast):
    make_submission(user, title="Episode 1")
    client.force_login(cast.superuser)
    response = client.get(reverse("admin:submissions_submission_changelist"), {"batch": "99999999999999999999999"})
    assert response.status_code == 200 and "Episode 1" not in response.content.decode()


# --- Item 10: a CSV over the deployment's upload limit --------------------------------------------


def test_a_csv_over_the_upload_limit_says_it_is_too_large(logged_in, settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    content = csv_text([job(1)]).encode() + b"x" * (1536 * 1024)
    response = logged_in.post(
        reverse("submissions:csv_upload"), {"file": SimpleUploadedFile("big.csv", content, "text/csv"), "batch_name": "Big"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "The file is too large (1.6 MB); the limit is 1 MB." in page
    assert "Choose a CSV file to upload." not in page
    assert "at most 5,000 rows and 1 MB" in page  # the help text names the limit that applies
    assert 'value="Big"' in page and CsvUpload.objects.count() == 0


def test_the_csv_help_text_names_its_own_limit_when_that_is_lower(logged_in):
    page = logged_in.get(reverse("submissions:csv_upload")).content.decode()
    assert "at most 5,000 rows and 2 MB" in page
