"""Users and groups in Django admin, so that staff who are not superusers cannot raise anyone's privileges.

Django's stock UserAdmin lets anyone with "change user" tick *Superuser status* (on themselves too), reset a
superuser's password and give any group or permission; team admins hold "change user" to look after
members. Who may change whom, and what they may give, is decided in submissions.team (the Members page
asks the same functions); this module only applies those answers to admin's forms, views and actions."""

import functools

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from submissions.team import services as team_services

User = get_user_model()

# Only a superuser may set these; for anyone else admin shows them as text and leaves them out of the form.
PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "user_permissions")


def _refuse_unless_all_changeable(action):
    """Wrap a bulk action: refused whole if any selected user is out of the actor's reach."""

    @functools.wraps(action)
    def guarded(modeladmin, request, queryset):
        selected = list(queryset)
        if len(team_services.changeable_user_ids(actor=request.user, targets=selected)) != len(selected):
            raise PermissionDenied
        return action(modeladmin, request, queryset)

    return guarded


class OffersOnlyWhatTheActorMayGive(admin.ModelAdmin):
    """For a many-to-many an actor may only partly give (a user's groups, a group's permissions): the form
    offers what team/services.py says they may give, and saving keeps what it did not offer instead of dropping it."""

    offered_relation: str

    def offered(self, request):
        raise NotImplementedError

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == self.offered_relation:
            kwargs["queryset"] = self.offered(request)
        return super().formfield_for_manytomany(db_field, request=request, **kwargs)

    def save_related(self, request, form, formsets, change):
        relation = getattr(form.instance, self.offered_relation)
        kept = list(relation.exclude(pk__in=self.offered(request))) if change and not request.user.is_superuser else []
        super().save_related(request, form, formsets, change)
        relation.add(*kept)


class DubDashUserAdmin(OffersOnlyWhatTheActorMayGive, UserAdmin):
    offered_relation = "groups"

    def offered(self, request):
        return team_services.assignable_groups(actor=request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + PRIVILEGE_FIELDS

    def has_change_permission(self, request, obj=None):
        # UserAdmin's password view asks this too, with the user whose password it would set.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or team_services.can_change_user(actor=request.user, target=obj))

    def has_delete_permission(self, request, obj=None):
        # Asked for every selected user by the bulk delete as well, which then refuses the lot.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or team_services.can_change_user(actor=request.user, target=obj))

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {
            name: (_refuse_unless_all_changeable(action[0]), name, action[2])
            for name, action in actions.items()
            if action is not None
        }

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            # Read-only fields already keep a crafted is_superuser/is_staff out of the form; this keeps them
            # out of the database whatever form is used.
            if change:
                stored = User._default_manager.only("is_superuser", "is_staff").get(pk=obj.pk)
                obj.is_superuser, obj.is_staff = stored.is_superuser, stored.is_staff
            else:
                obj.is_superuser = obj.is_staff = False
        super().save_model(request, obj, form, change)


class DubDashGroupAdmin(OffersOnlyWhatTheActorMayGive, GroupAdmin):
    """Whoever may change groups without being a superuser puts in them only permissions they hold."""

    offered_relation = "permissions"

    def offered(self, request):
        return team_services.grantable_permissions(actor=request.user)


admin.site.unregister(User)
admin.site.register(User, DubDashUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, DubDashGroupAdmin)
