"""The activity trail in the admin: read only, filterable by who did what."""

from django.contrib import admin

from submissions.admin.submissions import ActorFilter
from submissions.models import Activity

# --- Activity trail -----------------------------------------------------------------------------------


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    """Read-only: a trail nobody can rewrite from here."""

    list_display = ("at", "actor_name", "verb", "submission", "batch", "details")
    list_filter = ("verb", ("actor", ActorFilter), "at")
    search_fields = (
        "details",
        "actor__username",
        "submission__title",
        "submission__reference_id",
        "submission__request_id",
        "batch__name",
    )
    list_select_related = ("actor", "submission", "batch")
    show_full_result_count = False
    date_hierarchy = "at"

    @admin.display(description="Actor", ordering="actor__username")
    def actor_name(self, obj):
        return obj.actor.get_username() if obj.actor else "DubDash"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
