"""Two new takes at the same moment never both become take N+1: the number and the take replaced are read
under a lock on the first take's row, and a unique constraint backs the lock up."""

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from submissions import roles
from submissions.models import Submission
from submissions.takes import services
from tests.factories import make_member, make_submission
from tests.takes.conftest import takes

State = Submission.State
THREAD_TIMEOUT = 20


def new_take(user, of, audio_url):
    return services.save_take_with_links(
        user=user, of=of, title="", video_url=of.video_url, audio_url=audio_url, disable_active_speaker_detection=False
    )


@pytest.mark.django_db
def test_takes_made_one_after_another_from_a_stale_page_are_n_plus_1_and_n_plus_2(user):
    take_1 = make_submission(user, state=State.COMPLETED)
    stale = Submission.objects.get(pk=take_1.pk)  # as two pages loaded before either take was made
    first = new_take(user, stale, "https://cdn.example.com/a.wav")
    Submission.objects.filter(pk=first.pk).update(state=State.COMPLETED)
    second = new_take(user, stale, "https://cdn.example.com/b.wav")
    assert (first.take, second.take) == (2, 3)
    assert (first.retry_of_id, second.retry_of_id) == (take_1.pk, first.pk)
    assert takes(take_1) == [(1, None), (2, 1), (3, 2)]


@pytest.mark.django_db
def test_a_second_take_is_refused_while_the_first_is_unsettled(user):
    take_1 = make_submission(user, state=State.COMPLETED)
    stale = Submission.objects.get(pk=take_1.pk)
    new_take(user, stale, "https://cdn.example.com/a.wav")  # waiting to send, or sending
    with pytest.raises(services.NoNewTakeNow, match="Take 2 of this language is not finished yet"):
        new_take(user, stale, "https://cdn.example.com/b.wav")
    assert Submission.objects.count() == 2


@pytest.mark.django_db
def test_a_take_made_since_by_someone_else_is_not_replaced_from_a_stale_page(user, other_user, cast):
    """The page let `user` make a new take of their take 1; a team admin made take 2 meanwhile. The service
    asks the rule again of the take it would replace, under the lock: take 2 is not `user`'s to replace."""
    take_1 = make_submission(user, state=State.COMPLETED)
    stale = Submission.objects.get(pk=take_1.pk)
    take_2 = new_take(cast.team_admin, stale, "https://cdn.example.com/a.wav")
    Submission.objects.filter(pk=take_2.pk).update(state=State.COMPLETED)
    for who in (user, other_user):
        with pytest.raises(services.NoNewTakeNow, match="Only the person who made take 2 of this language, or a team admin"):
            new_take(who, stale, "https://cdn.example.com/b.wav")
    assert takes(take_1) == [(1, None), (2, 1)]


@pytest.mark.django_db
def test_the_database_refuses_one_take_number_twice(user):
    take_1 = make_submission(user)
    make_submission(user, take=2, first_take=take_1)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_submission(user, take=2, first_take=take_1)


@pytest.mark.django_db(transaction=True)
def test_two_new_takes_at_the_same_moment_get_two_numbers():
    """Two requests at once, each in its own connection. Whichever locks the chain first becomes take 2;
    the other waits, then reads take 2 and is refused (take 2 has not finished), never a second take 2."""
    user = make_member("maria", role=roles.SUBMITTER)  # who may make a new take of their own take 1
    take_1 = make_submission(user, state=State.COMPLETED)
    start, outcomes, errors = threading.Barrier(2), [], []

    def make(audio_url):
        try:
            start.wait()
            outcomes.append(new_take(user, take_1, audio_url).take)
        except services.NoNewTakeNow:
            outcomes.append("refused")
        except BaseException as exc:  # reported by the test
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=make, args=(f"https://cdn.example.com/{n}.wav",), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    assert sorted(outcomes, key=str) == [2, "refused"]
    assert takes(take_1) == [(1, None), (2, 1)]


@pytest.mark.django_db(transaction=True)
def test_the_chain_lock_makes_concurrent_takes_n_plus_1_and_n_plus_2():
    """The lock itself, with its holder slow on purpose: the second waits, then reads the take the first
    saved, and numbers after it. Without the lock both would read take 1 and the database would refuse the
    second take 2."""
    user = make_member("maria")
    take_1 = make_submission(user, state=State.COMPLETED)
    start, made, errors = threading.Barrier(2), [], []

    def make(pause: float):
        try:
            start.wait()
            time.sleep(0 if pause else 0.1)  # the one that pauses inside the lock takes it first
            with transaction.atomic():
                chain = services.lock_chain(of=take_1)
                time.sleep(pause)  # the other one is waiting for the lock meanwhile
                job = make_submission(user, retry_of=chain.latest)
                services.number_as_next_take(submission=job, chain=chain)
            made.append(job.take)
        except BaseException as exc:  # reported by the test
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=make, args=(pause,), daemon=True) for pause in (0.3, 0.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    assert sorted(made) == [2, 3]
    assert takes(take_1) == [(1, None), (2, 1), (3, 2)]
