"""The takes of a language, newest first: what the job page lists (the include _takes_list.html)."""

import pytest
from django.template.loader import render_to_string

from submissions.models import Submission
from submissions.takes import selectors
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State


@pytest.fixture
def chain(user):
    take_1 = make_submission(user, state=State.FAILED, target_language="de")
    take_2 = make_submission(user, state=State.COMPLETED, target_language="de", take=2, first_take=take_1, retry_of=take_1)
    # Made earlier by the clock than take 2: the order is the take number, never the creation time.
    take_3 = make_submission(
        user, state=State.QUEUED, target_language="de", take=3, first_take=take_1, retry_of=take_2,
        created_at=take_1.created_at,
    )
    make_submission(user, target_language="de")  # another job of the same language: not a take of this one
    return take_1, take_2, take_3


def test_every_take_newest_first_from_any_take(chain):
    take_1, take_2, take_3 = chain
    for shown in chain:
        takes = selectors.takes_of(submission=shown)
        assert [take.pk for take in takes] == [take_3.pk, take_2.pk, take_1.pk]
        assert [take.is_shown for take in takes] == [take.pk == shown.pk for take in takes]


def test_a_job_never_retaken_is_its_only_take(user):
    job = make_submission(user)
    assert [take.pk for take in selectors.takes_of(submission=job)] == [job.pk]
    assert selectors.latest_take(submission=job) == job


def test_the_latest_take(chain):
    take_3 = chain[-1]
    assert all(selectors.latest_take(submission=take) == take_3 for take in chain)


def test_the_list_links_each_take_marks_the_shown_one_and_shows_its_state(chain, django_assert_num_queries):
    take_1, take_2, take_3 = chain
    with django_assert_num_queries(1):
        takes = selectors.takes_of(submission=take_2)
        page = render_to_string("submissions/takes/_takes_list.html", {"takes": takes})
    assert page.index("Take 3") < page.index("Take 2") < page.index("Take 1")
    assert f'href="{take_3.get_absolute_url()}"' in page and f'href="{take_1.get_absolute_url()}"' in page
    assert f'href="{take_2.get_absolute_url()}"' not in page and "<strong>Take 2</strong> (this one)" in page
    assert f'<tr id="take-{take_2.pk}" aria-current="page">' in page
    assert page.count("· latest") == 1 and "Take 3</a> · latest" in page
    for take in chain:
        assert f'data-state="{take.state}">{take.status_label}</span>' in page


def test_new_take_is_offered_to_who_may_submit_once_the_latest_take_has_settled(chain, user, cast):
    take_1, _take_2, take_3 = chain
    takes = selectors.takes_of(submission=take_1)
    assert not selectors.may_make_new_take(user=user, takes=takes)  # take 3 is still queued
    Submission.objects.filter(pk=take_3.pk).update(state=State.COMPLETED)
    takes = selectors.takes_of(submission=take_1)
    assert selectors.may_make_new_take(user=user, takes=takes)
    assert not selectors.may_make_new_take(user=cast.viewer, takes=takes)
    assert selectors.may_make_new_take(user=cast.team_admin, takes=takes)
