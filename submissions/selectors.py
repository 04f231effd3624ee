"""Reads. Views and admin get their querysets here so visibility rules live in one place."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from submissions.models import Submission


def submissions_of(*, user: Any) -> QuerySet[Submission]:
    return Submission.objects.filter(created_by=user).select_related("created_by")


def visible_submissions(*, user: Any) -> QuerySet[Submission]:
    """Staff see every submission; everybody else their own."""
    queryset = Submission.objects.select_related("created_by")
    return queryset if user.is_staff else queryset.filter(created_by=user)


def get_visible_submission(*, user: Any, pk: int) -> Submission:
    return get_object_or_404(visible_submissions(user=user), pk=pk)


def get_resendable_submission(*, user: Any, pk: Any) -> Submission | None:
    """The failed submission a re-posted form refers to, if this user may send it again."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return submissions_of(user=user).filter(pk=pk, state=Submission.State.SEND_FAILED).first()


def filtered_history(*, user: Any, params: Any) -> QuerySet[Submission]:
    """The user's history narrowed by the query string (bookmarkable): `batch` (id), `batch_name`."""
    queryset = submissions_of(user=user).select_related("batch")
    batch = params.get("batch", "")
    if batch.isdigit():
        queryset = queryset.filter(batch_id=int(batch))
    batch_name = params.get("batch_name", "").strip()
    if batch_name:
        queryset = queryset.filter(batch__name__icontains=batch_name)
    return queryset
