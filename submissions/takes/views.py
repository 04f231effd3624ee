"""New take: make a job again for the same language with another audio track or other options. Thin: the
form checks, the services save and send."""

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from submissions.core.feedback import tell_outcome
from submissions.jobs import duplicates
from submissions.jobs import selectors as job_selectors
from submissions.jobs import services as job_services
from submissions.jobs.forms import REFERENCE_ID_TAKEN
from submissions.models import Submission
from submissions.takes import selectors as take_selectors
from submissions.takes import services as take_services
from submissions.takes.forms import NewTakeForm
from submissions.team import limits, permissions
from submissions.uploads import files as upload_files

TEMPLATE = "submissions/takes/new_take.html"


@require_http_methods(["GET", "POST"])
def new_take(request: HttpRequest, pk: int) -> HttpResponse:
    of = job_selectors.get_visible_submission(user=request.user, pk=pk)
    latest = take_selectors.latest_take(submission=of)
    if not permissions.can_make_new_take(request.user, latest):
        raise PermissionDenied(
            f"Only the person who made take {latest.take} of this language, or a team admin, may make a new take of it."
        )
    refusal = take_selectors.why_no_new_take(latest=latest)
    if refusal:
        messages.info(request, refusal)
        return redirect(latest)
    if request.method == "GET":
        return _render(request, NewTakeForm(of=of), of=of, latest=latest)

    # Files arrive as for an upload: in temporary files, or refused for their size while arriving.
    form = NewTakeForm(request.POST, request.FILES, of=of, oversized=upload_files.oversized_uploads(request))
    if form.is_valid():
        found = duplicates.duplicates_to_confirm(
            jobs=[form.cleaned_data], confirmed=bool(request.POST.get("confirm_duplicate")), per_job=5
        )
        if found:  # every job costs money: ask before sending the same thing twice, as the new-job form does
            return _render(request, form, of=of, latest=latest, duplicates=found.sent_before[0].earlier)
        try:
            submission = take_services.make_new_take(user=request.user, of=of, **form.cleaned_data)
        except limits.MonthlyLimitReached as exc:
            form.add_error(None, str(exc))
        except take_services.NoNewTakeNow as exc:  # another take was made since the page was loaded
            form.add_error(None, str(exc))
        except take_services.KeptFileGone as exc:
            form.add_error(f"{exc.field}_url", str(exc))
        except job_services.ReferenceIdTaken:
            form.add_error("reference_id", REFERENCE_ID_TAKEN)
        else:
            tell_outcome(request, submission)
            return redirect(submission)
    return _render(request, form, of=of, latest=latest)


def _render(request: HttpRequest, form: NewTakeForm, *, of: Submission, latest: Submission, **extra: Any) -> HttpResponse:
    context = {"form": form, "of": of, "latest": latest, "next_take": latest.take + 1, **extra}
    return render(request, TEMPLATE, context)
