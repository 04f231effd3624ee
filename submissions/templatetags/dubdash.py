from datetime import timedelta

from django import template

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


@register.simple_tag
def options(choices, selected) -> str:
    """<option>s built in Python: Django's widget templates render each option through the template
    engine, which made a 100-language list the slowest part of the history page."""
    from django.utils.html import format_html, format_html_join

    selected = "" if selected is None else str(selected)
    return format_html_join(
        "",
        "{}",
        (
            (
                format_html('<option value="{}" selected>{}</option>', value, label)
                if str(value) == selected
                else format_html('<option value="{}">{}</option>', value, label),
            )
            for value, label in choices
        ),
    )


@register.simple_tag
def history_rows(submissions) -> str:
    """The history's rows, built in Python: the hottest page of the app, where the template engine's
    per-variable cost (about 15 lookups a row, 50 rows, every few seconds while polling) dominated.
    Everything is escaped by format_html; links are only ever our own paths."""
    from django.urls import reverse
    from django.utils import timezone
    from django.utils.html import format_html, format_html_join

    marker = "999999999"
    job_url = reverse("submissions:detail", args=[marker]).replace(marker, "{}")
    batch_url = reverse("submissions:batch", args=[marker]).replace(marker, "{}")

    def row(s):
        queue = (
            format_html('<small class="queue">#{} in line, about {}</small>', s.queue_place, timezone.localtime(s.queue_eta).strftime("%H:%M:%S"))
            if getattr(s, "queue_place", None)
            else ""
        )
        batch = format_html('<a href="{}">{}</a>', batch_url.format(s.batch_id), s.batch.name) if s.batch_id else "—"
        who = s.created_by.get_username() if s.created_by_id else format_html("<em>outside DubDash</em>")
        created = timezone.localtime(s.created_at)
        return (
            format_html(
                '<tr id="submission-{}"><td><a href="{}">{}</a></td><td>{}</td>'
                '<td><span class="badge badge-{}" data-state="{}">{}</span>{}</td><td>{}</td><td>{}</td>'
                '<td class="mono">{}</td><td class="mono">{}</td><td><time datetime="{}">{}</time></td></tr>',
                s.pk, job_url.format(s.pk), s.title or "(untitled)", s.language_name or "—",
                s.state, s.state, s.status_label, queue, batch, who,
                s.reference_id or "—", s.request_id or "—", created.isoformat(), created.strftime("%Y-%m-%d %H:%M"),
            ),
        )

    return format_html_join("\n", "{}", (row(s) for s in submissions))
