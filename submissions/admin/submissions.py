"""Django admin for the people who look after DubDash: jobs, batches, the activity trail and problems.

Actions call the same services as the pages (refresh, send again, cancel), so the rules and the activity
trail are the same whichever way a job is handled. Adding and editing go through services too
(submissions.jobs.edit_services), which note them in the activity trail; Django's LogEntry keeps the edit
as well ("Changed Title and Target language."). Every list is one query for its rows, whatever the
page size: related objects come with list_select_related, counts with an annotation.
"""

import json

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.db import models
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_POST

from submissions import chamelaion, roles
from submissions.core import activity, paging
from submissions.jobs import edit_services
from submissions.jobs import selectors as job_selectors
from submissions.jobs import services as job_services
from submissions.models import Batch, Submission
from submissions.outbox import selectors as outbox_selectors
from submissions.team import limits
from submissions.tracking import imports, refresh

State = Submission.State
TIMES = "\N{MULTIPLICATION SIGN}"  # as in "3 (times) Checked just now: completed."

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
INPUT_FIELDS = edit_services.FIXED_ONCE_SENT
ALWAYS_READ_ONLY = (*UPSTREAM_FIELDS, "batch", "is_external", "activity_trail")
# "Refresh status now" asks Chamelaion once per job, inside the admin's request: a few dozen at most. The
# worker keeps every job up to date anyway.
REFRESH_ACTION_LIMIT = 50
BATCH_FILTER_CHOICES = 30
NO_VALUE = "none"


# --- Filters ------------------------------------------------------------------------------------------


class MemberFilter(admin.RelatedFieldListFilter):
    """The created_by filter, named as the team says it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "member"


class ActorFilter(admin.RelatedFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "actor"


class LanguageFilter(admin.SimpleListFilter):
    """Only the target languages actually used (read at most every few seconds), by name."""

    title = "language"
    parameter_name = "language"

    def lookups(self, request, model_admin):
        names = dict(settings.DUBBING_LANGUAGES)
        used = job_selectors.languages_in_use()
        choices = sorted(((code, f"{names.get(code, code)} ({code})") for code in used if code), key=lambda c: c[1])
        if "" in used:
            choices.append((NO_VALUE, "Not set"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(target_language="" if value == NO_VALUE else value)


class BatchFilter(admin.SimpleListFilter):
    """The newest batches (a team makes many: listing them all would bury the sidebar), plus the one
    chosen. Any batch can be shown with ?batch=<id>, as the batch list's job counts link."""

    title = "batch"
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        newest = Batch.objects.order_by("-created_at", "-id").values_list("pk", "name")[:BATCH_FILTER_CHOICES]
        choices = [(str(pk), name) for pk, name in newest]
        chosen = paging.as_id(self.value())
        if chosen and str(chosen) not in {pk for pk, _ in choices}:
            choices += [(str(pk), name) for pk, name in Batch.objects.filter(pk=chosen).values_list("pk", "name")]
        return [*choices, (NO_VALUE, "No batch")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == NO_VALUE:
            return queryset.filter(batch__isnull=True)
        batch_id = paging.as_id(value)
        if batch_id:
            return queryset.filter(batch_id=batch_id)
        return queryset if value is None else queryset.none()


class HasErrorFilter(admin.SimpleListFilter):
    """A send that failed (last_error) or a job Chamelaion reported failing (upstream_error_message)."""

    title = "has error"
    parameter_name = "has_error"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        with_error = Q(last_error__gt="") | Q(upstream_error_message__gt="")
        if self.value() == "yes":
            return queryset.filter(with_error)
        if self.value() == "no":
            return queryset.exclude(with_error)
        return queryset


# --- Jobs ---------------------------------------------------------------------------------------------


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "title_or_id",
        "created_by",
        "language",
        "state",
        "batch",
        "reference_id",
        "request_id",
        "created_at",
    )
    list_filter = (
        "state",
        ("created_by", MemberFilter),
        LanguageFilter,
        BatchFilter,
        HasErrorFilter,
        "created_at",
        "is_external",
    )
    search_fields = ("request_id", "reference_id", "video_url", "audio_url", "title")
    list_select_related = ("created_by", "batch")
    show_full_result_count = False  # counting every row on every page is slow with 100k jobs
    date_hierarchy = "created_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ALWAYS_READ_ONLY
    fieldsets = (
        (None, {"fields": ("created_by", "title", "target_language", "batch", "is_external")}),
        ("Inputs", {"fields": ("video_url", "audio_url", "disable_active_speaker_detection", "reference_id")}),
        ("Chamelaion", {"fields": UPSTREAM_FIELDS}),
        ("Activity", {"fields": ("activity_trail",)}),
    )
    actions = ["refresh_status", "send_again", "cancel_waiting"]

    @admin.display(description="Title", ordering="title")
    def title_or_id(self, obj):
        return str(obj)

    @admin.display(description="Target language", ordering="target_language")
    def language(self, obj):
        return f"{obj.language_name} ({obj.target_language})" if obj.target_language else "—"

    @admin.display(description="Activity (newest first)")
    def activity_trail(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        entries = activity.of_submission(obj)
        if not entries:
            return "Nothing recorded."
        return render_to_string("admin/submissions/parts/activity_trail.html", {"entries": entries})

    # --- Import button (templates/admin/submissions/submission/change_list.html) ---

    def get_urls(self):
        import_view = self.admin_site.admin_view(require_POST(self.import_external_jobs))
        return [path("import/", import_view, name="submissions_submission_import"), *super().get_urls()]

    def import_external_jobs(self, request):
        if not self.has_add_permission(request):
            messages.error(request, "You may not add submissions.")
        else:
            try:
                report = imports.import_external_jobs(actor=request.user)
            except chamelaion.ChamelaionError as error:
                messages.error(request, f"Import stopped: {error.user_message}")
            else:
                messages.success(
                    request,
                    f"Looked at {report.seen} jobs on the account: imported {report.imported}, "
                    f"{report.already_known} were already in DubDash.",
                )
        return redirect("admin:submissions_submission_changelist")

    # --- Editing ---

    def get_readonly_fields(self, request, obj=None):
        # Once sent (or possibly sent), the inputs describe a real upstream job: editing them would make the
        # history lie.
        if obj is not None and not obj.can_cancel:
            return (*INPUT_FIELDS, *ALWAYS_READ_ONLY)
        return ALWAYS_READ_ONLY

    def save_model(self, request, obj, form, change):
        """The services write (edit_services: only the changed fields; inputs only while nothing has been
        sent) and note it in the activity trail, with the summary Django's LogEntry keeps."""
        if not change:
            edit_services.add_job(submission=obj, actor=request.user)
            return
        summary = LogEntry(change_message=json.dumps(self.construct_change_message(request, form, []))).get_change_message()
        changes = {name: getattr(obj, name) for name in form.changed_data}
        if not edit_services.edit_job(submission=obj, changes=changes, actor=request.user, summary=f"In admin: {summary}"):
            request._submission_not_saved = True

    def log_change(self, request, obj, message):
        if getattr(request, "_submission_not_saved", False):
            return None
        return super().log_change(request, obj, message)  # LogEntry: "Changed Title and Target language."

    def response_change(self, request, obj):
        if getattr(request, "_submission_not_saved", False):
            self.message_user(
                request,
                "Not saved: the job left “Waiting to send” while you were editing, so its inputs can no longer "
                "change. This page shows it as it is now.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    # --- Actions: the same services as the pages ---

    def has_retry_permission(self, request):
        return request.user.has_perm(roles.RETRY_ANY_JOB)

    @admin.action(description="Refresh status now", permissions=["view"])
    def refresh_status(self, request, queryset):
        report = refresh.refresh_selected(submissions=queryset, actor=request.user, limit=REFRESH_ACTION_LIMIT)
        parts = [f"Asked Chamelaion about {report.asked}." if report.asked else "Asked Chamelaion about none."]
        parts += [f"{count} {TIMES} {result.message}" for result, count in report.results.most_common()]
        if report.skipped:
            parts.append(
                f"Skipped {report.skipped}: not sent yet, already finished, or over {REFRESH_ACTION_LIMIT} at a time "
                "(the worker keeps those up to date)."
            )
        self.message_user(request, " ".join(parts), messages.WARNING if report.skipped else messages.SUCCESS)

    @admin.action(description="Send again (the ones that could not be sent)", permissions=["retry"])
    def send_again(self, request, queryset):
        selected = queryset.count()
        sent = failed = 0
        over_limit: list[str] = []
        for submission in outbox_selectors.sendable_again(queryset).order_by("pk"):
            try:
                result = job_services.send_again(submission=submission, user=request.user)
            except limits.MonthlyLimitReached as exc:
                over_limit.append(str(exc))
                continue
            if result.state == State.SEND_FAILED:
                failed += 1
            else:
                sent += 1
        message = f"Sent or queued {sent}; still not sent {failed}."
        if over_limit:
            message += f" Not sent again, over a monthly limit: {len(over_limit)} ({over_limit[0]})"
        skipped = selected - sent - failed - len(over_limit)
        if skipped:
            message += f" Skipped {skipped} that {'was' if skipped == 1 else 'were'} not waiting to be sent again."
        self.message_user(request, message, messages.WARNING if failed or skipped or over_limit else messages.SUCCESS)

    @admin.action(description="Cancel (waiting to send only)", permissions=["retry"])
    def cancel_waiting(self, request, queryset):
        selected = queryset.count()
        cancelled = 0
        for submission in queryset.filter(state=State.PENDING).order_by("pk"):
            cancelled += job_services.cancel(submission=submission, user=request.user)
        message = f"Cancelled {cancelled}."
        skipped = selected - cancelled
        if skipped:
            message += (
                f" Skipped {skipped} that {'was' if skipped == 1 else 'were'} not waiting to send (being sent, "
                "sent or finished, or an earlier attempt may have reached Chamelaion)."
            )
        self.message_user(request, message, messages.WARNING if skipped else messages.SUCCESS)
