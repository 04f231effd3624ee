"""What is sent is what is stored: a job edited in admin while it waits is sent with the edit, even by a
request that loaded it before (a batch sends its jobs one after another, each send taking its time)."""

import pytest

from submissions.batches import services as batch_services
from submissions.jobs import edit_services
from submissions.models import Submission
from submissions.outbox import sending

pytestmark = pytest.mark.django_db


def test_a_batch_sends_the_inputs_an_admin_stored_meanwhile(fake_chamelaion, cast, settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 600  # room for both at once
    rows = [{"video_url": f"https://cdn.example.com/v{n}.mp4", "audio_url": "https://cdn.example.com/a.wav"} for n in range(2)]
    _, jobs = batch_services.save_batch(user=cast.submitter, name="Episode 7", rows=rows)
    edited = Submission.objects.get(pk=jobs[1].pk)  # the admin's copy; the request still holds its own
    edited.video_url = "https://cdn.example.com/edited.mp4"
    assert edit_services.edit_job(submission=edited, changes={"video_url": edited.video_url}, actor=cast.superuser, summary="")

    sending.send_while_room(jobs)

    stored = Submission.objects.get(pk=jobs[1].pk)
    assert stored.request_id, stored.last_error
    assert fake_chamelaion.find(stored.request_id).video_url == stored.video_url == "https://cdn.example.com/edited.mp4"
