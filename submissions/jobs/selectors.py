"""Reads of jobs: which ones a member may see, and the history with its filters, search and paging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from submissions import roles
from submissions.core import paging, shortcache
from submissions.models import JobLabels, OutputCopy, Submission


def submissions_of(*, user: Any) -> QuerySet[Submission]:
    return Submission.objects.filter(created_by=user).select_related("created_by")


def visible_submissions(*, user: Any) -> QuerySet[Submission]:
    """Anyone with a role sees the team's submissions; a user without one only their own."""
    queryset = Submission.objects.select_related("created_by", "batch")
    return queryset if user.has_perm(roles.VIEW_TEAM_HISTORY) else queryset.filter(created_by=user)


def get_visible_submission(*, user: Any, pk: int) -> Submission:
    return get_object_or_404(visible_submissions(user=user), pk=pk)


def has_inputs_to_send() -> Q:
    """It still has something to send: links, or uploaded files not yet deleted (uploads.cleanup deletes
    those of jobs that could not be sent, after some days). The one rule for whether sending a job again
    can send anything: Send again's guard (services.reopen) and "Retry the failed ones" ask it."""
    return ~Q(video_url="") | ~Q(video_upload="")


def get_resendable_submission(*, user: Any, pk: Any) -> Submission | None:
    """The failed submission a re-posted form refers to, if this user may send it again."""
    number = paging.as_id(pk)
    if number is None:
        return None
    # Not one a later take replaces: sending it would make two live jobs for one language.
    return submissions_of(user=user).filter(pk=number, state=Submission.State.SEND_FAILED, retried_as__isnull=True).first()


SEARCHED_FIELDS = ("title", "reference_id", "request_id", "video_url", "audio_url")


def _matching(term: str) -> Q:
    """Jobs where any searched field contains `term`. On PostgreSQL each field has a trigram index
    (migration 0010): a rare term is found through them (a BitmapOr of the five), a common one by walking
    the date index until the page is full. With 100,000 jobs: 0.2 to 3.4 ms for the terms tried, where a
    UNION of the five lookups first collected every match of a common term ("Episode", ".mp4": 100 ms)."""
    matches = Q()
    for field in SEARCHED_FIELDS:
        matches |= Q(**{f"{field}__icontains": term})
    return matches


def _member_choices() -> list[tuple[int, str]]:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    active = User.objects.filter(is_active=True).order_by(User.USERNAME_FIELD)
    return list(active.values_list("pk", User.USERNAME_FIELD))


# The team tab's member filter: on every load and every poll of the history, and people join rarely.
MEMBER_CHOICES = shortcache.ShortCached("dubdash:member-choices", _member_choices, models=(settings.AUTH_USER_MODEL,))


def member_choices() -> list[tuple[int, str]]:
    """(id, username) of everyone active, by username."""
    return MEMBER_CHOICES.get()


def _languages_in_use() -> set[str]:
    return set(Submission.objects.order_by().values_list("target_language", flat=True).distinct())


# A DISTINCT over every job (tens of milliseconds at 100,000): the admin's language filter asks on every page.
LANGUAGES_IN_USE = shortcache.ShortCached("dubdash:languages-in-use", _languages_in_use, models=("submissions.Submission",))


def languages_in_use() -> set[str]:
    """The target language codes some job has ("" for a job without one)."""
    return LANGUAGES_IN_USE.get()


@dataclass
class HistoryRow(JobLabels):
    """One line of the history: the columns the page shows, its cursors and live polling need. Read as
    plain values: building 50 model instances (and their members and batches) cost more than the query."""

    pk: int
    title: str
    target_language: str
    state: str
    upstream_status: str
    reference_id: str
    request_id: str | None
    created_at: datetime
    finished_at: datetime | None
    batch_id: int | None
    batch_name: str | None
    created_by_id: int | None
    creator: str | None  # the member's username; None for a job made outside DubDash
    copy_state: str | None  # where the kept copy of its output stands (OutputCopy.State); None: no copy
    queue_place: int | None = None  # for a job waiting to send (outbox.queue_positions)
    queue_eta: datetime | None = None


    @property
    def copy_label(self) -> str:
        return OutputCopy.LABELS.get(self.copy_state, "") if self.copy_state and settings.OUTPUT_KEEP else ""

    @property
    def copying(self) -> bool:
        """Its copy is still being made: the page keeps polling until it is kept or given up."""
        return settings.OUTPUT_KEEP and self.copy_state in (OutputCopy.State.WAITING, OutputCopy.State.RUNNING)


def _history_columns() -> tuple[str, ...]:
    from django.contrib.auth import get_user_model

    return (
        "pk", "title", "target_language", "state", "upstream_status", "reference_id", "request_id", "created_at",
        "finished_at", "batch_id", "batch__name", "created_by_id", f"created_by__{get_user_model().USERNAME_FIELD}",
        "output_copy__state",
    )


def history_page(*, user: Any, filters: dict, size: int, after: str = "", before: str = "") -> paging.Page:
    """One page of the history (selectors.history), its rows as HistoryRow."""
    queryset, sort_field = history(user=user, filters=filters)
    page = paging.keyset_page(
        queryset.values_list(*_history_columns(), named=True), field=sort_field, size=size, after=after, before=before
    )
    page.rows = [HistoryRow(*row) for row in page.rows]
    return page


# Each plain filter of the history (forms.HistoryFilterForm) and the lookup it stands for.
FILTER_LOOKUPS = {
    "member": "created_by_id",
    "state": "state",
    "language": "target_language",
    "batch": "batch_id",
    "batch_name": "batch__name__icontains",
    "created_from": "created_at__date__gte",
    "created_to": "created_at__date__lte",
}


def history(*, user: Any, filters: dict) -> tuple[QuerySet[Submission], str]:
    """The history the filters describe, and the field it is sorted by (newest first).
    "Mine" is the user's own jobs; "Team" everyone's, for those allowed to see them."""
    queryset = Submission.objects.all()  # each reader picks its columns (history_page) or joins (csv_export)
    if filters.get("scope") != "team" or not user.has_perm(roles.VIEW_TEAM_HISTORY):
        queryset = queryset.filter(created_by=user)
    queryset = queryset.filter(**{lookup: filters[name] for name, lookup in FILTER_LOOKUPS.items() if name in filters})
    if "q" in filters:
        queryset = queryset.filter(_matching(filters["q"]))
    if filters.get("sort") == "finished":
        return queryset.filter(finished_at__isnull=False), "finished_at"
    return queryset, "created_at"
