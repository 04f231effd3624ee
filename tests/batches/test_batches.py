"""Batches: one video in many languages, the duplicate guard, the batch page and its retry button."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from submissions.batches import selectors as batch_selectors
from submissions.batches import services as batch_services
from submissions.models import Batch, Submission
from submissions.outbox import ratelimit
from submissions.outbox import worker as outbox
from submissions.outputs import services as outputs
from submissions.tracking import services as tracking
from tests.batches.posting import NEW_BATCH, VIDEO, batch_post
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State
def test_a_batch_makes_one_job_per_language_and_sends_what_the_budget_allows(logged_in, user, sandbox, settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 30  # a burst of 3: the rest waits for the worker
    languages = ["de", "fr", "es", "it", "ja"]
    response = logged_in.post(NEW_BATCH, batch_post(languages, disable_active_speaker_detection="on"))
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    jobs = list(batch.submissions.order_by("pk"))
    assert [job.target_language for job in jobs] == languages
    assert all(job.video_url == VIDEO and job.disable_active_speaker_detection for job in jobs)
    assert jobs[0].title == "Episode 4 (German)" and jobs[4].title == "Episode 4 (Japanese)"
    assert len(sandbox.jobs()) == 3
    assert [job.state for job in jobs].count(State.PENDING) == 2
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    assert "0 of 5 finished" in page and 'hx-trigger="every 3s"' in page
    assert page.count('<a class="badge badge-queued"') == 3 and page.count('<a class="badge badge-pending"') == 2


def test_the_grid_fills_as_jobs_finish_and_polling_stops(logged_in, sandbox):
    logged_in.post(NEW_BATCH, batch_post(["de", "fr"]))
    batch = Batch.objects.get()
    sandbox.advance(60)
    Submission.objects.update(next_poll_at=timezone.now())
    tracking.refresh_round()
    fragment = logged_in.get(batch.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.strip().startswith('<div id="batch-live"')
    assert "2 of 2 finished (100%)" in fragment
    assert fragment.count('<a class="badge badge-completed"') == 2
    # Finished, but DubDash is still keeping its copies: the page goes on polling until they are kept.
    assert fragment.count("Keeping a copy") == 2 and 'hx-trigger="every 3s"' in fragment

    outputs.copy_due(seconds=10)
    kept = logged_in.get(batch.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in kept and "Keeping a copy" not in kept
    assert kept.count("/output/?inline=1") == 2 and "Download all (ZIP, 2 of 2)" in kept


def test_retry_the_failed_ones(logged_in, user, sandbox, settings):
    settings.SEND_MAX_ATTEMPTS = 1
    logged_in.post(NEW_BATCH, batch_post(["de", "fr", "es"]))
    batch = Batch.objects.get()
    de, fr, _es = batch.submissions.order_by("pk")
    Submission.objects.filter(pk=de.pk).update(state=State.FAILED, upstream_error_message="video URL is not accessible")
    Submission.objects.filter(pk=fr.pk).update(state=State.SEND_FAILED, request_id=None, last_error="x")
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    assert "Retry the failed ones (2)" in page

    logged_in.post(reverse("submissions:batch_retry_failed", args=[batch.pk]))
    de_again = Submission.objects.get(retry_of=de)
    assert de_again.batch == batch and de_again.target_language == "de" and de_again.request_id
    fr.refresh_from_db()
    assert fr.state == State.QUEUED and fr.request_id
    assert len(sandbox.jobs()) == 3 + 2
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    assert "Retry the failed ones" not in page and page.count("<tr data-language=") == 3
    logged_in.post(reverse("submissions:batch_retry_failed", args=[batch.pk]))  # nothing left to retry
    assert len(sandbox.jobs()) == 5


@pytest.fixture
def mixed_failures(user) -> Batch:
    """A batch whose failed languages are not all retried: what "Retry the failed ones" skips must not be
    counted on its button."""
    batch = Batch.objects.create(name="Episode 5", created_by=user)

    def job(language, state, **fields):
        return make_submission(user, batch=batch, target_language=language, state=state, last_error="x", **fields)

    job("de", State.SEND_FAILED)  # sent again as it is
    job("pt", State.SEND_FAILED, outcome_unknown_since=timezone.now())  # too: its sending settles it by reference id first
    job("fr", State.FAILED)  # sent again as take 2
    job("ko", State.MISSING)  # too
    job("es", State.SEND_FAILED, video_url="", audio_url="")  # its uploaded files were deleted: nothing to send
    job("it", State.FAILED, video_url="", audio_url="")  # made from uploaded files, deleted once sent
    replaced = job("ja", State.FAILED)  # replaced by a later take: history, not a failure
    job("ja", State.COMPLETED, take=2, first_take=replaced, retry_of=replaced)
    return batch


def test_the_retry_button_counts_what_the_retry_sends(logged_in, mixed_failures, fake_chamelaion):
    ratelimit.hold_off(60)  # nothing sent at once: what matters is what goes back out
    page = logged_in.get(mixed_failures.get_absolute_url()).content.decode()
    assert "Retry the failed ones (4)" in page and "6 failed" in page
    response = logged_in.post(reverse("submissions:batch_retry_failed", args=[mixed_failures.pk]), follow=True)
    assert "Sending 4 failed jobs again" in response.content.decode()
    page = logged_in.get(mixed_failures.get_absolute_url()).content.decode()
    assert "Retry the failed ones" not in page and 'id="retry-hint"' not in page and "2 failed" in page


def test_the_count_and_the_retry_agree_job_by_job(user, mixed_failures, fake_chamelaion):
    ratelimit.hold_off(60)
    counted = batch_selectors.batch_overview(batch=mixed_failures, user=user).retryable
    failed = batch_selectors.failed_to_retry(batch=mixed_failures)
    assert sorted(job.target_language for job in failed.unsent) == ["de", "pt"]
    assert sorted(job.target_language for job in failed.finished_badly) == ["fr", "ko"]
    assert counted == batch_services.retry_failed(batch=mixed_failures, user=user) == 4


def test_no_retry_button_when_nothing_failed_can_be_sent_again(logged_in, user):
    batch = Batch.objects.create(name="Episode 6", created_by=user)
    make_submission(user, batch=batch, target_language="es", state=State.SEND_FAILED, video_url="", audio_url="")
    make_submission(user, batch=batch, target_language="it", state=State.FAILED, video_url="", audio_url="")
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    assert "2 failed" in page and "Retry the failed ones" not in page and 'id="retry-hint"' not in page
    response = logged_in.post(reverse("submissions:batch_retry_failed", args=[batch.pk]), follow=True)
    assert "Nothing in this batch can be retried now." in response.content.decode()
    assert Submission.objects.count() == 2


def test_new_take_is_offered_on_the_rows_of_who_may_replace_them(client, user, other_user, cast, mixed_failures):
    settled = {"de", "pt", "fr", "ko", "es", "it", "ja"}
    # pt's last attempt may have reached Chamelaion: a new take waits until Send again settles it.
    mine = settled - {"pt"}
    for who, offered in [(user, mine), (cast.team_admin, mine), (other_user, set()), (cast.viewer, set())]:
        client.force_login(who)
        page = client.get(mixed_failures.get_absolute_url()).content.decode()
        assert {code for code in settled if f'aria-label="New take of {_language(code)}"' in page} == offered, who


def _language(code: str) -> str:
    return Submission(target_language=code).language_name


def test_batch_form_errors_keep_every_row(logged_in, sandbox):
    data = batch_post(["de", "fr"])
    data["rows-1-audio_url"] = "episode-4-fr.wav"
    data["video_url"] = "ftp://cdn.example.com/x.mp4"
    page = logged_in.post(NEW_BATCH, data).content.decode()
    assert "Nothing was sent" in page
    assert page.count("Enter a full web address starting with http:// or https://.") == 2
    assert 'value="episode-4-fr.wav"' in page and 'value="https://cdn.example.com/episode-4-de.wav"' in page
    assert Batch.objects.count() == 0 and sandbox.jobs() == []


def test_the_same_language_and_audio_twice_is_refused(logged_in, sandbox):
    data = batch_post(["de", "de"])
    data["rows-1-audio_url"] = data["rows-0-audio_url"]
    page = logged_in.post(NEW_BATCH, data).content.decode()
    assert "The same language and audio appear twice" in page and Batch.objects.count() == 0


def test_rows_can_be_added_and_removed_without_javascript(logged_in):
    added = logged_in.post(NEW_BATCH, batch_post(["de", "fr"], add_row="1")).content.decode()
    assert 'name="rows-TOTAL_FORMS" value="3"' in added and 'value="https://cdn.example.com/episode-4-fr.wav"' in added
    assert 'value="Episode 4"' in added and Batch.objects.count() == 0
    removed = logged_in.post(NEW_BATCH, batch_post(["de", "fr", "es"], remove_row="0")).content.decode()
    assert 'name="rows-TOTAL_FORMS" value="2"' in removed
    assert "episode-4-de.wav" not in removed and "episode-4-es.wav" in removed


def test_teammates_see_a_batch_but_only_its_owner_retries_it(client, user, other_user, cast, sandbox):
    client.force_login(user)
    client.post(NEW_BATCH, batch_post(["de"]))
    batch = Batch.objects.get()
    Submission.objects.update(state=State.FAILED)
    client.force_login(other_user)
    page = client.get(batch.get_absolute_url())
    assert page.status_code == 200 and "Retry the failed ones" not in page.content.decode()
    assert client.post(reverse("submissions:batch_retry_failed", args=[batch.pk])).status_code == 403
    client.force_login(cast.no_role)
    assert client.get(batch.get_absolute_url()).status_code == 404


def test_history_filters_by_batch_id_and_name(logged_in, user, sandbox):
    logged_in.post(NEW_BATCH, batch_post(["de"]))
    logged_in.post(NEW_BATCH, {**batch_post(["fr"]), "name": "Trailer", "video_url": "https://cdn.example.com/trailer.mp4"})
    make_submission(user, title="Loose job")
    episode, _trailer = Batch.objects.order_by("pk")
    by_id = logged_in.get(reverse("submissions:history"), {"batch": episode.pk}).content.decode()
    assert "Episode 4 (German)" in by_id and "Trailer (French)" not in by_id and "Loose job" not in by_id
    by_name = logged_in.get(reverse("submissions:history"), {"batch_name": "trail"}).content.decode()
    assert "Trailer (French)" in by_name and "Episode 4" not in by_name.split("<tbody")[1]
    assert 'value="trail"' in by_name and "Clear filters" in by_name


def test_duplicate_guard_on_the_single_form(client, user, other_user, sandbox):
    form = {"video_url": VIDEO, "audio_url": "https://cdn.example.com/episode-4-de.wav", "title": "Ep 4 DE"}
    client.force_login(other_user)
    client.post(reverse("submissions:new"), form)
    client.force_login(user)
    page = client.post(reverse("submissions:new"), {**form, "title": "Mine"}).content.decode()
    assert "This exact video, audio and options were sent before" in page
    assert "sent by kenji on" in page and 'value="Mine"' in page and "Send it anyway" in page
    assert len(sandbox.jobs()) == 1

    # Other options make it a different job: no question asked.
    different = client.post(reverse("submissions:new"), {**form, "disable_active_speaker_detection": "on"})
    assert different.status_code == 302
    confirmed = client.post(reverse("submissions:new"), {**form, "title": "Mine", "confirm_duplicate": "1"})
    assert confirmed.status_code == 302 and len(sandbox.jobs()) == 3


def test_duplicate_guard_on_a_batch(logged_in, user, sandbox):
    make_submission(user, video_url=VIDEO, audio_url="https://cdn.example.com/episode-4-fr.wav",
                    created_at=timezone.now() - timedelta(days=2))
    page = logged_in.post(NEW_BATCH, batch_post(["de", "fr"])).content.decode()
    assert "Some of these were sent before." in page and "Episode 4 (French)" in page and "sent by maria" in page
    assert "Send the batch anyway" in page and Batch.objects.count() == 0
    confirmed = logged_in.post(NEW_BATCH, batch_post(["de", "fr"], confirm_duplicates="1"))
    assert confirmed.status_code == 302 and Batch.objects.get().submissions.count() == 2


def test_the_outbox_sends_the_rest_of_a_batch(logged_in, sandbox, settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 600  # a burst of 60
    logged_in.post(NEW_BATCH, batch_post(["de", "fr", "es", "it"]))
    assert outbox.send_due(seconds=2, wait_for_budget=False) == 0  # all went out at once already
    assert len(sandbox.jobs()) == 4
