from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from submissions import chamelaion, services, tracking
from submissions.models import Problem, Submission

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
    list_filter = ("state", "created_by", "created_at", "is_external")
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

    def get_urls(self):
        import_view = self.admin_site.admin_view(require_POST(self.import_external_jobs))
        return [path("import/", import_view, name="submissions_submission_import")] + super().get_urls()

    def import_external_jobs(self, request):
        if not self.has_add_permission(request):
            messages.error(request, "You may not add submissions.")
        else:
            try:
                report = tracking.import_external_jobs()
            except chamelaion.ChamelaionError as error:
                messages.error(request, f"Import stopped: {error.user_message}")
            else:
                messages.success(
                    request,
                    f"Looked at {report.seen} jobs on the account: imported {report.imported}, "
                    f"{report.already_known} were already in DubDash.",
                )
        return redirect("admin:submissions_submission_changelist")

    def get_readonly_fields(self, request, obj=None):
        # Once sent, the inputs describe a real upstream job: editing them would make the history lie.
        if obj is not None and obj.state != Submission.State.PENDING:
            return ("created_by", "video_url", "audio_url", "disable_active_speaker_detection", "reference_id") + UPSTREAM_FIELDS
        return UPSTREAM_FIELDS

    @admin.action(description="Send again (the ones that could not be sent)")
    def send_again(self, request, queryset):
        sent = failed = 0
        for submission in queryset.filter(state=Submission.State.SEND_FAILED):
            result = services.send_again(submission=submission)
            if result.state == Submission.State.SEND_FAILED:
                failed += 1
            else:
                sent += 1
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Sent or queued {sent}; still not sent {failed}.", level)


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ("code", "message", "pauses_polling", "since", "last_seen")
    readonly_fields = ("code", "message", "pauses_polling", "since", "last_seen")

    def has_add_permission(self, request):
        return False  # raised by DubDash itself; deleting one dismisses it until it happens again
