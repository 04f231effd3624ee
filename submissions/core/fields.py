"""Form fields shared by every form that takes text or links from a person."""

from typing import Any, ClassVar

from django import forms
from django.core.validators import MaxLengthValidator, URLValidator

from submissions.core.reference_ids import chose_reference_id
from submissions.core.text import refuse_control_characters
from submissions.models import (
    URL_MAX_LENGTH,
)


def refuse_generated_form(value: str) -> None:
    """For an id a person chooses (not on the model: admin edits jobs that carry DubDash's own): one shaped
    like DubDash's would pass for it and skip the check, made before a chosen id's first send, that no job
    outside DubDash already holds it."""
    if value and not chose_reference_id(value):
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
    default_error_messages: ClassVar[dict[str, Any]] = {"invalid": "Enter a full web address starting with http:// or https://."}

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
