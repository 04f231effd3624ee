"""The finished video, from DubDash: its kept copy streamed (or, on S3, a presigned redirect), else Chamelaion's
own link; and asking again to keep a copy that could not be made."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotFound
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from submissions.jobs import selectors as job_selectors
from submissions.outputs import names, serving
from submissions.outputs import selectors as output_selectors
from submissions.outputs import services as output_services
from submissions.team import permissions

NO_VIDEO = "This job has no video to download: Chamelaion has not sent one, and DubDash has no copy of it."
COPY_MISSING = (
    "This job's video cannot be downloaded: DubDash's copy of it is missing from storage (it may have been "
    "deleted there), and there is no Chamelaion link to use instead. Ask whoever looks after DubDash's "
    "storage to restore the file."
)


@require_http_methods(["GET", "HEAD"])
def output(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Whoever may see the job may download its video (others get 404, as for the job page). A kept copy
    whose file is gone from storage (local or S3, streamed or redirected) is treated as not kept, but said so
    when there is nothing else to send."""
    submission = job_selectors.get_visible_submission(user=request.user, pk=pk)
    copy = output_selectors.kept_copy(submission=submission)
    if copy is not None:
        # ?inline=1 is the page's player: the same name, shown rather than saved.
        disposition = serving.content_disposition(names.download_name(submission), inline=request.GET.get("inline") == "1")
        response: HttpResponseBase | None
        if serving.redirects_to_store():
            response = serving.store_redirect(copy=copy, disposition=disposition, method=request.method or "GET")
        else:
            response = serving.kept_response(
                copy=copy,
                disposition=disposition,
                head=request.method == "HEAD",
                range_header=request.headers.get("Range", ""),
                if_range=request.headers.get("If-Range", ""),
            )
        if response is not None:
            return response
    # Not kept (yet, or at all), or its file gone: Chamelaion's link, which is what the page shows then.
    if submission.playable_output_url:
        return serving.redirect(submission.playable_output_url)
    return HttpResponseNotFound(COPY_MISSING if copy is not None else NO_VIDEO, content_type="text/plain; charset=utf-8")


@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask again to keep a copy, after "Could not keep a copy": whoever may retry the job."""
    submission = job_selectors.get_visible_submission(user=request.user, pk=pk)
    if not permissions.can_retry(request.user, submission):
        raise PermissionDenied("Only the person who submitted this job, or a team admin, may ask to keep a copy again.")
    reason = output_selectors.nothing_to_retry(submission=submission)
    if not reason and output_services.retry_copy(submission=submission, user=request.user):
        messages.success(request, "DubDash will try again to keep a copy.")
    else:
        # Asked again by someone else meanwhile, the reason is only known now.
        reason = reason or output_selectors.nothing_to_retry(submission=submission) or "the copy is no longer failed."
        messages.info(request, f"There is nothing to retry: {reason}")
    return redirect(submission)
