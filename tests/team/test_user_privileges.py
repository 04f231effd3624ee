"""Issue 9, item 1: nobody but a superuser can make a superuser or staff, change a superuser, or give groups
and permissions beyond their own role's reach, in Django admin or on the Members page.

Every path that changes a user is tried as every kind of person, with crafted POSTs; each case checks the
exact status code and the whole privilege picture of the database afterwards (every user's superuser and
staff flags, password hash, groups and own permissions, and every group's permissions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from submissions import roles
from submissions.team import services as team_services
from tests.factories import make_member, make_part
from tests.team.admin_forms import user_form

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "viewer", "submitter", "team_admin", "staff_team_admin", "superuser"]
LOGIN = "login"  # DubDash's login page
ADMIN_LOGIN = "admin login"  # admin sends a logged-in user without staff status to its own login page
NEW_PASSWORD = "Brand-new-pass-4821"


def permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture
def world(db):
    # The actors: the cast's parts, under the names the cases below were written with.
    people = {part: make_part(part, username=name, password="x") for part, name in [
        ("viewer", "vera"), ("submitter", "sub"), ("team_admin", "tina"), ("staff_team_admin", "stan"),
        ("superuser", "chief"),
    ]}
    # The people changed: the superuser, a plain member, a staff viewer, and a staff user holding a
    # permission no team admin holds.
    root = make_part("superuser", username="root", password="root-password-1")
    maria = make_member("maria", role=roles.SUBMITTER, password="x")
    sam = make_member("sam", role=roles.VIEWER, password="x", is_staff=True)
    olga = make_member("olga", role=roles.VIEWER, password="x", is_staff=True)
    olga.user_permissions.add(permission("auth.delete_user"))
    ops = Group.objects.create(name="Ops")
    ops.permissions.add(permission("auth.delete_user"), permission("auth.change_group"))
    return {**people, "root": root, "maria": maria, "sam": sam, "olga": olga, "ops": ops}


def snapshot(django_user_model) -> dict:
    """Everything that decides what anyone may do."""
    users = {
        u.username: {
            "is_superuser": u.is_superuser,
            "is_staff": u.is_staff,
            "is_active": u.is_active,
            "first_name": u.first_name,
            "password": u.password,
            "groups": sorted(g.name for g in u.groups.all()),
            "user_permissions": sorted(p.codename for p in u.user_permissions.all()),
        }
        for u in django_user_model.objects.prefetch_related("groups", "user_permissions")
    }
    groups = {g.name: sorted(p.codename for p in g.permissions.all()) for g in Group.objects.prefetch_related("permissions")}
    return {"users": users, "groups": groups}


class Changed:
    """Compares equal to anything but the old value: a password hash that must have changed."""

    def __init__(self, old):
        self.old = old

    def __eq__(self, other):
        return other != self.old

    def __repr__(self):
        return f"<anything but {self.old!r}>"


def group_id(name: str) -> str:
    return str(Group.objects.get(name=name).pk)


@dataclass
class Case:
    method: str
    url: Callable[[dict, object], str]
    data: Callable[[dict, object], dict]
    expected: tuple  # one per ACTORS
    effect: Callable[[dict, dict, object], None] | None = None  # edits the expected snapshot when allowed
    allowed: tuple = ("staff_team_admin", "superuser")  # whose request takes effect (if it is a POST)


def _own(w, actor):
    return actor or w["maria"]  # anonymous has no account of its own: they try maria's


def _own_effect(before, w, actor):
    me = before["users"][actor.username]
    me["first_name"] = "Me"
    if actor.is_superuser:
        me.update(is_staff=True, is_superuser=True, user_permissions=["delete_user"])


def _promote_effect(before, w, actor):
    maria = before["users"]["maria"]
    maria.update(first_name="Promoted", groups=["Team admin"])
    if actor.is_superuser:
        maria.update(is_superuser=True, is_staff=True, user_permissions=["delete_user"])


def _add_effect(before, w, actor):
    before["users"]["newbie"] = {"is_superuser": False, "is_staff": False, "is_active": True, "first_name": "",
                                 "password": Changed(None), "groups": [], "user_permissions": []}


def _new_password(name):
    def effect(before, w, actor):
        before["users"][name]["password"] = Changed(before["users"][name]["password"])
    return effect


def _role(name, role):
    def effect(before, w, actor):
        before["users"][name]["groups"] = [role]
    return effect


CRAFTED = {"is_superuser": "on", "is_staff": "on"}
MEMBERS = "submissions:team_member_update"


def _members_case(name: str, role: str, expected: tuple, allowed: tuple = ("staff_team_admin", "superuser")) -> Case:
    """The Members page's POST giving `name` the `role` (no monthly limit)."""
    return Case(
        "POST", lambda w, a: reverse(MEMBERS, args=[w[name].pk]),
        lambda w, a: {f"member-{w[name].pk}-role": role, f"member-{w[name].pk}-jobs_per_month": ""},
        expected, _role(name, role), allowed)

#                      anonymous    viewer       submitter    team_admin   staff TA  superuser
CASES = {
    "admin_own_change_crafted": Case(
        "POST", lambda w, a: reverse("admin:auth_user_change", args=[_own(w, a).pk]),
        lambda w, a: user_form(_own(w, a), first_name="Me", user_permissions=[str(permission("auth.delete_user").pk)], **CRAFTED),
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 302, 302), _own_effect),
    "admin_other_promote_crafted": Case(
        "POST", lambda w, a: reverse("admin:auth_user_change", args=[w["maria"].pk]),
        lambda w, a: user_form(w["maria"], first_name="Promoted", groups=[group_id(roles.TEAM_ADMIN)],
                               user_permissions=[str(permission("auth.delete_user").pk)], **CRAFTED),
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 302, 302), _promote_effect),
    "admin_other_arbitrary_group": Case(
        "POST", lambda w, a: reverse("admin:auth_user_change", args=[w["maria"].pk]),
        lambda w, a: user_form(w["maria"], groups=[group_id("Ops")]),
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, 302),
        lambda before, w, a: before["users"]["maria"].update(groups=["Ops"]), ("superuser",)),
    "admin_superuser_change_view": Case(
        "GET", lambda w, a: reverse("admin:auth_user_change", args=[w["root"].pk]), lambda w, a: {},
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, 200)),
    "admin_superuser_change": Case(
        "POST", lambda w, a: reverse("admin:auth_user_change", args=[w["root"].pk]),
        lambda w, a: user_form(w["root"], first_name="Hacked", is_superuser=None),
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 302),
        lambda before, w, a: before["users"]["root"].update(first_name="Hacked", is_superuser=False), ("superuser",)),
    "admin_add_user_crafted": Case(
        "POST", lambda w, a: reverse("admin:auth_user_add"),
        lambda w, a: {"username": "newbie", "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
                      "groups": [group_id("Ops"), group_id(roles.TEAM_ADMIN)],
                      "user_permissions": [str(permission("auth.delete_user").pk)], **CRAFTED},
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 302, 302), _add_effect),
    "admin_superuser_password": Case(
        "POST", lambda w, a: reverse("admin:auth_user_password_change", args=[w["root"].pk]),
        lambda w, a: {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 302),
        _new_password("root"), ("superuser",)),
    "admin_staff_beyond_reach_password": Case(
        "POST", lambda w, a: reverse("admin:auth_user_password_change", args=[w["olga"].pk]),
        lambda w, a: {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 302),
        _new_password("olga"), ("superuser",)),
    "admin_superuser_delete": Case(
        "POST", lambda w, a: reverse("admin:auth_user_delete", args=[w["root"].pk]), lambda w, a: {"post": "yes"},
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 302),
        lambda before, w, a: before["users"].pop("root"), ("superuser",)),
    "admin_bulk_delete": Case(
        "POST", lambda w, a: reverse("admin:auth_user_changelist"),
        lambda w, a: {"action": "delete_selected", "_selected_action": [str(w["root"].pk), str(w["maria"].pk)], "post": "yes"},
        # A team admin may not delete users: the action is not offered, and the list comes back unchanged.
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, 302),
        lambda before, w, a: [before["users"].pop(name) for name in ("root", "maria")], ("superuser",)),
    "admin_group_change": Case(
        "POST", lambda w, a: reverse("admin:auth_group_change", args=[Group.objects.get(name=roles.VIEWER).pk]),
        lambda w, a: {"name": roles.VIEWER, "permissions": [str(permission("auth.delete_user").pk)]},
        (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 302),
        lambda before, w, a: before["groups"].update({roles.VIEWER: ["delete_user"]}), ("superuser",)),
    "members_superuser": _members_case("root", roles.VIEWER, (LOGIN, 403, 403, 403, 403, 302), ("superuser",)),
    "members_staff_viewer": _members_case("sam", roles.TEAM_ADMIN, (LOGIN, 403, 403, 403, 302, 302)),
    "members_staff_beyond_reach": _members_case("olga", roles.TEAM_ADMIN, (LOGIN, 403, 403, 403, 403, 302), ("superuser",)),
    "members_plain_member": _members_case(
        "maria", roles.TEAM_ADMIN, (LOGIN, 403, 403, 302, 302, 302), ("team_admin", "staff_team_admin", "superuser")
    ),
}


def _request(client, case: Case, world: dict, actor):
    if actor is not None:
        client.force_login(actor)
    url = case.url(world, actor)
    return client.get(url) if case.method == "GET" else client.post(url, case.data(world, actor))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("who", ACTORS)
def test_every_user_changing_path_as_every_role(client, world, django_user_model, who, name):
    case = CASES[name]
    actor = world.get(who)
    before = snapshot(django_user_model)
    response = _request(client, case, world, actor)
    expected = case.expected[ACTORS.index(who)]

    if expected == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), f"{who} {name}"
    elif expected == ADMIN_LOGIN:
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), f"{who} {name}"
    else:
        assert response.status_code == expected, f"{who} {name}"
    if case.method == "POST" and who in case.allowed:
        case.effect(before, world, actor)
    assert snapshot(django_user_model) == before, f"{who} {name}"


# --- The defect, named ------------------------------------------------------------------------------------


def test_team_admin_with_staff_cannot_make_themselves_superuser(client, world, django_user_model):
    stan = world["staff_team_admin"]
    client.force_login(stan)
    response = client.post(reverse("admin:auth_user_change", args=[stan.pk]),
                           user_form(stan, is_superuser="on", user_permissions=[str(permission("auth.delete_user").pk)],
                                     groups=[group_id(roles.TEAM_ADMIN), group_id("Ops")]))
    stan.refresh_from_db()
    assert response.status_code == 200  # "Ops" is not a choice for a team admin: the form comes back
    assert not stan.is_superuser and list(stan.user_permissions.all()) == []
    assert [g.name for g in stan.groups.all()] == [roles.TEAM_ADMIN]
    # Without the out-of-reach group the form saves, and the ticked box is still ignored.
    response = client.post(reverse("admin:auth_user_change", args=[stan.pk]), user_form(stan, is_superuser="on"))
    stan.refresh_from_db()
    assert response.status_code == 302 and not stan.is_superuser and stan.is_staff
    page = client.get(reverse("admin:auth_user_change", args=[stan.pk])).content.decode()
    assert 'name="is_superuser"' not in page and 'name="is_staff"' not in page and 'name="user_permissions"' not in page


def test_team_admin_with_staff_cannot_reset_the_superusers_password(client, world):
    root = world["root"]
    client.force_login(world["staff_team_admin"])
    url = reverse("admin:auth_user_password_change", args=[root.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    root.refresh_from_db()
    assert response.status_code == 403 and root.check_password("root-password-1")


def test_team_admin_with_staff_cannot_change_or_delete_a_superuser(client, world):
    root = world["root"]
    client.force_login(world["staff_team_admin"])
    page = client.get(reverse("admin:auth_user_change", args=[root.pk])).content.decode()
    assert 'name="_save"' not in page  # shown, read only: team admins may view users
    assert client.post(reverse("admin:auth_user_change", args=[root.pk]), user_form(root, is_superuser=None)).status_code == 403
    assert client.post(reverse("admin:auth_user_delete", args=[root.pk]), {"post": "yes"}).status_code == 403
    root.refresh_from_db()
    assert root.is_superuser and root.is_active


def test_team_admin_adding_a_user_cannot_make_staff_superuser_or_give_groups(client, world, django_user_model):
    client.force_login(world["staff_team_admin"])
    response = client.post(reverse("admin:auth_user_add"), {
        "username": "newbie", "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
        "is_superuser": "on", "is_staff": "on", "groups": [group_id("Ops")],
        "user_permissions": [str(permission("auth.delete_user").pk)]})
    newbie = django_user_model.objects.get(username="newbie")
    assert response.status_code == 302
    assert not newbie.is_superuser and not newbie.is_staff
    assert list(newbie.groups.all()) == [] and list(newbie.user_permissions.all()) == []


def test_team_admin_in_admin_gives_only_the_three_roles_and_keeps_other_groups(client, world):
    maria, stan = world["maria"], world["staff_team_admin"]
    maria.groups.add(Group.objects.create(name="Newsletter"))  # a group with no permissions: within reach
    client.force_login(stan)
    page = client.get(reverse("admin:auth_user_change", args=[maria.pk])).content.decode()
    for role in roles.PERMISSIONS:
        assert f">{role}</option>" in page
    assert ">Ops</option>" not in page and ">Newsletter</option>" not in page
    response = client.post(reverse("admin:auth_user_change", args=[maria.pk]), user_form(maria, groups=[group_id(roles.VIEWER)]))
    assert response.status_code == 302
    assert sorted(g.name for g in maria.groups.all()) == ["Newsletter", roles.VIEWER]


def test_the_rule_in_one_place(world):
    tina, stan, chief = world["team_admin"], world["staff_team_admin"], world["superuser"]
    assert not team_services.can_change_user(actor=stan, target=world["root"])
    assert not team_services.can_change_user(actor=stan, target=world["olga"])  # holds what no team admin holds
    assert team_services.can_change_user(actor=stan, target=world["sam"])
    assert not team_services.can_change_user(actor=tina, target=world["sam"])
    assert team_services.can_change_user(actor=tina, target=world["maria"])
    assert team_services.can_change_user(actor=chief, target=world["root"])
    assert not team_services.can_change_user(actor=world["viewer"], target=world["maria"])  # holds less than maria
    assert team_services.assignable_roles(actor=stan) == [roles.VIEWER, roles.SUBMITTER, roles.REVIEWER, roles.TEAM_ADMIN]
    assert team_services.assignable_roles(actor=world["submitter"]) == [roles.VIEWER, roles.SUBMITTER]
    assert sorted(g.name for g in team_services.assignable_groups(actor=tina)) == sorted(roles.PERMISSIONS)
    assert "Ops" in {g.name for g in team_services.assignable_groups(actor=chief)}


def test_an_inactive_staff_user_beyond_reach_stays_out_of_reach(world):
    olga = world["olga"]
    olga.is_active = False
    olga.save()
    # Inactive, olga "has" no permissions; reactivated, she would have hers again.
    assert not team_services.can_change_user(actor=world["staff_team_admin"], target=olga)


def test_members_page_offers_a_form_only_for_whom_the_team_admin_may_change(client, world):
    client.force_login(world["team_admin"])
    page = client.get(reverse("submissions:team_members")).content.decode()
    for key in ("maria", "submitter", "viewer", "team_admin"):
        assert f'action="{reverse(MEMBERS, args=[world[key].pk])}"' in page
    for key in ("root", "sam", "olga", "superuser"):
        assert f'action="{reverse(MEMBERS, args=[world[key].pk])}"' not in page


def staff_team_admin_with(django_user_model, username: str, *extra: str):
    person = make_part("staff_team_admin", username=username, password="x")
    person.user_permissions.add(*(permission(name) for name in extra))
    return person


def test_deleting_users_refuses_superusers_even_with_the_delete_permission(client, world, django_user_model):
    root, maria = world["root"], world["maria"]
    client.force_login(staff_team_admin_with(django_user_model, "dora", "auth.delete_user"))
    changelist = reverse("admin:auth_user_changelist")
    bulk = {"action": "delete_selected", "_selected_action": [str(root.pk), str(maria.pk)]}
    assert client.post(changelist, bulk).status_code == 403  # the confirmation page
    assert client.post(changelist, {**bulk, "post": "yes"}).status_code == 403
    assert client.post(reverse("admin:auth_user_delete", args=[root.pk]), {"post": "yes"}).status_code == 403
    assert django_user_model.objects.filter(pk__in=[root.pk, maria.pk]).count() == 2
    # Within reach, the same action works.
    response = client.post(changelist, {"action": "delete_selected", "_selected_action": [str(maria.pk)], "post": "yes"})
    assert response.status_code == 302 and not django_user_model.objects.filter(pk=maria.pk).exists()


def test_group_admin_offers_only_the_permissions_one_holds_and_keeps_the_rest(client, world, django_user_model):
    viewer_group = Group.objects.get(name=roles.VIEWER)
    viewer_group.permissions.add(permission("auth.delete_user"))  # put there by a superuser
    client.force_login(staff_team_admin_with(django_user_model, "greta", "auth.view_group", "auth.change_group"))
    url = reverse("admin:auth_group_change", args=[viewer_group.pk])
    page = client.get(url).content.decode()
    assert f'value="{permission("submissions.view_usage").pk}"' in page
    assert f'value="{permission("auth.add_group").pk}"' not in page
    crafted = client.post(url, {"name": roles.VIEWER, "permissions": [str(permission("auth.add_group").pk)]})
    assert crafted.status_code == 200 and sorted(p.codename for p in viewer_group.permissions.all()) == [
        "delete_user", "view_team_history"]
    saved = client.post(url, {"name": roles.VIEWER, "permissions": [str(permission("submissions.view_usage").pk)]})
    assert saved.status_code == 302
    assert sorted(p.codename for p in viewer_group.permissions.all()) == ["delete_user", "view_usage"]
