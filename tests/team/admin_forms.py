"""Django admin's user change form as a browser posts it, for the team's tests."""

from __future__ import annotations

from submissions.models import MonthlyLimit


def user_form(target, **changes) -> dict:
    """The admin change form for `target` as a browser would post it, with `changes` on top."""
    data = {
        "username": target.username, "first_name": target.first_name, "last_name": target.last_name,
        "email": target.email, "is_active": "on",
        "groups": [str(g.pk) for g in target.groups.all()],
        "user_permissions": [str(p.pk) for p in target.user_permissions.all()],
        "date_joined_0": target.date_joined.strftime("%Y-%m-%d"), "date_joined_1": target.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "", "last_login_1": "",
    }
    # The monthly limits inline (one form at most): as the page shows it, unchanged.
    limit = MonthlyLimit.objects.filter(user=target).first()
    data.update({"monthly_limit-TOTAL_FORMS": "1", "monthly_limit-INITIAL_FORMS": "1" if limit else "0",
                 "monthly_limit-MIN_NUM_FORMS": "0", "monthly_limit-MAX_NUM_FORMS": "1"})
    if limit is not None:
        data.update({"monthly_limit-0-id": str(limit.pk), "monthly_limit-0-user": str(target.pk)})
        for name in ("jobs_per_month", "minutes_per_month"):
            value = getattr(limit, name)
            data[f"monthly_limit-0-{name}"] = "" if value is None else str(value)
    if target.is_staff:
        data["is_staff"] = "on"
    if target.is_superuser:
        data["is_superuser"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}
