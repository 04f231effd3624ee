"""Importing the jobs of the account that were made outside DubDash, marked external."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from submissions import chamelaion
from submissions.apikey import clients
from submissions.core import activity
from submissions.models import Submission
from submissions.tracking import snapshots
from submissions.tracking.services import PAGE_SIZE, STORE_ERRORS

logger = logging.getLogger(__name__)


# --- Importing jobs made elsewhere ----------------------------------------------------------------


@dataclass
class ImportReport:
    seen: int = 0
    imported: int = 0
    already_known: int = 0
    api_calls: int = 0


def import_external_jobs(*, actor=None) -> ImportReport:
    """Add every job of the account that DubDash does not know, marked external. Safe to run again:
    jobs are matched by request id, and by reference id for DubDash's own jobs whose send is unconfirmed.
    `actor`: who asked, for the activity trail (None: a command or the worker)."""
    client = clients.get_client()
    report = ImportReport()
    offset, total = 0, None
    while total is None or offset < total:
        page = client.list_requests(limit=PAGE_SIZE, offset=offset)
        total, offset = page.total, offset + page.size
        report.seen += page.size
        new = _unknown_jobs(page.requests)
        imported = _insert(new)
        report.imported += imported
        report.already_known += len(page.requests) - len(new)
        if not page.size:
            break
    report.api_calls = client.calls
    details = f"Looked at {report.seen} jobs on the account, imported {report.imported}"
    activity.record(actor=actor, verb=activity.Verb.IMPORTED, details=details)  # activity trail
    return report


def _insert(new: list[Submission]) -> int:
    """Add the page's new jobs in one statement; should that fail, one by one, so that a job the database
    refuses costs only itself. ignore_conflicts: a concurrent import may add some first."""
    try:
        with transaction.atomic():
            Submission.objects.bulk_create(new, ignore_conflicts=True)
        return len(new)
    except STORE_ERRORS:
        logger.warning("Importing a page of jobs failed; importing them one by one")
    imported = 0
    for submission in new:
        try:
            with transaction.atomic():
                Submission.objects.bulk_create([submission], ignore_conflicts=True)
            imported += 1
        except STORE_ERRORS:
            logger.exception("Could not import request %s", submission.request_id)
    return imported


def _unknown_jobs(requests: list[chamelaion.LipsyncRequest]) -> list[Submission]:
    known_ids = set(
        Submission.objects.filter(request_id__in=[r.id for r in requests]).values_list("request_id", flat=True)
    )
    references = [r.reference_id for r in requests if r.reference_id]
    known_references = set(
        Submission.objects.filter(reference_id__in=references).values_list("reference_id", flat=True)
    )
    now = timezone.now()
    new = []
    for request in requests:
        if request.id in known_ids or request.reference_id in known_references:
            continue  # ours: sent by DubDash, or being settled by its send
        fields = snapshots.upstream_fields(request)
        new.append(
            Submission(
                is_external=True,
                request_id=request.id,
                reference_id=request.reference_id or None,
                created_at=request.created_at or now,
                next_poll_at=now if fields["state"] in Submission.UPSTREAM_IN_FLIGHT else None,
                **fields,
            )
        )
    return new
