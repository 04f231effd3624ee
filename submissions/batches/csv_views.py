"""CSV import (upload, preview, send once) and CSV export of the history or of a batch."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from submissions import roles
from submissions.batches import csv_forms, csv_parse, csv_rows, csv_services
from submissions.jobs import duplicates
from submissions.models import Submission
from submissions.team import limits
from submissions.uploads import files as upload_files

PREVIEW_ERRORS_LISTED = 20




@require_http_methods(["GET", "POST"])
@permission_required(roles.SUBMIT_JOBS, raise_exception=True)
def upload(request):
    if request.method == "GET":
        form = csv_forms.CsvUploadForm()
    else:
        form = csv_forms.CsvUploadForm(request.POST, request.FILES, oversized=upload_files.oversized_uploads(request))
        if form.is_valid():
            return redirect(_store(request, form))
    return render(request, "submissions/batches/csv_upload.html", {"form": form, "columns": csv_parse.COLUMNS})


@require_http_methods(["GET", "POST"])
@permission_required(roles.SUBMIT_JOBS, raise_exception=True)
def preview(request, pk: int):
    upload = csv_services.get_upload(user=request.user, pk=pk)
    if request.method == "POST":  # the corrected file, uploaded from the preview itself
        form = csv_forms.CsvUploadForm(request.POST, request.FILES, oversized=upload_files.oversized_uploads(request))
        if form.is_valid():
            return redirect(_store(request, form))
    else:
        form = csv_forms.CsvUploadForm(initial={"batch_name": upload.batch_name})
    rows_of = csv_rows.rows_as_sent if upload.used_at else csv_rows.check_rows
    try:
        rows, file_error = rows_of(csv_parse.read_table(upload.content)), ""
    except csv_parse.CsvFileError as exc:  # only if the rules changed since it was uploaded
        rows, file_error = [], str(exc)
    invalid = [row for row in rows if row.errors]
    errors = [(row.line, column, reason) for row in invalid for column, reason in row.errors]
    sent_before, repeats = ([], []) if upload.used_at else _duplicates(rows)  # nothing left to ask about
    context = {
        "upload": upload,
        "batch_name": csv_services.batch_name_of(upload),
        "form": form,
        "rows": rows,
        "file_error": file_error,
        "invalid_count": len(invalid),
        "errors": errors[:PREVIEW_ERRORS_LISTED],
        "more_errors": max(0, len(errors) - PREVIEW_ERRORS_LISTED),
        "duplicates": sent_before,
        "repeats": repeats,
        "asked_rows": len({line for line, _ in sent_before} | {line for line, _ in repeats}),
    }
    return render(request, "submissions/batches/csv_preview.html", context)


def _duplicates(rows) -> tuple[list[tuple[int, list[Submission]]], list[tuple[int, list[int]]]]:
    """What to ask about before sending, by spreadsheet line: the rows whose video, audio and options were
    sent before (with those submissions), and those another row of the file repeats (with its lines). Only
    for a file without errors: an invalid row has no job to compare."""
    if any(row.errors for row in rows):
        return [], []
    found = duplicates.duplicates_to_confirm(jobs=[row.job for row in rows], confirmed=False)
    return found.labelled([row.line for row in rows])


@require_POST
@permission_required(roles.SUBMIT_JOBS, raise_exception=True)
def send(request, pk: int):
    upload = csv_services.get_upload(user=request.user, pk=pk)
    # Nothing to ask about a file already sent: it is never sent twice (send_upload says so).
    if not request.POST.get("confirm_duplicates") and upload.used_at is None:
        try:
            rows = csv_rows.check_rows(csv_parse.read_table(upload.content))
        except csv_parse.CsvFileError:
            rows = []  # send_upload reports the file's problem
        sent_before, repeats = ([], []) if upload.used_at else _duplicates(rows)  # nothing left to ask about
        if sent_before or repeats:  # every job costs money: ask before sending the same thing twice
            said = []
            if sent_before:
                said.append(f"{len(sent_before)} rows were sent before")
            if repeats:
                said.append(f"{len(repeats)} rows repeat another row of this file")
            messages.error(request, f"{' and '.join(said)}. Tick the box to send them anyway.")
            return redirect(upload)
    try:
        batch = csv_services.send_upload(upload=upload)
    except csv_services.AlreadySent as exc:
        messages.info(request, "This file was already sent: it is never sent twice.")
        return redirect(exc.batch or upload)
    except (csv_services.NotSendable, limits.MonthlyLimitReached) as exc:
        messages.error(request, str(exc))
        return redirect(upload)
    total = batch.submissions.count()
    sent = batch.submissions.filter(request_id__isnull=False).count()
    messages.success(
        request,
        f"Batch saved: {total} jobs, {sent} sent to Chamelaion now; the rest go out in turn within the rate limit."
        if sent < total
        else f"Batch saved: all {total} jobs sent to Chamelaion.",
    )
    return redirect(batch)


def _store(request, form):
    return csv_services.store_upload(
        user=request.user,
        filename=form.cleaned_data["file"].name,
        content=form.cleaned_data["content"],
        batch_name=form.cleaned_data["batch_name"],
    )
