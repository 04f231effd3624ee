"""Deployment-wide problems (key rejected, quota used up, unreachable) in the admin."""


from django.contrib import admin

from submissions.models import Problem


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ("code", "message", "pauses_polling", "since", "last_seen")
    readonly_fields = ("code", "message", "pauses_polling", "since", "last_seen")

    def has_add_permission(self, request):
        return False  # raised by DubDash itself; deleting one dismisses it until it happens again
