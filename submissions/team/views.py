"""Team pages for team admins: members (roles and monthly limits in jobs and minutes) and usage."""

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from submissions import roles
from submissions.team import limits, usage
from submissions.team import services as team_services
from submissions.team.forms import MemberForm

USAGE_PERIODS = {7: "7 days", 30: "30 days", 90: "90 days", 365: "a year"}


@require_http_methods(["GET"])
@permission_required(roles.MANAGE_MEMBERS, raise_exception=True)
def members(request):
    return _members_page(request)


@require_POST
@permission_required(roles.MANAGE_MEMBERS, raise_exception=True)
def update_member(request, pk: int):
    member = get_object_or_404(get_user_model(), pk=pk, is_active=True)
    # With what is stored as its initial values, so the form knows which fields this POST changes.
    form = _member_form(member, team_services.assignable_roles(actor=request.user), data=request.POST, initial=_stored(member))
    try:
        if not form.is_valid():
            # Someone out of reach learns nothing from the form's errors: the page offers them no form, so
            # only a stale page or a hand-made POST gets here.
            team_services.ensure_can_change(actor=request.user, member=member)
            problems = "; ".join(
                f"{form.fields[name].label}: {' '.join(map(str, errors))}" for name, errors in form.errors.items()
            )
            messages.error(request, f"Nothing changed for {member.get_username()}. {problems}")
            # The page again, this member's row as typed and with its errors: nothing typed is lost.
            return _members_page(request, bound=form, bound_pk=member.pk, status=400)
        data = form.cleaned_data
        team_services.update_member(
            actor=request.user,
            member=member,
            role=data["role"],
            jobs_per_month=data["jobs_per_month"],
            minutes_per_month=data["minutes_per_month"],
        )
    except team_services.MemberOutOfReach as refused:
        raise PermissionDenied(str(refused)) from refused
    messages.success(request, f"Saved {member.get_username()}.")
    return redirect("submissions:team_members")


def _members_page(request, *, bound: MemberForm | None = None, bound_pk: int | None = None, status: int = 200):
    people = team_services.active_members()
    used = limits.use_this_month_by_member()
    changeable = team_services.changeable_user_ids(actor=request.user, targets=people)
    offered = team_services.assignable_roles(actor=request.user)
    rows = []
    for person in people:
        limit = getattr(person, "monthly_limit", None)
        is_bound = bound is not None and person.pk == bound_pk
        form = bound if is_bound and bound is not None else _member_form(person, offered, initial=_stored(person))
        use = used.get(person.pk, limits.MonthUse())
        rows.append(
            {
                "person": person,
                "form": form,
                "used": use.jobs,
                "minutes": use.minutes,
                # The stored limits, not the typed ones: a row sent back with errors still says what applies.
                "jobs_limit": limit.jobs_per_month if limit else None,
                "minutes_limit": limit.minutes_per_month if limit else None,
                "changeable": person.pk in changeable,
            }
        )
    context = {
        "rows": rows,
        "minutes_measured": limits.minutes_are_measured(),
        "minutes_not_measured": limits.MINUTES_NOT_MEASURED,
    }
    return render(request, "submissions/team/team_members.html", context, status=status)


def _stored(person: Any) -> dict[str, Any]:
    """A member's role and limits as stored: the Members form's initial values."""
    limit = getattr(person, "monthly_limit", None)
    return {
        "role": team_services.role_of(person),
        "jobs_per_month": limit.jobs_per_month if limit else None,
        "minutes_per_month": limit.minutes_per_month if limit else None,
    }


def _member_form(person: Any, offered: list[str], **kwargs: Any) -> MemberForm:
    return MemberForm(prefix=f"member-{person.pk}", offered=offered, form_id=f"member-form-{person.pk}", **kwargs)


@require_http_methods(["GET"])
@permission_required(roles.VIEW_USAGE, raise_exception=True)
def usage_page(request):
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in USAGE_PERIODS else 30
    context = {"days": days, "periods": USAGE_PERIODS, "usage": usage.usage(since=usage.period_start(days))}
    return render(request, "submissions/team/team_usage.html", context)
