"""The Members page's form: a member's role and monthly limit."""

from collections.abc import Collection
from typing import Any, cast

from django import forms

from submissions import roles

ROLE_CHOICES = [
    ("", "No role (cannot see or send anything)"),
    (roles.VIEWER, roles.VIEWER),
    (roles.SUBMITTER, roles.SUBMITTER),
    (roles.TEAM_ADMIN, roles.TEAM_ADMIN),
]


class MemberForm(forms.Form):
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=ROLE_CHOICES,
    )
    jobs_per_month = forms.IntegerField(
        label="Monthly job limit", required=False, min_value=1, max_value=1_000_000, help_text="Blank: no limit."
    )

    def __init__(self, *args: Any, offered: Collection[str], **kwargs: Any):
        """`offered`: the roles the person filling it in may give (team_services.assignable_roles)."""
        super().__init__(*args, **kwargs)
        role = cast(forms.ChoiceField, self.fields["role"])
        role.choices = [(value, label) for value, label in ROLE_CHOICES if not value or value in offered]
