"""Real Chromium (Debian's) through Playwright against a live DubDash and the sandbox."""

import re

import pytest
from playwright.sync_api import Page, expect

from submissions.outbox import worker as outbox
from submissions.outputs import services as outputs
from submissions.tracking import services as tracking
from tests.browser_waits import wait_for_video_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def make_all_sendable():
    from django.utils import timezone

    from submissions.models import Submission

    Submission.objects.filter(state=Submission.State.PENDING).update(next_attempt_at=timezone.now())


def make_all_due():
    from django.utils import timezone

    from submissions.models import Submission

    Submission.objects.update(next_poll_at=timezone.now())


def test_submit_the_samples_and_find_the_job_in_the_history(logged_in_page: Page, sandbox):
    page = logged_in_page
    expect(page.get_by_text("Sandbox mode.")).to_be_visible()
    page.get_by_role("link", name="New submission").first.click()
    page.get_by_role("link", name="fill the form with the sandbox's sample video and audio").click()
    expect(page.get_by_label("Video URL")).to_have_value(sandbox.sample_video_url)
    expect(page.get_by_label("Audio URL")).to_have_value(sandbox.sample_audio_url)
    page.get_by_label("Target language").select_option("de")
    page.get_by_label("Title or note").fill("Pilot, German")
    page.get_by_role("button", name="Send to Chamelaion").click()

    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))
    (job,) = sandbox.jobs()
    expect(page.locator("#request-id")).to_have_text(job["id"])
    expect(page.get_by_text("Sent to Chamelaion.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    row = page.get_by_role("row").filter(has_text="Pilot, German")
    expect(row).to_contain_text(job["id"])
    expect(row).to_contain_text("Queued")
    expect(row).to_contain_text("German")


def test_bad_input_is_explained_and_nothing_typed_is_lost(logged_in_page: Page, live_server, sandbox):
    page = logged_in_page
    page.goto(live_server.url + "/submissions/new/")
    page.get_by_label("Video URL").fill("cdn.example.com/pilot.mp4")
    page.get_by_label("Audio URL").fill(sandbox.sample_audio_url)
    page.get_by_label("Reference id").fill("pilot de")
    page.get_by_label("Title or note").fill("Pilot, German")
    page.get_by_role("button", name="Send to Chamelaion").click()

    expect(page.get_by_text("Nothing was sent. Please correct the fields marked below.")).to_be_visible()
    expect(page.get_by_text("Enter a full web address starting with http:// or https://.")).to_be_visible()
    expect(page.get_by_text("Use only letters, digits, dots, underscores and hyphens.")).to_be_visible()
    expect(page.get_by_label("Video URL")).to_have_value("cdn.example.com/pilot.mp4")
    expect(page.get_by_label("Reference id")).to_have_value("pilot de")
    expect(page.get_by_label("Title or note")).to_have_value("Pilot, German")
    assert sandbox.jobs() == []


def test_an_upstream_failure_is_explained_and_the_job_goes_out_by_itself(
    logged_in_page: Page, live_server, sandbox
):

    page = logged_in_page
    sandbox.faults.script = ["500"]
    page.goto(live_server.url + "/submissions/new/?sample=1")
    page.get_by_label("Title or note").fill("Pilot, French")
    page.get_by_role("button", name="Send to Chamelaion").click()

    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))
    expect(page.get_by_role("alert").filter(has_text="Saved, not sent yet.")).to_contain_text(
        "Chamelaion had an internal problem."
    )
    expect(page.locator(".page-head .badge")).to_have_text("Waiting to send")
    expect(page.get_by_text("DubDash tries again by itself at").first).to_be_visible()

    make_all_sendable()
    page.wait_for_timeout(300)  # past the test-sized settle time
    assert outbox.send_due(seconds=2, wait_for_budget=False) == 1
    (job,) = sandbox.jobs()
    expect(page.locator(".page-head .badge")).to_have_text("Queued", timeout=10_000)  # the page's own polling
    expect(page.locator("#request-id")).to_have_text(job["id"])


def test_the_badge_turns_completed_without_a_reload_and_polling_stops(logged_in_page: Page, live_server, sandbox):

    page = logged_in_page
    page.goto(live_server.url + "/submissions/new/?sample=1")
    page.get_by_label("Title or note").fill("Pilot, Japanese")
    page.get_by_role("button", name="Send to Chamelaion").click()
    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))

    page.goto(live_server.url + "/")
    row = page.get_by_role("row").filter(has_text="Pilot, Japanese")
    expect(row.locator(".badge")).to_have_text("Queued")
    page.evaluate("window.__sameDocument = true")  # lost on any full reload

    sandbox.advance(60)
    make_all_due()
    assert tracking.refresh_round().updated == 1
    expect(row.locator(".badge")).to_have_text("Completed", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(row.get_by_text("Keeping a copy")).to_be_visible()  # finished, but its copy is still being made

    assert outputs.copy_due(seconds=10) == 1
    expect(row.get_by_text("Kept")).to_be_visible(timeout=10_000)

    # Nothing in flight any more, and every copy kept: the page stops asking.
    polls = []
    page.on("request", lambda request: polls.append(request.url) if request.headers.get("hx-request") else None)
    page.wait_for_timeout(4_000)
    assert polls == []


def test_the_detail_page_plays_the_output(logged_in_page: Page, live_server, sandbox):

    page = logged_in_page
    page.goto(live_server.url + "/submissions/new/?sample=1")
    page.get_by_role("button", name="Send to Chamelaion").click()
    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))
    expect(page.get_by_text("Not ready yet.")).to_be_visible()

    sandbox.advance(60)
    make_all_due()
    assert tracking.refresh_round().updated == 1
    video = page.locator("#output-video")
    expect(video).to_be_visible(timeout=10_000)  # swapped in by the page's own polling
    (job,) = sandbox.jobs()
    expect(video).to_have_attribute("src", job["output_url"])
    state = wait_for_video_data(video)
    assert state["error"] is None, state
    assert video.evaluate("video => video.videoWidth") == 320
    expect(page.get_by_role("link", name="Download the video")).to_have_attribute("href", job["output_url"])
    expect(page.get_by_text("Finished")).to_be_visible()


def test_a_batch_of_three_languages_fills_its_grid(logged_in_page: Page, live_server, sandbox):

    page = logged_in_page
    page.get_by_role("link", name="New batch").click()
    page.get_by_label("Batch name").fill("Episode 5")
    page.get_by_label("Source video URL").fill(sandbox.sample_video_url)
    page.get_by_role("button", name="+ Add a language").click()
    page.get_by_role("button", name="+ Add a language").click()
    rows = page.locator("tr.batch-row")
    expect(rows).to_have_count(3)
    for index, language in enumerate(["de", "fr", "ja"]):
        rows.nth(index).locator("select").select_option(language)
        rows.nth(index).locator("input").fill(sandbox.sample_audio_url.replace(".wav", f".wav?lang={language}"))
    page.get_by_role("button", name="Send the batch").click()

    expect(page).to_have_url(re.compile(r"/batches/\d+/$"))
    expect(page.get_by_role("heading", name="Episode 5")).to_be_visible()
    expect(page.locator("tr[data-language]")).to_have_count(3)
    expect(page.get_by_text("0 of 3 finished")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    sandbox.advance(60)
    make_all_due()
    assert tracking.refresh_round().updated == 3
    expect(page.get_by_text("3 of 3 finished (100%)")).to_be_visible(timeout=10_000)
    for language in ("de", "fr", "ja"):
        expect(page.locator(f'tr[data-language="{language}"] a.badge')).to_have_text("Completed")
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#batch-progress")).to_have_attribute("aria-valuenow", "3")
