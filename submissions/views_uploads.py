"""Submitting local files (generate-with-media). Thin: the form checks, services save and send."""

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from submissions import limits, services, uploads
from submissions.views import tell_outcome

TEMPLATE = "submissions/upload.html"
# Larger uploads are left to the worker: relaying hundreds of megabytes could outlast the web server's
# request timeout, and nobody should wait on a spinner for it.
SEND_IN_REQUEST_MAX_BYTES = 20 * 1024 * 1024


@require_http_methods(["GET", "POST"])
@permission_required("submissions.submit_jobs", raise_exception=True)
def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, TEMPLATE, {"form": uploads.UploadForm()})

    # By now the files sit in temporary files (or were refused for their size while arriving); Django
    # deletes those temporary files when the request ends, whatever happens below.
    form = uploads.UploadForm(request.POST, request.FILES, oversized=uploads.oversized_uploads(request))
    if form.is_valid():
        try:
            submission = uploads.create_upload_submission(user=request.user, **form.cleaned_data)
        except limits.MonthlyLimitReached as exc:
            form.add_error(None, str(exc))
        except services.ReferenceIdTaken:
            form.add_error("reference_id", "Another submission already uses this reference id. Choose another one.")
        else:
            # Whatever the API answers, the job and its files are saved: its page says what happens next
            # (a browser cannot put files back into a form, so unlike URLs there is no form to show again).
            size = form.cleaned_data["video"].size + form.cleaned_data["audio"].size
            if size <= SEND_IN_REQUEST_MAX_BYTES:
                submission = services.send_if_room(submission=submission)
            tell_outcome(request, submission)
            return redirect(submission)
    return render(request, TEMPLATE, {"form": form})
