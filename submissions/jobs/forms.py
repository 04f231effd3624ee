from typing import Any, ClassVar, cast

from django import forms
from django.conf import settings

from submissions.core import paging
from submissions.core.fields import HttpUrlField, TextField, refuse_generated_form
from submissions.models import (
    REFERENCE_ID_MAX_LENGTH,
    Submission,
    reference_id_validator,
)

# Said whether the form finds the id taken or the database refuses it a moment later (two people, one id).
REFERENCE_ID_TAKEN = "Another submission already uses this reference id. Choose another one."

class SubmissionForm(forms.Form):
    video_url = HttpUrlField(label="Video URL", help_text="A public MP4 link.")
    audio_url = HttpUrlField(label="Audio URL", help_text="A public WAV or MP3 link with the new language track.")
    target_language = forms.ChoiceField(
        label="Target language", required=False, choices=[("", "Not set"), *settings.DUBBING_LANGUAGES]
    )
    title = TextField(label="Title or note", required=False, max_length=200, strip=True)
    reference_id = TextField(
        label="Reference id",
        required=False,
        max_length=REFERENCE_ID_MAX_LENGTH,
        strip=True,
        validators=[reference_id_validator, refuse_generated_form],
        help_text="Optional, your own id for this job. Left blank, DubDash makes a unique one.",
    )
    disable_active_speaker_detection = forms.BooleanField(
        label="Disable active speaker detection",
        required=False,
        help_text="For footage with a single speaker, or when detection picks the wrong face.",
    )

    def __init__(self, *args, resubmitting: Submission | None = None, **kwargs):
        self.resubmitting = resubmitting
        super().__init__(*args, **kwargs)
        self.fields["reference_id"].widget.attrs.update({"spellcheck": "false", "autocomplete": "off"})

    def clean_reference_id(self):
        reference_id = self.cleaned_data["reference_id"]
        if reference_id:
            taken = Submission.objects.filter(reference_id=reference_id)
            if self.resubmitting is not None:
                taken = taken.exclude(pk=self.resubmitting.pk)
            if taken.exists():
                raise forms.ValidationError(REFERENCE_ID_TAKEN)
        return reference_id


class HistoryFilterForm(forms.Form):
    """The history's filters, from the query string (so a filtered view can be bookmarked and shared).
    A bad value gets a message next to its field; the good ones still apply."""

    SORTS: ClassVar[list[tuple[str, str]]] = [("created", "Newest first"), ("finished", "Recently finished (finished jobs only)")]
    STATES: ClassVar[list[tuple[str, str]]] = [("", "Any state"), *Submission.State.choices]
    LANGUAGES: ClassVar[list[tuple[str, str]]] = [("", "Any language"), *settings.DUBBING_LANGUAGES]

    # The fixed lists are given as callables: this form is built on every load and poll of the history,
    # and Django deep-copies list choices (a hundred languages) into every instance.
    scope = forms.ChoiceField(choices=[("mine", "Mine"), ("team", "Team")], required=False)
    q = TextField(label="Search", required=False, max_length=200, strip=True)
    # Checked against the member list the page loads anyway, so filtering by member costs no extra query.
    member = forms.TypedChoiceField(label="Member", required=False, coerce=int, empty_value=None)
    state = forms.ChoiceField(label="State", required=False, choices=lambda: HistoryFilterForm.STATES)
    language = forms.ChoiceField(label="Language", required=False, choices=lambda: HistoryFilterForm.LANGUAGES)
    batch = forms.IntegerField(label="Batch id", required=False, min_value=1, max_value=paging.MAX_ID)
    batch_name = TextField(label="Batch name", required=False, max_length=200, strip=True)
    created_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(label="Sort", required=False, choices=lambda: HistoryFilterForm.SORTS)

    def __init__(self, *args, members: list[tuple[int, str]], **kwargs):
        """`members`: (id, username) pairs, from selectors.member_choices()."""
        super().__init__(*args, **kwargs)
        # The select's options, as strings: what the query string holds.
        self.member_options = [(str(pk), username) for pk, username in members]
        cast(forms.ChoiceField, self.fields["member"]).choices = [("", "Anyone"), *self.member_options]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "The end date is before the start date.")
        return cleaned

    @property
    def applied(self) -> dict:
        """The valid filters only: one bad field does not throw the others away."""
        self.is_valid()
        return {name: value for name, value in getattr(self, "cleaned_data", {}).items() if value not in (None, "")}
