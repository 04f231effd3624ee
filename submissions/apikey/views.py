"""The team admins' page for the Chamelaion API key: where the key in use comes from, set or rotate the
stored one, remove it, and test the connection. The key is write-only: no page shows more than its last
four characters, and the form never sends it back to the browser."""

from django import forms
from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from submissions import roles
from submissions.apikey import connection, keys
from submissions.apikey.forms import ApiKeyField

MANAGE = roles.MANAGE_API_KEY


class ApiKeyForm(forms.Form):
    api_key = ApiKeyField(
        help_text="Paste the token from Chamelaion. It is stored encrypted and used at once by every page and "
        "the worker; afterwards only its last four characters are shown.",
    )


@sensitive_post_parameters("api_key")
@require_http_methods(["GET", "POST"])
@permission_required(MANAGE, raise_exception=True)
def api_key(request):
    if request.method == "GET":
        return _page(request, form=ApiKeyForm())
    if request.POST.get("action") == "remove":
        return _remove(request)
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        replacing = keys.active_key_source() == "stored"
        try:
            credential = keys.store_api_key(token=form.cleaned_data["api_key"], user=request.user)
        except keys.CredentialError as exc:
            form.add_error(None, str(exc))
        else:
            _record(request, credential, CHANGE if replacing else ADDITION, "Set on the settings page.")
            messages.success(
                request,
                f"Saved: DubDash now uses the key {keys.mask(form.cleaned_data['api_key'])}, everywhere at "
                "once. Test the connection to check that Chamelaion accepts it.",
            )
            return redirect("submissions:api_key")
    return _page(request, form=form)


@sensitive_post_parameters("api_key")
@require_POST
@permission_required(MANAGE, raise_exception=True)
def test_connection(request):
    return _page(request, form=ApiKeyForm(), check=connection.check_connection())


def _remove(request):
    status = connection.key_status()
    if status.stored is None:
        messages.info(request, "No key is stored in DubDash: there was nothing to remove.")
        return redirect("submissions:api_key")
    stored = status.stored
    if keys.clear_api_key(user=request.user):
        _record(request, stored, DELETION, "Removed on the settings page.")
    after = connection.key_status()
    if after.source == "environment":
        messages.success(request, f"Stored key removed. DubDash now uses CHAMELAION_API_KEY ({after.masked}).")
    else:
        messages.success(request, "Stored key removed. No key is configured anywhere: DubDash is in sandbox mode.")
    return redirect("submissions:api_key")


def _record(request, credential, action_flag: int, message: str) -> None:
    """The same history the admin keeps (who changed the key, when), so it reads the same whichever way
    the key was changed. The entry names the key by its last four characters only."""
    LogEntry.objects.log_actions(
        user_id=request.user.pk, queryset=[credential], action_flag=action_flag, change_message=message, single_object=True
    )


def _page(request, *, form: ApiKeyForm, check: connection.ConnectionCheck | None = None):
    context = {
        "status": connection.key_status(),
        "form": form,
        "check": check,
        "not_configured": keys.NOT_CONFIGURED,
    }
    return render(request, "submissions/apikey/api_key.html", context)
