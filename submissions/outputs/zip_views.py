"""Kept outputs as one ZIP: a whole batch (its latest take of every language), or the jobs ticked in the
history. Whoever may see the batch or the jobs may download them; anything else is not found (404), and a
job of a visible batch that the user may not see is left out of its ZIP."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from submissions.batches import selectors as batch_selectors
from submissions.outputs import zips


@require_http_methods(["GET"])
def batch_zip(request: HttpRequest, pk: int) -> HttpResponseBase:
    batch = batch_selectors.get_visible_batch(user=request.user, pk=pk)
    members = zips.members_of(jobs=zips.batch_jobs(batch=batch, user=request.user))
    return zips.zip_response(members=members, filename=zips.batch_filename(batch=batch))


@require_http_methods(["GET"])
def history_zip(request: HttpRequest) -> HttpResponseBase:
    """The history's "Download ticked (ZIP)". Nothing ticked (or nothing of it left) leads back to the
    history with a message. A value that is no job number, or more jobs than one ZIP holds, answers 400 in
    plain words, not a redirect: going Back then returns to the history with the ticks as they were."""
    back = zips.history_address(back=request.GET.get("back", ""), host=request.get_host(), secure=request.is_secure())
    try:
        ids = zips.ticked_ids(values=request.GET.getlist("job"), maximum=settings.HISTORY_ZIP_MAX_JOBS)
    except zips.CannotZip as problem:
        return HttpResponseBadRequest(str(problem), content_type="text/plain; charset=utf-8")
    if not ids:
        messages.info(request, zips.NOTHING_TICKED)
        return redirect(back)
    jobs = zips.ticked_jobs(user=request.user, ids=ids)
    if not jobs:
        messages.error(request, zips.NONE_FOUND)
        return redirect(back)
    return zips.zip_response(members=zips.members_of(jobs=jobs), filename=zips.history_filename())
