"""CSV in and out: a batch from a spreadsheet, and the history (or one batch) as a spreadsheet.

Import. A file-wide problem (too big, not UTF-8, no usable header, too many rows) refuses the file at
once. Otherwise every row is checked with the single-job form itself, so a CSV row follows exactly the
rules of a job typed in by hand, and the preview lists each row with its problems. Line numbers are the
ones a spreadsheet shows: the header is line 1, a row with a line break inside quotes is still one line.

Export: csv_export.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone

from submissions import services, uploads
from submissions.forms import SubmissionForm, TextField
from submissions.models import REFERENCE_ID_MAX_LENGTH, Batch, CsvUpload, Submission

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000

COLUMNS = ("video_url", "audio_url", "language", "reference_id", "title", "disable_active_speaker_detection")
REQUIRED_COLUMNS = ("video_url", "audio_url")
# CSV column -> SubmissionForm field, where the names differ.
FORM_FIELD = {"language": "target_language"}
TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0", ""}


class CsvFileError(Exception):
    """The file as a whole cannot be used: nothing of it is kept or sent."""


class AlreadySent(Exception):
    def __init__(self, batch: Batch | None):
        super().__init__("already sent")
        self.batch = batch


class NotSendable(Exception):
    """The upload cannot be sent as it is; the message says why. Nothing was created."""


# --- Reading a file --------------------------------------------------------------------------------


def max_bytes() -> int:
    """A CSV file's limit: its own, or the deployment's limit for any upload where that is lower."""
    return min(MAX_BYTES, settings.UPLOAD_MAX_BYTES)


def too_large(size: int) -> CsvFileError:
    return CsvFileError(
        f"The file is too large ({uploads.describe_size(size, round_up=True)}); the limit is "
        f"{uploads.describe_size(max_bytes())}. Split it into smaller files (at most {MAX_ROWS:,} rows each)."
    )


def read_upload(uploaded_file: Any) -> str:
    """The text of an uploaded file; the size is checked before a byte is read."""
    if uploaded_file.size > max_bytes():
        raise too_large(uploaded_file.size)
    return decode(uploaded_file.read())


def decode(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise CsvFileError(
            "This is an Excel workbook, not a CSV file. In Excel choose File › Save As › “CSV UTF-8 (Comma "
            "delimited)” and upload that file."
        )
    try:
        text = data.decode("utf-8-sig")  # strips the BOM Excel writes, if there is one
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvFileError(
            f"The file is not UTF-8 text (the first character that is not is on line {line}). In Excel save "
            "it as “CSV UTF-8 (Comma delimited)”; in LibreOffice or Google Sheets choose UTF-8 when exporting."
        ) from exc
    if "\x00" in text:
        # UTF-16 text of plain ASCII is valid UTF-8 full of NULs (and PostgreSQL cannot store a NUL).
        raise CsvFileError(
            "The file contains NUL characters: it is probably UTF-16 (Excel's “Unicode Text”) or not a text "
            "file. Save it as “CSV UTF-8 (Comma delimited)” and upload it again."
        )
    return text


@dataclass(frozen=True)
class Table:
    """A file's rows, not yet checked."""

    rows: list[tuple[int, dict[str, str], list[str]]]  # (line, values, problems of the row's shape)


def read_table(text: str) -> Table:
    """Split a file into rows under its header, or refuse it as a whole (CsvFileError)."""
    if not text.strip():
        raise CsvFileError("The file is empty. It needs a header line and at least one row.")
    delimiter = detect_delimiter(text)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns: list[str | None] | None = None
    rows: list[tuple[int, dict[str, str], list[str]]] = []
    line = 0
    try:
        for line, values in enumerate(records, start=1):
            if not any(value.strip() for value in values):
                continue  # blank lines (and rows of empty cells) are no jobs
            if columns is None:
                columns = _header_columns(values)
            else:
                rows.append((line, *_by_column(values, columns)))
    except csv.Error as exc:
        raise CsvFileError(f"Line {line + 1} cannot be read as CSV ({exc}).") from exc
    if not rows:
        raise CsvFileError("The file has a header but no rows. Add one row per job under the header.")
    if len(rows) > MAX_ROWS:
        raise CsvFileError(
            f"The file has {len(rows):,} rows; the limit is {MAX_ROWS:,} per file. Split it into several files."
        )
    return Table(rows=rows)


def detect_delimiter(text: str) -> str:
    """Comma or semicolon (Excel's choice where the comma is the decimal mark): whichever splits the
    header into more known column names; on a tie the more frequent one; failing that, the comma."""
    header = next((line for line in text.splitlines() if line.strip()), "")

    def fit(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([header], delimiter=delimiter), [])
        return sum(cell.strip().lower() in COLUMNS for cell in cells), header.count(delimiter)

    return max((",", ";"), key=fit)


def _header_columns(values: list[str]) -> list[str | None]:
    """The column name of each position (None: a column without a name, ignored while it is empty)."""
    names = [value.strip().lower() or None for value in values]
    if any(value.strip().lower().startswith(("http://", "https://")) for value in values):
        raise CsvFileError(
            f"The first line must be the header ({', '.join(COLUMNS)}), but the file starts with a data "
            "row. Add the header line and upload the file again."
        )
    problems = []
    unknown = [value.strip() for value, name in zip(values, names) if name and name not in COLUMNS]
    if unknown:
        problems.append(
            f"The header has {_plural(len(unknown), 'column')} DubDash does not know: {_quoted(unknown)}. "
            f"The columns are {', '.join(COLUMNS)} (any order; only video_url and audio_url are required)."
        )
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        problems.append(f"The header has {_quoted(repeated)} more than once: keep one of each.")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        noun = _plural(len(missing), "column", show=False)
        problems.append(f"The header lacks the required {noun} {_quoted(missing)}.")
    if problems:
        raise CsvFileError(" ".join(problems))
    return names


def _by_column(values: list[str], columns: list[str | None]) -> tuple[dict[str, str], list[str]]:
    row = {name: "" for name in COLUMNS}
    problems = []
    for position, value in enumerate(values):
        name = columns[position] if position < len(columns) else None
        if name:
            row[name] = value
        elif value.strip():
            problems.append(
                f"Column {position + 1} has a value (“{_short(value)}”) but no name in the header. "
                "A value that contains a comma or semicolon must be in double quotes."
            )
    return row, problems


# --- Checking the rows --------------------------------------------------------------------------------


@dataclass
class Cell:
    column: str
    text: str  # what the preview shows
    errors: list[str]


@dataclass
class Row:
    line: int
    values: dict[str, str]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, or "" for the whole row; reason)
    job: dict[str, Any] | None = None  # the create_submission fields, when the row is valid
    language_name: str = ""

    @property
    def cells(self) -> list[Cell]:
        return [
            Cell(column, self._shown(column), [reason for name, reason in self.errors if name == column])
            for column in COLUMNS
        ]

    @property
    def row_errors(self) -> list[str]:
        return [reason for name, reason in self.errors if not name]

    def _shown(self, column: str) -> str:
        value = self.values[column].strip()
        if self.job is None:
            return value
        if column == "language" and value:
            return f"{self.job['target_language']} ({self.language_name})"
        if column == "disable_active_speaker_detection":
            return "Speaker detection off" if self.job[column] else ""
        return value


class CsvRowForm(SubmissionForm):
    """The single-job form, fed one CSV row, with messages that speak of columns.

    Whether a reference id is already used is looked up for the whole file in one query (5,000 rows would
    be 5,000 queries); only the ids found taken go through the form's own check, for its own message."""

    def __init__(self, *args: Any, taken_reference_ids: set[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.taken_reference_ids = taken_reference_ids
        self.fields["video_url"].error_messages["required"] = "Empty: every row needs the video's URL."
        self.fields["audio_url"].error_messages["required"] = "Empty: every row needs the audio's URL."
        self.fields["target_language"].error_messages["invalid_choice"] = (
            "“%(value)s” is not a language code DubDash knows. Use a code such as de, fr, es or pt-br, "
            "or leave it blank."
        )

    def clean_reference_id(self) -> str:
        if self.cleaned_data["reference_id"] in self.taken_reference_ids:
            return super().clean_reference_id()
        return self.cleaned_data["reference_id"]

    def check(self, data: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, Any]]:
        """(errors, cleaned data) of one row. One form serves the whole file, filled again for each row:
        building a form copies its fields (the list of languages), which for 5,000 rows takes seconds."""
        self.data, self.is_bound = data, True
        self.full_clean()
        return self.errors, dict(self.cleaned_data)


def check_rows(table: Table) -> list[Row]:
    """Every row checked with the single-job form's rules; reference ids must also be unique in the file."""
    reference_ids = [values["reference_id"].strip() for _, values, _ in table.rows]
    lines_of = defaultdict(list)
    for (line, _, _), reference_id in zip(table.rows, reference_ids):
        if reference_id:
            lines_of[reference_id].append(line)
    taken = taken_reference_ids(lines_of)
    form = CsvRowForm(taken_reference_ids=taken)
    language_names = dict(settings.DUBBING_LANGUAGES)
    return [
        _check_row(line, values, problems, form=form, lines_of=lines_of, language_names=language_names)
        for line, values, problems in table.rows
    ]


def taken_reference_ids(candidates: Iterable[str]) -> set[str]:
    """Which of these reference ids a submission already uses (in chunks: SQLite limits query parameters)."""
    candidates = [value for value in candidates if len(value) <= REFERENCE_ID_MAX_LENGTH]
    taken: set[str] = set()
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        taken.update(Submission.objects.filter(reference_id__in=chunk).values_list("reference_id", flat=True))
    return taken


def _check_row(
    line: int,
    values: dict[str, str],
    problems: list[str],
    *,
    form: CsvRowForm,
    lines_of: dict[str, list[int]],
    language_names: dict[str, str],
) -> Row:
    row = Row(line=line, values=values, errors=[("", problem) for problem in problems])
    typed = values["disable_active_speaker_detection"].strip()
    switch = typed.lower()
    if switch not in TRUE_WORDS | FALSE_WORDS:
        reason = f"“{_short(typed)}” is not a yes or no: use true or false (or yes/no, 1/0), or leave it blank."
        row.errors.append(("disable_active_speaker_detection", reason))
    data = {FORM_FIELD.get(column, column): value for column, value in values.items()}
    # Codes are lower case (pt-br); a spreadsheet may well say PT-BR or pt_BR.
    data["target_language"] = data["target_language"].strip().lower().replace("_", "-")
    data["disable_active_speaker_detection"] = "true" if switch in TRUE_WORDS else "false"
    errors, cleaned = form.check(data)
    columns = {"__all__": "", **{form_field: column for column, form_field in FORM_FIELD.items()}}
    for form_field, reasons in errors.items():
        row.errors.extend((columns.get(form_field, form_field), reason) for reason in reasons)
    reference_id = values["reference_id"].strip()
    others = [other for other in lines_of.get(reference_id, []) if other != line]
    if others and "reference_id" not in errors:
        where = f"{_plural(len(others), 'line', show=False)} {_listed(others)}"
        reason = f"Also on {where}: each row needs its own reference id (or leave it blank)."
        row.errors.append(("reference_id", reason))
    if not row.errors:
        row.job = cleaned
        row.language_name = language_names.get(row.job["target_language"], "")
    return row


# --- Uploads: kept, previewed, sent once ------------------------------------------------------------------


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        error_messages={
            "required": "Choose a CSV file to upload.",
            "empty": "The file is empty. It needs a header line and at least one row.",
        },
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
    )
    batch_name = TextField(
        label="Batch name",
        required=False,
        max_length=200,
        strip=True,
        help_text="Optional. Left blank, the batch is named after the file.",
    )

    def __init__(self, *args: Any, oversized: dict[str, int] | None = None, **kwargs: Any):
        """`oversized`: uploads.oversized_uploads(request), the files refused while they arrived."""
        super().__init__(*args, **kwargs)
        self.oversized = oversized or {}
        self.fields["file"].help_text = (
            f"UTF-8, comma or semicolon separated, header on line 1; at most {MAX_ROWS:,} rows and "
            f"{uploads.describe_size(max_bytes())}."
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "file" in self.oversized:
            # Refused while arriving (over UPLOAD_MAX_BYTES), so it is missing: say why, not "choose a file".
            self.errors.pop("file", None)
            self.add_error("file", str(too_large(self.oversized["file"])))
            return cleaned
        uploaded = cleaned.get("file")
        if uploaded:
            try:
                cleaned["content"] = read_upload(uploaded)
                read_table(cleaned["content"])  # file-wide problems refuse it here; row problems get a preview
            except CsvFileError as exc:
                self.add_error("file", str(exc))
        return cleaned


def store_upload(*, user: Any, filename: str, content: str, batch_name: str = "") -> CsvUpload:
    return CsvUpload.objects.create(
        created_by=user, filename=filename[:255], content=content, batch_name=batch_name[:200]
    )


def get_upload(*, user: Any, pk: int) -> CsvUpload:
    """Only the uploader sees an upload: anybody else gets a 404, as if it did not exist."""
    return get_object_or_404(CsvUpload.objects.select_related("batch"), pk=pk, created_by=user)


def batch_name_of(upload: CsvUpload) -> str:
    return (upload.batch_name or upload.filename)[:200]


def send_upload(*, upload: CsvUpload) -> Batch:
    """Create the upload's batch (then send what the rate budget allows now), exactly once.

    Marking the upload used and saving the batch happen in one transaction: a double click finds it used
    (AlreadySent), and a crash in between leaves neither. The rows are checked again first, since a
    reference id may have been taken since the preview (NotSendable, and nothing is saved)."""
    with transaction.atomic():
        if not CsvUpload.objects.filter(pk=upload.pk, used_at__isnull=True).update(used_at=timezone.now()):
            upload.refresh_from_db()
            raise AlreadySent(upload.batch)
        try:
            rows = check_rows(read_table(upload.content))
        except CsvFileError as exc:
            raise NotSendable(str(exc)) from exc
        invalid = [row for row in rows if row.errors]
        if invalid:
            raise NotSendable(
                f"Nothing was sent: {_plural(len(invalid), 'row')} of this file "
                f"{'has' if len(invalid) == 1 else 'have'} errors (a reference id may have been used since the "
                "preview). Fix the file and upload it again."
            )
        try:
            batch, submissions = services.save_batch(
                user=upload.created_by, name=batch_name_of(upload), rows=[row.job for row in rows]
            )
        except services.ReferenceIdTaken as exc:  # taken between the check and the insert: nothing was saved
            raise NotSendable(
                "Nothing was sent: a reference id in this file was taken by another submission a moment ago. "
                "The rows below show which one."
            ) from exc
        CsvUpload.objects.filter(pk=upload.pk).update(batch=batch)
    services.send_while_room(submissions)
    upload.refresh_from_db()
    return batch


# --- Wording ---------------------------------------------------------------------------------------------


def _plural(count: int, noun: str, *, show: bool = True) -> str:
    word = noun if count == 1 else f"{noun}s"
    return f"{count:,} {word}" if show else word


def _quoted(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


def _listed(numbers: list[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
