"""New take: the form pre-filled with a job's inputs; the new job is the next take of the same language
(linked, numbered, in the same batch, with its own reference id) and goes through the outbox, the monthly
limit and the duplicate guard like any new job."""

import html

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from submissions import roles
from submissions.core.reference_ids import chose_reference_id
from submissions.models import Activity, MonthlyLimit, Submission
from submissions.outbox import ratelimit
from tests.factories import make_member, make_submission
from tests.takes.conftest import AUDIO, NEW_AUDIO, VIDEO, form_data, new_take_url, takes

pytestmark = pytest.mark.django_db
State = Submission.State


def page_of(response) -> str:
    return html.unescape(response.content.decode())


# --- The form ----------------------------------------------------------------------------------------


def test_the_form_is_pre_filled_with_the_jobs_inputs(logged_in, take_1):
    response = logged_in.get(new_take_url(take_1))
    assert response.status_code == 200
    page = page_of(response)
    assert "New take: take 2" in page
    assert f'value="{VIDEO}"' in page and f'value="{AUDIO}"' in page
    assert 'value="Episode 1 (German)"' in page
    assert 'id="id_disable_active_speaker_detection" checked' in page
    assert 'name="reference_id"' in page and f'value="{take_1.reference_id}"' not in page  # a new one is made
    # The language is kept, not asked.
    assert "German (de)" in page and 'name="target_language"' not in page
    assert 'enctype="multipart/form-data"' in page and 'name="audio"' in page and 'name="video"' in page


def test_a_sent_upload_says_the_video_must_be_given_again(logged_in, user):
    """Uploaded files are deleted once Chamelaion has them: nothing of the video is left to pre-fill."""
    sent_upload = make_submission(user, video_url="", audio_url="", state=State.COMPLETED, target_language="fr")
    page = page_of(logged_in.get(new_take_url(sent_upload)))
    assert 'id="video-gone"' in page and "give the video again" in page

    response = logged_in.post(new_take_url(sent_upload), {"audio_url": NEW_AUDIO, "title": "Typed"})
    page = page_of(response)
    assert response.status_code == 200 and Submission.objects.count() == 1
    assert "DubDash no longer has the video of take 1: give it again, as a link or a file." in page
    assert f'value="{NEW_AUDIO}"' in page and 'value="Typed"' in page


@pytest.mark.parametrize("state", [State.COMPLETED, State.FAILED, State.MISSING, State.SEND_FAILED, State.CANCELLED])
def test_a_settled_job_can_be_taken_again(logged_in, user, state):
    job = make_submission(user, state=state)
    assert logged_in.get(new_take_url(job)).status_code == 200


@pytest.mark.parametrize("state", [State.PENDING, State.SENDING, State.QUEUED, State.PROCESSING, State.IN_FLIGHT])
def test_not_while_the_latest_take_is_waiting_or_in_flight(logged_in, user, take_1, fake_chamelaion, state):
    take_2 = make_submission(user, retry_of=take_1, first_take=take_1, take=2, state=state)
    asked = logged_in.get(new_take_url(take_1), follow=True)
    posted = logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO), follow=True)
    for response in (asked, posted):
        assert response.redirect_chain[-1][0] == take_2.get_absolute_url()
        assert "Take 2 of this language is not finished yet" in page_of(response)
    assert Submission.objects.count() == 2 and fake_chamelaion.jobs() == []


# --- The new job ---------------------------------------------------------------------------------------


def test_a_new_take_replaces_the_audio_and_is_take_2(logged_in, user, take_1, fake_chamelaion):
    response = logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO, disable_active_speaker_detection=""))
    take_2 = Submission.objects.get(retry_of=take_1)
    assert response.status_code == 302 and response["Location"] == take_2.get_absolute_url()
    assert (take_2.take, take_2.first_take_id, take_2.batch_id) == (2, take_1.pk, take_1.batch_id)
    assert take_2.target_language == "de" and take_2.title == "Episode 1 (German)"
    assert (take_2.video_url, take_2.audio_url, take_2.disable_active_speaker_detection) == (VIDEO, NEW_AUDIO, False)
    assert take_2.created_by == user and take_2.reference_id and take_2.reference_id != take_1.reference_id
    assert not chose_reference_id(take_2.reference_id)  # DubDash's own
    # Through the outbox, at once: the budget had room.
    assert take_2.state == State.QUEUED and take_2.request_id
    assert fake_chamelaion.find(take_2.request_id).audio_url == NEW_AUDIO
    entry = Activity.objects.get(verb=Activity.Verb.NEW_TAKE)
    assert (entry.submission, entry.actor, entry.batch_id) == (take_2, user, take_1.batch_id)
    assert entry.details == "Take 2, replacing take 1"
    assert take_1.take == 1 and take_1.first_take_id is None


def test_a_take_made_from_take_1_again_is_take_3_replacing_take_2(logged_in, take_1, fake_chamelaion):
    logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO))
    take_2 = Submission.objects.get(take=2)
    Submission.objects.filter(pk=take_2.pk).update(state=State.FAILED)

    logged_in.post(new_take_url(take_1), form_data(take_1, audio_url="https://cdn.example.com/episode-1-de-v3.wav"))
    take_3 = Submission.objects.get(take=3)
    assert (take_3.first_take_id, take_3.retry_of_id, take_3.batch_id) == (take_1.pk, take_2.pk, take_1.batch_id)
    assert takes(take_1) == [(1, None), (2, 1), (3, 2)]
    assert Activity.objects.get(submission=take_3).details == "Take 3, replacing take 2"
    assert len({job.reference_id for job in Submission.objects.all()}) == 3


def test_a_take_of_a_later_take_continues_the_same_numbering(logged_in, take_1, fake_chamelaion):
    logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO))
    take_2 = Submission.objects.get(take=2)
    Submission.objects.filter(pk=take_2.pk).update(state=State.COMPLETED)
    logged_in.post(new_take_url(take_2), form_data(take_2, disable_active_speaker_detection=""))
    take_3 = Submission.objects.get(take=3)
    assert (take_3.first_take_id, take_3.retry_of_id, take_3.audio_url) == (take_1.pk, take_2.pk, NEW_AUDIO)


def test_the_options_alone_can_change(logged_in, take_1, fake_chamelaion):
    logged_in.post(new_take_url(take_1), form_data(take_1, disable_active_speaker_detection=""))
    take_2 = Submission.objects.get(take=2)
    assert take_2.audio_url == AUDIO and take_2.disable_active_speaker_detection is False


def test_a_chosen_reference_id_is_kept(logged_in, take_1, fake_chamelaion):
    logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO, reference_id="ep1-de-take2"))
    assert Submission.objects.get(take=2).reference_id == "ep1-de-take2"


def test_no_room_in_the_budget_leaves_it_waiting_for_the_worker(logged_in, take_1, fake_chamelaion):
    ratelimit.hold_off(60)
    logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO))
    take_2 = Submission.objects.get(take=2)
    assert take_2.state == State.PENDING and take_2.request_id is None and fake_chamelaion.jobs() == []


# --- Bad input, limits, duplicates ---------------------------------------------------------------------


def test_bad_input_is_explained_and_nothing_typed_is_lost(logged_in, take_1, fake_chamelaion):
    data = form_data(take_1, audio_url="episode-1-de-v2.wav", title="Episode 1 (German, new mix)", reference_id="my id")
    response = logged_in.post(new_take_url(take_1), data)
    page = page_of(response)
    assert response.status_code == 200 and Submission.objects.count() == 1 and fake_chamelaion.jobs() == []
    assert "Nothing was sent. Please correct the fields marked below" in page
    assert "Enter a full web address starting with http:// or https://." in page
    assert "Use only letters, digits, dots, underscores and hyphens." in page
    for typed in ('value="episode-1-de-v2.wav"', 'value="Episode 1 (German, new mix)"', 'value="my id"', f'value="{VIDEO}"'):
        assert typed in page


def test_a_cleared_link_is_asked_for(logged_in, take_1):
    page = page_of(logged_in.post(new_take_url(take_1), form_data(take_1, audio_url="")))
    assert "Give the audio track: a link, or a file below." in page and Submission.objects.count() == 1


def test_the_monthly_limit_is_said_on_the_form(logged_in, user, take_1, fake_chamelaion):
    MonthlyLimit.objects.create(user=user, jobs_per_month=1)  # take 1 used it
    response = logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO, title="Typed title"))
    page = page_of(response)
    assert response.status_code == 200
    assert "Monthly limit reached: you have used 1 of your 1 jobs this month. Nothing was sent." in page
    assert f'value="{NEW_AUDIO}"' in page and 'value="Typed title"' in page
    assert Submission.objects.count() == 1 and fake_chamelaion.jobs() == []
    assert not Activity.objects.filter(verb=Activity.Verb.NEW_TAKE).exists()


def test_the_same_inputs_again_are_asked_about_first(logged_in, take_1, fake_chamelaion):
    response = logged_in.post(new_take_url(take_1), form_data(take_1))
    page = page_of(response)
    assert response.status_code == 200 and Submission.objects.count() == 1
    assert "This exact video, audio and options were sent before:" in page
    assert f'href="{take_1.get_absolute_url()}"' in page and "(take 1)" in page
    assert 'name="confirm_duplicate" value="1"' in page and "Send it anyway" in page

    response = logged_in.post(new_take_url(take_1), form_data(take_1, confirm_duplicate="1"))
    assert response.status_code == 302 and Submission.objects.get(take=2).audio_url == AUDIO


def test_inputs_sent_before_by_another_job_are_asked_about_too(logged_in, user, take_1, fake_chamelaion):
    elsewhere = make_submission(user, video_url=VIDEO, audio_url=NEW_AUDIO, disable_active_speaker_detection=True)
    page = page_of(logged_in.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO)))
    assert "sent before" in page and f'href="{elsewhere.get_absolute_url()}"' in page
    assert not Submission.objects.filter(take=2).exists()


# --- Who may ---------------------------------------------------------------------------------------------


# A new take costs money and replaces the latest take: the rule of Send again (team.permissions.can_retry),
# asked of the latest take. Who sees the job but may not is refused (403); who does not see it, not told of it.
@pytest.mark.parametrize(("part", "status"), [("viewer", 403), ("submitter", 403), ("no_role", 404)])
def test_who_may_not_replace_the_latest_take_is_refused(client, cast, take_1, fake_chamelaion, part, status):
    client.force_login(getattr(cast, part))
    assert client.get(new_take_url(take_1)).status_code == status
    assert client.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO)).status_code == status
    assert Submission.objects.count() == 1 and fake_chamelaion.jobs() == []


def test_a_job_they_cannot_see_is_not_found(client, take_1):
    """Someone who may submit but not see the team's jobs: the job is not there for them."""
    loner = make_member("loner")
    loner.user_permissions.add(Permission.objects.get(codename=roles.SUBMIT_JOBS.split(".")[1]))
    client.force_login(loner)
    assert client.get(new_take_url(take_1)).status_code == 404
    assert client.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO)).status_code == 404
    assert Submission.objects.count() == 1


def test_anonymous_visitors_are_sent_to_log_in(client, take_1):
    response = client.get(new_take_url(take_1))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_team_admin_makes_a_take_of_their_own(client, cast, take_1, fake_chamelaion):
    """A take is a new job: the team admin who makes it owns it and it counts against their limit."""
    client.force_login(cast.team_admin)
    assert client.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO)).status_code == 302
    take_2 = Submission.objects.get(take=2)
    assert take_2.created_by == cast.team_admin and take_2.retry_of == take_1


def test_the_rule_is_asked_of_the_latest_take_not_of_the_page_it_is_made_from(client, user, other_user, take_1, fake_chamelaion):
    """Take 2 is a teammate's: they may make take 3, from take 1's page too; take 1's owner may not."""
    take_2 = make_submission(other_user, retry_of=take_1, first_take=take_1, take=2, state=State.COMPLETED, target_language="de")
    client.force_login(user)
    assert client.get(new_take_url(take_1)).status_code == 403
    assert client.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO)).status_code == 403
    assert _new_take_links(client, take_1) == "" and Submission.objects.count() == 2

    client.force_login(other_user)
    assert new_take_url(take_1) in _new_take_links(client, take_1)
    assert client.post(new_take_url(take_1), form_data(take_1, audio_url=NEW_AUDIO)).status_code == 302
    assert Submission.objects.get(take=3).retry_of == take_2


def _new_take_links(client, job: Submission) -> str:
    """The New take links of the job's page."""
    page = client.get(job.get_absolute_url()).content.decode()
    return " ".join(line for line in page.splitlines() if ">New take</a>" in line)
