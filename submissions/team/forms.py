"""The Members page's form: a member's role and monthly limits (jobs, minutes of output, or both)."""

from collections.abc import Collection
from typing import Any, cast

from django import forms

from submissions import roles
from submissions.team import limits

ROLE_CHOICES = [
    ("", "No role (cannot see or send anything)"),
    (roles.VIEWER, roles.VIEWER),
    (roles.SUBMITTER, roles.SUBMITTER),
    (roles.REVIEWER, roles.REVIEWER),
    (roles.TEAM_ADMIN, roles.TEAM_ADMIN),
]
# Far above any real month, and within every database's PositiveIntegerField.
LIMIT_MAX = 1_000_000
LIMIT_ERRORS = {
    "invalid": "Enter a whole number of 0 or more, or leave it blank for no limit.",
    "min_value": "Enter a whole number of 0 or more, or leave it blank for no limit.",
    "max_value": f"Enter at most {LIMIT_MAX:,}, or leave it blank for no limit.",
}
LIMIT_FIELDS = ("jobs_per_month", "minutes_per_month")


def _limit_field(label: str) -> forms.IntegerField:
    # 0 is a limit too: nothing more this month (a member paused without taking their role away).
    # No help text: the page says once, above the table, what blank means, and the field's placeholder too.
    return forms.IntegerField(
        label=label, required=False, min_value=0, max_value=LIMIT_MAX, error_messages=LIMIT_ERRORS
    )


class MinutesLimitCheck(forms.BaseForm):
    """Refuses a minutes limit this deployment cannot measure (limits.refuse_unmeasurable_minutes): the
    Members page's form and admin's monthly limits inline both mix it in."""

    def clean_minutes_per_month(self) -> int | None:
        minutes = self.cleaned_data["minutes_per_month"]
        refusal = limits.refuse_unmeasurable_minutes(minutes=minutes, changed="minutes_per_month" in self.changed_data)
        if refusal:
            raise forms.ValidationError(refusal)
        return minutes


class MemberForm(MinutesLimitCheck, forms.Form):
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=ROLE_CHOICES,
    )
    jobs_per_month = _limit_field("Monthly job limit")
    minutes_per_month = _limit_field("Monthly minutes limit")

    def __init__(self, *args: Any, offered: Collection[str], form_id: str, **kwargs: Any):
        """`offered`: the roles the person filling it in may give (team_services.assignable_roles).
        `form_id`: the HTML form the fields belong to (the page lays each member's fields out in table cells)."""
        super().__init__(*args, **kwargs)
        role = cast(forms.ChoiceField, self.fields["role"])
        role.choices = [(value, label) for value, label in ROLE_CHOICES if not value or value in offered]
        role.widget.attrs["form"] = form_id
        for name in LIMIT_FIELDS:
            self.fields[name].widget.attrs.update({"form": form_id, "placeholder": "No limit"})
