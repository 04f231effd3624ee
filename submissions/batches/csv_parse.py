"""Reading a spreadsheet: size, encoding, delimiter, header and rows.

A file-wide problem (too big, not UTF-8, no usable header, too many rows) refuses the file at once. Line
numbers are the ones a spreadsheet shows: the header is line 1, a row with a line break inside quotes is
still one line. The rows are then checked by csv_services with the single-job form's own rules.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from submissions.uploads import files as upload_files

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


# --- Reading a file --------------------------------------------------------------------------------


def max_bytes() -> int:
    """A CSV file's limit: its own, or the deployment's limit for any upload where that is lower."""
    return min(MAX_BYTES, settings.UPLOAD_MAX_BYTES)


def too_large(size: int) -> CsvFileError:
    return CsvFileError(
        f"The file is too large ({upload_files.describe_size(size, round_up=True)}); the limit is "
        f"{upload_files.describe_size(max_bytes())}. Split it into smaller files (at most {MAX_ROWS:,} rows each)."
    )


def read_upload(uploaded_file: Any) -> str:
    """The text of an uploaded file; the size is checked before a byte is read."""
    if uploaded_file.size > max_bytes():
        raise too_large(uploaded_file.size)
    return decode(uploaded_file.read())


def decode(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise CsvFileError(
            # The angle quote Excel's menu paths are written with, named so it is not taken for a typo of ">".
            "This is an Excel workbook, not a CSV file. In Excel choose File \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "
            "Save As \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} “CSV UTF-8 (Comma delimited)” and upload that file."
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
    unknown = [value.strip() for value, name in zip(values, names, strict=True) if name and name not in COLUMNS]
    if unknown:
        problems.append(
            f"The header has {plural(len(unknown), 'column')} DubDash does not know: {_quoted(unknown)}. "
            f"The columns are {', '.join(COLUMNS)} (any order; only video_url and audio_url are required)."
        )
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        problems.append(f"The header has {_quoted(repeated)} more than once: keep one of each.")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        noun = plural(len(missing), "column", show=False)
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
                f"Column {position + 1} has a value (“{shortened(value)}”) but no name in the header. "
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


# --- Wording ---------------------------------------------------------------------------------------------


def plural(count: int, noun: str, *, show: bool = True) -> str:
    word = noun if count == 1 else f"{noun}s"
    return f"{count:,} {word}" if show else word


def _quoted(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


def listed(numbers: list[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def shortened(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
