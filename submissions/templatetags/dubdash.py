import functools
from datetime import timedelta
from html import escape

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

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


def _text(value) -> str:
    """Escaped for HTML text and attribute values, quotes included (as Django's escape)."""
    return escape(str(value), quote=True)


@register.simple_tag
def options(choices, selected) -> SafeString:
    """<option>s built in Python: Django's widget templates render each option through the template
    engine, which made a 100-language list the slowest part of the history page. Fixed lists (states,
    languages, sorts) are escaped once per process; only the selected mark changes."""
    selected = "" if selected is None else str(selected)
    return mark_safe("".join(
        f'<option value="{value}" selected>{label}</option>' if raw == selected else f'<option value="{value}">{label}</option>'
        for raw, value, label in _escaped_choices(tuple(choices))
    ))


@functools.lru_cache(maxsize=64)
def _escaped_choices(choices: tuple[tuple, ...]) -> tuple[tuple[str, str, str], ...]:
    return tuple((str(value), _text(value), _text(label)) for value, label in choices)


@register.simple_tag
def url_of(name: str) -> str:
    """{% url %} for an address without arguments, reversed once per process, script prefix and URLconf:
    the layout has ten of them on every page, and reverse() was half of its rendering time."""
    return _reverse_once(name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)


@functools.lru_cache(maxsize=256)
def _reverse_once(name: str, script_prefix: str, urlconf: str) -> str:
    return reverse(name)


@functools.lru_cache(maxsize=16)
def _url_patterns(script_prefix: str, urlconf: str | None) -> tuple[str, str]:
    # A job's and a batch's address with a placeholder for the id: reversed once, not per row.
    marker = "999999999"
    return tuple(reverse(name, args=[marker]).replace(marker, "{}") for name in ("submissions:detail", "submissions:batch"))


@register.simple_tag
def history_rows(submissions) -> SafeString:
    """The history's rows (selectors.HistoryRow), built in Python: the hottest page of the app (50 rows,
    every few seconds while polling), where the template engine's per-variable cost, and then
    format_html's, dominated. Every value from a user or from the API goes through _text; links are only
    ever our own paths."""
    job_url, batch_url = _url_patterns(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    zone = timezone.get_current_timezone()
    rows = []
    for s in submissions:
        queue = ""
        if s.queue_place:
            queue = f'<small class="queue">#{s.queue_place} in line, about {s.queue_eta.astimezone(zone):%H:%M:%S}</small>'
        batch = f'<a href="{batch_url.format(s.batch_id)}">{_text(s.batch_name)}</a>' if s.batch_id else "—"
        who = _text(s.creator) if s.created_by_id else "<em>outside DubDash</em>"
        created = s.created_at.astimezone(zone).isoformat()
        state = _text(s.state)
        rows.append(
            f'<tr id="submission-{s.pk}"><td><a href="{job_url.format(s.pk)}">{_text(s.title or "(untitled)")}</a></td>'
            f"<td>{_text(s.language_name or '—')}</td>"
            f'<td><span class="badge badge-{state}" data-state="{state}">{_text(s.status_label)}</span>{queue}</td>'
            f"<td>{batch}</td><td>{who}</td>"
            f'<td class="mono">{_text(s.reference_id or "—")}</td><td class="mono">{_text(s.request_id or "—")}</td>'
            f'<td><time datetime="{created}">{created[:10]} {created[11:16]}</time></td></tr>'
        )
    return mark_safe("\n".join(rows))
