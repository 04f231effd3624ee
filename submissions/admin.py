from django.contrib import admin, messages

from submissions import services
from submissions.models import Submission

UPSTREAM_FIELDS = (
    "state",
    "request_id",
    "upstream_status",
    "upstream_created_at",
    "started_at",
    "finished_at",
    "output_url",
    "upstream_error_message",
    "send_attempts",
    "last_attempt_at",
    "outcome_unknown_since",
    "last_error",
    "created_at",
    "sent_at",
    "last_synced_at",
)


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "created_by", "target_language", "state", "reference_id", "request_id", "created_at")
    list_filter = ("state", "created_by", "created_at")
    search_fields = ("request_id", "reference_id", "video_url", "audio_url", "title")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    readonly_fields = UPSTREAM_FIELDS
    fieldsets = (
        (None, {"fields": ("created_by", "title", "target_language")}),
        ("Inputs", {"fields": ("video_url", "audio_url", "disable_active_speaker_detection", "reference_id")}),
        ("Chamelaion", {"fields": UPSTREAM_FIELDS}),
    )
    actions = ["send_again"]

    def get_readonly_fields(self, request, obj=None):
        # Once sent, the inputs describe a real upstream job: editing them would make the history lie.
        if obj is not None and obj.state != Submission.State.PENDING:
            return ("created_by", "video_url", "audio_url", "disable_active_speaker_detection", "reference_id") + UPSTREAM_FIELDS
        return UPSTREAM_FIELDS

    @admin.action(description="Send again (the ones that could not be sent)")
    def send_again(self, request, queryset):
        sent = failed = 0
        for submission in queryset.filter(state=Submission.State.SEND_FAILED):
            result = services.send_submission(submission=submission)
            if result.state == Submission.State.SEND_FAILED:
                failed += 1
            else:
                sent += 1
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Sent {sent}; still not sent {failed}.", level)
