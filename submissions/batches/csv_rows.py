"""Checking a spreadsheet's rows: each with the single-job form's own rules (a CSV row follows exactly the
rules of a job typed in by hand), and reference ids unique in the file and unused in DubDash."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.forms.utils import ErrorDict

from submissions.batches.csv_parse import (
    FALSE_WORDS,
    FORM_FIELD,
    TRUE_WORDS,
    Row,
    Table,
    listed,
    plural,
    shortened,
)
from submissions.jobs.forms import SubmissionForm
from submissions.models import REFERENCE_ID_MAX_LENGTH, Submission


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

    def check(self, data: dict[str, str]) -> tuple[ErrorDict, dict[str, Any]]:
        """(errors, cleaned data) of one row. One form serves the whole file, filled again for each row:
        building a form copies its fields (the list of languages), which for 5,000 rows takes seconds."""
        self.data, self.is_bound = data, True
        self.full_clean()
        return self.errors, dict(self.cleaned_data)


# --- Uploads: kept, previewed, sent once ------------------------------------------------------------------


def rows_as_sent(table: Table) -> list[Row]:
    """A sent file's rows as they were, unchecked: checked now, every reference id would be found taken, by
    the batch's own jobs."""
    return [Row(line=line, values=values) for line, values, _ in table.rows]


def check_rows(table: Table) -> list[Row]:
    """Every row checked with the single-job form's rules; reference ids must also be unique in the file."""
    reference_ids = [values["reference_id"].strip() for _, values, _ in table.rows]
    lines_of = defaultdict(list)
    for (line, _, _), reference_id in zip(table.rows, reference_ids, strict=True):
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
        found = Submission.objects.filter(reference_id__in=chunk).values_list("reference_id", flat=True)
        taken.update(reference_id for reference_id in found if reference_id)
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
        reason = f"“{shortened(typed)}” is not a yes or no: use true or false (or yes/no, 1/0), or leave it blank."
        row.errors.append(("disable_active_speaker_detection", reason))
    data = {FORM_FIELD.get(column, column): value for column, value in values.items()}
    # Codes are lower case (pt-br); a spreadsheet may well say PT-BR or pt_BR.
    data["target_language"] = data["target_language"].strip().lower().replace("_", "-")
    data["disable_active_speaker_detection"] = "true" if switch in TRUE_WORDS else "false"
    errors, cleaned = form.check(data)
    columns = {"__all__": "", **{form_field: column for column, form_field in FORM_FIELD.items()}}
    for form_field, reasons in errors.items():
        # An ErrorList yields its messages (str() makes a translatable one plain text).
        row.errors.extend((columns.get(form_field, form_field), str(reason)) for reason in reasons)
    reference_id = values["reference_id"].strip()
    others = [other for other in lines_of.get(reference_id, []) if other != line]
    if others and "reference_id" not in errors:
        where = f"{plural(len(others), 'line', show=False)} {listed(others)}"
        reason = f"Also on {where}: each row needs its own reference id (or leave it blank)."
        row.errors.append(("reference_id", reason))
    if not row.errors:
        row.job = cleaned
        row.language_name = language_names.get(row.job["target_language"], "")
    return row
