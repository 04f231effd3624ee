from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from submissions import roles
from submissions.apikey.clients import sandbox_sample_urls
from submissions.core import feedback
from submissions.jobs import csv_export, duplicates
from submissions.jobs import selectors as job_selectors
from submissions.jobs import services as job_services
from submissions.jobs.forms import REFERENCE_ID_TAKEN, HistoryFilterForm, SubmissionForm
from submissions.models import Submission
from submissions.outbox import selectors as outbox_selectors
from submissions.outputs.delivery_selectors import delivery_of
from submissions.takes import selectors as take_selectors
from submissions.team import limits, permissions
from submissions.tracking import refresh as tracking_refresh

HISTORY_PAGE_SIZE = 50
INPUTS_DELETED = (
    "Not sent: its uploaded files were deleted some days after it could not be sent, so there is nothing to "
    "send. Make a new take and give the video and audio again."
)


@require_http_methods(["GET"])
def history(request):
    # The member filter only exists on the Team tab.
    team_tab = request.GET.get("scope") == "team" and permissions.can_see_team(request.user)
    filters = HistoryFilterForm(request.GET, members=job_selectors.member_choices() if team_tab else [])
    page = job_selectors.history_page(
        user=request.user,
        filters=filters.applied,
        size=HISTORY_PAGE_SIZE,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    _add_queue_places(page.rows)
    context = {
        "page": page,
        # Every filter's typed value and errors, with defaults: a template lookup that misses a key costs a
        # dir() of the object, twenty times a page.
        "values": {name: request.GET.get(name, "") for name in HistoryFilterForm.base_fields},
        "errors": {name: filters.errors.get(name, ()) for name in HistoryFilterForm.base_fields},
        "team": team_tab,
        "query": _filters_only(request.GET),
        "live": any(row.is_in_flight or row.copying for row in page.rows),
        "member_choices": filters.member_options,
        "state_choices": HistoryFilterForm.STATES,
        "language_choices": HistoryFilterForm.LANGUAGES,
        "sort_choices": HistoryFilterForm.SORTS,
        "zip_max": settings.HISTORY_ZIP_MAX_JOBS,
    }
    # htmx polls only the rows; everything else on the page stays as it is.
    template = "submissions/jobs/_history_rows.html" if request.htmx else "submissions/jobs/history.html"
    return render(request, template, context)




@require_http_methods(["GET", "POST"])
@permission_required(roles.SUBMIT_JOBS, raise_exception=True)
def new_submission(request):
    # After a failed send the form is shown again; posting it again sends that same saved submission,
    # so a retry never creates a second job.
    resubmitting = job_selectors.get_resendable_submission(user=request.user, pk=request.POST.get("resubmit"))
    if request.method == "GET":
        form = SubmissionForm(initial=_sample_inputs(request))
        return render(request, "submissions/jobs/new.html", {"form": form})

    form = SubmissionForm(request.POST, resubmitting=resubmitting)
    if form.is_valid() and resubmitting is None:
        found = duplicates.duplicates_to_confirm(
            jobs=[form.cleaned_data], confirmed=bool(request.POST.get("confirm_duplicate")), per_job=5
        )
        if found:  # every job costs money: ask before sending the same thing twice
            return render(request, "submissions/jobs/new.html", {"form": form, "duplicates": found.sent_before[0].earlier})
    if form.is_valid():
        try:
            if resubmitting is not None:
                submission = job_services.send_again(submission=resubmitting, changes=form.cleaned_data, user=request.user)
            else:
                submission = job_services.submit(user=request.user, **form.cleaned_data)
        except job_services.ReferenceIdTaken:
            form.add_error("reference_id", REFERENCE_ID_TAKEN)
        except limits.MonthlyLimitReached as exc:
            form.add_error(None, str(exc))
        else:
            if submission.state != Submission.State.SEND_FAILED:
                feedback.tell_outcome(request, submission)
                return redirect(submission)
            resubmitting = submission  # refused as it is (400): back to the form, to fix and send again
    return render(request, "submissions/jobs/new.html", {"form": form, "failed": resubmitting})


def _filters_only(params) -> str:
    """The query string without the page cursor: for links that keep the filters (pages, export, tabs)."""
    kept = params.copy()
    for cursor in ("after", "before", "page"):
        kept.pop(cursor, None)
    return kept.urlencode()


def _add_queue_places(submissions) -> None:
    places = outbox_selectors.queue_positions(submissions)
    for submission in submissions:
        submission.queue_place, submission.queue_eta = places.get(submission.pk, (None, None))


def _sample_inputs(request) -> dict:
    samples = sandbox_sample_urls()
    if request.GET.get("sample") and samples:
        return {**samples, "title": "Sandbox sample"}
    return {}


@require_http_methods(["GET"])
def detail(request, pk: int):
    submission = job_selectors.get_visible_submission(user=request.user, pk=pk)
    _add_queue_places([submission])
    context = {
        "submission": submission,
        "can_retry": permissions.can_retry(request.user, submission),
        "delivery": delivery_of(submission=submission),
        "takes": take_selectors.takes_on_page(submission=submission, user=request.user),
    }
    template = "submissions/jobs/_detail_live.html" if request.htmx else "submissions/jobs/detail.html"
    return render(request, template, context)


@require_POST
def refresh(request, pk: int):
    submission = job_selectors.get_visible_submission(user=request.user, pk=pk)
    messages.info(request, tracking_refresh.refresh_now(submission=submission).message)
    return redirect(submission)


@require_POST
def send_again(request, pk: int):
    submission = _job_they_may_act_on(request, pk, doing="send it again")
    if submission.inputs_deleted:
        messages.error(request, INPUTS_DELETED)
        return redirect(submission)
    if not submission.can_send_again:
        messages.info(request, "This submission is not waiting to be sent again.")
        return redirect(submission)
    try:
        feedback.tell_outcome(request, job_services.send_again(submission=submission, user=request.user))
    except limits.MonthlyLimitReached as exc:
        messages.error(request, str(exc))
    return redirect(submission)


@require_POST
def cancel(request, pk: int):
    """Withdraw a job that is still waiting to send (never one being sent or sent)."""
    submission = _job_they_may_act_on(request, pk, doing="cancel it")
    if job_services.cancel(submission=submission, user=request.user):
        messages.success(request, "Cancelled: it will not be sent.")
    elif submission.state == Submission.State.PENDING:
        messages.info(request, "An earlier attempt may have reached Chamelaion, so it cannot be cancelled safely now.")
    else:
        messages.info(request, f"Not cancelled: it is no longer waiting to send ({submission.get_state_display().lower()}).")
    return redirect(submission)


@require_http_methods(["GET"])
def history_export(request):
    filters = HistoryFilterForm(request.GET, members=job_selectors.member_choices())
    if not filters.is_valid():
        # The page shows a bad filter next to its field and applies the rest; a file cannot show that, and
        # exporting more rows than were asked for would be worse than exporting none.
        problems = "; ".join(f"{name}: {' '.join(str(error) for error in errors)}" for name, errors in filters.errors.items())
        return HttpResponseBadRequest(
            f"Nothing was exported. Fix the filters first ({problems})", content_type="text/plain; charset=utf-8"
        )
    queryset, sort_field = job_selectors.history(user=request.user, filters=filters.applied)
    submissions = queryset.order_by(f"-{sort_field}", "-pk")
    return csv_export.download(csv_export.export_lines(submissions), csv_export.export_filename("dubdash-history"))


def _job_they_may_act_on(request: HttpRequest, pk: int, *, doing: str) -> Submission:
    """The job, if this person may see it (else 404) and act on it (else 403, saying who may)."""
    submission = job_selectors.get_visible_submission(user=request.user, pk=pk)
    if not permissions.can_retry(request.user, submission):
        raise PermissionDenied(f"Only the person who submitted this job, or a team admin, may {doing}.")
    return submission
