"""The one place a state changes, a submission's or an outbox task's: a guarded, conditional UPDATE."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, Q


def transition(instance: Model, *, expected: str | Iterable[str], guard: Q | None = None, **fields: Any) -> bool:
    """The one place a state changes (a Submission's, or an outbox task's): a conditional UPDATE on the state
    it expects (and an optional extra guard), so a process holding a stale copy cannot overwrite what another
    wrote meanwhile. On success the instance is updated too; otherwise it is reloaded (if it still exists)."""
    expected_states = [expected] if isinstance(expected, str) else list(expected)
    rows = type(instance)._default_manager.filter(pk=instance.pk, state__in=expected_states)
    if guard is not None:
        rows = rows.filter(guard)
    changed = rows.update(**fields)
    if changed:
        for name, value in fields.items():
            setattr(instance, name, value)
    else:
        with contextlib.suppress(ObjectDoesNotExist):  # deleted meanwhile: nothing to reload
            instance.refresh_from_db()
    return bool(changed)


def nothing_sent_yet() -> Q:
    """No attempt has reached Chamelaion, nor may have: no job can exist upstream. With the state "waiting
    to send", the job's inputs may still change and it may be withdrawn (Submission.can_cancel)."""
    return Q(request_id__isnull=True, outcome_unknown_since__isnull=True)
