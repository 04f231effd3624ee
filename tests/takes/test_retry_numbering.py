""""Retry the failed ones" resends the same inputs, and numbers each new job as the next take of its
language: take N+1 of the same chain, replacing the failed take."""

import pytest
from django.db import transaction
from django.urls import reverse

from submissions.batches import services as batch_services
from submissions.models import Batch, Submission
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State


@pytest.fixture
def batch(user):
    return Batch.objects.create(name="Episode 5", created_by=user)


def retry(client, batch):
    assert client.post(reverse("submissions:batch_retry_failed", args=[batch.pk])).status_code == 302


def test_a_retried_job_is_the_next_take(logged_in, user, batch, fake_chamelaion):
    take_1 = make_submission(user, batch=batch, target_language="de", state=State.FAILED, request_id="r-1")
    retry(logged_in, batch)
    take_2 = Submission.objects.get(retry_of=take_1)
    assert (take_2.take, take_2.first_take_id, take_2.batch_id) == (2, take_1.pk, batch.pk)
    assert (take_2.video_url, take_2.audio_url, take_2.target_language) == (take_1.video_url, take_1.audio_url, "de")
    assert take_2.reference_id != take_1.reference_id and take_2.request_id

    Submission.objects.filter(pk=take_2.pk).update(state=State.MISSING)
    retry(logged_in, batch)
    take_3 = Submission.objects.get(retry_of=take_2)
    assert (take_3.take, take_3.first_take_id) == (3, take_1.pk)


def test_a_retry_after_a_new_take_numbers_after_it(logged_in, user, batch, fake_chamelaion):
    take_1 = make_submission(user, batch=batch, target_language="de", state=State.COMPLETED)
    take_2 = make_submission(
        user, batch=batch, target_language="de", state=State.FAILED, take=2, first_take=take_1, retry_of=take_1
    )
    retry(logged_in, batch)
    take_3 = Submission.objects.get(retry_of=take_2)
    assert (take_3.take, take_3.first_take_id) == (3, take_1.pk)


def test_a_replaced_take_is_not_retried(logged_in, user, batch, fake_chamelaion):
    """A take that could not be sent and was replaced by a new take is history: the new take is what the
    language has now, and only it would be retried."""
    take_1 = make_submission(user, batch=batch, state=State.SEND_FAILED, last_error="refused")
    make_submission(user, batch=batch, state=State.COMPLETED, take=2, first_take=take_1, retry_of=take_1)
    failed_replaced = make_submission(user, batch=batch, target_language="fr", state=State.FAILED)
    make_submission(
        user, batch=batch, target_language="fr", state=State.QUEUED, take=2, first_take=failed_replaced, retry_of=failed_replaced
    )
    assert batch_services.retry_failed(batch=batch, user=user) == 0
    take_1.refresh_from_db()
    assert take_1.state == State.SEND_FAILED and Submission.objects.count() == 4


def test_a_take_made_while_the_retry_read_the_batch_is_not_retried_over(user, batch, fake_chamelaion):
    """The retry read a failed take; a new take replaced it before the retry locked the chain: the chain's
    latest is read again under the lock, and the failed take is left alone."""
    take_1 = make_submission(user, batch=batch, state=State.FAILED)
    stale = Submission.objects.get(pk=take_1.pk)
    make_submission(user, batch=batch, state=State.QUEUED, take=2, first_take=take_1, retry_of=take_1)
    with transaction.atomic():
        assert batch_services._retake(failed=stale, batch=batch, user=user) is None
    assert Submission.objects.count() == 2
