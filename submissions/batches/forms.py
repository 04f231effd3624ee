"""The batch form: one video, one row per language."""
from django import forms
from django.conf import settings

from submissions.core.fields import HttpUrlField, TextField
from submissions.core.urlnorm import normalise_url


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
        choices=[("", "Choose…"), *settings.DUBBING_LANGUAGES],
        widget=forms.Select(attrs={"aria-label": "Language"}),
    )
    audio_url = HttpUrlField(
        label="Audio URL", help_text="", widget=forms.URLInput(attrs={"aria-label": "Audio URL (WAV or MP3)"})
    )


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
