from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator, URLValidator
from django.views.decorators.debug import sensitive_variables

from submissions import paging
from submissions.models import (
    GENERATED_REFERENCE_ID,
    REFERENCE_ID_MAX_LENGTH,
    URL_MAX_LENGTH,
    Submission,
    reference_id_validator,
)
from submissions.text import refuse_control_characters
from submissions.urlnorm import normalise_url


def refuse_generated_form(value: str) -> None:
    """For an id a person chooses (not on the model: admin edits jobs that carry DubDash's own): one shaped
    like DubDash's would pass for it and skip the check, made before a chosen id's first send, that no job
    outside DubDash already holds it."""
    if GENERATED_REFERENCE_ID.fullmatch(value or ""):
        raise forms.ValidationError(
            "Ids of the form dubdash- and 32 letters and digits are DubDash's own. Choose another.", code="generated_form"
        )


class TextField(forms.CharField):
    """A line of text. A control character gets one clear message (Django's own check only knows NUL),
    before any other check can complain about the same character less clearly."""

    def validate(self, value):
        super().validate(value)
        refuse_control_characters(value)


class HttpUrlField(TextField):
    """An absolute http(s) URL, taken as typed: unlike forms.URLField it never guesses a missing scheme."""

    widget = forms.URLInput
    default_error_messages = {"invalid": "Enter a full web address starting with http:// or https://."}

    def __init__(self, **kwargs):
        super().__init__(max_length=URL_MAX_LENGTH, strip=True, **kwargs)
        self.validators = [
            MaxLengthValidator(
                URL_MAX_LENGTH, f"Keep the address to at most {URL_MAX_LENGTH} characters (it has %(show_value)d)."
            ),
            URLValidator(schemes=["http", "https"], message=self.error_messages["invalid"]),
        ]

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)  # let an over-long paste through so the user sees why it is refused
        return {**attrs, "spellcheck": "false", "autocomplete": "off"}


class SubmissionForm(forms.Form):
    video_url = HttpUrlField(label="Video URL", help_text="A public MP4 link.")
    audio_url = HttpUrlField(label="Audio URL", help_text="A public WAV or MP3 link with the new language track.")
    target_language = forms.ChoiceField(
        label="Target language", required=False, choices=[("", "Not set")] + settings.DUBBING_LANGUAGES
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
                raise forms.ValidationError("Another submission already uses this reference id. Choose another one.")
        return reference_id


class BatchForm(forms.Form):
    name = TextField(label="Batch name", max_length=200, strip=True, help_text="For example “Episode 4”.")
    video_url = HttpUrlField(label="Source video URL", help_text="One public MP4 link, dubbed into every language below.")
    disable_active_speaker_detection = forms.BooleanField(
        label="Disable active speaker detection", required=False, help_text="Applies to every language."
    )


class BatchRowForm(forms.Form):
    # Shown as table columns, whose headings label them only for sighted users: screen readers get these.
    target_language = forms.ChoiceField(
        label="Language",
        choices=[("", "Choose…")] + settings.DUBBING_LANGUAGES,
        widget=forms.Select(attrs={"aria-label": "Language"}),
    )
    audio_url = HttpUrlField(label="Audio URL", help_text="", widget=forms.URLInput(attrs={"aria-label": "Audio URL (WAV or MP3)"}))


class BaseBatchRowFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            key = (form.cleaned_data.get("target_language"), normalise_url(form.cleaned_data.get("audio_url", "")))
            if key in seen:
                raise forms.ValidationError("The same language and audio appear twice; remove one of them.")
            seen.add(key)


BatchRowFormSet = forms.formset_factory(
    BatchRowForm, formset=BaseBatchRowFormSet, extra=0, min_num=1, validate_min=True, max_num=100, validate_max=True
)


class HistoryFilterForm(forms.Form):
    """The history's filters, from the query string (so a filtered view can be bookmarked and shared).
    A bad value gets a message next to its field; the good ones still apply."""

    SORTS = [("created", "Newest first"), ("finished", "Recently finished (finished jobs only)")]
    STATES = [("", "Any state"), *Submission.State.choices]
    LANGUAGES = [("", "Any language"), *settings.DUBBING_LANGUAGES]

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
        self.fields["member"].choices = [("", "Anyone")] + [(str(pk), username) for pk, username in members]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "The end date is before the start date.")
        return cleaned

    @property
    def applied(self) -> dict:
        """The valid filters only: one bad field does not throw the others away."""
        self.is_valid()
        return {name: value for name, value in getattr(self, "cleaned_data", {}).items() if value not in (None, "")}


class MemberForm(forms.Form):
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=[("", "No role (cannot see or send anything)"), ("Viewer", "Viewer"), ("Submitter", "Submitter"), ("Team admin", "Team admin")],
    )
    jobs_per_month = forms.IntegerField(
        label="Monthly job limit", required=False, min_value=1, max_value=1_000_000, help_text="Blank: no limit."
    )


class ApiKeyField(forms.CharField):
    """The Chamelaion key, write-only: a password input that is never filled in, not even after an error,
    so a form shown again never carries the key back to the browser."""

    def __init__(self, **kwargs):
        from submissions.credentials import MAX_KEY_LENGTH

        widget = forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
        )
        super().__init__(label="New API key", max_length=MAX_KEY_LENGTH, widget=widget, **kwargs)

    @sensitive_variables("value")
    def clean(self, value):
        """The key as credentials.store_api_key takes it, or what is wrong with it (never echoing it)."""
        from submissions import credentials

        value = super().clean(value)
        try:
            return credentials.clean_api_key(value)
        except credentials.InvalidApiKey as exc:
            raise forms.ValidationError(str(exc)) from None
