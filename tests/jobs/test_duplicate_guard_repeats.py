"""Issue 9, item 9: the duplicate guard sees through trivial URL differences and asks about repeats inside
one submission (a CSV's rows, a batch's languages), as it does about jobs sent earlier. URLs are always
sent as typed."""

import pytest
from django.apps import apps
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from submissions.jobs.fingerprints import inputs_fingerprint
from submissions.models import Batch, Submission
from tests.batches.posting import NEW_BATCH, batch_post, csv_text, job, preview_of, send
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
NEW = reverse("submissions:new")
VIDEO = "https://cdn.example.com/show/episode-1.mp4"
AUDIO = "https://cdn.example.com/show/episode-1-de.wav"

SAME_FILE = [
    "https://cdn.example.com/show/episode-1.mp4#t=30",
    "HTTPS://CDN.Example.COM/show/episode-1.mp4",
    "https://cdn.example.com:443/show/episode-1.mp4",
    "https://cdn.example.com/show/./episode-1.mp4",
    "https://cdn.example.com/show/extras/../episode-1.mp4",
    "https://cdn.example.com/show/%65pisode-1.mp4",
    "  https://cdn.example.com/show/episode-1.mp4  ",
]
OTHER_FILE = [
    "http://cdn.example.com/show/episode-1.mp4",  # another scheme: another server, maybe
    "https://cdn.example.com:8443/show/episode-1.mp4",
    "https://cdn.example.com/show/episode-1.mp4?v=2",
    "https://cdn.example.com/Show/episode-1.mp4",  # paths are case-sensitive
    "https://cdn.example.com/show/episode-1.mp4/",
]


@pytest.mark.parametrize("url", SAME_FILE)
def test_trivial_differences_name_the_same_file(url):
    from submissions.core.urlnorm import normalise_url

    assert normalise_url(url) == normalise_url(VIDEO)
    assert inputs_fingerprint(url, AUDIO, False) == inputs_fingerprint(VIDEO, AUDIO, False)


@pytest.mark.parametrize("url", OTHER_FILE)
def test_real_differences_are_other_files(url):
    assert inputs_fingerprint(url, AUDIO, False) != inputs_fingerprint(VIDEO, AUDIO, False)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=200))
def test_normalising_never_fails_and_is_stable(text):
    from submissions.core.urlnorm import normalise_url

    once = normalise_url(text)
    assert normalise_url(once) == once


@pytest.mark.parametrize("typed", SAME_FILE[:6])
def test_the_single_form_asks_before_sending_a_trivially_different_url_again(logged_in, user, sandbox, typed):
    make_submission(user, video_url=VIDEO, audio_url=AUDIO, title="First take")
    page = logged_in.post(NEW, {"video_url": typed, "audio_url": AUDIO}).content.decode()
    assert "This exact video, audio and options were sent before" in page and "First take" in page
    assert Submission.objects.count() == 1 and sandbox.jobs() == []

    logged_in.post(NEW, {"video_url": typed, "audio_url": AUDIO, "confirm_duplicate": "1"})
    (sent,) = sandbox.jobs()
    assert sandbox.job_inputs(sent["id"])["video_url"] == typed.strip()  # sent as typed, never rewritten


def test_a_batch_with_the_same_audio_for_two_languages_asks_first(logged_in, sandbox):
    data = batch_post(["de", "fr", "es"])
    data["rows-1-audio_url"] = data["rows-0-audio_url"] + "#fr"  # the German track, labelled French
    page = logged_in.post(NEW_BATCH, data).content.decode()
    assert "Some languages use the same audio." in page
    assert "Episode 4 (German): the same video and audio as Episode 4 (French)" in page
    assert "Episode 4 (Spanish)" not in page.split('id="batch-repeats"')[1].split("</ul>")[0]
    assert 'name="confirm_duplicates" value="1"' in page and "Send the batch anyway" in page
    assert Batch.objects.count() == 0 and sandbox.jobs() == []

    logged_in.post(NEW_BATCH, {**data, "confirm_duplicates": "1"})
    assert Batch.objects.get().submissions.count() == 3


def test_a_batch_with_the_same_language_and_audio_twice_written_differently_is_refused(logged_in, sandbox):
    data = batch_post(["de", "de"])
    written_differently = data["rows-0-audio_url"].replace("https://cdn", "HTTPS://CDN").replace(".com/", ".com:443/")
    data["rows-1-audio_url"] = written_differently + "#again"
    page = logged_in.post(NEW_BATCH, data).content.decode()
    assert "The same language and audio appear twice" in page and Batch.objects.count() == 0


def test_a_csv_with_three_identical_rows_flags_them_and_asks(logged_in, sandbox):
    same = job(1, reference_id="")
    shouted = same["video_url"].replace("https://", "HTTPS://") + "#copy"
    rows = [same, {**same, "title": "Again"}, {**same, "video_url": shouted}, job(2)]
    stored, page = preview_of(logged_in, csv_text(rows))
    repeats = page.split('id="csv-repeats"')[1].split("</div>")[0]
    assert "3 rows repeat another row of this file" in repeats
    assert "Line 2</a>: the same as lines 3, 4" in repeats and "Line 4</a>: the same as lines 2, 3" in repeats
    assert "Line 5</a>" not in repeats  # another video
    assert 'name="confirm_duplicates" value="1" required' in page and "send the 3 rows listed above as well" in page

    refused = send(logged_in, stored)
    assert refused.status_code == 302 and Batch.objects.count() == 0 and sandbox.jobs() == []
    assert "3 rows repeat another row of this file. Tick the box to send them anyway." in [
        str(m) for m in refused.wsgi_request._messages
    ]

    logged_in.post(reverse("submissions:csv_send", args=[stored.pk]), {"confirm_duplicates": "1"})
    assert Batch.objects.get().submissions.count() == 4


def test_stored_fingerprints_are_recomputed_on_normalised_urls(user):
    from importlib import import_module

    migration = import_module("submissions.migrations.0014_recompute_fingerprints")
    old = make_submission(user, video_url=VIDEO + "#t=1", audio_url=AUDIO)
    Submission.objects.filter(pk=old.pk).update(inputs_fingerprint="stale, from before normalising")
    migration.recompute_fingerprints(apps, None)
    old.refresh_from_db()
    assert old.inputs_fingerprint == inputs_fingerprint(VIDEO, AUDIO, False)
