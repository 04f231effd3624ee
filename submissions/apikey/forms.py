"""The field for a new API key (settings page and admin): cleaned and checked, never echoed back."""
from django import forms
from django.views.decorators.debug import sensitive_variables

from submissions.apikey import keys


class ApiKeyField(forms.CharField):
    """The Chamelaion key, write-only: a password input that is never filled in, not even after an error,
    so a form shown again never carries the key back to the browser."""

    def __init__(self, **kwargs):
        widget = forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
        )
        super().__init__(label="New API key", max_length=keys.MAX_KEY_LENGTH, widget=widget, **kwargs)

    @sensitive_variables("value")
    def clean(self, value):
        """The key as keys.store_api_key takes it, or what is wrong with it (never echoing it)."""

        value = super().clean(value)
        try:
            return keys.clean_api_key(value)
        except keys.InvalidApiKey as exc:
            raise forms.ValidationError(str(exc)) from None
