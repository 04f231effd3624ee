"""Error reports never show the API key, wherever it sits."""

from __future__ import annotations

from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from submissions.apikey.keys import known_secrets

# --- Error reports ------------------------------------------------------------------------------------


KEY_FORM_FIELDS = {"api_key"}  # the settings page's and the admin's field for a new key


class SecretScrubbingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter (settings and request headers by name; @sensitive_variables and
    @sensitive_post_parameters when DEBUG is off), plus: any frame variable or POST value that contains a
    known key is hidden, whatever its name and even with DEBUG on. The key sits in variables nobody can
    decorate, such as the request headers inside requests and urllib3."""

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        secrets = known_secrets()
        if not secrets:
            return variables
        return [(name, self.cleansed_substitute if _shows_any(value, secrets) else value) for name, value in variables]

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if not hasattr(parameters, "lists"):
            return parameters
        secrets = known_secrets()
        # The key form's own field always, even if the crash came before the view marked it sensitive.
        leaking = [
            name
            for name, values in parameters.lists()
            if name in KEY_FORM_FIELDS or any(_shows_any(value, secrets) for value in values)
        ]
        if not leaking:
            return parameters
        cleansed = parameters.copy()
        for name in leaking:
            cleansed[name] = self.cleansed_substitute
        return cleansed


def _shows_any(value: Any, secrets: list[str]) -> bool:
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # a broken __repr__ shows no secret; the report prints its own error for it
        return False
    return any(secret in text for secret in secrets)
