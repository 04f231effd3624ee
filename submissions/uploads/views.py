"""Submitting local files (generate-with-media). Thin: the form checks, services save and send."""

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from submissions import roles
from submissions.core.feedback import tell_outcome
from submissions.jobs import services as job_services
from submissions.jobs.forms import REFERENCE_ID_TAKEN
from submissions.team import limits
from submissions.uploads import files as upload_files
from submissions.uploads import forms as upload_forms
from submissions.uploads import services as upload_services

TEMPLATE = "submissions/uploads/upload.html"


@require_http_methods(["GET", "POST"])
@permission_required(roles.SUBMIT_JOBS, raise_exception=True)
def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, TEMPLATE, {"form": upload_forms.UploadForm()})

    # By now the files sit in temporary files (or were refused for their size while arriving); Django
    # deletes those temporary files when the request ends, whatever happens below.
    form = upload_forms.UploadForm(request.POST, request.FILES, oversized=upload_files.oversized_uploads(request))
    if form.is_valid():
        try:
            submission = upload_services.submit_upload(user=request.user, **form.cleaned_data)
        except limits.MonthlyLimitReached as exc:
            form.add_error(None, str(exc))
        except job_services.ReferenceIdTaken:
            form.add_error("reference_id", REFERENCE_ID_TAKEN)
        else:
            # Whatever the API answers, the job and its files are saved: its page says what happens next
            # (a browser cannot put files back into a form, so unlike URLs there is no form to show again).
            tell_outcome(request, submission)
            return redirect(submission)
    return render(request, TEMPLATE, {"form": form})
