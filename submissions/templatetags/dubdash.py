"""DubDash's template filters and tags. They return text and addresses, never HTML: markup lives in the
templates (the history's rows in submissions/jobs/_history_rows.html, a select's options in
submissions/core/_options.html), where the template engine escapes every value."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.timezone import get_current_timezone_name

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """A timedelta as a producer would say it: "2 h 5 min", "1 min 30 s", "4 s"."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


@register.filter(expects_localtime=True)
def iso_time(value: datetime) -> str:
    """A moment as ISO 8601 in the current time zone, for <time datetime>: what the date filter's "c" gives,
    at a fraction of its cost (the history shows 50 of these a page, every few seconds while it polls)."""
    return value.isoformat()


@register.filter(expects_localtime=True)
def to_the_minute(value: datetime) -> str:
    """A moment as "2026-12-01 14:05" in the current time zone (the date filter's "Y-m-d H:i", cheaper)."""
    return f"{value:%Y-%m-%d %H:%M}"


@register.filter
def content_key(rows: Iterable[Any]) -> str:
    """A key for a cached fragment of the history's rows ({% cache %} in _history_rows.html): every value of
    every row (HistoryRow, queue places included), and the time zone and address prefix they are shown
    with. Whatever changes in a row changes the key, so a cached fragment is never stale; it only spares
    rendering 50 unchanged rows again on every load and every poll. Also keys a list of choices (tuples)."""
    shown = (get_current_timezone_name(), get_script_prefix(), get_urlconf(), [getattr(row, "__dict__", row) for row in rows])
    return hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()


@register.simple_tag
def url_of(name: str) -> str:
    """{% url %} for an address without arguments, reversed once per process, script prefix and URLconf:
    the layout has ten of them on every page, and reverse() was half of its rendering time."""
    return _reverse_once(name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)


@functools.lru_cache(maxsize=256)
def _reverse_once(name: str, script_prefix: str, urlconf: str) -> str:
    return reverse(name)


@register.filter
def job_path(pk: int) -> str:
    """A job's address from its id, as reverse("submissions:detail") gives it, without a reverse() per row
    of the history (50 rows a page, every few seconds while it polls)."""
    return _address_pattern("submissions:detail", get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF).format(int(pk))


@register.filter
def batch_path(pk: int) -> str:
    """A batch's address from its id (see job_path)."""
    return _address_pattern("submissions:batch", get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF).format(int(pk))


@functools.lru_cache(maxsize=32)
def _address_pattern(name: str, script_prefix: str, urlconf: str) -> str:
    # The address with a placeholder for the id: reversed once, not per row. Only digits go in.
    marker = "999999999"
    return reverse(name, args=[marker]).replace(marker, "{}")
