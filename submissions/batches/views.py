"""Batches: one source video in many languages, sent together and followed on one page."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.forms import BaseFormSet
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from submissions import roles
from submissions.batches import selectors as batch_selectors
from submissions.batches import services as batch_services
from submissions.batches.forms import BatchForm, BatchRowFormSet
from submissions.jobs import csv_export, duplicates
from submissions.team import limits, permissions

ROWS = "rows"
# Said when "Retry the failed ones" finds nothing it can send (batch_selectors.failed_to_retry): nothing failed,
# or what failed has no inputs left to send.
NOTHING_TO_RETRY = (
    "Nothing in this batch can be retried now. A job whose uploaded files are no longer kept needs a New take, "
    "with the video and audio given again."
)


@require_http_methods(["GET", "POST"])
@permission_required(roles.SUBMIT_JOBS, raise_exception=True)
def new_batch(request):
    if request.method == "GET":
        return _render_new(request, BatchForm(), BatchRowFormSet(prefix=ROWS))
    if "add_row" in request.POST or "remove_row" in request.POST:
        # Without JavaScript, adding or removing a row is a round trip; nothing typed is lost.
        return _render_new(request, BatchForm(initial=request.POST.dict()), _edited_rows(request.POST))
    form, rows = BatchForm(request.POST), BatchRowFormSet(request.POST, prefix=ROWS)
    if not (form.is_valid() and rows.is_valid()):
        return _render_new(request, form, rows)
    jobs = [_job_fields(form.cleaned_data, row.cleaned_data) for row in rows.forms]
    found = duplicates.duplicates_to_confirm(jobs=jobs, confirmed=bool(request.POST.get("confirm_duplicates")))
    if found:
        sent_before, repeats = found.labelled(jobs)
        return _render_new(request, form, rows, duplicates=sent_before, repeats=repeats)
    try:
        batch = batch_services.create_batch(user=request.user, name=form.cleaned_data["name"], rows=jobs)
    except limits.MonthlyLimitReached as exc:
        form.add_error(None, str(exc))
        return _render_new(request, form, rows)
    messages.success(request, f"Batch saved: {len(jobs)} jobs. They are sent in turn within the rate limit.")
    return redirect(batch)


def _job_fields(batch: dict, row: dict) -> dict:
    language = dict(BatchRowFormSet.form.base_fields["target_language"].choices)[row["target_language"]]
    return {
        "video_url": batch["video_url"],
        "audio_url": row["audio_url"],
        "disable_active_speaker_detection": batch["disable_active_speaker_detection"],
        "target_language": row["target_language"],
        "title": f"{batch['name']} ({language})"[:200],
    }


def _edited_rows(data) -> BaseFormSet:
    rows = [
        {"target_language": data.get(f"{ROWS}-{n}-target_language", ""), "audio_url": data.get(f"{ROWS}-{n}-audio_url", "")}
        for n in range(_total_rows(data))
    ]
    if "add_row" in data:
        rows.append({})
    elif len(rows) > 1:
        removed = _row_number(data.get("remove_row", ""), len(rows))
        if removed is not None:  # a number outside the rows (a crafted form) removes nothing
            rows.pop(removed)
    return BatchRowFormSet(prefix=ROWS, initial=rows)


def _row_number(value: str, count: int) -> int | None:
    # A handful of digits at most: int() of a few thousand digits raises, and no batch has that many rows.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 4 and int(value) < count else None


def _total_rows(data) -> int:
    try:
        return max(0, min(int(data.get(f"{ROWS}-TOTAL_FORMS", "1")), BatchRowFormSet.max_num))
    except ValueError:
        return 1


def _render_new(request, form, rows, duplicates=None, repeats=None):
    context = {"form": form, "rows": rows, "duplicates": duplicates, "repeats": repeats, "ask": bool(duplicates or repeats)}
    return render(request, "submissions/batches/batch_new.html", context)


@require_http_methods(["GET"])
def batch_detail(request, pk: int):
    batch = batch_selectors.get_visible_batch(user=request.user, pk=pk)
    context = {
        "batch": batch,
        "overview": batch_selectors.batch_overview(batch=batch, user=request.user),
        "can_retry": permissions.can_retry_batch(request.user, batch),
    }
    template = "submissions/batches/_batch_live.html" if request.htmx else "submissions/batches/batch.html"
    return render(request, template, context)


@require_POST
def retry_failed(request, pk: int):
    batch = batch_selectors.get_visible_batch(user=request.user, pk=pk)
    if not permissions.can_retry_batch(request.user, batch):
        raise PermissionDenied("Only the person who made this batch, or a team admin, may retry it.")
    try:
        retried = batch_services.retry_failed(batch=batch, user=request.user)
    except limits.MonthlyLimitReached as exc:
        messages.error(request, f"Nothing was retried. {exc}")
        return redirect(batch)
    if retried:
        messages.success(request, f"Sending {retried} failed jobs again, in turn within the rate limit.")
    else:
        messages.info(request, NOTHING_TO_RETRY)
    return redirect(batch)


@require_http_methods(["GET"])
def batch_export(request, pk: int):
    batch = batch_selectors.get_visible_batch(user=request.user, pk=pk)
    submissions = batch.submissions.order_by("created_at", "pk")
    return csv_export.download(csv_export.export_lines(submissions), csv_export.export_filename(f"dubdash-batch-{batch.pk}"))
