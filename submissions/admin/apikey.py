"""The stored API key in the admin: set or clear it (encrypted), never shown again."""

from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from submissions import roles
from submissions.apikey import keys
from submissions.apikey.forms import ApiKeyField
from submissions.models import ApiCredential


class ApiCredentialForm(forms.ModelForm):
    """Write-only: the new key goes in a password field that is never filled in (not even after an error),
    and the row itself is written by keys.store_api_key, encrypted. Django's history entry for a
    change names the field ("Changed New API key."), never its value."""

    api_key = ApiKeyField(
        help_text="Stored encrypted and used at once everywhere, without a restart. Only its last four "
        "characters are shown afterwards. It takes precedence over CHAMELAION_API_KEY.",
    )

    class Meta:
        model = ApiCredential
        fields: list[str] = []  # every column is derived from the key by keys.store_api_key

    def clean(self):
        if not keys.encryption_configured():
            raise forms.ValidationError(keys.NOT_CONFIGURED)
        return super().clean()


@admin.register(ApiCredential)
class ApiCredentialAdmin(admin.ModelAdmin):
    """The same key as the settings page (/settings/api-key/), for the same people: manage_api_key."""

    form = ApiCredentialForm
    list_display = ("__str__", "updated_at", "updated_by")
    fields = ("key_in_use", "api_key", "updated_at", "updated_by")
    readonly_fields = ("key_in_use", "updated_at", "updated_by")

    @admin.display(description="Stored key")
    def key_in_use(self, obj):
        return f"{keys.MASK} {obj.last_four}" if obj and obj.last_four else "—"

    def _may_manage(self, request) -> bool:
        return request.user.is_active and request.user.has_perm(roles.MANAGE_API_KEY)

    def has_module_permission(self, request):
        return self._may_manage(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._may_manage(request)

    def has_change_permission(self, request, obj=None):
        return self._may_manage(request)

    def has_delete_permission(self, request, obj=None):
        return self._may_manage(request)

    def has_add_permission(self, request):
        return self._may_manage(request) and not ApiCredential.objects.exists()  # one row at most

    @method_decorator(sensitive_post_parameters("api_key"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        stored = keys.store_api_key(token=form.cleaned_data["api_key"], user=request.user)
        obj.pk = stored.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def delete_model(self, request, obj):
        keys.clear_api_key(user=request.user)

    def delete_queryset(self, request, queryset):
        keys.clear_api_key(user=request.user)
