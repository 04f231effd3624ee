"""Uploads of jobs that will never be sent are deleted UPLOAD_KEEP_DAYS after the job ended "could not be
sent" or was cancelled (submissions.uploads.cleanup, run daily by the worker and by `manage.py clean_uploads`);
newer ones, and those of jobs in any other state, are kept. Real files on disk, under a temporary MEDIA_ROOT."""

import io
import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from submissions.jobs import services as job_services
from submissions.models import Submission
from submissions.sandbox import SandboxServer
from submissions.uploads import cleanup
from submissions.uploads import services as upload_services
from tests.factories import make_submission

pytestmark = pytest.mark.django_db
State = Submission.State

MEDIA = Path(sys.modules[SandboxServer.__module__].__file__).parent / "media"
SAMPLE_MP4, SAMPLE_WAV = MEDIA / "sample.mp4", MEDIA / "sample.wav"
KEEP_DAYS = 7
LONG_AGO = timedelta(days=KEEP_DAYS, minutes=1)  # just past the keeping time
LATELY = timedelta(days=KEEP_DAYS) - timedelta(minutes=1)  # just within it


@pytest.fixture
def media(disk, settings) -> Path:
    settings.UPLOAD_KEEP_DAYS = KEEP_DAYS
    return settings.MEDIA_ROOT


def stored(media: Path) -> set[str]:
    """Every file under MEDIA_ROOT, as its storage name."""
    return {path.relative_to(media).as_posix() for path in media.rglob("*") if path.is_file()}


def upload_job(user, title: str, *, state: str, ended_ago: timedelta | None, attempted: bool = True) -> Submission:
    """A job made from uploaded files, as the upload form saves it, then moved to `state` with its last
    attempt (or, never attempted, its saving) `ended_ago`."""
    job = upload_services.create_upload_submission(
        user=user,
        video=SimpleUploadedFile(f"{title}.mp4", SAMPLE_MP4.read_bytes()),
        audio=SimpleUploadedFile(f"{title}.wav", SAMPLE_WAV.read_bytes()),
        title=title,
        target_language="de",
    )
    at = timezone.now() - (ended_ago or timedelta(0))
    fields = {"last_attempt_at": at} if attempted else {"last_attempt_at": None, "created_at": at}
    Submission.objects.filter(pk=job.pk).update(state=state, **fields)
    job.refresh_from_db()
    return job


def files_of(job: Submission) -> set[str]:
    return {job.video_upload.name, job.audio_upload.name}


@pytest.fixture
def jobs(user, media) -> dict[str, Submission]:
    made = {
        # Deleted: never sent, and ended longer ago than the keeping time.
        "could not be sent long ago": upload_job(user, "unsent-old", state=State.SEND_FAILED, ended_ago=LONG_AGO),
        "cancelled long ago": upload_job(user, "cancelled-old", state=State.CANCELLED, ended_ago=LONG_AGO),
        "cancelled unattempted long ago": upload_job(
            user, "cancelled-unattempted-old", state=State.CANCELLED, ended_ago=LONG_AGO, attempted=False
        ),
        # Kept: may still be sent again.
        "could not be sent lately": upload_job(user, "unsent-new", state=State.SEND_FAILED, ended_ago=LATELY),
        "cancelled lately, unattempted": upload_job(
            user, "cancelled-new", state=State.CANCELLED, ended_ago=LATELY, attempted=False
        ),
    }
    # Kept whatever their age: still waiting to send, being sent, or sent (sending deletes their files).
    for state in (State.PENDING, State.SENDING, State.QUEUED, State.PROCESSING, State.COMPLETED, State.FAILED):
        made[state] = upload_job(user, f"in-{state}", state=state, ended_ago=timedelta(days=90))
    made["pending, never attempted"] = upload_job(
        user, "pending-unattempted", state=State.PENDING, ended_ago=timedelta(days=90), attempted=False
    )
    return made


OLD = ("could not be sent long ago", "cancelled long ago", "cancelled unattempted long ago")


def test_only_uploads_of_jobs_never_sent_and_ended_long_ago_are_deleted(jobs, media):
    everything = stored(media)
    assert len(everything) == 2 * len(jobs)  # two real files per job
    deleted = set().union(*(files_of(jobs[name]) for name in OLD))

    report = cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)

    assert report.jobs == len(OLD) and sorted(report.files) == sorted(deleted)
    assert stored(media) == everything - deleted
    for name, job in jobs.items():
        before = files_of(job)
        job.refresh_from_db()
        if name in OLD:
            assert not job.video_upload and not job.audio_upload, name
        else:
            assert files_of(job) == before, name  # the row still names its files, which are still there
    # Nothing else about the jobs changes: they stay as they were in the history.
    assert {job.state for name, job in jobs.items() if name in OLD} == {State.SEND_FAILED, State.CANCELLED}


def test_a_second_run_finds_nothing_more(jobs, media):
    cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    left = stored(media)
    report = cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    assert (report.jobs, report.files) == (0, []) and stored(media) == left


def test_each_deletion_is_logged(jobs, caplog):
    with caplog.at_level(logging.INFO, logger="submissions.uploads.cleanup"):
        cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    logged = [record.getMessage() for record in caplog.records if record.name == "submissions.uploads.cleanup"]
    assert len(logged) == len(OLD)
    for name in OLD:
        job = jobs[name]
        (line,) = [message for message in logged if f"submission {job.pk}," in message]
        assert line.startswith(f"Deleted the uploads of submission {job.pk}, never sent: ")
        assert all(file in line for file in files_of(job))


def test_fewer_days_kept_deletes_the_newer_ones_too(jobs, media):
    report = cleanup.delete_unsent_uploads(older_than_days=1)
    assert report.jobs == len(OLD) + 2  # the ones that could not be sent or were cancelled lately too
    for state in (State.PENDING, State.SENDING, State.QUEUED, State.COMPLETED):
        assert files_of(jobs[state]) <= stored(media)


def test_a_file_already_gone_from_disk_does_not_stop_the_clean_up(jobs, media):
    job = jobs["could not be sent long ago"]
    video, audio = job.video_upload.name, job.audio_upload.name
    (media / video).unlink()  # removed by hand, say
    report = cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    assert report.jobs == len(OLD) and {video, audio} <= set(report.files)
    job.refresh_from_db()
    assert not job.video_upload and not job.audio_upload and not (media / audio).exists()


def test_jobs_without_uploads_are_left_alone(user, media, django_assert_max_num_queries):
    old = timezone.now() - LONG_AGO
    linked = make_submission(user, state=State.SEND_FAILED, last_attempt_at=old)
    with django_assert_max_num_queries(1):
        report = cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    assert report.jobs == 0
    linked.refresh_from_db()
    assert linked.video_url and linked.state == State.SEND_FAILED


# --- manage.py clean_uploads ----------------------------------------------------------------------------------


def test_the_command_deletes_after_upload_keep_days_and_says_what(jobs, media):
    out = io.StringIO()
    deleted = set().union(*(files_of(jobs[name]) for name in OLD))
    left = stored(media) - deleted

    call_command("clean_uploads", stdout=out)

    lines = out.getvalue().splitlines()
    assert sorted(lines[:-1]) == sorted(f"Deleted {name}" for name in deleted)
    assert lines[-1] == f"Deleted the uploads of {len(OLD)} jobs that were never sent."
    assert stored(media) == left


def test_the_command_reads_upload_keep_days(jobs, media, settings):
    settings.UPLOAD_KEEP_DAYS = 30  # every one of them is within 30 days
    out = io.StringIO()
    before = stored(media)
    call_command("clean_uploads", stdout=out)
    assert out.getvalue() == "Deleted the uploads of 0 jobs that were never sent.\n"
    assert stored(media) == before


def test_the_command_days_option_overrides_the_setting(jobs, media):
    out = io.StringIO()
    call_command("clean_uploads", "--days", "1", stdout=out)
    assert out.getvalue().splitlines()[-1] == f"Deleted the uploads of {len(OLD) + 2} jobs that were never sent."
    assert files_of(jobs[State.PENDING]) <= stored(media)


@pytest.mark.parametrize("days", ["-1", "-3650"])
def test_the_command_refuses_negative_days_and_deletes_nothing(jobs, media, days):
    """A negative number of days would reach into the future and delete the files of jobs that failed a
    moment ago, which are kept so that they can still be sent again."""
    out = io.StringIO()
    before = stored(media)
    with pytest.raises(CommandError, match=rf"^--days must be 0 or more \(it was {days}\)"):
        call_command("clean_uploads", "--days", days, stdout=out)
    assert out.getvalue() == "" and stored(media) == before


def test_the_command_days_may_be_zero(jobs, media):
    out = io.StringIO()
    call_command("clean_uploads", "--days", "0", stdout=out)
    assert out.getvalue().splitlines()[-1] == f"Deleted the uploads of {len(OLD) + 2} jobs that were never sent."


# --- Sending again and cleaning up at the same moment --------------------------------------------------------


def test_a_job_sent_again_while_the_clean_up_runs_keeps_its_files(jobs, media, monkeypatch):
    """Someone presses Send again on an old job just after the clean-up read it among those to clean: the job
    is waiting to send again, and must still have its files when its turn comes."""
    job = jobs["could not be sent long ago"]
    names = files_of(job)
    real_from_db = Submission.from_db.__func__
    pressed: list[bool] = []

    def from_db(cls, db, field_names, values):
        instance = real_from_db(cls, db, field_names, values)
        if instance.pk == job.pk and not pressed:  # the clean-up has just read it
            pressed.append(True)
            job_services.reopen(submission=Submission.objects.get(pk=job.pk), changes=None)
        return instance

    monkeypatch.setattr(Submission, "from_db", classmethod(from_db))
    report = cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    monkeypatch.undo()

    assert pressed
    job.refresh_from_db()
    assert job.state == State.PENDING
    assert files_of(job) == names and names <= stored(media)
    assert report.jobs == len(OLD) - 1 and not names & set(report.files)


def test_a_job_whose_uploads_were_deleted_is_not_sent_again_without_inputs(logged_in, jobs, fake_chamelaion):
    job = jobs["could not be sent long ago"]
    cleanup.delete_unsent_uploads(older_than_days=KEEP_DAYS)
    logged_in.post(reverse("submissions:send_again", args=[job.pk]))
    job.refresh_from_db()
    assert fake_chamelaion.jobs() == [] and job.state == State.SEND_FAILED
