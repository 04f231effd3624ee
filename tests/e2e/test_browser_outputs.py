"""The batch as a deliverable, in real Chromium: a batch of 3 languages completes, DubDash keeps copies of the
outputs, then the sandbox forgets every output (as an expired link would). The batch page still plays each
take from DubDash's copy, and "Download all" gives a ZIP with 3 MP4 files and a manifest."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from playwright.sync_api import Page, expect

from submissions.models import OutputCopy
from submissions.outputs import services as outputs
from submissions.tracking import services as tracking
from tests.browser_waits import wait_for_video_data
from tests.e2e.test_browser import make_all_due

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LANGUAGES = ["de", "fr", "ja"]


def send_a_batch(page: Page, live_server, sandbox) -> None:
    page.goto(live_server.url + "/batches/new/")
    page.get_by_label("Batch name").fill("Episode 7")
    page.get_by_label("Source video URL").fill(sandbox.sample_video_url)
    page.get_by_role("button", name="+ Add a language").click()
    page.get_by_role("button", name="+ Add a language").click()
    rows = page.locator("tr.batch-row")
    for index, language in enumerate(LANGUAGES):
        rows.nth(index).locator("select").select_option(language)
        rows.nth(index).locator("input").fill(sandbox.sample_audio_url.replace(".wav", f".wav?lang={language}"))
    page.get_by_role("button", name="Send the batch").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+/$"))


def test_a_finished_batch_plays_and_downloads_from_dubdashs_copies_after_chamelaion_forgets(
    logged_in_page: Page, live_server, sandbox
):
    page = logged_in_page
    send_a_batch(page, live_server, sandbox)
    sandbox.advance(60)
    make_all_due()
    assert tracking.refresh_round().updated == 3
    expect(page.get_by_text("3 of 3 finished (100%)")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("Keeping a copy")).to_have_count(3)  # still copying: the page says so

    assert outputs.copy_due(seconds=20) == 3
    assert OutputCopy.objects.filter(state=OutputCopy.State.DONE).count() == 3
    sandbox.reset()  # Chamelaion's links now answer 404

    page.reload()
    rows = page.locator("tr[data-language]")
    expect(rows).to_have_count(3)
    for index, language in enumerate(LANGUAGES):  # in the order the languages were entered
        row = rows.nth(index)
        expect(row).to_have_attribute("data-language", language)
        expect(row.locator('td[data-label="Take"]')).to_have_text("1")
        video = row.locator("video.preview")
        expect(video).to_have_attribute("src", re.compile(r"^/submissions/\d+/output/\?inline=1$"))
        video.evaluate("video => { video.preload = 'auto'; video.load(); }")
        state = wait_for_video_data(video)
        assert state["error"] is None, state
        assert video.evaluate("video => video.videoWidth") == 320
        expect(row.get_by_role("link", name=re.compile("^Download"))).to_be_visible()
        expect(row.get_by_role("link", name=re.compile("^New take"))).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"^Download all \(ZIP")).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(open(download.path(), "rb").read()))  # noqa: SIM115 - read whole, closed by GC
    videos = [name for name in archive.namelist() if name.endswith(".mp4")]
    assert len(videos) == 3
    for name in videos:
        assert archive.read(name)[4:8] == b"ftyp", name
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    assert [row["language"] for row in manifest] == LANGUAGES
    assert all(row["state"].startswith("Completed") and row["SHA-256"] for row in manifest)
