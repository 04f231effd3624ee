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


def test_new_take_is_offered_to_who_may_replace_the_latest_take_once_it_has_settled(chain, user, other_user, cast):
    """The rule of Send again (the latest take's owner, or a team admin), once the latest take has settled."""
    take_1, _take_2, take_3 = chain
    assert not selectors.takes_on_page(submission=take_1, user=user).new_take  # take 3 is still queued
    Submission.objects.filter(pk=take_3.pk).update(state=State.COMPLETED)
    latest = selectors.latest_take(submission=take_1)
    assert selectors.may_make_new_take(user=user, latest=latest)
    assert selectors.takes_on_page(submission=take_1, user=user).new_take
    assert not selectors.may_make_new_take(user=other_user, latest=latest)  # a submitter, but not theirs
    assert not selectors.may_make_new_take(user=cast.viewer, latest=latest)
    assert selectors.may_make_new_take(user=cast.team_admin, latest=latest)


# --- A take a later one replaced: said at the top of its page ----------------------------------------------


def test_each_take_knows_what_replaced_it(chain, user):
    _take_1, take_2, take_3 = chain
    first, second, third = (selectors.takes_on_page(submission=take, user=user) for take in chain)
    assert (first.replaced_by.pk, first.latest.pk) == (take_2.pk, take_3.pk)
    assert (second.replaced_by.pk, second.latest) == (take_3.pk, None)  # replaced by the latest itself
    assert (third.replaced_by, third.latest) == (None, None)
    assert first.listed and second.listed and third.listed


def test_a_job_never_retaken_lists_no_takes_and_is_replaced_by_nothing(user):
    page = selectors.takes_on_page(submission=make_submission(user), user=user)
    assert not page.listed and page.replaced_by is None and page.latest is None


def test_a_replaced_take_says_so_at_the_top_of_its_page_and_links_the_take_that_replaced_it(logged_in, chain):
    take_1, take_2, take_3 = chain
    page = logged_in.get(take_1.get_absolute_url()).content.decode()
    banner = page[page.index('id="replaced-by"') : page.index("</div>", page.index('id="replaced-by"'))]
    assert f'Replaced by <a href="{take_2.get_absolute_url()}">take 2</a>' in banner
    assert 'data-state="completed">Completed</span>' in banner  # take 2's state
    assert f'<a href="{take_3.get_absolute_url()}">take 3</a>' in banner and 'data-state="queued"' in banner
    # Near the top: before what the page says of the job itself, and before the list of takes.
    assert page.index('id="replaced-by"') < page.index("Chamelaion could not make this video") < page.index('class="timeline"')
    # The list still marks this take and the latest.
    assert "<strong>Take 1</strong> (this one)" in page and "Take 3</a> · latest" in page

    second = logged_in.get(take_2.get_absolute_url()).content.decode()
    assert f'Replaced by <a href="{take_3.get_absolute_url()}">take 3</a>' in second
    assert "The latest take of this language" not in second
    latest = logged_in.get(take_3.get_absolute_url()).content.decode()
    assert 'id="replaced-by"' not in latest and "Replaced by" not in latest and "Take 3</strong> (this one) · latest" in latest


def test_the_takes_list_is_shown_only_for_a_language_taken_more_than_once(logged_in, user, chain):
    page = logged_in.get(chain[0].get_absolute_url()).content.decode()
    assert 'aria-label="Takes"' in page and "Dubbed result (take 1)" in page
    alone = logged_in.get(make_submission(user, target_language="fr").get_absolute_url()).content.decode()
    assert 'aria-label="Takes"' not in alone and "Dubbed result</figcaption>" in alone
