"""CSV export of the history or of one batch. Streamed row by row, UTF-8 with a BOM (Excel reads accents
only then), and every cell that a spreadsheet would run as a formula is neutralised."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from submissions.models import Submission

EXPORT_COLUMNS = (
    "created",
    "title",
    "language",
    "state",
    "reference_id",
    "request_id",
    "video_url",
    "audio_url",
    "output_url",
    "error",
    "submitted_by",
    "batch",
)
# A cell starting with one of these is run as a formula by Excel, LibreOffice or Google Sheets (the
# full-width forms too, in some locales). Prefixing a quote makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
EXPORT_CHUNK_ROWS = 500


def neutralise(value: str) -> str:
    if value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_lines(submissions: QuerySet[Submission]) -> Iterator[str]:
    """The CSV text, a few hundred rows at a time, reading the rows from the database as it goes."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)
    chunk = []
    for submission in submissions.select_related("created_by", "batch").iterator(chunk_size=EXPORT_CHUNK_ROWS):
        chunk.append(writer.writerow([neutralise(value) for value in _export_values(submission)]))
        if len(chunk) == EXPORT_CHUNK_ROWS:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def export_filename(prefix: str) -> str:
    return f"{prefix}-{timezone.localtime():%Y%m%d-%H%M}.csv"


def _export_values(submission: Submission) -> list[str]:
    return [
        timezone.localtime(submission.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        submission.title,
        submission.target_language,
        submission.status_label,
        submission.reference_id or "",
        submission.request_id or "",
        submission.video_url,
        submission.audio_url,
        submission.output_url,
        submission.upstream_error_message or submission.last_error,
        submission.created_by.get_username() if submission.created_by else "",
        submission.batch.name if submission.batch else "",
    ]


class _Line:
    """csv.writer writes here and gets the line back, instead of into a buffer that grows."""

    def write(self, value: str) -> str:
        return value


def download(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    """The rows as a file the browser saves, streamed: a long history is never held in memory."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
