"""CSV import in real Chromium: a bad row is shown with its line and reason, the corrected file is
uploaded from the preview, and Send lands on the batch page."""

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "video_url,audio_url,language,reference_id,title,disable_active_speaker_detection\n"


def rows(video_on_line_3: str) -> str:
    return (
        HEADER
        + "https://cdn.example.com/pilot.mp4,https://cdn.example.com/pilot-de.wav,de,pilot-de,Pilot (German),no\n"
        + f"{video_on_line_3},https://cdn.example.com/pilot-fr.wav,fr,pilot-fr,Pilot (French),\n"
        + "https://cdn.example.com/pilot.mp4,https://cdn.example.com/pilot-ja.wav,ja,,Pilot (Japanese),yes\n"
    )


def test_a_bad_row_is_explained_then_the_corrected_file_is_sent(logged_in_page: Page, live_server, sandbox, tmp_path):
    from submissions.models import Batch

    page = logged_in_page
    bad = tmp_path / "pilot.csv"
    bad.write_text(rows("pilot.mp4"), encoding="utf-8")
    fixed = tmp_path / "pilot-fixed.csv"
    fixed.write_text(rows("https://cdn.example.com/pilot.mp4"), encoding="utf-8")

    page.goto(live_server.url + "/batches/csv/")
    page.get_by_label("CSV file").set_input_files(bad)
    page.get_by_label("Batch name").fill("Pilot, three languages")
    page.get_by_role("button", name="Upload and preview").click()

    expect(page).to_have_url(re.compile(r"/batches/csv/\d+/$"))
    summary = page.get_by_role("alert").filter(has_text="nothing will be sent until the file is fixed")
    expect(summary).to_contain_text("1 row has errors")
    expect(summary).to_contain_text(
        re.compile(r"line 3, video_url: Enter a full web address starting with http:// or https://\.", re.I)
    )
    line_3 = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Line 3"))
    expect(line_3).to_contain_text("pilot.mp4")
    expect(line_3.locator(".csv-cell-error")).to_contain_text("Enter a full web address")
    expect(page.get_by_role("button", name=re.compile(r"^Send"))).to_have_count(0)
    assert Batch.objects.count() == 0 and sandbox.jobs() == []

    page.get_by_label("CSV file").set_input_files(fixed)
    expect(page.get_by_label("Batch name")).to_have_value("Pilot, three languages")
    page.get_by_role("button", name="Upload the corrected file").click()
    expect(page.get_by_text("Every row is valid.")).to_be_visible()
    page.get_by_role("button", name="Send 3 jobs").click()

    expect(page).to_have_url(re.compile(r"/batches/\d+/$"))
    batch = Batch.objects.get()
    assert page.url == f"{live_server.url}/batches/{batch.pk}/"
    assert batch.name == "Pilot, three languages"
    assert sorted(job["reference_id"] for job in sandbox.jobs() if job["reference_id"].startswith("pilot")) == [
        "pilot-de",
        "pilot-fr",
    ]
    assert batch.submissions.count() == 3
