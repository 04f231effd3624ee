"""The Members page's form: a member's role and monthly limit."""
from django import forms


class MemberForm(forms.Form):
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=[("", "No role (cannot see or send anything)"), ("Viewer", "Viewer"), ("Submitter", "Submitter"), ("Team admin", "Team admin")],
    )
    jobs_per_month = forms.IntegerField(
        label="Monthly job limit", required=False, min_value=1, max_value=1_000_000, help_text="Blank: no limit."
    )
