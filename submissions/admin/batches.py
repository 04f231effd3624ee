"""Batches in the admin, with their jobs' progress."""

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse

from submissions.admin.submissions import BatchFilter, MemberFilter
from submissions.models import Batch, Submission

# --- Batches ------------------------------------------------------------------------------------------


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at", "jobs")
    list_filter = (("created_by", MemberFilter), "created_at")
    search_fields = ("name",)
    list_select_related = ("created_by",)
    show_full_result_count = False
    fields = ("name", "created_by", "created_at", "jobs")
    readonly_fields = ("created_by", "created_at", "jobs")

    def get_queryset(self, request):
        # A correlated count: evaluated for the rows on the page only (by the batch_id index), not a
        # GROUP BY over every job of every batch.
        jobs = Submission.objects.filter(batch=OuterRef("pk")).order_by().values("batch").annotate(n=Count("pk")).values("n")
        return super().get_queryset(request).annotate(job_count=Coalesce(Subquery(jobs, output_field=IntegerField()), 0))

    @admin.display(description="Jobs", ordering="job_count")
    def jobs(self, obj):
        url = reverse("admin:submissions_submission_changelist") + f"?{BatchFilter.parameter_name}={obj.pk}"
        return render_to_string("admin/submissions/parts/batch_jobs_link.html", {"url": url, "count": obj.job_count})

    def has_add_permission(self, request):
        return False  # batches are made from the pages (form or CSV), which also send them
