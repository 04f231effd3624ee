"""The CSV upload form: the file (size, encoding, rows) and the batch's name."""

from __future__ import annotations

from typing import Any

from django import forms

from submissions.batches.csv_parse import (
    MAX_ROWS,
    CsvFileError,
    max_bytes,
    read_table,
    read_upload,
    too_large,
)
from submissions.core.fields import TextField
from submissions.uploads import files as upload_files


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
        """`oversized`: upload_files.oversized_uploads(request), the files refused while they arrived."""
        super().__init__(*args, **kwargs)
        self.oversized = oversized or {}
        self.fields["file"].help_text = (
            f"UTF-8, comma or semicolon separated, header on line 1; at most {MAX_ROWS:,} rows and "
            f"{upload_files.describe_size(max_bytes())}."
        )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
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
