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
